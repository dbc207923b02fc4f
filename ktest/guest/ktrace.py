"""Kernel-clock timestamps of kernel functions, from kprobe events (guest side).

A check names the functions it times; each becomes a kprobe event in tracefs (group "ktest"), with the
first argument kept as a raw value (a net_device pointer, to tell devices apart without knowing the
struct's layout).  The trace clock is "mono": the kernel's CLOCK_MONOTONIC, the clock user space reads
with clock_gettime(CLOCK_MONOTONIC) (ktest.guest.nl.now_ms), so kernel events and user-space requests sit on
one time line.  Reading trace_pipe consumes events; nothing is lost between reads.

Tracing is passive: a kprobe does not take the RTNL or sync linkwatch (NOTES: the observer effect).
A kernel without kprobe events (CONFIG_KPROBE_EVENTS) has no `kprobe_events` file: `available()` says
so, and a check that needs kernel timestamps skips with that reason.

A check may also enable a tracepoint with a filter on a function pointer field, e.g. timer:timer_start
for delayed works' timers ({"timer/timer_start": ("function", "delayed_work_timer_fn")}): its events
carry the timer's jiffies (`expires`, `timeout`, `bucket_expiry`), which tell how far the timer wheel
rounded a delay up (`wheel_rounding`), and the length of a jiffy in this boot (`KTrace.jiffy_ms`).
timer:timer_expire_entry, on the same filter, says how late the timer softirq ran each of them
(`timer_lag`: `now - baseclk` jiffies), which a guest its host starves cannot hide.
"""

from __future__ import annotations

import errno
import functools
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
_LINE = re.compile(r"-(\d+)\s+\[(\d+)\]\s.*?\s(\d+\.\d+):\s+(\w+):\s+\(([^)]*)\)(.*)$")
_ARG = re.compile(r"(\w+)=(0x[0-9a-fA-F]+|-?\d+)")
# a tracepoint's line: "<task>-<pid> [cpu] <flags> <secs>.<usecs>: timer_start: timer=... expires=42 [timeout=250] ..."
_TP_LINE = re.compile(r"-(\d+)\s+\[(\d+)\]\s.*?\s(\d+\.\d+):\s+(\w+):\s+(?!\()(.*)$")
_TP_ARG = re.compile(r"(?<![\w.])(\w+)=\[?(-?\d+)\]?(?=\s|$)")     # decimal fields; hashed pointers are not kept


@dataclass
class Event:
    t_ms: float                  # kernel CLOCK_MONOTONIC, ms
    name: str                    # the probe's name (ktest/<name>), or the tracepoint's (timer_start)
    args: dict[str, Any] = field(default_factory=dict)
    cpu: int | None = None       # the CPU that logged it
    pid: int | None = None       # and the task that was running

    def to_json(self, t0: float) -> dict[str, Any]:
        return {"t_ms": round(self.t_ms - t0, 3), "event": f"kernel: {self.name}",
                **({"dev": hex(self.args["dev"])} if "dev" in self.args else {})}


def parse(text: str) -> list[Event]:
    """Lines of trace_pipe -> events (other lines are ignored)."""
    out = []
    for line in text.splitlines():
        m = _LINE.search(line)
        if m:
            args = {k: int(v, 0) for k, v in _ARG.findall(m.group(6))}
            out.append(Event(float(m.group(3)) * 1000.0, m.group(4), args, int(m.group(2)), int(m.group(1))))
        elif (t := _TP_LINE.search(line)) and not line.lstrip().startswith("#"):
            args = {k: int(v) for k, v in _TP_ARG.findall(t.group(5))}
            out.append(Event(float(t.group(3)) * 1000.0, t.group(4), args, int(t.group(2)), int(t.group(1))))
    return out


@functools.cache
def symbol(name: str) -> int | None:
    """A kernel text symbol's address (/proc/kallsyms), or None where it is absent or hidden
    (kptr_restrict shows zeros).  Read once per boot: every check that traces timers asks, and kallsyms
    is tens of thousands of lines to a guest under TCG."""
    try:
        with open("/proc/kallsyms") as f:
            for line in f:
                addr, _, sym = line.split()[:3]
                if sym == name:
                    return int(addr, 16) or None
    except OSError:
        return None
    return None


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
def optional(probes: dict[str, tuple[str, str]],
             tracepoints: dict[str, tuple[str, str]] | None = None) -> Iterator[KTrace | None]:
    """A KTrace of these probes (and tracepoints, see KTrace), closed afterwards; None in a kernel without
    kprobe events (a check then keeps its user-space times only)."""
    if available():
        yield None
        return
    t = KTrace(probes, tracepoints)
    try:
        yield t
    finally:
        t.close()


