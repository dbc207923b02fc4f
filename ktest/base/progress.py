"""Terminal progress: stages, a transient status line, warnings (outside text shown inert).  Quiet
when not a tty: CI logs get plain lines stamped with the wall-clock time, and a status line every
`interval` seconds instead of a redraw per object (30 s; $KTEST_HEARTBEAT_S sets it, as the tests do).
While guests run, the pool prints a heartbeat at that interval, one line per guest.  Under GitHub
Actions ($GITHUB_ACTIONS=true, not a terminal) every stage opens a collapsible log group
(`::group::` ... `::endgroup::`) that lasts until the next stage."""

from __future__ import annotations

import os
import sys
import threading
import time
from typing import IO, Any

from rich.console import Console
from rich.markup import escape as _markup_escape

from ktest.base.safetext import inert


def escape(msg: str) -> str:
    """For rich markup: no markup tags and no terminal escape sequences from outside text (a series
    name, a patch subject) reach the terminal."""
    return _markup_escape(inert(msg))


def default_interval() -> float:
    """The heartbeat interval: $KTEST_HEARTBEAT_S if it is a positive number, else 30 s."""
    try:
        v = float(os.environ.get("KTEST_HEARTBEAT_S", ""))
    except ValueError:
        return 30.0
    return v if v > 0 else 30.0


class Progress:
    def __init__(self, stream: IO[str] | None = None, interval: float | None = None,
                 gha: bool | None = None) -> None:
        self.console = Console(file=stream or sys.stderr, highlight=False, soft_wrap=True)
        self.tty = self.console.is_terminal
        self.interval = default_interval() if interval is None else interval
        self.gha = (os.environ.get("GITHUB_ACTIONS") == "true" and not self.tty) if gha is None else gha
        self._group = False
        self._group_lock = threading.Lock()
        self._last = 0.0
        self._status: Any = None                    # rich's Status while a status line shows

    def _when(self) -> str:
        return "" if self.tty else time.strftime("%H:%M:%S ")

    def stage(self, msg: str) -> None:
        self.clear()
        if self.gha:        # a collapsible group per stage (GitHub Actions groups do not nest)
            with self._group_lock:
                if self._group:
                    self.console.print("::endgroup::", markup=False)
                self.console.print(f"::group::ktest: {self._when()}{inert(msg)}", markup=False)
                self._group = True
            return
        self.console.print(f"[bold]ktest:[/bold] {self._when()}{escape(msg)}", markup=True)

    def end_group(self) -> None:
        """Close the open log group (GitHub Actions), so that what follows (the verdict) is not folded."""
        with self._group_lock:
            if self._group:
                self.console.print("::endgroup::", markup=False)
                self._group = False

    def heartbeat(self, lines: list[str]) -> None:
        """One line per running guest, as one block (called every `interval` seconds while guests run,
        not on a terminal, where the live table shows the same)."""
        if not lines:
            return
        when = self._when()
        self.console.print("\n".join(f"ktest: {when}[heartbeat] {inert(l)}" for l in lines), markup=False)

    def info(self, msg: str) -> None:
        self.clear()
        self.console.print(f"ktest: {self._when()}{inert(msg)}", markup=False)

    def warn(self, msg: str) -> None:
        self.clear()
        self.console.print(f"[yellow]ktest: warning:[/yellow] {self._when()}{escape(msg)}", markup=True)

    def status(self, msg: str) -> None:
        if self.tty:
            if self._status is None:
                self._status = self.console.status(escape(msg))
                self._status.start()
            else:
                self._status.update(escape(msg))
        elif time.monotonic() - self._last >= self.interval:
            self._last = time.monotonic()
            self.console.print(f"ktest: {self._when()}{inert(msg)}", markup=False)

    def clear(self) -> None:
        if self._status is not None:
            self._status.stop()
            self._status = None

    __call__ = info


class Silent(Progress):
    def __init__(self) -> None:
        pass

    def stage(self, msg: str) -> None: pass
    def end_group(self) -> None: pass
    def heartbeat(self, lines: list[str]) -> None: pass
    def info(self, msg: str) -> None: pass
    def warn(self, msg: str) -> None: pass
    def status(self, msg: str) -> None: pass
    def clear(self) -> None: pass
    __call__ = info
