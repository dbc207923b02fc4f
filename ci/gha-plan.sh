#!/usr/bin/env bash
# GitHub Actions "plan" step: which series to test, and how many shards.
#   pull_request:       every series directory under patches/ that the PR touches (and still exists)
#   workflow_dispatch:  the space-separated paths in INPUT_SERIES
# Writes series=<JSON list>, shards=<JSON list 1..N> and shard_count=N to $GITHUB_OUTPUT (or stdout).
# Env: EVENT_NAME, BASE_SHA, HEAD_SHA (pull_request), INPUT_SERIES, INPUT_SHARDS (default 2).
set -euo pipefail
cd "$(dirname "$0")/.."
out=${GITHUB_OUTPUT:-/dev/stdout}
n=${INPUT_SHARDS:-2}
case "$n" in ''|*[!0-9]*|0) echo "::error title=ktest plan::shards must be a positive integer, got '$n'"; exit 2;; esac

series=()
if [ "${EVENT_NAME:-}" = pull_request ]; then
  while IFS= read -r f; do
    d=$(printf '%s\n' "$f" | cut -d/ -f1-2)
    [ -d "$d" ] && series+=("$d")
  done < <(git diff --name-only "${BASE_SHA:?}" "${HEAD_SHA:?}" -- patches/ | sort -u)
else
  read -r -a series <<< "${INPUT_SERIES:-}"
  for s in "${series[@]}"; do
    [ -e "$s" ] || { echo "::error title=ktest plan::series $s does not exist in this checkout"; exit 2; }
  done
fi

python3 - "$n" "${series[@]}" >> "$out" <<'PY'
import json, sys
n, series = int(sys.argv[1]), sorted(set(sys.argv[2:]))
print("series=" + json.dumps(series))
print("shards=" + json.dumps(list(range(1, n + 1))))
print(f"shard_count={n}")
PY
echo "ktest plan: ${#series[@]} series x $n shard(s): ${series[*]:-none}" >&2
