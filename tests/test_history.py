"""The run history's metric trends: each run's medians per side are stored, read back per series and
base in run order, and an old database (runs table only) gains the metrics table."""

import json
import sqlite3
from pathlib import Path

import pytest

from ktest.history import History

FIXTURES = Path(__file__).parent / "fixtures"
DUMMY = "linkwatch.operstate.dummy_carrier"
PROBE = "linkwatch.operstate.virtio_first_up_after_probe"


def synthetic(i: int, series: str = "linkwatch", base: str | None = None, tag: str = "lw") -> dict:
    """The recorded linkwatch run as run i of a series: base medians +10*i, patched medians +i."""
    r = json.loads((FIXTURES / "result-linkwatch.json").read_text())
    r["run_id"] = f"{tag}-{i}"
    r["created"] = f"2026-12-0{i + 1}T10:00:00Z"
    r["series"]["name"] = series
    if base:
        r["tree"]["base"] = base
    for c in r["checks"]:
        for m in c["metrics"]:
            m["base_median"] += 10 * i
            m["patched_median"] += i
    return r


def fixture_metric(path: str, metric: str) -> dict:
    r = json.loads((FIXTURES / "result-linkwatch.json").read_text())
    (c,) = [c for c in r["checks"] if c["path"] == path]
    (m,) = [m for m in c["metrics"] if m["metric"] == metric]
    return m


@pytest.fixture
def hist(tmp_path) -> History:
    return History.open(tmp_path / "h.sqlite")


def test_trends_hold_each_metrics_medians_in_run_order(hist, tmp_path):
    for i in (2, 0, 1):                       # recorded out of order: the runs' times order them
        hist.record(synthetic(i), tmp_path / f"r{i}" / "result.json")
    (g,) = hist.trends()
    assert (g["series"], g["tree"], g["base"]) == ("linkwatch", "linux-6.12.117",
                                                   "ada1f1a378c28688c339ae68cb01380e7e7f7e5e")
    assert [r["run_id"] for r in g["runs"]] == ["lw-0", "lw-1", "lw-2"]
    keys = [(m["path"], m["metric"]) for m in g["metrics"]]
    assert keys == sorted(keys) and len(keys) == 7
    (m,) = [m for m in g["metrics"] if m["path"] == DUMMY]
    want = fixture_metric(DUMMY, "up_to_running")
    assert m["unit"] == "ms"
    assert [p["run_id"] for p in m["points"]] == [r["run_id"] for r in g["runs"]]
    assert [p["index"] for p in m["points"]] == [0, 1, 2]
    assert [p["base"]["median"] for p in m["points"]] == pytest.approx([want["base_median"] + 10 * i for i in range(3)])
    assert [p["patched"]["median"] for p in m["points"]] == pytest.approx([want["patched_median"] + i for i in range(3)])
    assert [p["base"]["p90"] for p in m["points"]] == pytest.approx([want["base_p90"]] * 3)
    assert [p["patched"]["p90"] for p in m["points"]] == pytest.approx([want["patched_p90"]] * 3)
    assert [(p["base"]["n"], p["patched"]["n"]) for p in m["points"]] == [(10, 10)] * 3
    probe = {m["metric"] for m in g["metrics"] if m["path"] == PROBE}
    assert probe == {"up_to_running", "bind_to_up_request"}


def test_trends_are_per_series_and_base(hist, tmp_path):
    hist.record(synthetic(0), tmp_path / "a.json")
    hist.record(synthetic(1, base="b" * 40), tmp_path / "b.json")
    hist.record(synthetic(2, series="other", tag="o"), tmp_path / "c.json")
    groups = hist.trends()
    assert [(g["series"], g["base"][:1], len(g["runs"])) for g in groups] == [("linkwatch", "a", 1),
                                                                              ("linkwatch", "b", 1), ("other", "a", 1)]
    assert [g["series"] for g in hist.trends(series="other")] == ["other"]
    (g,) = hist.trends(series="linkwatch", base="b" * 40)
    assert g["runs"][0]["run_id"] == "lw-1"
    assert hist.trends(series="nobody") == []
    (g,) = hist.trends(series="linkwatch", base="ada1f1a378c28688c339ae68cb01380e7e7f7e5e")
    assert all(len(m["points"]) == 1 for m in g["metrics"])


def test_limit_keeps_the_newest_runs(hist, tmp_path):
    for i in range(3):
        hist.record(synthetic(i), tmp_path / f"r{i}.json")
    (g,) = hist.trends(limit=2)
    assert [r["run_id"] for r in g["runs"]] == ["lw-1", "lw-2"]
    assert all([p["index"] for p in m["points"]] == [0, 1] for m in g["metrics"])


def test_recording_a_run_again_replaces_its_metrics(hist, tmp_path):
    r = synthetic(0)
    hist.record(r, tmp_path / "a.json")
    r["checks"] = [c for c in r["checks"] if c["path"] == DUMMY]
    r["checks"][0]["metrics"][0]["base_median"] = 1.5
    hist.record(r, tmp_path / "a.json")
    (g,) = hist.trends()
    assert [(m["path"], m["points"][0]["base"]["median"]) for m in g["metrics"]] == [(DUMMY, 1.5)]


def test_a_side_without_numbers_is_none(hist, tmp_path):
    r = synthetic(0)
    m = r["checks"][0]["metrics"][0]
    m["patched_median"], m["patched_p90"], m["n_patched"] = None, None, 0
    hist.record(r, tmp_path / "a.json")
    (g,) = hist.trends()
    (t,) = [t for t in g["metrics"] if t["path"] == r["checks"][0]["path"]]
    assert t["points"][0]["patched"] == {"median": None, "p90": None, "n": 0}
    assert t["points"][0]["base"]["median"] == pytest.approx(m["base_median"])


OLD_SCHEMA = """
CREATE TABLE runs (
    run_id TEXT PRIMARY KEY, created TEXT NOT NULL, series TEXT NOT NULL, patchset_hash TEXT NOT NULL,
    tree TEXT NOT NULL, base TEXT NOT NULL, status TEXT NOT NULL, exit_code INTEGER NOT NULL,
    n_regressions INTEGER NOT NULL, result_path TEXT NOT NULL, checks_json TEXT NOT NULL);
CREATE INDEX runs_series ON runs(series, base, created);
"""


def test_a_database_from_before_metrics_gains_the_table(tmp_path):
    path = tmp_path / "old.sqlite"
    db = sqlite3.connect(path)
    db.executescript(OLD_SCHEMA)
    db.execute("INSERT INTO runs VALUES (?,?,?,?,?,?,?,?,?,?,?)",
               ("old-run", "2026-11-30T10:00:00Z", "linkwatch", "ph", "linux-6.12.117",
                "ada1f1a378c28688c339ae68cb01380e7e7f7e5e", "no regression", 0, 0, "x/result.json", "{}"))
    db.commit()
    db.close()
    hist = History.open(path)
    tables = {r[0] for r in hist.db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert tables == {"runs", "metrics"}
    assert [r["run_id"] for r in hist.runs()] == ["old-run"]
    (g,) = hist.trends()
    assert [r["run_id"] for r in g["runs"]] == ["old-run"] and g["metrics"] == []
    hist.record(synthetic(0), tmp_path / "new.json")
    (g,) = hist.trends()
    assert [r["run_id"] for r in g["runs"]] == ["old-run", "lw-0"]
    assert g["metrics"] and all([p["run_id"] for p in m["points"]] == ["lw-0"] for m in g["metrics"])
    assert hist.context(synthetic(1))["previous"]["run_id"] == "lw-0"
