#!/usr/bin/env bash
# One-time host set-up for ktest on Debian 12: apt packages, a venv in .venv, the package.
# Safe to run again: everything is idempotent.  KTEST_SKIP_APT=1 skips the apt step.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"

APT_PKGS=(
  # kernel build
  build-essential flex bison bc libelf-dev libssl-dev cpio kmod ccache git rsync lz4
  # default trees
  linux-source-6.12 xz-utils
  # boot: qemu, udev (vng's script I/O ports need it), 9p
  qemu-system-x86 udev
  # guest-side userspace (the guest runs the host's root fs)
  iproute2 iputils-ping ethtool jq tcpdump procps psmisc
  # Python for the venv (a bare Debian image has none)
  python3 python3-venv ca-certificates
  # report tests; shellcheck lets actionlint check the workflow's shell
  chromium shellcheck
)

if [ "${KTEST_SKIP_APT:-0}" != 1 ]; then
  missing=()
  for p in "${APT_PKGS[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    echo "ktest setup: installing ${missing[*]}"
    SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
fi

PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip >/dev/null
.venv/bin/python -m pip install -q -e '.[test]'
echo "ktest setup: done (.venv/bin/ktest)"
