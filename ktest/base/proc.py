"""Process-group control for the long-running children (make, vng/QEMU)."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from typing import Any


def kill_group(proc: subprocess.Popen[Any], grace: float = 3.0, first: int = signal.SIGTERM) -> None:
    """`first` (SIGTERM; SIGINT lets make remove half-written targets), then SIGKILL, to the whole
    process group of `proc` (started with start_new_session=True); wait until none of it is left."""
    for sig in (first, signal.SIGKILL):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            break
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline:
            try:
                os.killpg(proc.pid, 0)
            except ProcessLookupError:
                break
            proc.poll()
            time.sleep(0.05)
        else:
            continue
        break
    try:
        proc.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        pass
