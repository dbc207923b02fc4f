"""Run history in SQLite (cache/history.sqlite or --db): every run, and what changed since the last run
of the same series on the same base.  Parameterised SQL only."""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from pathlib import Path

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
"""


def _checks(result: dict) -> dict:
    return {c["path"]: {"verdict": c["verdict"], "patched": c["patched"]["status"]} for c in result.get("checks", [])}


@dataclass
class History:
    db: sqlite3.Connection

    @classmethod
    def open(cls, path: Path) -> "History":
        path.parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(str(path), timeout=30)
        db.executescript(SCHEMA)
        return cls(db)

    def record(self, result: dict, result_path: Path) -> None:
        v = result.get("verdict") or {}
        with self.db:
            self.db.execute(
                "INSERT OR REPLACE INTO runs VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                (result["run_id"], result["created"], result["series"]["name"], result["checkout"]["patchset_hash"],
                 result["tree"]["name"], result["tree"]["base"], v.get("status", "?"), int(v.get("exit_code", 2)),
                 len(v.get("regressions", [])), str(result_path), json.dumps(_checks(result))))

    def runs(self, series: str | None = None, limit: int = 20) -> list[dict]:
        q = "SELECT run_id, created, series, base, status, exit_code, n_regressions, result_path FROM runs"
        args: tuple = ()
        if series:
            q += " WHERE series = ?"
            args = (series,)
        q += " ORDER BY created DESC, run_id DESC LIMIT ?"
        cols = ["run_id", "created", "series", "base", "status", "exit_code", "n_regressions", "result_path"]
        return [dict(zip(cols, r)) for r in self.db.execute(q, (*args, limit))]

    def context(self, result: dict) -> dict:
        """The previous run of this series on this base, the last good one, and per-check changes."""
        series, base = result["series"]["name"], result["tree"]["base"]
        rows = self.db.execute(
            "SELECT run_id, created, status, exit_code, checks_json, patchset_hash FROM runs "
            "WHERE series = ? AND base = ? AND run_id != ? ORDER BY created DESC, run_id DESC",
            (series, base, result["run_id"])).fetchall()
        if not rows:
            return {"previous": None, "last_good": None, "changes": []}
        prev = rows[0]
        good = next((r for r in rows if r[3] == 0), None)
        before, now = json.loads(prev[4]), _checks(result)
        changes = [{"path": p, "before": before.get(p, {}).get("verdict"), "now": now.get(p, {}).get("verdict")}
                   for p in sorted(set(before) | set(now))
                   if before.get(p, {}).get("verdict") != now.get(p, {}).get("verdict")]
        return {"previous": {"run_id": prev[0], "created": prev[1], "status": prev[2],
                             "same_patches": prev[5] == result["checkout"]["patchset_hash"]},
                "last_good": {"run_id": good[0], "created": good[1]} if good else None,
                "changes": changes}
