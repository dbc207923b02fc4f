#!/usr/bin/env bash
# Build benchmark (numbers, not assertions): on this machine, measure
#   1. a cold build of the lean config (empty ccache, no build dir),
#   2. a ccache-warm build in a fresh worktree/build dir,
#   3. the incremental builds of patches/linkwatch after the base.
# Uses its own cache dir (BENCH_CACHE, default a new temp dir) so it never touches your builds; the
# prepared default tree is borrowed from $KTEST_CACHE (or ~/.cache/ktest) when it exists.
set -euo pipefail
cd "$(dirname "$0")/.."
KT=${KT:-.venv/bin/ktest}
main_cache=${KTEST_CACHE:-$HOME/.cache/ktest}
export KTEST_CACHE=${BENCH_CACHE:-$(mktemp -d /tmp/ktest-bench.XXXXXX)}
mkdir -p "$KTEST_CACHE"
if [ -d "$main_cache/trees" ] && [ ! -e "$KTEST_CACHE/trees" ] && [ "$main_cache" != "$KTEST_CACHE" ]; then
  ln -s "$main_cache/trees" "$KTEST_CACHE/trees"
fi
out=${BENCH_OUT:-/tmp/ktest-bench-$(date +%Y%m%d-%H%M%S).txt}
t() { local s; s=$(date +%s.%N); "$@" >/dev/null; python3 -c "print(f'{$(date +%s.%N)-$s:.1f}')"; }

$KT tree >/dev/null                                   # extraction is not part of the build timings
rm -rf "$KTEST_CACHE"/{lineages,artifacts,ccache}
cold=$(t "$KT" build)
rm -rf "$KTEST_CACHE"/{lineages,artifacts}
warm=$(t "$KT" build)
$KT build patches/linkwatch --json > "$KTEST_CACHE/incr.json"
incr=$(python3 -c "import json; d=json.load(open('$KTEST_CACHE/incr.json')); print(' '.join(f\"{b['duration_s']:.1f}\" for b in d['patches']))")
hit=$(t "$KT" build patches/linkwatch)
{
  echo "ktest build benchmark $(date -u +%FT%TZ) on $(nproc) cores, $(gcc --version | head -1)"
  echo "cold lean build (empty ccache):        ${cold} s"
  echo "ccache-warm build, fresh build dir:     ${warm} s"
  echo "incremental per patch (linkwatch 1..n): ${incr} s"
  echo "repeat of the whole series (cache hit): ${hit} s"
  echo "config: $(grep -c '=y' "$KTEST_CACHE"/artifacts/*/config | head -1 | cut -d: -f2) options =y"
} | tee "$out"
