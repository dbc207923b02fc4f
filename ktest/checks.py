"""Run checks on one kernel: boot it under vng with the guest harness and collect structured results."""

from __future__ import annotations

import json
import shlex
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from . import console
from .cache import Cache, write_json_atomic
from .progress import Progress
from .vm import BootResult, BootSpec, boot_with_retry, choose_accel, host_env

PROJECT = Path(__file__).resolve().parent.parent
DEFAULT_TESTCASES = PROJECT / "testcases"


@dataclass
class GuestRun:
    label: str
    boot: BootResult
    started: dict | None
    finished: dict | None
    results: list[dict]
    splats: list[console.Splat]
    env: dict = field(default_factory=dict)

    @property
    def crashed(self) -> bool:
        return self.boot.outcome in ("panic", "qemu-died") or console.crashed(self.splats)

    def to_json(self) -> dict:
        return {"label": self.label, "boot": self.boot.to_json(), "started": self.started,
                "finished": self.finished, "results": self.results,
                "splats": [s.to_json() for s in self.splats], "env": self.env}


def _read_json(p: Path) -> dict | None:
    try:
        return json.loads(p.read_text())
    except (OSError, ValueError):
        return None


def _read_results(p: Path) -> list[dict]:
    out = []
    if p.exists():
        for line in p.read_text(errors="replace").splitlines():
            try:
                out.append(json.loads(line))
            except ValueError:
                pass  # a line cut short by a crash
    return out


def guest_command(rwdir: Path, paths: list[Path], expr: str | None, reps: int) -> str:
    args = [sys.executable, "-m", "ktest.guest", "--out", str(rwdir), "--reps", str(reps)]
    if expr:
        args += ["-k", expr]
    args += [str(p) for p in paths]
    env = "PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
    return f"cd {shlex.quote(str(PROJECT))} && env {env} {shlex.join(args)}"


def run_checks(cache: Cache, bzimage: Path, outdir: Path, *, label: str = "kernel", paths=None,
               expr: str | None = None, reps: int = 5, accel: str = "auto", known_issues: Path | None = None,
               progress: Progress | None = None, boot_timeout: float | None = None) -> GuestRun:
    progress = progress or Progress()
    paths = [Path(p).resolve() for p in (paths or [DEFAULT_TESTCASES])]
    accel = choose_accel(cache, bzimage, accel, progress)
    outdir.mkdir(parents=True, exist_ok=True)
    rwdir = outdir / "rw"
    rwdir.mkdir(exist_ok=True)
    for stale in ("results.jsonl", "started.json", "finished.json"):
        (rwdir / stale).unlink(missing_ok=True)
    spec = BootSpec(bzimage=bzimage, command=guest_command(rwdir, paths, expr, reps), rwdir=rwdir, accel=accel,
                    boot_timeout=boot_timeout or (60.0 if accel == "kvm" else 120.0))
    progress.stage(f"booting {label} ({accel}) and running checks")
    t0 = time.time()
    res = boot_with_retry(spec, outdir, progress, label)
    text = res.console_log.read_text(errors="replace") if res.console_log.exists() else ""
    splats = console.KnownIssues.load(known_issues).mark(console.parse(text))
    started = _read_json(rwdir / "started.json")
    env = host_env(spec)
    if started:
        env.update(kernel_release=started.get("kernel_release"), clocksource=started.get("clocksource"),
                   guest_uptime_at_harness_s=started.get("uptime_at_harness_s"),
                   launch_to_harness_s=round(res.started_after_s, 2) if res.started_after_s else None)
    run = GuestRun(label=label, boot=res, started=started, finished=_read_json(rwdir / "finished.json"),
                   results=_read_results(rwdir / "results.jsonl"), splats=splats, env=env)
    write_json_atomic(outdir / "guest-run.json", {**run.to_json(), "wall_start": t0})
    return run
