"""Run history in SQLite (cache/history.sqlite or --db): every run, what changed since the last run
of the same series on the same base, and each metric's medians per side for the trends page.
Parameterised SQL only."""

from __future__ import annotations

import json
import math
import sqlite3
import statistics
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ktest.base.cache import short_hash
from ktest.base.result import Result

SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    run_id TEXT PRIMARY KEY,
    created TEXT NOT NULL,
    series TEXT NOT NULL,
    patchset_hash TEXT NOT NULL,
    tree TEXT NOT NULL,
    base TEXT NOT NULL,
    status TEXT NOT NULL,
    exit_code INTEGER NOT NULL,
    n_regressions INTEGER NOT NULL,
    result_path TEXT NOT NULL,
    checks_json TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS runs_series ON runs(series, base, created);
CREATE TABLE IF NOT EXISTS metrics (
    run_id TEXT NOT NULL,
    path TEXT NOT NULL,
    metric TEXT NOT NULL,
    unit TEXT NOT NULL,
    side TEXT NOT NULL,
    median REAL,
    p90 REAL,
    n INTEGER NOT NULL,
    PRIMARY KEY (run_id, path, metric, side)
);
CREATE TABLE IF NOT EXISTS base_boots (
    run_id TEXT NOT NULL,
    build TEXT NOT NULL,
    accel TEXT NOT NULL,            -- the guests' base.machine.guest_key (accel and vCPUs)
    boot INTEGER NOT NULL,
    path TEXT NOT NULL,
    metric TEXT NOT NULL,
    unit TEXT NOT NULL,
    status TEXT,
    centre REAL,
    tail REAL,
    PRIMARY KEY (run_id, boot, path, metric)
);
CREATE INDEX IF NOT EXISTS base_boots_build ON base_boots(build, accel);
"""
# `base_boots` (each base boot's status per check, metric = "", and its median and p90 per metric): every
# run's base boots are free A/A data, from which the noise model and failure rates of a base kernel grow,
# per guest shape (its `accel` column holds base.machine.guest_key: "tcg-1cpu"; rows written before the
# key had the vCPUs hold the bare accel, and match no guest of today).
# `metrics` came after `runs`: opening a database made before it adds the table (CREATE ... IF NOT
# EXISTS), and the runs recorded before simply have no metric rows.

SIDES = ("base", "patched")
# rows of the tables, in their columns' order
_MetricRow = tuple[str, str, str, str, str, float | None, float | None, int]
_BaseBootRow = tuple[str, str, str, int, str, str, str, str | None, float | None, float | None]


def _checks(result: Result) -> dict[str, Any]:
    return {c.path: {"verdict": c.verdict, "patched": str(c.patched.status)} for c in result.checks}


def anchor(series: str, tree: str, base: str) -> str:
    """The id of a series-on-a-base section of the trends page: the report links there, and a hash
    keeps the series name (outside text) out of the URL."""
    return "t-" + short_hash(series, tree, base, n=12)


def _number(v: object) -> float | None:
    """A median or p90 as stored: a finite float, else NULL."""
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return None
    v = float(v)
    return v if math.isfinite(v) else None


def _metric_rows(result: Result) -> list[_MetricRow]:
    rows = {}
    for c in result.checks:
        for m in c.metrics:
            for side, n, median, tail in (("base", m.n_base, m.base_median, m.base_p90),
                                          ("patched", m.n_patched, m.patched_median, m.patched_p90)):
                rows[(c.path, m.metric, side)] = (
                    result.run_id, c.path, m.metric, m.unit or "", side, _number(median), _number(tail),
                    n if isinstance(n, int) and not isinstance(n, bool) else 0)
    return list(rows.values())


def base_build(result: Result) -> str | None:
    """The base kernel's artifact key: the same commit, kconfig and toolchain."""
    return next((b.key for b in result.builds if b.label == "base" and b.key), None)


def _base_boot_rows(result: Result) -> list[_BaseBootRow]:
    from ktest.judge.stats import p90

    from ktest.base.machine import env_guest_key

    build, accel = base_build(result), env_guest_key(result.env)
    if not build or not accel or result.settings.shard or result.compare:
        return []
    rows: dict[tuple[int, str, str], _BaseBootRow] = {}
    boots = result.boots_of("base", ("round", "retry"))
    for i, b in enumerate(boots):
        for r in b.get("results", []):
            if not isinstance(r, dict) or not isinstance(r.get("path"), str) or r.get("infra"):
                continue
            rows[(i, r["path"], "")] = (result.run_id, build, accel, i, r["path"], "", "", r.get("status"), None, None)
            for m in r.get("metrics") or []:
                xs = [float(x) for x in m.get("samples") or [] if _number(x) is not None]
                if xs and not m.get("context"):
                    rows[(i, r["path"], m["name"])] = (result.run_id, build, accel, i, r["path"], m["name"],
                                                       m.get("unit") or "", None, statistics.median(xs), p90(xs))
    return list(rows.values())


