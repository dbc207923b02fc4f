"""Helpers for checks running inside the guest: commands, devices, namespaces, clocks."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path


def sh(cmd: str, check: bool = True, ns: str | None = None) -> str:
    """Run a shell command (optionally in a netns); return stdout; raise with stderr on failure."""
    if ns:
        cmd = f"ip netns exec {ns} sh -c {quote(cmd)}"
    p = subprocess.run(cmd, shell=True, capture_output=True, text=True)
    if check and p.returncode != 0:
        raise RuntimeError(f"`{cmd}` failed ({p.returncode}): {p.stderr.strip()[:500]}")
    return p.stdout


def quote(s: str) -> str:
    import shlex

    return shlex.quote(s)


def virtio_nics() -> list[str]:
    """The virtio-net interfaces, found by driver (udev may rename them from eth0/eth1)."""
    out = []
    for dev in sorted(Path("/sys/class/net").iterdir()):
        drv = dev / "device" / "driver"
        if drv.exists() and os.path.basename(os.readlink(drv)) == "virtio_net":
            out.append(dev.name)
    return out


def operstate(dev: str, ns_root: Path = Path("/sys/class/net")) -> str:
    """Passive: reading sysfs operstate does not force a linkwatch sync (carrier does)."""
    return (ns_root / dev / "operstate").read_text().strip()


def mono_ms() -> float:
    return time.clock_gettime(time.CLOCK_MONOTONIC) * 1000.0


def uptime_s() -> float:
    return float(Path("/proc/uptime").read_text().split()[0])
