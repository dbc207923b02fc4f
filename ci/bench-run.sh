#!/usr/bin/env bash
# Time-to-verdict benchmark (numbers, not assertions).  In one invocation, on this machine:
#   1. `ktest run patches/linkwatch` with --vms 1 and with the default pool (warm cache: builds cached);
#   2. the same for patches/bonding;
#   3. `ci/main.sh` on an empty cache (tree extraction, cold build, boots; apt is already done).
# Prints each wall time, the ratios, and each run's verdict and seed effects (the expectations'
# observed values), so that the pool's speed-up can be read next to its fidelity.
# BENCH_PARTS picks parts (default "linkwatch bonding main"); BENCH_VMS the pool sizes of parts 1-2
# (default "1 default"; e.g. "1 2 4 8" to choose a default from numbers); BENCH_ARGS extra `ktest run`
# arguments (e.g. "-k 'not kselftest'" to leave out the upstream suite); BENCH_OUT the report dir.
# Run it alone: other guests on the host share its slots and blur the times.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x .venv/bin/ktest ] || ci/setup.sh
out=${BENCH_OUT:-reports/bench-run-$(date +%Y%m%d-%H%M%S)}
parts=${BENCH_PARTS:-linkwatch bonding main}
sizes=${BENCH_VMS:-1 default}
extra=()
eval "extra=(${BENCH_ARGS:-})"   # shell words, quotes kept: -k 'a or b'
mkdir -p "$out"
log="$out/times.txt"
: >"$log"

timed() {   # name, command...: run it, record "name seconds rc"
  local name=$1 s rc=0
  shift
  s=$(date +%s)
  "$@" >"$out/$name.log" 2>&1 || rc=$?
  echo "$name $(( $(date +%s) - s )) $rc" >>"$log"
  echo "$name: $(( $(date +%s) - s )) s, exit $rc"
}

for part in $parts; do
  case $part in
    linkwatch|bonding)
      .venv/bin/ktest build "patches/$part" >/dev/null   # warm: builds are not part of the timings
      for n in $sizes; do
        if [ "$n" = default ]; then
          timed "$part-default" .venv/bin/ktest run "patches/$part" "${extra[@]}" --reports "$out/$part-default"
        else
          timed "$part-vms$n" .venv/bin/ktest run "patches/$part" --vms "$n" "${extra[@]}" --reports "$out/$part-vms$n"
        fi
      done
      ;;
    main)
      empty=$(mktemp -d /tmp/ktest-bench-cache.XXXXXX)
      timed main-empty-cache env KTEST_CACHE="$empty" ci/main.sh patches/linkwatch --reports "$out/main"
      rm -rf "$empty"
      ;;
    *) echo "bench-run: unknown part $part (linkwatch, bonding, main)" >&2; exit 2 ;;
  esac
done

exec .venv/bin/python - "$out" <<'EOF'
import json, sys
from pathlib import Path

out = Path(sys.argv[1])
times = {}
for line in (out / "times.txt").read_text().splitlines():
    name, secs, rc = line.split()
    times[name] = (int(secs), int(rc))
print(f"\nktest time to verdict ({out})")
for name, (secs, rc) in times.items():
    res = out / name.replace("-empty-cache", "") / "latest" / "result.json"
    v, effects, vms = "no result", [], "?"
    if res.exists():
        r = json.loads(res.read_text())
        v = r["verdict"]["status"]
        vms = r["settings"].get("vms")
        effects = [f"{e['check'].split('.')[-1]} {e.get('metric', '')}: {e.get('observed', '')}"
                   + ("" if e.get("held") else " (NOT HELD)") for e in r.get("expected", [])]
    print(f"  {name:18} {secs // 60:3d}:{secs % 60:02d}  exit {rc}  vms {vms}  {v}")
    for e in effects:
        print(f"      {e}")
for area in ("linkwatch", "bonding"):
    one = times.get(f"{area}-vms1")
    for name, (secs, _) in times.items():
        if one and secs and name.startswith(f"{area}-") and name != f"{area}-vms1":
            print(f"  {area}: --vms 1 / {name.split('-', 1)[1]} = {one[0] / secs:.2f}x")
EOF
