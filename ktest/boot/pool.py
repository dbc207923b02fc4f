"""Boots on a pool of concurrent guests.

Guests under TCG spend most of their time idle (checks wait on the kernel's timers), so N of them run in
about the wall time of one.  Every boot a run needs is a `BootJob`; `run_jobs` starts up to `vms` at
once, in the order given (the caller puts the two sides of a round next to each other, so that they
start together and drift hits both alike), and returns the guest runs by key.  Ctrl-C or SIGTERM in the
main thread kills every guest's process group before the interruption propagates.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import threading
import time
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, TypeVar, cast

from ktest.base.cache import Cache
from ktest.base.progress import Progress

if TYPE_CHECKING:
    from rich.table import Table

    from ktest.boot.checks import GuestRun

MAX_VMS = 8


@dataclass
class BootJob:
    key: str                 # unique in a batch, e.g. "base-1"
    bzimage: Path
    outdir: Path
    label: str
    kwargs: dict[str, Any] = field(default_factory=dict)   # for checks.run_checks


def default_vms(accel: str, cpus: int | None = None, mem_gib: float | None = None) -> int:
    """Guests to run at once: one per GiB-and-a-half of free memory (1 GiB each plus QEMU), at most
    two per host core under TCG (measured on 2 cores: see docs/performance.md), one per core with KVM,
    never more than MAX_VMS."""
    cpus = cpus or os.cpu_count() or 1
    if mem_gib is None:
        try:
            avail = next(int(l.split()[1]) for l in open("/proc/meminfo") if l.startswith("MemAvailable:"))
            mem_gib = avail / 1024 / 1024
        except (OSError, StopIteration, ValueError):
            mem_gib = 2.0
    per_core = 2 if accel == "tcg" else 1
    return max(1, min(MAX_VMS, cpus * per_core, int(mem_gib / 1.5)))


def host_slots(vms: int) -> int:
    """Guests that all ktest processes on this host may run at once: $KTEST_HOST_VMS, else the TCG
    default for this host (or this run's --vms, if larger).  Two runs started side by side share it
    instead of each booting its own pool: on 2 cores, three runs of 4 guests each starved their guests
    into RCU stalls and boot timeouts."""
    env = os.environ.get("KTEST_HOST_VMS", "")
    if env.isdigit() and int(env) > 0:
        return int(env)
    return max(default_vms("tcg"), vms)


SLOT_POLL_S = 0.05     # how often a waiter looks for a free slot


@contextlib.contextmanager
def host_slot(cache: Cache | None, slots: int, progress: Progress) -> Iterator[int | None]:
    """Hold one of the host's guest slots (an flock on locks/guest-slot-<i>.lock, released if the
    process dies) for the life of one guest; wait, saying so once, while other runs hold them all.
    A waiter first takes the turnstile (locks/guest-slot-turnstile.lock) and keeps it until it has a
    slot, so a run that frees a slot cannot take it straight back for its next guest while another
    run waits: seen, a no-op run waited 10 minutes and more while a bench's guests, one after another,
    took every slot that came free."""
    if cache is None:
        yield None
        return
    locks = cache.dir("locks")
    said = False

    def say() -> None:
        nonlocal said
        if not said:
            progress.info(f"waiting for a guest slot: other ktest runs on this host hold all {slots}")
            said = True

    def free_slot() -> tuple[int, IO[str]] | None:
        return next(((i, f) for i in range(slots) if (f := _try_flock(locks / f"guest-slot-{i}.lock"))), None)

    turnstile = _wait_for(lambda: _try_flock(locks / "guest-slot-turnstile.lock"), say)
    try:
        i, f = _wait_for(free_slot, say)
    finally:
        turnstile.close()       # closing the file releases its lock
    try:
        yield i
    finally:
        fcntl.flock(f, fcntl.LOCK_UN)
        f.close()


def _try_flock(path: Path) -> IO[str] | None:
    """The file, opened and exclusively flocked, or None if another holds the lock."""
    f = open(path, "w")
    try:
        fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        f.close()
        return None
    return f


_Got = TypeVar("_Got")


def _wait_for(take: Callable[[], _Got | None], waiting: Callable[[], None]) -> _Got:
    """take() until it gives something, every SLOT_POLL_S, calling `waiting` at each miss; an abort
    (Ctrl-C, SIGTERM) ends the wait."""
    from ktest.boot import vm
    from ktest.base.errors import Interrupted

    while (got := take()) is None:
        if vm._abort.is_set():
            raise Interrupted(stage="waiting for a guest slot")
        waiting()
        time.sleep(SLOT_POLL_S)
    return got


class Board:
    """What each guest of a batch is doing, for the live view on a terminal: its label (side and
    round), state, the check running now and how many have ended (read from the files the guest
    plugin writes in its rw dir as it goes), and the time in that state."""

    def __init__(self, jobs: list[BootJob]) -> None:
        self.jobs = {j.key: j for j in jobs}
        self.state = {j.key: ("queued", time.monotonic()) for j in jobs}
        self._lock = threading.Lock()

    def set(self, key: str, state: str) -> None:
        with self._lock:
            self.state[key] = (state, time.monotonic())

    @staticmethod
    def _lines(path: Path) -> list[dict[str, Any]]:
        import json

        try:
            text = path.read_text(errors="replace")
        except OSError:
            return []
        out = []
        for line in text.splitlines():
            try:
                out.append(json.loads(line))
            except ValueError:
                pass          # a line still being written
        return out

    def row(self, key: str) -> tuple[str, str, str, str, str]:
        job, (state, since) = self.jobs[key], self.state[key]
        check, done = "", ""
        if state == "running":
            rw = job.outdir / "rw"
            started = [d.get("path", "") for d in self._lines(rw / "checks-started.jsonl")]
            ended = {d.get("path") for d in self._lines(rw / "results.jsonl")}
            running = [p for p in started if p not in ended]
            state = "checks" if (rw / "started.json").exists() else "booting"
            check, done = (running[-1] if running else ""), (str(len(started) - len(running)) if started else "")
        return job.label, state, check, done, f"{time.monotonic() - since:.0f}s"

    def beat(self, key: str) -> str | None:
        """The heartbeat line of one guest (None once it is done): side and round, checks ended of the
        checks it runs, the check running now and for how long (from the time its start was written,
        in the host's clock), and the time in its state."""
        job, (state, since) = self.jobs[key], self.state[key]
        now = time.monotonic()
        if state in ("done", "queued"):
            return None
        if state != "running":
            return f"{job.label}: {state} for {now - since:.0f}s"
        rw = job.outdir / "rw"
        if not (rw / "started.json").exists():
            return f"{job.label}: booting for {now - since:.0f}s"
        starts = self._lines(rw / "checks-started.jsonl")
        started = [d.get("path") or d.get("id") or "?" for d in starts]
        ended = {d.get("path") or d.get("id") for d in self._lines(rw / "results.jsonl")}
        total = len((self._read(rw / "selection.json") or {}).get("run") or []) or None
        # a check's sub-results (an upstream program's KTAP cases) are results too: count checks, not lines
        done = len({p for p in started if p in ended})
        running = [p for p in started if p not in ended]
        line = f"{job.label}: checks {done}/{total if total else '?'} done"
        if running:
            try:
                age = time.time() - (rw / "checks-started.jsonl").stat().st_mtime
                line += f", running {running[-1]} for {max(0.0, age):.0f}s"
            except OSError:
                line += f", running {running[-1]}"
        else:
            line += ", between checks"
        return line + f" (guest up {now - since:.0f}s)"

    def beats(self) -> list[str]:
        with self._lock:
            keys = list(self.state)
        return [b for b in (self.beat(k) for k in keys) if b is not None]

    @staticmethod
    def _read(path: Path) -> dict[str, Any] | None:
        import json

        try:
            return cast(dict[str, Any], json.loads(path.read_text()))
        except (OSError, ValueError):
            return None

    def render(self) -> Table:
        from rich.table import Table
        from rich.text import Text

        from ktest.base.safetext import inert

        t = Table(box=None, padding=(0, 1), show_edge=False)
        for col in ("guest", "state", "check", "done", "for"):
            t.add_column(col, no_wrap=True)
        with self._lock:
            keys = [k for k, (st, _) in self.state.items() if st != "done"]
        for k in keys:
            t.add_row(*(Text(inert(c)) for c in self.row(k)))   # a check name is text, never markup
        return t


class _NoStatus(Progress):
    """The run's progress for its only guest while the heartbeat reports it: stages as plain lines (the
    pool's 'boot X' opened the log group) and no status line of its own."""

    def __init__(self, parent: Progress) -> None:
        self.parent = parent

    def stage(self, msg: str) -> None: self.parent.info(msg)
    def info(self, msg: str) -> None: self.parent.info(msg)
    def warn(self, msg: str) -> None: self.parent.warn(msg)
    def status(self, msg: str) -> None: pass
    def clear(self) -> None: pass
    __call__ = info


@contextlib.contextmanager
def heartbeat(board: Board, progress: Progress, interval: float | None = None) -> Iterator[bool]:
    """Not on a terminal: every `interval` seconds (the progress's, 30 s by default) print one line per
    guest of the batch, so that a CI log shows a run is alive while its guests run checks for minutes."""
    interval = interval if interval is not None else getattr(progress, "interval", None)
    if not interval or getattr(progress, "tty", True) or not hasattr(progress, "heartbeat"):
        yield False
        return
    stop = threading.Event()

    def beat() -> None:
        while not stop.wait(interval):
            try:
                progress.heartbeat(board.beats())
            except Exception:       # a progress line must never end a run
                pass

    t = threading.Thread(target=beat, name="ktest-heartbeat", daemon=True)
    t.start()
    try:
        yield True
    finally:
        stop.set()
        t.join(timeout=5)


class _WorkerProgress(Progress):
    """Stages and warnings from a worker thread, prefixed with its job; no live status line (one
    terminal, many guests)."""

    def __init__(self, parent: Progress, tag: str) -> None:
        self.parent, self.tag = parent, tag

    def stage(self, msg: str) -> None: self.parent.info(f"[{self.tag}] {msg}")
    def info(self, msg: str) -> None: self.parent.info(f"[{self.tag}] {msg}")
    def warn(self, msg: str) -> None: self.parent.warn(f"[{self.tag}] {msg}")
    def status(self, msg: str) -> None: pass
    def clear(self) -> None: pass
    __call__ = info


# Boots one kernel and runs checks in it: checks.run_checks(cache, bzimage, outdir, label=..., **kwargs)
# -> GuestRun.  The engine's seam: tests pass a replay of recorded guest runs.
Runner = Callable[..., "GuestRun"]


def run_jobs(cache: Cache, jobs: list[BootJob], vms: int, progress: Progress,
             runner: Runner | None = None) -> dict[str, GuestRun]:
    """Run the jobs, at most `vms` at once.  Returns {key: GuestRun}.  `runner` defaults to
    checks.run_checks (tests pass a fake)."""
    from ktest.boot import vm
    from ktest.boot.checks import run_checks

    runner = runner or run_checks
    if not jobs:
        return {}
    out: dict[str, GuestRun] = {}
    lock = threading.Lock()
    vm._abort.clear()               # a new batch (an earlier one in this process may have been aborted)

    slots = host_slots(vms)
    board = Board(jobs)
    beating = contextlib.ExitStack()

    def one(job: BootJob) -> GuestRun:
        p = _WorkerProgress(progress, job.label) if vms > 1 else _NoStatus(progress) if beats else progress
        board.set(job.key, "waiting for a slot")
        with host_slot(cache, slots, p):
            board.set(job.key, "running")
            try:
                r = runner(cache, job.bzimage, job.outdir, label=job.label, progress=p, **job.kwargs)
            finally:
                board.set(job.key, "done")
        with lock:
            out[job.key] = r
        return r

    live = None
    if vms > 1 and getattr(progress, "tty", False):   # a terminal: one live table of the guests
        from rich.live import Live

        progress.clear()      # one live display at a time: no status line under the table
        live = Live(get_renderable=board.render, console=progress.console, refresh_per_second=1, transient=True)
        live.start()

    beats = beating.enter_context(heartbeat(board, progress))
    pending = list(jobs)
    running: set[Future[Any]] = set()
    ex = ThreadPoolExecutor(max_workers=max(1, vms), thread_name_prefix="guest")
    try:
        while pending or running:
            while pending and len(running) < vms:
                job = pending.pop(0)
                progress.stage(f"boot {job.label} ({len(out) + len(running) + 1}/{len(jobs)}"
                               f"{f', {vms} at once' if vms > 1 else ''})")
                running.add(ex.submit(one, job))
            done, running = wait(running, return_when=FIRST_COMPLETED)
            for f in done:
                f.result()          # re-raise a worker's error here
    except BaseException:
        vm.kill_all()               # no guest outlives an interrupted or failed batch
        ex.shutdown(wait=True, cancel_futures=True)
        raise
    finally:
        beating.close()
        if live is not None:
            live.stop()
    ex.shutdown(wait=True)
    return out
