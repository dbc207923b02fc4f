#!/usr/bin/env bash
# One shard of the CI matrix: set up (ci/setup.sh, as .ci/run does), build, probe KVM for real, then
# `ktest run --shard I/N` of one series on one kernel.  Reports go to $KTEST_REPORTS (default
# reports/ci); the exit code is ktest's: 0 no regression, 1 regression, 2 could not run.
# Usage: ci/gha-shard.sh KERNEL SERIES I/N [extra ktest run args...]
set -uo pipefail
cd "$(dirname "$0")/.." || exit 2
kernel=${1:?kernel}; series=${2:?series}; shard=${3:?I/N}; shift 3
reports=${KTEST_REPORTS:-reports/ci}
mkdir -p "$reports"
ci/setup.sh || exit 2
ktest=.venv/bin/ktest
$ktest build --kernel "$kernel" "$series" || exit $?
$ktest kvm --kernel "$kernel" --fresh || exit $?
$ktest run --kernel "$kernel" --shard "$shard" --reports "$reports" "$@" "$series"
rc=$?
echo "$rc" > "$reports/exit-code"
exit "$rc"
