#!/usr/bin/env bash
# Sensitivity: run every mutant of tests/data/mutants (small, plausible kernel patches that each break a
# behaviour a check exists for) through `ktest run`, restricted to the checks meant to catch it, and
# print a confusion table: the verdict each got, whether the intended checks called it a regression,
# and whether anything was called an improvement.  Args: mutant names (default: all).  Extra ktest run
# options in KTEST_RUN_OPTS (e.g. "--kernel 6.1").  Exit 1 if any mutant was missed.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x .venv/bin/ktest ] || ci/setup.sh
out=${KTEST_BENCH_OUT:-reports/bench-sensitivity-$(date +%Y%m%d-%H%M%S)}
mkdir -p "$out"
if [ $# -eq 0 ]; then
  for d in tests/data/mutants/*/; do
    d=${d%/}
    set -- "$@" "${d##*/}"
  done
fi
for m in "$@"; do
  d=tests/data/mutants/$m
  expr=$(.venv/bin/python -c 'import json,sys; print(json.load(open(sys.argv[1]))["expr"])' "$d/mutant.json")
  echo "== $m: ktest run -k \"$expr\""
  start=$(date +%s)
  # shellcheck disable=SC2086
  .venv/bin/ktest run "$d" -k "$expr" --no-bisect --reports "$out/$m" --db "$out/history.sqlite" \
    ${KTEST_RUN_OPTS:-} >"$out/$m.log" 2>&1 || true
  echo "$(( $(date +%s) - start ))" >"$out/$m.seconds"
  tail -1 "$out/$m.log"
done
exec .venv/bin/python - "$out" "$@" <<'EOF'
import json, sys
from pathlib import Path

out, names = Path(sys.argv[1]), sys.argv[2:]
rows, missed = [], 0
for m in names:
    spec = json.loads(Path("tests/data/mutants", m, "mutant.json").read_text())
    res = out / m / "latest" / "result.json"
    secs = (out / f"{m}.seconds").read_text().strip()
    if not res.exists():
        rows.append((m, spec["expect"], "no result", "-", "-", secs)); missed += 1; continue
    r = json.loads(res.read_text())
    v = r["verdict"]
    by = {c["path"]: c for c in r["checks"]}
    caught = [p for p in spec["catch"] if by.get(p, {}).get("verdict") in
              ("regression", "metric regression", "still failing, worse")]
    improved = v.get("improvements", [])
    ok = v["status"] == "regression" and caught and not improved
    missed += not ok
    rows.append((m, spec["expect"], v["status"], ", ".join(c.split(".")[-1] for c in caught) or "NONE",
                 ", ".join(improved) or "-", secs))
w = [max(len(str(x[i])) for x in rows + [("mutant", "expected", "verdict", "caught by", "improvements", "s")])
     for i in range(6)]
fmt = "  ".join(f"{{:{n}}}" for n in w)
print(fmt.format("mutant", "expected", "verdict", "caught by", "improvements", "s"))
for row in rows:
    print(fmt.format(*row))
print(f"{len(rows) - missed}/{len(rows)} mutants called a regression by the checks meant to catch them, "
      f"{sum(r[4] != '-' for r in rows)} with an improvement called")
sys.exit(1 if missed else 0)
EOF