@dataclass
class History:
    db: sqlite3.Connection

    @classmethod
    def open(cls, path: Path) -> "History":
        path.parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(str(path), timeout=30)
        db.executescript(SCHEMA)
        return cls(db)

    def record(self, result: Result, result_path: Path) -> None:
        v = result.outcome
        with self.db:
            self.db.execute(
                "INSERT OR REPLACE INTO runs VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                (result.run_id, result.created, result.series.name, result.checkout.get("patchset_hash"),
                 result.tree.name, result.tree.base, str(v.status), v.exit_code, len(v.regressions),
                 str(result_path), json.dumps(_checks(result))))
            self.db.execute("DELETE FROM metrics WHERE run_id = ?", (result.run_id,))
            self.db.executemany("INSERT INTO metrics VALUES (?,?,?,?,?,?,?,?)", _metric_rows(result))
            self.db.execute("DELETE FROM base_boots WHERE run_id = ?", (result.run_id,))
            self.db.executemany("INSERT INTO base_boots VALUES (?,?,?,?,?,?,?,?,?,?)", _base_boot_rows(result))

    def noise_model(self, build: str, guest: str, exclude: str | None = None, min_df: int = 4) -> dict[str, Any]:
        """Each metric's between-boot variance on the compared scale (stats.to_scale), pooled within the
        earlier runs of this base kernel and guest shape (base.machine.guest_key; run-to-run shifts left out: within a run, base and
        patched boot side by side): {"path/metric": {"centre": {"var", "df"}, "tail": ..., "source"}}.
        Only metrics with at least `min_df` degrees of freedom."""
        from ktest.judge.stats import to_scale

        per: dict[tuple[str, str], dict[str, Any]] = {}
        for run_id, path, metric, unit, centre, tail in self.db.execute(
                "SELECT run_id, path, metric, unit, centre, tail FROM base_boots WHERE build = ? AND accel = ? "
                "AND metric != '' AND run_id != ?", (build, guest, exclude or "")):
            fwd, _ = to_scale(unit)
            d = per.setdefault((path, metric), {})
            for aspect, v in (("centre", centre), ("tail", tail)):
                if v is not None:
                    d.setdefault(aspect, {}).setdefault(run_id, []).append(fwd(v))
        out = {}
        for (path, metric), aspects in per.items():
            model = {}
            for aspect, runs in aspects.items():
                ss = sum(sum((x - statistics.fmean(xs)) ** 2 for x in xs) for xs in runs.values() if len(xs) > 1)
                df = sum(len(xs) - 1 for xs in runs.values() if len(xs) > 1)
                if df >= min_df:
                    model[aspect] = {"var": ss / df, "df": df}
            if "centre" in model:
                n = len(aspects["centre"])
                out[f"{path}/{metric}"] = {**model, "source": f"history ({n} earlier run{'s' if n != 1 else ''})"}
        return out

    def fail_history(self, build: str, guest: str, exclude: str | None = None) -> dict[str, Any]:
        """{path: (base boots that failed it, base boots that passed or failed it)} in earlier runs of this
        base kernel and guest shape."""
        out = {}
        for path, failed, ran in self.db.execute(
                "SELECT path, SUM(status IN ('FAIL', 'ERROR')), SUM(status IN ('PASS', 'FAIL', 'ERROR')) "
                "FROM base_boots WHERE build = ? AND accel = ? AND metric = '' AND run_id != ? GROUP BY path",
                (build, guest, exclude or "")):
            if ran:
                out[path] = (int(failed or 0), int(ran))
        return out

    def runs(self, series: str | None = None, limit: int = 20) -> list[dict[str, Any]]:
        q = "SELECT run_id, created, series, base, status, exit_code, n_regressions, result_path FROM runs"
        args: tuple[str, ...] = ()
        if series:
            q += " WHERE series = ?"
            args = (series,)
        q += " ORDER BY created DESC, run_id DESC LIMIT ?"
        cols = ["run_id", "created", "series", "base", "status", "exit_code", "n_regressions", "result_path"]
        return [dict(zip(cols, r)) for r in self.db.execute(q, (*args, limit))]

    def context(self, result: Result) -> dict[str, Any]:
        """The previous run of this series on this base, the last good one, and per-check changes."""
        series, base = result.series.name, result.tree.base
        rows = self.db.execute(
            "SELECT run_id, created, status, exit_code, checks_json, patchset_hash FROM runs "
            "WHERE series = ? AND base = ? AND run_id != ? ORDER BY created DESC, run_id DESC",
            (series, base, result.run_id)).fetchall()
        if not rows:
            return {"previous": None, "last_good": None, "changes": []}
        prev = rows[0]
        good = next((r for r in rows if r[3] == 0), None)
        before, now = json.loads(prev[4]), _checks(result)
        changes = [{"path": p, "before": before.get(p, {}).get("verdict"), "now": now.get(p, {}).get("verdict")}
                   for p in sorted(set(before) | set(now))
                   if before.get(p, {}).get("verdict") != now.get(p, {}).get("verdict")]
        return {"previous": {"run_id": prev[0], "created": prev[1], "status": prev[2],
                             "same_patches": prev[5] == result.checkout.get("patchset_hash")},
                "last_good": {"run_id": good[0], "created": good[1]} if good else None,
                "changes": changes}

    def trends(self, series: str | None = None, base: str | None = None, limit: int | None = None) -> list[dict[str, Any]]:
        """Each metric's medians across the runs of a series on a base, oldest run first: one entry per
        (series, tree, base), sorted by series, tree and base, each with its runs and, per (check path,
        metric), the runs that measured it with both sides' median, p90 and n (None where a side had
        no number).  `limit` keeps the newest runs of each series and base."""
        q = "SELECT run_id, created, series, tree, base, status, patchset_hash FROM runs"
        where, args = [], []
        if series is not None:
            where.append("series = ?")
            args.append(series)
        if base is not None:
            where.append("base = ?")
            args.append(base)
        if where:
            q += " WHERE " + " AND ".join(where)
        q += " ORDER BY series, tree, base, created, run_id"
        groups: dict[tuple[str, str, str], dict[str, Any]] = {}
        for run_id, created, ser, tree, bse, status, phash in self.db.execute(q, args):
            g = groups.setdefault((ser, tree, bse), {"series": ser, "tree": tree, "base": bse, "runs": [],
                                                       "metrics": []})
            g["runs"].append({"run_id": run_id, "created": created, "status": status, "patchset_hash": phash})
        for g in groups.values():
            if limit is not None:
                g["runs"] = g["runs"][-limit:] if limit > 0 else []
                if not g["runs"]:
                    continue
            order = {r["run_id"]: i for i, r in enumerate(g["runs"])}
            series_metrics: dict[tuple[str, str], dict[str, Any]] = {}
            for chunk in _chunks(list(order), 500):       # SQLite caps the number of parameters
                marks = ",".join("?" * len(chunk))
                for run_id, path, metric, unit, side, med, p90, n in self.db.execute(
                        f"SELECT run_id, path, metric, unit, side, median, p90, n FROM metrics "
                        f"WHERE run_id IN ({marks})", chunk):
                    m = series_metrics.setdefault((path, metric), {"path": path, "metric": metric, "unit": unit,
                                                                   "points": {}})
                    pt = m["points"].setdefault(run_id, {"run_id": run_id, **{s: None for s in SIDES}})
                    pt[side] = {"median": med, "p90": p90, "n": n}
            for key in sorted(series_metrics):
                m = series_metrics[key]
                pts = sorted(m["points"].values(), key=lambda p: order[p["run_id"]])
                for p in pts:
                    p["created"] = g["runs"][order[p["run_id"]]]["created"]
                    p["index"] = order[p["run_id"]]
                m["points"] = pts
                g["metrics"].append(m)
        return [g for g in groups.values() if g["runs"]]


