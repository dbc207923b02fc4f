"""This host's identity for answers cached per host (the KVM probe's), the cached KVM answer, and the
guests' shape: what their timings are kept under."""

from __future__ import annotations

import functools
import json
import platform
import subprocess
from typing import Any

from ktest.base.cache import Cache, short_hash

# The vCPUs of every guest.  One, measured under TCG: 1- and 2-vCPU guests of the 6.12 base side by side
# in the default pool of 4 on 2 host cores (docs/evidence/2026-12-07-guest-vcpus-6.12-tcg).  The base IQR
# of the linkwatch paths no rate limit holds fell, quiet, from 4.3 to 0.5 ms (veth peer_down) and 5.0 to
# 1.1 (the expired cable pull's cut_to_down); beside a CPU-bound process from 10.1 to 1.2 and 5.9 to 2.7;
# the bonding failover (miimon 10 ms) from 8.7 to 2.7 and the loss window from 31.0 to 6.3.  Boot to the
# harness 9-22 s -> 4-10 s, a bonding boot 202-241 s -> 142-175 s.  With one vCPU no work crosses to a
# halted sibling whose QEMU thread the host must wake (an unbound workqueue's, an IPI), and the pool has
# half as many QEMU threads for its cores.  KVM guests get one too (not measured there).
GUEST_CPUS = 1
# what a guest had before GUEST_CPUS was recorded as 1: results without "cpus" in their env had 2
EARLIER_GUEST_CPUS = 2
ACCELS = ("kvm", "tcg")


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


def guest_key(accel: str, cpus: int = GUEST_CPUS) -> str:
    """What a guest's timings are kept under (calibrations, the history's A/A data of a base kernel): its
    accel and its vCPUs, e.g. "tcg-1cpu".  Guests of another shape are another machine's noise."""
    return f"{accel}-{cpus}cpu"


def env_guest_key(env: dict[str, Any] | None) -> str | None:
    """guest_key of a recorded guest run's or result's env; None without a known accel or with a vCPU
    count that is not one (a result.json from elsewhere may say anything, and the key names a file)."""
    accel, cpus = (env or {}).get("accel"), (env or {}).get("cpus", EARLIER_GUEST_CPUS)
    if accel not in ACCELS or isinstance(cpus, bool) or not isinstance(cpus, int) or not 1 <= cpus <= 64:
        return None
    return guest_key(accel, cpus)
