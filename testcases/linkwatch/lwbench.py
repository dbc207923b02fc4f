"""The measurement primitive for linkwatch (operstate latency) checks.

All observation is passive: RTM_NEWLINK multicasts and sysfs operstate, never a single-device
RTM_GETLINK, a carrier read or ethtool (each forces linkwatch_sync_dev() and hides the delay).

No constant of the kernel is assumed.  The rate-limit interval is measured in this boot
(`rate_limit_interval`): two non-urgent events back to back, each made visible by the RTM_NEWLINK that
linkwatch_do_dev() sends for a device that is up, are processed one interval apart.  Every linkwatch run
the checks cause is seen in the event stream, so "the limit has expired" is established from the last
observed run plus the measured interval; "the limit is armed" from the observed processing of a
non-urgent event on a spare device, which must come promptly (else the limit had not expired and the
repetition is retried).
"""

from __future__ import annotations

import statistics
from collections import deque
from typing import Any

import pytest

from ktest.guest.lib import MissedAim, PreconditionNotMet, repeat, sh  # noqa: F401  (the checks import them here)
from ktest.guest.nl import Link, LinkEvent, Monitor, ifindex, now_ms

EVENT_TIMEOUT_MS = 10000.0     # no event within 10 s: the kernel never processed it
INTERVAL_SAMPLES = 3           # the boot's interval, measured once, before the first timing check
JOURNAL = 512                  # events a Bench keeps after reading them (a repetition makes a few dozen)

_interval_ms: float | None = None
_interval_clock: str | None = None     # "kernel" or "user": where the interval was measured


def is_running_up(index: int):
    return lambda e: e.index == index and e.kind == "NEWLINK" and e.running and e.operstate == "UP"


def is_running(index: int):
    """RUNNING, whatever the operstate (a new dummy is UNKNOWN until linkwatch first runs for it)."""
    return lambda e: e.index == index and e.kind == "NEWLINK" and e.running


def is_oper_down(index: int):
    return lambda e: e.index == index and e.kind == "NEWLINK" and e.operstate in ("DOWN", "LOWERLAYERDOWN")


def is_admin_down(index: int):
    return lambda e: e.index == index and e.kind == "NEWLINK" and not e.flags & 1


