"""The run history's metric trends: each run's medians per side are stored, read back per series and
base in run order, and an old database (runs table only) gains the metrics table."""

import json
import sqlite3
from pathlib import Path

import pytest

from ktest.report.history import History
from ktest.base.result import Result

R = Result.from_json

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
        hist.record(R(synthetic(i)), tmp_path / f"r{i}" / "result.json")
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
    hist.record(R(synthetic(0)), tmp_path / "a.json")
    hist.record(R(synthetic(1, base="b" * 40)), tmp_path / "b.json")
    hist.record(R(synthetic(2, series="other", tag="o")), tmp_path / "c.json")
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
        hist.record(R(synthetic(i)), tmp_path / f"r{i}.json")
    (g,) = hist.trends(limit=2)
    assert [r["run_id"] for r in g["runs"]] == ["lw-1", "lw-2"]
    assert all([p["index"] for p in m["points"]] == [0, 1] for m in g["metrics"])


def test_recording_a_run_again_replaces_its_metrics(hist, tmp_path):
    r = synthetic(0)
    hist.record(R(r), tmp_path / "a.json")
    r["checks"] = [c for c in r["checks"] if c["path"] == DUMMY]
    r["checks"][0]["metrics"][0]["base_median"] = 1.5
    hist.record(R(r), tmp_path / "a.json")
    (g,) = hist.trends()
    assert [(m["path"], m["points"][0]["base"]["median"]) for m in g["metrics"]] == [(DUMMY, 1.5)]


def test_a_side_without_numbers_is_none(hist, tmp_path):
    r = synthetic(0)
    m = r["checks"][0]["metrics"][0]
    m["patched_median"], m["patched_p90"], m["n_patched"] = None, None, 0
    hist.record(R(r), tmp_path / "a.json")
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
    assert tables == {"runs", "metrics", "base_boots"}
    assert [r["run_id"] for r in hist.runs()] == ["old-run"]
    (g,) = hist.trends()
    assert [r["run_id"] for r in g["runs"]] == ["old-run"] and g["metrics"] == []
    hist.record(R(synthetic(0)), tmp_path / "new.json")
    (g,) = hist.trends()
    assert [r["run_id"] for r in g["runs"]] == ["old-run", "lw-0"]
    assert g["metrics"] and all([p["run_id"] for p in m["points"]] == ["lw-0"] for m in g["metrics"])
    assert hist.context(R(synthetic(1)))["previous"]["run_id"] == "lw-0"


# --- the trends page (`ktest history --html`) ----------------------------------------------------

EVIL = "<script>alert(1)</script>"


def html_of(tmp_path, *extra) -> tuple[int, str]:
    from ktest.cli import main

    out = tmp_path / "out" / "trends.html"
    code = main(["history", "--html", "--db", str(tmp_path / "h.sqlite"), "--out", str(out),
                 "--cache", str(tmp_path / "c"), *extra])
    return code, out.read_text()


def test_history_html_draws_a_chart_per_metric_with_its_numbers(hist, tmp_path, capsys):
    for i in range(3):
        hist.record(R(synthetic(i)), tmp_path / f"r{i}.json")
    code, page = html_of(tmp_path)
    assert code == 0
    assert capsys.readouterr().out == f"wrote {tmp_path / 'out' / 'trends.html'} (1 series and base(s), 3 run(s))\n"
    (g,) = hist.trends()
    assert page.count('<svg class="trend-chart"') == len(g["metrics"]) == 7
    assert page.count("<polyline ") == 2 * 7          # a base line and a patched line per chart
    want = fixture_metric(DUMMY, "up_to_running")
    for i in range(3):
        assert f"{want['base_median'] + 10 * i:.2f}" in page and f"{want['patched_median'] + i:.2f}" in page
        assert f"lw-{i}" in page
    assert f"{want['base_p90']:.2f}" in page
    assert "machine drifted" in page and "evolution" in page
    assert "http://" not in page.replace('xmlns="http://www.w3.org/2000/svg"', "")
    assert "<script" not in page and "https://" not in page


