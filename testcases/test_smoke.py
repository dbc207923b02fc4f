"""Smoke: the guest is the kernel we built, with the virtio-net NICs that the checks use (vng's loop pair plus
ktest's hub NIC)."""

import os
import platform
from pathlib import Path

from ktest.guest.lib import uptime_s, virtio_nics


def test_virtio_nics_present(record):
    nics = virtio_nics()
    record.note("virtio_nics", nics)
    want = int(os.environ.get("KTEST_VIRTIO_NICS", "2"))
    assert len(nics) == want, f"vng --network loop plus ktest's hub NICs should give {want} virtio-net NICs, found {nics}"


def test_guest_basics(record):
    record.note("kernel_release", platform.release())
    # context, not a verdict: with four guests on two host cores this is the host's contention
    # (47-82 s per boot here, 9 s alone), not the kernel's boot; a kernel that cannot boot is a crash
    record.metric("boot_to_check", [uptime_s() * 1000.0], "ms", context=True)
    assert Path("/sys/module/bonding/parameters").is_dir(), "bonding is built in"
    assert Path("/proc/sys/net/ipv6").is_dir(), "IPv6 is built in"