def judged_with(db: Path, build: str | None, guest: str | None, cal: Any = None,
                exclude: str | None = None, failures: bool = True) -> dict[str, Any]:
    """What a comparison is judged with: the calibration's floors (`cal`, a judge.calibration.Calibration
    or None) and, from the history, the base kernel's noise model, failure rates and the floors grown
    from them where the history knows a metric better than the calibration (every earlier run's base
    boots of this build and guest shape, base.machine.guest_key, are A/A data; `exclude`: the run being judged).  `ktest run` and
    `ktest compare` both judge with it; `failures=False` when the base side is not that kernel (its
    failure rates are the kernel's, while its noise is the machine's and the metric's)."""
    from ktest.judge import calibration

    noise: dict[str, Any] = {}
    fails: dict[str, Any] = {}
    if build and guest:
        hist = History.open(db)
        noise = hist.noise_model(build, guest, exclude=exclude)
        fails = hist.fail_history(build, guest, exclude=exclude) if failures else {}
    floors = {**(cal.floors if cal else {}), **calibration.history_floors(noise, cal.noise if cal else None)}
    return {"floors": floors or None, "noise": calibration.pool_noise(cal.noise if cal else {}, noise),
            "fail_history": fails}


def _chunks(xs: list[Any], n: int) -> Iterator[list[Any]]:
    for i in range(0, len(xs), n):
        yield xs[i:i + n]
