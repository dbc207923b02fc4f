"""The measurement primitive for linkwatch (operstate latency) checks.

All observation is passive: RTM_NEWLINK multicasts and sysfs operstate, never a single-device
RTM_GETLINK, a carrier read or ethtool (each forces linkwatch_sync_dev() and hides the delay).
"""

from __future__ import annotations

import time

from ktest.nl import Link, LinkEvent, Monitor, now_ms

SETTLE_S = 1.2          # > 1 s: the previous rate-limited linkwatch run has expired
RUNNING_TIMEOUT_MS = 5000.0


def is_running_up(index: int):
    return lambda e: e.index == index and e.kind == "NEWLINK" and e.running and e.operstate == "UP"


class Bench:
    def __init__(self):
        self.link, self.mon = Link(), Monitor()

    def ensure_up(self, index: int) -> None:
        self.mon.drain()
        self.link.set(index, up=True)
        if not _sysfs_running(index):
            self.mon.wait_for(is_running_up(index), RUNNING_TIMEOUT_MS)

    def up_to_running(self, index: int) -> tuple[float | None, list[dict]]:
        """Bring `index` up; return (ms until RTM_NEWLINK shows RUNNING + operstate UP, timeline)."""
        self.mon.drain()
        seen: list[LinkEvent] = []
        t0 = now_ms()
        self.link.set(index, up=True)
        ev = self.mon.wait_for(is_running_up(index), RUNNING_TIMEOUT_MS, seen)
        timeline = [{"t_ms": 0.0, "event": "admin up requested"}] + [e.to_json(t0) for e in seen if e.index == index]
        return (ev.t_ms - t0 if ev else None), timeline

    def close(self):
        self.link.close()
        self.mon.close()


def _sysfs_running(index: int) -> bool:
    import socket

    name = socket.if_indextoname(index)
    return open(f"/sys/class/net/{name}/operstate").read().strip() == "up"


def check_invariants(timeline: list[dict]) -> None:
    for e in timeline:
        if "RUNNING" in e.get("flags", []):
            assert e["operstate"] in ("UP", "UNKNOWN"), f"RUNNING with operstate {e['operstate']}: {e}"


def settle() -> None:
    time.sleep(SETTLE_S)
