"""Kernel-clock timestamps of kernel functions, from kprobe events (guest side).

A check names the functions it times; each becomes a kprobe event in tracefs (group "ktest"), with the
first argument kept as a raw value (a net_device pointer, to tell devices apart without knowing the
struct's layout).  The trace clock is "mono": the kernel's CLOCK_MONOTONIC, the clock user space reads
with clock_gettime(CLOCK_MONOTONIC) (ktest.guest.nl.now_ms), so kernel events and user-space requests sit on
one time line.  Reading trace_pipe consumes events; nothing is lost between reads.

Tracing is passive: a kprobe does not take the RTNL or sync linkwatch (NOTES: the observer effect).
A kernel without kprobe events (CONFIG_KPROBE_EVENTS) has no `kprobe_events` file: `available()` says
so, and a check that needs kernel timestamps skips with that reason.
"""

from __future__ import annotations

import errno
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOTS = (Path("/sys/kernel/tracing"), Path("/sys/kernel/debug/tracing"))
GROUP = "ktest"
# "<task>-<pid> [cpu] <flags> <secs>.<usecs>: <event>: (<func>+0x0/0x..) arg=0x... "
_LINE = re.compile(r"\s(\d+\.\d+):\s+(\w+):\s+\(([^)]*)\)(.*)$")
_ARG = re.compile(r"(\w+)=(0x[0-9a-fA-F]+|-?\d+)")


@dataclass
class Event:
    t_ms: float                  # kernel CLOCK_MONOTONIC, ms
    name: str                    # the probe's name (ktest/<name>)
    args: dict[str, Any] = field(default_factory=dict)

    def to_json(self, t0: float) -> dict[str, Any]:
        return {"t_ms": round(self.t_ms - t0, 3), "event": f"kernel: {self.name}",
                **({"dev": hex(self.args["dev"])} if "dev" in self.args else {})}


def parse(text: str) -> list[Event]:
    """Lines of trace_pipe -> events (other lines are ignored)."""
    out = []
    for line in text.splitlines():
        m = _LINE.search(line)
        if not m:
            continue
        args = {k: int(v, 0) for k, v in _ARG.findall(m.group(4))}
        out.append(Event(float(m.group(1)) * 1000.0, m.group(2), args))
    return out


def root() -> Path | None:
    for r in ROOTS:
        if (r / "kprobe_events").exists():
            return r
    if not any(r.exists() for r in ROOTS[:1]):
        return None
    try:                                   # tracefs not mounted yet
        os.system(f"mount -t tracefs nodev {ROOTS[0]} 2>/dev/null")
    except OSError:
        return None
    return ROOTS[0] if (ROOTS[0] / "kprobe_events").exists() else None


def available() -> str | None:
    """None when kprobe events work here, else why not."""
    if root() is None:
        return "no kprobe events in this kernel (CONFIG_KPROBE_EVENTS) or no tracefs"
    return None


@contextmanager
def optional(probes: dict[str, tuple[str, str]]) -> Iterator[KTrace | None]:
    """A KTrace of these probes, closed afterwards; None in a kernel without kprobe events (a check then
    keeps its user-space times only)."""
    if available():
        yield None
        return
    t = KTrace(probes)
    try:
        yield t
    finally:
        t.close()


class KTrace:
    """probes: {name: (symbol, fetch args)}, e.g. {"carrier_off": ("netif_carrier_off", "dev=%di:x64")}."""

    def __init__(self, probes: dict[str, tuple[str, str]]):
        r = root()
        if r is None:
            raise OSError(errno.ENOENT, available())
        self.root, self.names = r, list(probes)
        self._write("events/enable", "0")
        self._write("trace_clock", "mono")
        for name, (sym, args) in probes.items():
            self._append("kprobe_events", f"p:{GROUP}/{name} {sym} {args}".strip())
        self._write(f"events/{GROUP}/enable", "1")
        self._write("trace", "")
        self.pipe = os.open(self.root / "trace_pipe", os.O_RDONLY | os.O_NONBLOCK)
        self._rest = ""

    def _write(self, rel: str, text: str, flags: int = os.O_TRUNC) -> None:
        # os.open, not open(): Python's append mode seeks to the end after opening, and tracefs files
        # refuse that seek with EINVAL (which looks like the kernel refusing the probe)
        fd = os.open(self.root / rel, os.O_WRONLY | flags)
        try:
            os.write(fd, text.encode())
        finally:
            os.close(fd)

    def _append(self, rel: str, text: str) -> None:
        try:
            self._write(rel, text + "\n", os.O_APPEND)
        except OSError as e:
            log = (self.root / "error_log").read_text().strip().splitlines()[-2:] if (self.root / "error_log").exists() else []
            raise OSError(e.errno, f"kprobe '{text}': {e.strerror}; {' '.join(log)}") from None

    def read(self) -> list[Event]:
        """Every event since the last read, in order."""
        chunks = []
        while True:
            try:
                b = os.read(self.pipe, 65536)
            except BlockingIOError:
                break
            if not b:
                break
            chunks.append(b.decode(errors="replace"))
        text = self._rest + "".join(chunks)
        text, _, self._rest = text.rpartition("\n") if not text.endswith("\n") else (text, "", "")
        return parse(text)

    def close(self) -> None:
        try:
            os.close(self.pipe)
            self._write(f"events/{GROUP}/enable", "0")
            for name in self.names:
                self._append("kprobe_events", f"-:{GROUP}/{name}")
        except OSError:
            pass


def first(events: list[Event], name: str, after: float, dev: int | None = None) -> Event | None:
    """The first `name` event at or after `after` (ms), of device `dev` when given."""
    return next((e for e in events if e.name == name and e.t_ms >= after
                 and (dev is None or e.args.get("dev") == dev)), None)


def last(events: list[Event], name: str, before: float, dev: int | None = None) -> Event | None:
    """The last `name` event at or before `before` (ms), of device `dev` when given."""
    return next((e for e in reversed(events) if e.name == name and e.t_ms <= before
                 and (dev is None or e.args.get("dev") == dev)), None)