class Bench:
    """One netlink requester and one listener; remembers when it last saw linkwatch act."""

    ARM = "kt_lwarm"

    def __init__(self):
        self.link, self.mon = Link(), Monitor()
        # conservative start: a linkwatch run may have happened just before we started listening
        self.last_run_ms = now_ms()
        self._arm: int | None = None
        self._others: list[Monitor] = []    # listeners in other namespaces: their runs count too
        self.journal: deque[LinkEvent] = deque(maxlen=JOURNAL)   # the events read lately, in order

    # -- the event stream ------------------------------------------------------------------------
    def _note(self, evs: list[LinkEvent]) -> list[LinkEvent]:
        for e in evs:
            self.journal.append(e)
            if e.kind == "NEWLINK":
                self.last_run_ms = max(self.last_run_ms, e.t_ms)
        return evs

    def wait_since(self, pred, t_from: float, what: str) -> LinkEvent:
        """The first event matching `pred` received at or after `t_from` (ms): one already read while
        waiting for something else (a wait consumes the events before its match), else the next."""
        for e in self.journal:
            if e.t_ms >= t_from and pred(e):
                return e
        return self.wait(pred, what)

    def watch(self, netns_name: str) -> None:
        """Also listen in another namespace: linkwatch is global, and a run for a device there (a veth
        peer) arms the limit as much as one here."""
        from ktest.guest.lib import netns
        with netns(netns_name):
            self._others.append(Monitor())

    def drain(self) -> None:
        self._note(self.mon.events(0))
        for m in self._others:
            self._note(m.events(0))

    def wait(self, pred, what: str, sink: list | None = None, timeout_ms: float = EVENT_TIMEOUT_MS) -> LinkEvent:
        got: list[LinkEvent] = []
        ev = self.mon.wait_for(pred, timeout_ms, got)
        self._note(got)
        if sink is not None:
            sink.extend(got)
        if ev is None:
            raise AssertionError(f"never observed {what} within {timeout_ms:.0f} ms")
        return ev

    # -- rate limit ---------------------------------------------------------------------------------
    def interval_ms(self, trace: Any = None) -> float:
        """The rate-limit interval of this kernel, measured once per boot.  With a kernel trace (a
        ktest.guest.ktrace.KTrace with a "notify" probe on netdev_state_change, and a "linkwatch_run"
        one on linkwatch_event where it can), in the kernel's clock, the shortest gap between the runs'
        starts (kernel_gaps): a queued non-urgent event runs exactly one interval after the previous run,
        never sooner, and later only when it was asked for after the limit had expired.  Without one, the
        largest of a few gaps seen in user space (too long rather than too short, for expire()), which
        under load can be far off (seen: 1599 ms for a 1000 ms interval, and every phase of that boot's
        interval misplaced); a trace given later measures it again in the kernel's clock."""
        global _interval_ms
        if _interval_ms is None or (trace is not None and _interval_clock != "kernel"):
            _interval_ms = None                     # measure_interval sets it
            try:
                self.measure_interval(INTERVAL_SAMPLES, trace)
            except AssertionError as e:
                pytest.fail(f"precondition: could not measure the linkwatch rate-limit interval: {e}")
        assert _interval_ms is not None
        return _interval_ms

    def measure_interval(self, n: int, trace: Any = None) -> list[float]:
        """Gaps between consecutive non-urgent linkwatch runs.  Carrier off on an up dummy is never
        urgent, and its processing shows as RTM_NEWLINK operstate DOWN; carrier on again is urgent
        (qdisc still deactivated) and runs at once without re-arming the limit.  With a kernel trace,
        the gaps are in the kernel's clock, between the runs that sent the messages seen (kernel_gaps).
        The boot's interval, if not measured yet, is set from them (interval_ms says how)."""
        sh("ip link add kt_lwia type dummy && ip link add kt_lwib type dummy && "
           "ip link set kt_lwia up && ip link set kt_lwib up")
        try:
            a, b = ifindex("kt_lwia"), ifindex("kt_lwib")
            self.wait(lambda e: e.index == b and e.running, "kt_lwib running")
            if trace is not None:
                trace.read()
            t_ask = now_ms()
            self.link.set(a, carrier=False)
            prev = self.wait(is_oper_down(a), "the first non-urgent run").t_ms
            spans = [(t_ask, prev)]
            out, dev = [], b
            for _ in range(n):
                t_ask = now_ms()
                self.link.set(dev, carrier=False)
                t = self.wait(is_oper_down(dev), "the next non-urgent run").t_ms
                spans.append((t_ask, t))
                out.append(t - prev)
                prev = t
                other = a if dev == b else b
                self.link.set(other, carrier=True)
                self.wait(is_running_up(other), "carrier on (urgent) processed")
                dev = other
            if trace is not None:
                out = kernel_gaps(trace.read(), spans)
            global _interval_ms, _interval_clock
            if _interval_ms is None:
                _interval_ms, _interval_clock = (min(out), "kernel") if trace is not None else (max(out), "user")
            return out
        finally:
            sh("ip link del kt_lwia; ip link del kt_lwib", check=False)

    def expire(self) -> float:
        """Wait until any rate limit our own events may have armed has expired: the last observed
        linkwatch run plus the measured interval (5 % and 10 ms of margin).  A run seen while waiting
        moves the target.  Returns the wait, ms."""
        iv = self.interval_ms()
        t0 = now_ms()
        while True:
            self.drain()
            left = self.last_run_ms + iv * 1.05 + 10.0 - now_ms()
            if left <= 0:
                return now_ms() - t0
            self._note(self.mon.events(min(left, 20.0) if self._others else left))   # wakes for any event

    def arm(self) -> float:
        """Arm the limit with an observed non-urgent run on a spare dummy.  Returns its time.  The run
        must come promptly (within a fifth of the interval), else the limit had not expired."""
        if self._arm is None:
            sh(f"ip link add {self.ARM} type dummy && ip link set {self.ARM} up")
            self._arm = ifindex(self.ARM)
            self.wait(is_running(self._arm), "the arming dummy running")
        else:
            self.link.set(self._arm, carrier=True)     # urgent: at once
            self.wait(is_running_up(self._arm), "the arming dummy running again")
        self.expire()
        t0 = now_ms()
        self.link.set(self._arm, carrier=False)
        t = self.wait(is_oper_down(self._arm), "the arming run").t_ms
        if t - t0 > self.interval_ms() / 5:
            raise PreconditionNotMet(f"the arming event waited {t - t0:.0f} ms: the limit had not expired")
        return t

    # -- the measurement ---------------------------------------------------------------------------
    def ensure_up(self, index: int) -> None:
        self.drain()
        self.link.set(index, up=True)
        if not oper_up(index):
            self.wait(is_running(index), "the device running")

    def up_to_running(self, index: int) -> tuple[float | None, list[dict], float]:
        """Bring `index` up; return (ms until RTM_NEWLINK shows RUNNING + operstate UP, timeline, the
        request time)."""
        self.drain()
        seen: list[LinkEvent] = []
        t0 = now_ms()
        self.link.set(index, up=True)
        ev = self.mon.wait_for(is_running_up(index), EVENT_TIMEOUT_MS, seen)
        self._note(seen)
        timeline = [{"t_ms": 0.0, "event": "admin up requested"}] + [e.to_json(t0) for e in seen if e.index == index]
        return (ev.t_ms - t0 if ev else None), timeline, t0

    def close(self):
        if self._arm is not None:
            sh(f"ip link del {self.ARM}", check=False)
        self.link.close()
        self.mon.close()
        for m in self._others:
            m.close()


