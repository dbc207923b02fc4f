#!/usr/bin/env bash
# Run a ci/ script inside Debian 12 on a GitHub runner (Ubuntu has no linux-source-6.12/6.1):
# the checkout is mounted at /src, ktest's cache at /root/.cache/ktest (restored/saved by
# actions/cache on the runner), /dev/kvm is passed through.  Files are handed back to the runner
# user afterwards so actions/cache and upload-artifact can read them.  The restored tree belongs to the
# runner user, so git in the container (root) is told to trust it (safe.directory).
# Usage: ci/gha-debian.sh ci/SCRIPT.sh ARGS...
set -uo pipefail
cd "$(dirname "$0")/.." || exit 2
cache="$HOME/.cache/ktest"
mkdir -p "$cache"
kvm=(); [ -e /dev/kvm ] && kvm=(--device /dev/kvm)
docker run --rm "${kvm[@]}" -v "$PWD:/src" -v "$cache:/root/.cache/ktest" -w /src \
  -e GITHUB_STEP_SUMMARY=/src/.step-summary -e KTEST_REPORTS -e KTEST_TREE -e KTEST_BASE -e CI -e GITHUB_ACTIONS \
  "${KTEST_IMAGE:-debian:12}" \
  bash -c 'printf "[safe]\n\tdirectory = *\n" > /root/.gitconfig && exec bash "$@"' gha-debian "$@"
rc=$?
[ -f .step-summary ] && [ -n "${GITHUB_STEP_SUMMARY:-}" ] && cat .step-summary >> "$GITHUB_STEP_SUMMARY"
sudo chown -R "$(id -u):$(id -g)" "$PWD" "$cache" 2>/dev/null || true
exit "$rc"