def test_a_rising_base_median_draws_a_rising_base_line(hist, tmp_path):
    from ktest.report.trends import chart

    for i in range(3):
        hist.record(R(synthetic(i)), tmp_path / f"r{i}.json")
    (g,) = hist.trends()
    (m,) = [m for m in g["metrics"] if m["path"] == DUMMY]
    c = chart(m, g["runs"])
    base, patched = c["sides"]
    assert [s["name"] for s in c["sides"]] == ["base", "patched"]
    ys = [p["y"] for p in base["points"]]
    assert ys[0] > ys[1] > ys[2]                       # SVG y grows downwards
    xs = [p["x"] for p in base["points"]]
    assert xs == sorted(xs) and len(set(xs)) == 3
    assert all(p["y"] > b["y"] for p, b in zip(patched["points"], base["points"]))   # patched is far lower
    assert all(c["y0"] <= p["y"] <= c["y1"] and c["y0"] <= p["p90y"] <= c["y1"] for s in c["sides"]
               for p in s["points"])
    assert [float(t["label"]) for t in c["yticks"]][0] >= 0


def test_history_html_escapes_outside_text(hist, tmp_path):
    r = synthetic(0, series=EVIL, tag="evil")
    r["checks"][0]["path"] = 'check.<img src=x onerror="alert(2)">'
    r["checks"][0]["metrics"][0]["metric"] = "</title><script>alert(3)</script>"
    r["checks"][0]["metrics"][0]["unit"] = "<b>ms</b>"
    hist.record(R(r), tmp_path / "evil.json")
    code, page = html_of(tmp_path)
    assert code == 0
    assert EVIL not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "<img" not in page and "&lt;img src=x" in page
    assert "alert(3)</script>" not in page and "<b>ms" not in page
    assert "<script" not in page


def test_history_html_of_one_series(hist, tmp_path):
    hist.record(R(synthetic(0)), tmp_path / "a.json")
    hist.record(R(synthetic(0, series="other", tag="o")), tmp_path / "b.json")
    code, page = html_of(tmp_path, "--series", "other")
    assert code == 0 and "o-0" in page and "lw-0" not in page


def test_history_html_of_an_empty_history_says_so(tmp_path, capsys, monkeypatch):
    from ktest.cli import main

    monkeypatch.chdir(tmp_path)
    assert main(["history", "--html", "--db", str(tmp_path / "h.sqlite"), "--cache", str(tmp_path / "c")]) == 0
    page = (tmp_path / "reports" / "history.html").read_text()
    assert 'id="empty"' in page and "No runs recorded yet" in page and "<svg" not in page
    assert capsys.readouterr().out == "wrote reports/history.html (no runs recorded yet)\n"


def test_runs_from_before_metrics_are_listed_without_charts(tmp_path):
    db = sqlite3.connect(tmp_path / "h.sqlite")
    db.executescript(OLD_SCHEMA)
    db.execute("INSERT INTO runs VALUES (?,?,?,?,?,?,?,?,?,?,?)",
               ("old-run", "2026-11-30T10:00:00Z", "linkwatch", "ph", "linux-6.12.117", "a" * 40,
                "no regression", 0, 0, "x/result.json", "{}"))
    db.commit()
    db.close()
    code, page = html_of(tmp_path)
    assert code == 0 and "old-run" in page and 'class="nometrics"' in page and "<svg" not in page


def test_out_without_html_is_refused(tmp_path, capsys):
    from ktest.cli import main

    assert main(["history", "--out", str(tmp_path / "x.html"), "--cache", str(tmp_path / "c")]) == 2
    assert "[bad-option]" in capsys.readouterr().err and not (tmp_path / "x.html").exists()


