"""`ktest compare RUN_A RUN_B`: the A/B rule of `ktest run` applied to two stored runs, for example
yesterday's branch against today's.  Run A's boots of one side (patched by default) stand as "base",
run B's boots of the same side as "patched", and verdict.conclude judges them exactly as it judges a
run: same rule, same noise floors (the calibration of B's base, if stored), same outputs.  So a
"regression" here means B's kernel is worse than A's on a check.  Nothing is booted.
"""

from __future__ import annotations

import copy
import time
from pathlib import Path

from ktest import __version__
from ktest.base.cache import Cache
from ktest.base.errors import NothingToCompare, RunNotFound
from ktest.host.pipeline import new_run_id
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


def load(run: str, cache: Cache, db: Path | None = None, role: str = "--rerun") -> tuple[dict, Path]:
    """A stored run's result, read and checked like any result.json from elsewhere (outputs.read_result:
    safeio, schema, logs inside its directory), and its directory."""
    from ktest.base.errors import ResultMissing
    from ktest.report.outputs import read_result

    path = stored_result(run, cache, db, role)
    try:
        result = read_result(path, path.parent)       # no result.json that links out of its run dir
    except ResultMissing:
        raise RunNotFound(role=role, run=run, why=f"{path} is gone") from None
    return result, path.parent.resolve()


def same_run(a: tuple[dict, Path], b: tuple[dict, Path]) -> None:
    """RUN_A and RUN_B must differ: a run judged against itself is "no regression" by construction."""
    from ktest.base.errors import SameRun

    (ra, da), (rb, db) = a, b
    if ra["run_id"] == rb["run_id"] or da == db:
        raise SameRun(run=ra["run_id"])


def _boots(result: dict, rundir: Path, side: str, as_side: str, tag: str, out: Path) -> list[dict]:
    """The run's counted boots of `side`, relabelled as `as_side`; their logs are copied under out/TAG/
    so that the comparison's report is self-contained (and re-renders with `ktest report`)."""
    from ktest.base.safeio import Refused, copy_file

    boots = []
    for b in result.get("boots", []):
        if b.get("side") != side or b.get("purpose", "round") not in COUNTED:
            continue
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


def _build(result: dict, side: str) -> dict | None:
    builds = [b for b in result.get("builds", []) if b.get("status") == "PASS"]
    if not builds:
        return None
    return builds[0] if side == "base" else builds[-1]


def _who(result: dict, rundir: Path, side: str) -> dict:
    b = _build(result, side) or {}
    return {"run_id": result["run_id"], "dir": str(rundir), "created": result.get("created"),
            "series": result["series"]["name"], "tree": result["tree"]["name"], "base": result["tree"]["base"],
            "side": side, "commit": b.get("commit"), "build": b.get("key"),
            "boots": sum(1 for x in result.get("boots", []) if x.get("side") == side
                         and x.get("purpose", "round") in COUNTED)}


def compare(a: tuple[dict, Path], b: tuple[dict, Path], out: Path, side: str = "patched",
            cache: Cache | None = None, argv: list[str] | None = None) -> dict:
    """A ktest.result/1 document for `out` judging run B's `side` against run A's."""
    import shlex

    (ra, da), (rb, db) = a, b
    for name, r in (("A", ra), ("B", rb)):
        if not any(x.get("side") == side and x.get("purpose", "round") in COUNTED for x in r.get("boots", [])):
            raise NothingToCompare(run=r["run_id"], which=name, side=side)
    out.mkdir(parents=True, exist_ok=True)
    base, patched = _boots(ra, da, side, "base", "A", out), _boots(rb, db, side, "patched", "B", out)
    series = copy.deepcopy(rb["series"])
    series["expected"] = None          # a series' declared effect is base -> patched, not run -> run
    m = {"schema": "ktest.result/1", "ktest_version": __version__, "run_id": new_run_id(),
         "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
         "command": shlex.join(argv or ["ktest", "compare", ra["run_id"], rb["run_id"]]),
         "tree": rb["tree"], "series": series, "checkout": rb["checkout"],
         "settings": {**rb["settings"], "shard": None, "merged_from": None},
         "compare": {"side": side, "a": _who(ra, da, side), "b": _who(rb, db, side)},
         "builds": [], "boots": base + patched, "checks": [], "splats": {"base": [], "patched": [], "new": []},
         "expected": [], "culprit": None, "verdict": None, "env": rb.get("env"),
         "known_checks": rb.get("known_checks") or [], "history": None}
    for label, r in (("base", ra), ("patched", rb)):
        if bd := _build(r, side):
            m["builds"].append({**bd, "label": label})
    floors = None
    if cache is not None:
        from ktest.judge import calibration
        from ktest.base.records import Tree

        t = rb["tree"]
        cal = calibration.for_run(cache, Tree(**{**t, "repo": Path(t["repo"]), "shadow": Path(t["shadow"])}),
                                  rb["settings"].get("check_areas") or [], (rb.get("env") or {}).get("accel"))
        floors = cal.floors if cal else None
        m["calibration"] = cal.summary() if cal else None
    conclude(m, base, patched, calibration=floors)
    return m
