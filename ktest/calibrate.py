"""`ktest calibrate`: boot the tree's base kernel K times with one area's checks and store the noise of
every metric and the false-alarm rates of the verdict rule on those A/A boots (ktest.judge.calibration
judges; this module builds and boots, as run.py does for a series)."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from ktest import areas
from ktest.base.cache import Cache
from ktest.base.errors import NoCalibrationBoots
from ktest.base.progress import Progress
from ktest.base.records import Tree
from ktest.boot import vm
from ktest.boot.pool import BootJob, Runner, run_jobs
from ktest.host.build import Builder
from ktest.judge import calibration


def calibrate_base(cache: Cache, tree: Tree, area: str, out: Path, *, boots: int, rounds: int, reps: int,
                   expr: str | None, accel: str, known_issues: Path | None, vms: int, progress: Progress,
                   runner: Runner | None = None) -> dict[str, Any]:
    """Build (or take from the cache) the base kernel, boot it `boots` times, `vms` at once, and record
    the calibration (stored in the cache, and written with the boots themselves into `out`).  `runner`:
    what boots a kernel and runs its checks (default checks.run_checks; tests give a stand-in)."""
    bz = Builder(cache, tree, progress=progress).build(tree.base, "base").bzimage
    accel = vm.choose_accel(cache, bz, accel, progress)
    out.mkdir(parents=True, exist_ok=True)
    paths = areas.testcases_for([area])
    jobs = [BootJob(f"cal-{i}", bz, out / f"boot-{i}", f"calibrate-{i}",
                    dict(paths=paths, expr=expr, reps=reps, accel=accel, known_issues=known_issues, slow=False))
            for i in range(1, boots + 1)]
    t0 = time.monotonic()
    got = run_jobs(cache, jobs, vms, progress, runner)
    runs = [got[j.key].to_json() for j in jobs]
    ok = [r for r in runs if r.get("started")]
    if len(ok) < 2 * rounds:
        raise NoCalibrationBoots(ok=len(ok), k=boots, need=2 * rounds, out=out)
    (out / "runs.json").write_text(json.dumps(ok) + "\n")      # the boots themselves, to judge again later
    data = calibration.record(cache, tree, area, accel, ok, rounds, reps)
    data["wall_s"] = round(time.monotonic() - t0, 1)
    (out / "calibration.json").write_text(json.dumps(data, indent=1) + "\n")
    return data