def test_the_history_database_is_ktest_db_else_the_caches(cache, tmp_path, monkeypatch):
    assert cache.history_db == cache.root / "history.sqlite"
    monkeypatch.setenv("KTEST_DB", str(tmp_path / "elsewhere.sqlite"))
    assert cache.history_db == tmp_path / "elsewhere.sqlite"


def _aa_run(run_id: str, boot_medians: list[float], statuses: list[str], accel="tcg", build="k1", cpus=1) -> dict:
    """A run whose base boots (guests of `cpus` vCPUs) measured `boot_medians` (one metric) and `statuses`
    (one check)."""
    boots = [{"side": "base", "purpose": "round", "round": i + 1,
              "results": [{"path": "lw.x", "status": "PASS",
                           "metrics": [{"name": "lat", "unit": "ms", "samples": [m - 1, m, m + 1]}]},
                          {"path": "lw.flaky", "status": st, "metrics": []}]}
             for i, (m, st) in enumerate(zip(boot_medians, statuses))]
    patched = [{**b, "side": "patched"} for b in boots]
    return {"run_id": run_id, "created": f"2026-12-0{len(run_id)}T00:00:00Z", "series": {"name": "s"},
            "checkout": {"patchset_hash": "ph"}, "tree": {"name": "t", "base_rev": "v1", "base": "b" * 40},
            "builds": [{"label": "base", "key": build, "commit": None, "status": "PASS"}], "env": {"accel": accel, "cpus": cpus},
            "settings": {"rounds": len(boot_medians), "reps": 3}, "command": "ktest run s",
            "boots": boots + patched, "checks": [], "verdict": {"status": "no regression", "exit_code": 0,
                                                                 "regressions": [], "improvements": [], "flaky": []}}


def test_base_boots_of_earlier_runs_grow_the_noise_model_and_failure_rates(tmp_path):
    """Within-run spread only: a run whose base boots all sat 50 ms higher adds no noise, and the run
    being judged is left out.  Another accel, guest shape or base build is another machine or kernel."""
    import math

    hist = History.open(tmp_path / "h.sqlite")
    hist.record(R(_aa_run("r1", [100, 104, 96], ["PASS", "FAIL", "PASS"])), tmp_path / "1.json")
    hist.record(R(_aa_run("r22", [150, 154, 146], ["PASS", "PASS", "PASS"])), tmp_path / "2.json")
    hist.record(R(_aa_run("r333", [100, 200, 300], ["FAIL", "FAIL", "FAIL"], accel="kvm")), tmp_path / "3.json")
    hist.record(R(_aa_run("r4444", [100, 300, 500], ["FAIL", "PASS", "PASS"], cpus=2)), tmp_path / "4.json")
    model = hist.noise_model("k1", "tcg-1cpu", exclude="r999")
    m = model["lw.x/lat"]
    assert m["centre"]["df"] == 4 and m["source"] == "history (2 earlier runs)"
    # log(x + 5 ms) of 100, 104, 96 and of 150, 154, 146: the within-run variance, pooled
    within = [math.log(v + 5) for v in (100, 104, 96)], [math.log(v + 5) for v in (150, 154, 146)]
    ss = sum(sum((x - sum(xs) / 3) ** 2 for x in xs) for xs in within)
    assert m["centre"]["var"] == pytest.approx(ss / 4)
    assert hist.noise_model("k1", "tcg-1cpu", exclude="r22") == {}, "one run's 2 degrees of freedom are too few"
    assert hist.fail_history("k1", "tcg-1cpu") == {"lw.x": (0, 6), "lw.flaky": (1, 6)}
    assert hist.fail_history("k1", "kvm-1cpu") == {"lw.x": (0, 3), "lw.flaky": (3, 3)}
    assert hist.fail_history("k1", "tcg-2cpu") == {"lw.x": (0, 3), "lw.flaky": (1, 3)}
    assert hist.noise_model("k2", "tcg-1cpu") == {} and hist.fail_history("k2", "tcg-1cpu") == {}