class KTrace:
    """probes: {name: (symbol, fetch args)}, e.g. {"carrier_off": ("netif_carrier_off", "dev=%di:x64")}.
    tracepoints: {"system/event": (pointer field, symbol)}, each enabled with the filter "field ==
    the symbol's address"; one whose symbol cannot be found is left off, and `missing` says why."""

    def __init__(self, probes: dict[str, tuple[str, str]], tracepoints: dict[str, tuple[str, str]] | None = None):
        r = root()
        if r is None:
            raise OSError(errno.ENOENT, available())
        self.root, self.names = r, list(probes)
        self.tracepoints: list[str] = []
        self.missing: list[str] = []
        self._ticks: list[tuple[float, int]] = []     # (ms, jiffies) of the first and the latest timer event
        self._write("events/enable", "0")
        self._write("trace_clock", "mono")
        for name, (sym, args) in probes.items():
            self._append("kprobe_events", f"p:{GROUP}/{name} {sym} {args}".strip())
        self._write(f"events/{GROUP}/enable", "1")
        for tp, (fld, sym) in (tracepoints or {}).items():
            addr = symbol(sym)
            if addr is None or not (self.root / "events" / tp / "enable").exists():
                self.missing.append(f"{tp}: {'no tracepoint' if addr else f'no address for {sym}'} in this kernel")
                continue
            self._write(f"events/{tp}/filter", f"{fld} == 0x{addr:x}")
            self._write(f"events/{tp}/enable", "1")
            self.tracepoints.append(tp)
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
        events = parse(text)
        for e in events:
            if {"expires", "timeout"} <= e.args.keys():
                tick = (e.t_ms, e.args["expires"] - e.args["timeout"])     # the jiffies when it was started
                if self._ticks:
                    self._ticks[1:] = [tick]
                else:
                    self._ticks.append(tick)
        return events

    def jiffy_ms(self) -> float | None:
        """The length of a jiffy in this boot (ms), from the timer events read so far: the kernel time
        between the first and the latest over the jiffies between them (None until 100 jiffies apart)."""
        return jiffy_ms(self._ticks)

    def close(self) -> None:
        try:
            os.close(self.pipe)
            for tp in self.tracepoints:
                self._write(f"events/{tp}/enable", "0")
                self._write(f"events/{tp}/filter", "0")
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


def jiffy_ms(ticks: list[tuple[float, int]]) -> float | None:
    """ms per jiffy from (kernel ms, jiffies) pairs, the first and the last: a jiffy seen at a moment is
    less than one tick from it, so pairs 100 jiffies or more apart put the length within 2 % (a rounding
    of 8 jiffies within 0.6 ms at HZ=250; a check's reads span thousands of jiffies)."""
    if len(ticks) < 2 or ticks[-1][1] - ticks[0][1] < 100:
        return None
    return (ticks[-1][0] - ticks[0][0]) / (ticks[-1][1] - ticks[0][1])


def wheel_rounding(events: list[Event], started: Event, within_ms: float = 20.0) -> Event | None:
    """The timer_start event of the delayed work that `started` (a kprobe event, e.g. a carrier change
    that queued linkwatch's work) queued: the first by the same task (on the same CPU where the task is
    not known) within `within_ms` after it (a vCPU the host preempts stops the guest's task, not its
    clock), with a delay (a work queued with none starts no timer).  Its `bucket_expiry - expires` is
    how many jiffies the timer wheel rounded the delay up (calc_index: up to 8 jiffies for a delay of
    63-503)."""
    for e in events:
        if e.t_ms < started.t_ms or e.name != "timer_start":
            continue
        if e.t_ms - started.t_ms > within_ms:
            return None
        same = e.pid == started.pid if started.pid is not None else e.cpu == started.cpu
        if same and e.args.get("timeout", 0) > 0 and "bucket_expiry" in e.args:
            return e
    return None


def timer_lag(events: list[Event], t0: float, t1: float) -> int | None:
    """The most jiffies by which the timer softirq ran an expired timer late between t0 and t1 (ms):
    timer_expire_entry's `now` (jiffies when it ran) minus `baseclk` (the wheel's jiffy it expired at).
    0 or 1 on a guest that runs at its pace; a vCPU its host preempted runs its timers when it is back.
    None: no timer expired in the window (or the trace does not have the tracepoint)."""
    lags = [e.args["now"] - e.args["baseclk"] for e in events
            if e.name == "timer_expire_entry" and t0 <= e.t_ms <= t1 and {"now", "baseclk"} <= e.args.keys()]
    return max(lags) if lags else None