def kernel_gaps(events: list, spans: list[tuple[float, float]]) -> list[float]:
    """Gaps between the linkwatch runs that processed carrier-offs, each asked for and then seen (as a
    RTM_NEWLINK operstate DOWN) in a span (ms, CLOCK_MONOTONIC).  The run's notification is the last
    "notify" event (netdev_state_change) in its span, the one that sent the message seen (a dummy's
    first run, still pending when the first was asked for, comes before it); the run is timed from its
    start, the last "linkwatch_run" event (linkwatch_event) before that notification, where the trace
    has them: the next run is due one interval after the previous one started (seen: notifications
    984 ms apart for a 1000 ms interval, the first run's notification late in its run)."""
    runs = []
    for asked, seen in spans:
        e = next((e for e in reversed(events) if e.name == "notify" and asked <= e.t_ms <= seen), None)
        if e is None:
            raise AssertionError(f"the kernel trace has no notification between {asked:.1f} and {seen:.1f} ms")
        start = next((r for r in reversed(events) if r.name == "linkwatch_run" and r.t_ms <= e.t_ms), None)
        runs.append(start.t_ms if start is not None and start.t_ms >= asked else e.t_ms)
    return [b - a for a, b in zip(runs, runs[1:])]


def oper_up(index: int) -> bool:
    """The device's operstate is UP (or UNKNOWN), read from sysfs: passive, it does not sync linkwatch
    (reading `carrier` would).  A carrier change linkwatch has not processed yet does not show here."""
    import socket

    name = socket.if_indextoname(index)
    return open(f"/sys/class/net/{name}/operstate").read().strip() in ("up", "unknown")


def check_invariants(timeline: list[dict]) -> None:
    for e in timeline:
        if "RUNNING" in e.get("flags", []):
            assert e["operstate"] in ("UP", "UNKNOWN"), f"RUNNING with operstate {e['operstate']}: {e}"


class Landings:
    """Where aimed repetitions landed in the rate-limit interval, shared by a boot's checks of its phases.

    A repetition is aimed at the middle of its check's window (a fraction of the measured interval
    after an observed arming run), early by the host's recent round trip (request to the NIC's config
    interrupt, in the kernel's clock), and classified by where it really landed.  One that lands in
    another check's window is kept for that check, which takes it before it aims any of its own; one
    that lands in no window is a MissedAim.  Under load the round trip swings by hundreds of ms (seen: a
    cut aimed at 0-0.2 of the interval landing at 1.14 of it): aim-and-redo lost boots to setup errors,
    while every landing in a window is a sample of that window, whichever check aimed it."""

    RECENT = 5      # round trips the aim's estimate is the median of

    def __init__(self, windows: dict[str, tuple[float, float]], what: str = "the cut"):
        self.windows, self.what = windows, what
        self.kept: dict[str, list[Any]] = {w: [] for w in windows}
        self.lags: list[float] = []

    def where(self, frac: float) -> str | None:
        return next((w for w, (lo, hi) in self.windows.items() if lo <= frac <= hi), None)

    def wait_ms(self, window: str, t_arm: float, interval_ms: float, now: float) -> float:
        """How long to wait from `now` before asking for the event, so that it lands mid-window."""
        lo, hi = self.windows[window]
        lag = statistics.median(self.lags[-self.RECENT:]) if self.lags else 0.0
        return max(0.0, t_arm + (lo + hi) / 2 * interval_ms - lag - now)

    def land(self, window: str, after_arm_ms: float, interval_ms: float, sample: Any) -> Any:
        """The sample if it landed in `window`; else keep it for the window it landed in (if any) and
        raise MissedAim."""
        got = self.where(after_arm_ms / interval_ms)
        if got == window:
            return sample
        if got is not None:
            self.kept[got].append(sample)
        lo, hi = self.windows[window]
        raise MissedAim(f"{self.what} landed {after_arm_ms:.0f} ms after the arming run, outside {window} "
                        f"({lo:.2f}-{hi:.2f} of the {interval_ms:.0f} ms interval)"
                        + (f"; kept for {got}" if got else ""))

    def take(self, window: str | None, n: int) -> list[Any]:
        """Up to n samples other checks' repetitions landed in `window`, removed from the store; none for
        a check that is not aimed (its window None or not one of these)."""
        if window not in self.kept:
            return []
        got, self.kept[window] = self.kept[window][:n], self.kept[window][n:]
        return got
