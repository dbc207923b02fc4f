"""The guest harness: runs inside the VM (python -m ktest.guest), on the host's read-only root.

First thing, it writes started.json into the results dir (the host's boot timeout ends there),
then runs the checks with pytest and the ktest plugin, which appends one JSON line per check to
results.jsonl as each check finishes, so a guest that crashes mid-run still leaves what ran.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

from ktest.base.home import ROOT


def _read(path: str, default: str = "") -> str:
    try:
        return Path(path).read_text().strip()
    except OSError:
        return default


def _write(path: Path, data: dict[str, Any]) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=2) + "\n")
    os.replace(tmp, path)


def main(argv: list[str] | None = None) -> int:
    t_start = time.monotonic()
    uptime = float(_read("/proc/uptime", "0 0").split()[0])
    ap = argparse.ArgumentParser(prog="ktest.guest")
    ap.add_argument("--out", required=True, type=Path)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("-k", dest="expr")
    ap.add_argument("--shard", help="I/N")
    ap.add_argument("paths", nargs="+")
    args = ap.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    _write(args.out / "started.json", {
        "uptime_at_harness_s": uptime,
        "kernel_release": platform.release(),
        "kernel_version": platform.version(),
        "clocksource": _read("/sys/devices/system/clocksource/clocksource0/current_clocksource"),
        "cpus": os.cpu_count(),
        "memtotal_kb": int(next((l.split()[1] for l in _read("/proc/meminfo").splitlines()
                                 if l.startswith("MemTotal:")), "0")),
        "python": sys.version.split()[0],
        "cmdline": _read("/proc/cmdline"),
    })
    import pytest

    t_pytest = time.monotonic()
    # Plugins the checks do not use cost import time under TCG.
    pa = ["-p", "ktest.guest.plugin", "-p", "no:cacheprovider", "-p", "no:doctest", "-p", "no:pastebin",
          "-p", "no:junitxml", "-p", "no:nose", "-p", "no:legacypath", "-p", "no:unittest", "-p", "no:faulthandler",
          "-q", "-rfEs", "--color=no", f"--rootdir={ROOT}",
          f"--ktest-out={args.out}", f"--ktest-reps={args.reps}", "--ktest-kmsg", *args.paths]
    if args.expr:
        pa += ["-k", args.expr]
    if args.shard:
        pa += [f"--ktest-shard={args.shard}"]
    rc = pytest.main(pa)
    _write(args.out / "finished.json", {
        "pytest_exit": int(rc),
        "uptime_s": float(_read("/proc/uptime", "0 0").split()[0]),
        "import_pytest_s": round(t_pytest - t_start, 3),
        "harness_s": round(time.monotonic() - t_start, 3),
    })
    return int(rc)

