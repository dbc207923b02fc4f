#!/usr/bin/env bash
# The CI merge step: `ktest merge` every shard report under DIR into OUT (one report per series x
# kernel, plus index.html, junit.xml, summary.md, merge.json), append summary.md to the job summary,
# and say distinctly whether the work regressed (exit 1), could not run (exit 2) or is undecided (exit 3).
# Usage: ci/gha-merge.sh SHARDS_DIR OUT_DIR
set -uo pipefail
cd "$(dirname "$0")/.." || exit 2
in=${1:?dir of shard reports}; out=${2:?output dir}
if [ ! -x .venv/bin/ktest ]; then KTEST_SKIP_APT=1 ci/setup.sh || exit 2; fi
.venv/bin/ktest merge --out "$out" "$in"
rc=$?
summary=${GITHUB_STEP_SUMMARY:-/dev/null}
if [ -f "$out/summary.md" ]; then
  cat "$out/summary.md" >> "$summary"
else
  echo "## ktest: the shard reports could not be merged (exit $rc)" >> "$summary"
fi
case $rc in
  0) echo "ktest: no regression" ;;
  1) echo "::error title=ktest: regression::a patched kernel regressed; see the job summary and the ktest-merged artifact" ;;
  3) echo "::warning title=ktest: undecided::checks or metrics are still in doubt after the last round (not green); see the job summary for each one, the effect seen and the boots it had" ;;
  *) echo "::error title=ktest: could not run::ktest could not produce a verdict (exit $rc): a build, boot or shard failed; see the shard logs" ;;
esac
exit "$rc"
