"""Terminal progress: stages, a transient status line, warnings (outside text shown inert).  Quiet
when not a tty: CI logs get plain lines stamped with the wall-clock time, and a status line every
`interval` seconds instead of a redraw per object."""

from __future__ import annotations

import sys
import time

from rich.console import Console
from rich.markup import escape as _markup_escape

from .safetext import inert


def escape(msg: str) -> str:
    """For rich markup: no markup tags and no terminal escape sequences from outside text (a series
    name, a patch subject) reach the terminal."""
    return _markup_escape(inert(msg))


class Progress:
    def __init__(self, stream=None, interval: float = 30.0):
        self.console = Console(file=stream or sys.stderr, highlight=False, soft_wrap=True)
        self.tty = self.console.is_terminal
        self.interval = interval
        self._last = 0.0
        self._status = None

    def _when(self) -> str:
        return "" if self.tty else time.strftime("%H:%M:%S ")

    def stage(self, msg: str) -> None:
        self.clear()
        self.console.print(f"[bold]ktest:[/bold] {self._when()}{escape(msg)}", markup=True)

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
    def __init__(self):
        pass

    def stage(self, msg): pass
    def info(self, msg): pass
    def warn(self, msg): pass
    def status(self, msg): pass
    def clear(self): pass
    __call__ = info
