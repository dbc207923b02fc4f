#!/usr/bin/env bash
# Sensitivity and specificity: run mutants of tests/data/mutants through `ktest run`, each as a FULL run
# of its area (no -k: the checks are chosen from the files the patch touches, as for any series, and the
# run-wide correction covers all of them), and write the confusion table.  Positives ("expect":
# "regression") are small plausible kernel patches that each break a behaviour some check exists for;
# negatives ("expect": "none") are behaviour-preserving refactors that must come out green.
#
#   ci/bench-sensitivity.sh                    # every mutant
#   KTEST_BENCH_SET=negatives ci/bench-sensitivity.sh
#   ci/bench-sensitivity.sh lw-interval-2hz bond-refactor-prio-helper
#
# KTEST_BENCH_SET: all (default), positives or negatives; names given as arguments are run instead.
# KTEST_RUN_OPTS: extra `ktest run` options (shell words, e.g. "--kernel 6.1 --max-rounds 6"); a -k there
#   makes the runs partial, and the table says so.
# KTEST_BIN: the ktest to run (default .venv/bin/ktest; the tests give a fake one).
# KTEST_BENCH_OUT: output directory (default reports/bench-sensitivity-DATE): per mutant its reports
#   (NAME/latest/result.json ...), log, exit code and seconds; one history.sqlite; confusion.json and
#   confusion.txt (ci/bench_confusion.py says what each field means).
# Exit 0 if every positive was caught, every negative clean and no improvement called; else 1.
# Run it alone on the host: other guests share the cores and blur the timings.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x .venv/bin/ktest ] || ci/setup.sh
ktest=${KTEST_BIN:-.venv/bin/ktest}
out=${KTEST_BENCH_OUT:-reports/bench-sensitivity-$(date +%Y%m%d-%H%M%S)}
set_=${KTEST_BENCH_SET:-all}
extra=()
eval "extra=(${KTEST_RUN_OPTS:-})"   # shell words, quotes kept
case $set_ in
  all|positives|negatives) ;;
  *) echo "bench-sensitivity: KTEST_BENCH_SET must be all, positives or negatives, not '$set_'" >&2; exit 2 ;;
esac

expect_of() {   # mutant name -> its "expect" ("regression" or "none")
  .venv/bin/python -c 'import json,sys; print(json.load(open(sys.argv[1]))["expect"])' \
    "tests/data/mutants/$1/mutant.json"
}

names=()
if [ $# -gt 0 ]; then
  for m in "$@"; do
    if [ ! -f "tests/data/mutants/$m/mutant.json" ]; then
      echo "bench-sensitivity: no mutant '$m' (see tests/data/mutants/)" >&2
      exit 2
    fi
    names+=("$m")
  done
else
  for d in tests/data/mutants/*/; do
    d=${d%/}
    m=${d##*/}
    case $set_:$(expect_of "$m") in
      all:*|positives:regression|negatives:none) names+=("$m") ;;
    esac
  done
fi
[ ${#names[@]} -gt 0 ] || { echo "bench-sensitivity: no mutant selected" >&2; exit 2; }

mkdir -p "$out"
KTEST_BENCH_STARTED=$(date -u +%Y-%m-%dT%H:%M:%SZ)
KTEST_BENCH_RUN_OPTS=${KTEST_RUN_OPTS:-}
export KTEST_BENCH_STARTED KTEST_BENCH_RUN_OPTS
echo "bench-sensitivity: ${#names[@]} mutants, full runs, into $out"
for m in "${names[@]}"; do
  d=tests/data/mutants/$m
  echo "== $m ($(expect_of "$m")): ktest run $d --no-bisect ${extra[*]}"
  start=$(date +%s)
  rc=0
  "$ktest" run "$d" --no-bisect --reports "$out/$m" --db "$out/history.sqlite" "${extra[@]}" \
    >"$out/$m.log" 2>&1 || rc=$?
  echo "$(( $(date +%s) - start ))" >"$out/$m.seconds"
  echo "$rc" >"$out/$m.rc"
  echo "   exit $rc after $(cat "$out/$m.seconds") s: $(tail -1 "$out/$m.log")"
done
exec .venv/bin/python ci/bench_confusion.py "$out" "${names[@]}"
