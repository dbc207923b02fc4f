"""This host's identity for answers cached per host (the KVM probe's), and the cached KVM answer."""

from __future__ import annotations

import functools
import json
import platform
import subprocess
from typing import Any

from ktest.base.cache import Cache, short_hash


@functools.cache
def qemu_version() -> str:
    try:
        p = subprocess.run(["qemu-system-x86_64", "--version"], capture_output=True, text=True, timeout=10)
        return p.stdout.splitlines()[0] if p.stdout else "?"
    except (OSError, subprocess.TimeoutExpired):
        return "?"


def host_key() -> str:
    """The host kernel, QEMU and host name: what decides whether KVM really runs a guest here."""
    return short_hash(platform.release(), qemu_version(), platform.node())


def kvm_probes(cache: Cache) -> dict[str, Any]:
    """Every cached KVM probe answer (cache/kvm-probe.json), by host key; {} if none or unreadable."""
    try:
        known = json.loads((cache.root / "kvm-probe.json").read_text())
    except (OSError, ValueError):
        return {}
    return known if isinstance(known, dict) else {}


def kvm_answer(cache: Cache) -> dict[str, Any] | None:
    """This host's cached probe answer ({"ok", "reason", ...}), or None if it was never probed."""
    ans = kvm_probes(cache).get(host_key())
    return ans if isinstance(ans, dict) else None
