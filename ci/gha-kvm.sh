#!/usr/bin/env bash
# GitHub Actions: let the runner user (and the job's container) use KVM, then check /dev/kvm really
# opens and answers KVM_GET_API_VERSION.  ktest's functional probe (a real guest boot) runs later,
# inside the job, with `ktest kvm --fresh`.  Exit 1 if /dev/kvm is unusable.
set -euo pipefail
SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
echo 'KERNEL=="kvm", GROUP="kvm", MODE="0666", OPTIONS+="static_node=kvm"' \
  | $SUDO tee /etc/udev/rules.d/99-ktest-kvm.rules >/dev/null
$SUDO udevadm control --reload-rules
$SUDO udevadm trigger --name-match=kvm
python3 - <<'PY'
import fcntl, os, sys
KVM_GET_API_VERSION = 0xAE00
try:
    fd = os.open("/dev/kvm", os.O_RDWR | os.O_CLOEXEC)
    api = fcntl.ioctl(fd, KVM_GET_API_VERSION)
    os.close(fd)
except OSError as e:
    print(f"::error title=KVM::/dev/kvm cannot be used: {e}")
    sys.exit(1)
print(f"/dev/kvm opens, KVM API version {api}")
PY
