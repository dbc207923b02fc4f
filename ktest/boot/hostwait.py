"""How long a guest waited for a host CPU while a check ran: the host's scheduler statistics of the guest's
QEMU threads (/proc/PID/task/TID/schedstat: nanoseconds on a CPU, nanoseconds runnable but waiting for
one), sampled by the host while the guest runs, and cut into each check's window.

Under TCG a guest has no steal time: a vCPU thread that the host does not run is time the guest's own
clock counts as passing, so a kernel-clock latency taken while the host starved the guest grows with the
host's load, not the kernel's work.  Base and patched boots run side by side, but a check's window in one
boot need not overlap its window in another: another job on the host (a build, a test suite) can land on
one side's boots only.  The wait share says, per check and boot, which part of the time the guest's
threads wanted a host CPU they spent waiting for one (0: never starved, 0.9: ran a tenth of the time it
wanted), so that the verdict can tell a kernel that got slower from a host that got busier on one side
(verdict.host_load_doubt).

The functions below are pure but for `read_threads`, `session_qemus` and `Sampler.poll`, which read /proc."""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

PROC = Path("/proc")
# a console line's kernel timestamp: "[   47.701503] ..."
_TS = re.compile(r"^\[\s*(\d+\.\d+)\]")


@dataclass(frozen=True)
class Sample:
    """One reading: host time.monotonic() (s) and, per thread id, (ns on a CPU, ns waiting for one)."""
    t: float
    threads: dict[int, tuple[int, int]]


def read_threads(pids: Iterable[int], proc: Path = PROC) -> dict[int, tuple[int, int]]:
    """tid -> (run_ns, wait_ns) for every thread of `pids` (threads that end while being read are left
    out: the delta between two readings only uses threads present in both)."""
    out: dict[int, tuple[int, int]] = {}
    for pid in pids:
        try:
            if _stat(proc / str(pid))[1][0] == "Z":      # ended, not yet reaped: nothing of it runs or waits
                continue
            tids = os.listdir(proc / str(pid) / "task")
        except OSError:
            continue
        for tid in tids:
            try:
                run, wait = (proc / str(pid) / "task" / tid / "schedstat").read_text().split()[:2]
                out[int(tid)] = (int(run), int(wait))
            except (OSError, ValueError):
                continue
    return out


def _stat(d: Path) -> tuple[str, list[str]]:
    """A process's comm and the fields after it (state, ppid, pgrp, session, ...) from /proc/PID/stat: the
    comm may hold spaces and parentheses."""
    stat = (d / "stat").read_text()
    return stat[stat.find("(") + 1:stat.rfind(")")], stat[stat.rfind(")") + 2:].split()


def session_qemus(sid: int, proc: Path = PROC) -> list[int]:
    """The QEMU processes in session `sid` (vng is started in a session of its own: its pid is the sid)."""
    found = []
    for d in proc.iterdir():
        if not d.name.isdigit():
            continue
        try:
            comm, rest = _stat(d)
        except OSError:
            continue
        if comm.startswith("qemu") and len(rest) > 3 and rest[3] == str(sid) and rest[0] != "Z":
            found.append(int(d.name))
    return found


def wait_share(samples: list[Sample], t0: float, t1: float, slack: float = 0.0) -> float | None:
    """Of the time the guest's threads wanted a host CPU between host times t0 and t1, the share they
    waited: from the last sample at or before t0 to the first at or after t1 (a window slightly wider
    than asked), over the threads present in both.  A window that ends after the last sample by at most
    `slack` s ends at that sample instead: the guest powers off right after its harness's last record,
    often before the host's next reading (2 of 8 smoke boots on 1 vCPU), and the share of all but the
    window's last moment is still its share.  None: no samples around the window, or the threads neither
    ran nor waited."""
    before = [s for s in samples if s.t <= t0]
    after = [s for s in samples if s.t >= t1]
    if not after and before and samples[-1].t > before[-1].t and t1 - samples[-1].t <= slack:
        after = [samples[-1]]
    if not before or not after:
        return None
    a, b = before[-1], after[0]
    run = wait = 0
    for tid, (r1, w1) in b.threads.items():
        if tid in a.threads:
            r0, w0 = a.threads[tid]
            run, wait = run + max(0, r1 - r0), wait + max(0, w1 - w0)
    return wait / (run + wait) if run + wait > 0 else None


def clock_offset(pairs: Iterable[tuple[float, float]]) -> float | None:
    """host time - guest uptime (s), from (host time a console line arrived, its kernel timestamp) pairs:
    the smallest difference, the line that reached the host soonest (a line only ever arrives late)."""
    diffs = [host - guest for host, guest in pairs]
    return min(diffs) if diffs else None


def console_stamp(line: str) -> float | None:
    """The kernel timestamp of a console line (s since boot), or None."""
    m = _TS.match(line)
    return float(m.group(1)) if m else None


@dataclass
class Sampler:
    """Reads the schedstat of the QEMU threads of the guest in session `sid`, at most every `every` s (the
    boot loop's own period: a short last check still has a reading after it before the guest exits),
    and pairs console lines' kernel timestamps with the host time they arrived.  Called from the boot's
    own polling loop (vm._boot_once) and its console reader, so it adds no thread of its own."""
    sid: int
    every: float = 0.2
    proc: Path = PROC
    samples: list[Sample] = field(default_factory=list)
    pairs: list[tuple[float, float]] = field(default_factory=list)
    _pids: list[int] = field(default_factory=list)

    def poll(self, now: float) -> None:
        if self.samples and now - self.samples[-1].t < self.every:
            return
        threads = read_threads(self._pids, self.proc) if self._pids else {}
        if not threads:
            # none found yet, or the one found has gone: vng runs `qemu --version` in the same session
            # before the guest's QEMU (4 boots of 80 kept that pid and recorded nothing), so look again
            self._pids = session_qemus(self.sid, self.proc)
            threads = read_threads(self._pids, self.proc) if self._pids else {}
        if threads:
            self.samples.append(Sample(now, threads))

    def console(self, line: str, now: float) -> None:
        ts = console_stamp(line)
        if ts is not None and (not self.pairs or now - ts < self.pairs[-1][0] - self.pairs[-1][1]):
            self.pairs.append((now, ts))        # keep only the pairs that lower the offset

    def offset(self) -> float | None:
        return clock_offset(self.pairs)

    def share_guest(self, start_uptime: float, end_uptime: float) -> float | None:
        """wait_share over a window given in the guest's uptime (the harness's records); a window that ends
        within two sampling periods after the last reading (the guest's poweroff came first) ends there."""
        off = self.offset()
        return None if off is None else wait_share(self.samples, start_uptime + off, end_uptime + off,
                                                   slack=2 * self.every)
