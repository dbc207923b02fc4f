"""`ktest compare RUN_A RUN_B`: the A/B rule of `ktest run` applied to two stored runs, for example
yesterday's branch against today's.  Run A's boots of one side (patched by default) stand as "base",
run B's boots of the same side as "patched", and verdict.conclude judges them exactly as it judges a
run: same rule, same noise floors (the calibration of B's base, if stored, and the history of B's base
kernel on this machine), same outputs.  So a
"regression" here means B's kernel is worse than A's on a check.  Nothing is booted.
"""

from __future__ import annotations

import copy
import time
from pathlib import Path
from typing import Any

from ktest import __version__
from ktest.base.cache import Cache
from ktest.base.errors import NothingToCompare, RunNotFound
from ktest.host.gitutil import ktest_version
from ktest.host.pipeline import new_run_id
from ktest.base.result import BuildRecord, Result, SeriesRef, Settings
from ktest.judge.verdict import conclude

SIDES = ("patched", "base")
COUNTED = ("round", "retry")     # culprit-search boots ran other kernels: not this side's evidence


def stored_result(run: str, cache: Cache, db: Path | None = None, role: str = "--rerun") -> Path:
    """A run id recorded in the history, a run directory, or a result.json.  `role` names the argument
    in the error (--rerun, RUN_A, RUN_B)."""
    from ktest.report.history import History

    p = Path(run)
    if p.is_dir() and (p / "result.json").is_file():
        return p / "result.json"
    if p.is_file() and p.name.endswith(".json"):
        return p
    dbp = db or cache.history_db
    if dbp.exists():
        row = History.open(dbp).db.execute("SELECT result_path FROM runs WHERE run_id = ?", (run,)).fetchone()
        if row and Path(row[0]).is_file():
            return Path(row[0])
        if row:
            raise RunNotFound(role=role, run=run, why=f"its result {row[0]} is gone")
    raise RunNotFound(role=role, run=run, why=f"not in {dbp}, and not a run directory")


def load(run: str, cache: Cache, db: Path | None = None, role: str = "--rerun") -> tuple[Result, Path]:
    """A stored run's result, read and checked like any result.json from elsewhere (Result.read:
    safeio, schema, logs inside its directory), and its directory."""
    from ktest.base.errors import ResultMissing

    path = stored_result(run, cache, db, role)
    try:
        result = Result.read(path, path.parent)       # no result.json that links out of its run dir
    except ResultMissing:
        raise RunNotFound(role=role, run=run, why=f"{path} is gone") from None
    return result, path.parent.resolve()


def same_run(a: tuple[Result, Path], b: tuple[Result, Path]) -> None:
    """RUN_A and RUN_B must differ: a run judged against itself is "no regression" by construction."""
    from ktest.base.errors import SameRun

    (ra, da), (rb, db) = a, b
    if ra.run_id == rb.run_id or da == db:
        raise SameRun(run=ra.run_id)


def _boots(result: Result, rundir: Path, side: str, as_side: str, tag: str, out: Path) -> list[dict[str, Any]]:
    """The run's counted boots of `side`, relabelled as `as_side`; their logs are copied under out/TAG/
    so that the comparison's report is self-contained (and re-renders with `ktest report`)."""
    from ktest.base.safeio import Refused, copy_file

    boots = []
    for b in result.boots_of(side, COUNTED):
        b = copy.deepcopy(b)
        b.update(side=as_side, compared_from={"run": tag, "side": side})
        for k in ("console_log", "stdout_log"):
            if rel := (b.get("boot") or {}).get(k):
                try:        # a regular file inside the run directory, bounded; else not copied
                    copy_file(rundir / rel, out / tag / rel, root=rundir)
                except Refused:
                    pass
                b["boot"][k] = f"{tag}/{rel}"
        boots.append(b)
    return boots


def _build(result: Result, side: str) -> BuildRecord | None:
    builds = result.passed_builds()
    if not builds:
        return None
    return builds[0] if side == "base" else builds[-1]


def _who(result: Result, rundir: Path, side: str) -> dict[str, Any]:
    b = _build(result, side)
    return {"run_id": result.run_id, "dir": str(rundir), "created": result.created,
            "series": result.series.name, "tree": result.tree.name, "base": result.tree.base,
            "side": side, "commit": b.commit if b else None, "build": b.key if b else None,
            "boots": len(result.boots_of(side, COUNTED))}


def compare(a: tuple[Result, Path], b: tuple[Result, Path], out: Path, side: str = "patched",
            cache: Cache | None = None, argv: list[str] | None = None, history: Path | None = None) -> Result:
    """A ktest.result/1 document for `out` judging run B's `side` against run A's.  With the cache, judged
    as a run of B's tree is: its calibration and the history of its base kernel (noise, failure rates,
    floors grown from them; `history`: its database, default the cache's)."""
    import shlex

    (ra, da), (rb, db) = a, b
    for name, r in (("A", ra), ("B", rb)):
        if not r.boots_of(side, COUNTED):
            raise NothingToCompare(run=r.run_id, which=name, side=side)
    out.mkdir(parents=True, exist_ok=True)
    base, patched = _boots(ra, da, side, "base", "A", out), _boots(rb, db, side, "patched", "B", out)
    series = SeriesRef.from_json(copy.deepcopy(rb.series.to_json()))
    series.expected = None          # a series' declared effect is base -> patched, not run -> run
    settings = Settings.from_json(copy.deepcopy(rb.settings.to_json()))
    settings.shard, settings.merged_from = None, None
    m = Result(run_id=new_run_id(), created=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
               command=shlex.join(argv or ["ktest", "compare", ra.run_id, rb.run_id]), ktest_version=ktest_version(__version__),
               tree=rb.tree, series=series, checkout=rb.checkout, settings=settings,
               compare={"side": side, "a": _who(ra, da, side), "b": _who(rb, db, side)},
               boots=base + patched, env=rb.env, known_checks=rb.known_checks)
    for label, r in (("base", ra), ("patched", rb)):
        if bd := _build(r, side):
            m.builds.append(BuildRecord.from_json({**bd.to_json(), "label": label}))
    if cache is not None:
        from ktest.base.machine import env_guest_key
        from ktest.base.records import Tree
        from ktest.judge import calibration
        from ktest.report.history import base_build, judged_with

        t, guest = rb.tree.to_json(), env_guest_key(rb.env)
        cal = calibration.for_run(cache, Tree(**{**t, "repo": Path(t["repo"]), "shadow": Path(t["shadow"])}),
                                  rb.settings.check_areas, guest)
        m.calibration = cal.summary() if cal else None
        # the noise of B's base kernel on this machine, as a run of B's tree is judged with (B's own base
        # boots left out when they are the side being judged); its failure rates only when A's side is
        # that same kernel
        build, a_build = base_build(rb), _build(ra, side)
        m.judged_with = judged_with(history or cache.history_db, build, guest, cal,
                                    exclude=rb.run_id if side == "base" else None,
                                    failures=bool(build) and a_build is not None and a_build.key == build)
    conclude(m, base, patched)
    return m
