#!/usr/bin/env bash
# One shard of the CI matrix: set up (ci/setup.sh, as .ci/run does), build, probe KVM for real, then
# `ktest run --shard I/N` of one series on one kernel.  Reports go to $KTEST_REPORTS (default
# reports/ci); the exit code is ktest's: 0 no regression, 1 regression, 2 could not run.
# Usage: ci/gha-shard.sh KERNEL SERIES I/N [extra ktest run args...]
# KTEST_TREE=PATH (and KTEST_BASE=REV, default HEAD) tests your own kernel checkout instead of Debian's
# linux-source-KERNEL; it is only read, never modified.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 2
kernel=${1:?kernel}; series=${2:?series}; shard=${3:?I/N}; shift 3
reports=${KTEST_REPORTS:-reports/ci}
mkdir -p "$reports"
ci/setup.sh || exit 2
ktest=.venv/bin/ktest
tree=(--kernel "$kernel")
if [ -n "${KTEST_TREE:-}" ]; then tree=(--tree "$KTEST_TREE" --base "${KTEST_BASE:-HEAD}"); fi
# a failing build is not the end: `ktest run` meets it again and records it in result.json, so the
# merge reports "could not run: build failed at ..." rather than a missing shard
if $ktest build "${tree[@]}" "$series"; then
  $ktest kvm "${tree[@]}" --fresh
fi
$ktest run "${tree[@]}" --shard "$shard" --reports "$reports" "$@" "$series"
rc=$?
echo "$rc" > "$reports/exit-code"
exit "$rc"
