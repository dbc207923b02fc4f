"""Rendering, JUnit, KCIDB and summary from a recorded run (tests/fixtures/result-linkwatch.json, the
result.json of a real `ktest run patches/linkwatch` on this machine), with no VM."""

import copy
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from junitparser import JUnitXml

from ktest.report.outputs import render_html, render_junit, render_kcidb, render_summary, write_all
from ktest.base.result import Result

R = Result.from_json

FIXTURE = Path(__file__).parent / "fixtures" / "result-linkwatch.json"


@pytest.fixture
def result():
    return json.loads(FIXTURE.read_text())


def test_fixture_is_a_real_run(result):
    assert result["schema"] == "ktest.result/1"
    assert result["checkout"]["valid"] is True and len(result["builds"]) == 3
    assert {b["side"] for b in result["boots"]} == {"base", "patched"}


def test_kcidb_is_valid_and_carries_numbers(result):
    data = render_kcidb(R(result))  # validates against kcidb-io's latest schema, raises otherwise
    assert data["checkouts"][1]["patchset_hash"] == result["checkout"]["patchset_hash"]
    nums = [t for t in data["tests"] if "number" in t]
    assert nums and all(t["number"]["unit"] == "ms" for t in nums if "linkwatch" in t["path"])
    assert {t["build_id"] for t in data["tests"]} == {b["id"] for b in data["builds"]}


def test_junit_round_trips(result, tmp_path):
    f = tmp_path / "junit.xml"
    f.write_text(render_junit(R(result)))
    suites = list(JUnitXml.fromfile(str(f)))
    cases = [c for s in suites for c in s]
    want = len(result["builds"]) + len(result["checks"]) + len(result["splats"]["new"]) + len(result["expected"])
    assert len(cases) == want
    failed = {c.name for c in cases if any(r.__class__.__name__ == "Failure" for r in c.result)}
    regressed = {c["path"] for c in result["checks"] if c["verdict"] in ("regression", "metric regression")}
    assert regressed <= failed


def test_summary_states_verdict_and_expectations(result):
    md = render_summary(R(result))
    assert result["verdict"]["status"] in md.splitlines()[0]
    assert md.count("expected ") == len(result["expected"])


def test_hostile_text_is_escaped(result, tmp_path):
    r = copy.deepcopy(result)
    evil = '<script>alert("x")</script>'
    r["series"]["patches"][0]["subject"] = evil
    r["checks"][0]["messages"]["patched"] = ['</code><img src=x onerror="alert(1)">']
    r["splats"]["patched"] = [{"kind": "warning", "fingerprint": "warning:<b>x</b>", "title": evil,
                               "text": "</pre>" + evil, "functions": [], "line": 1, "known": None}]
    out = tmp_path / "run"
    (out / "boots").mkdir(parents=True)
    log = out / "boots" / "console.log"
    log.write_text("kernel says " + evil + "\n")
    for b in r["boots"]:
        b["boot"]["console_log"] = "boots/console.log"
    html = render_html(R(r), out)
    assert "<script" not in html and "<img src=x" not in html and "<b>x</b>" not in html
    assert "&lt;script&gt;alert" in html


def test_report_is_self_contained(result, tmp_path):
    write_all(R(result), tmp_path)
    html = (tmp_path / "index.html").read_text()
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", html), "fetches nothing"
    assert "<script" not in html
    assert html.count("<svg") == sum(len(c["metrics"]) for c in result["checks"])


def test_ktest_report_rerenders_a_stored_run(result, tmp_path):
    (tmp_path / "result.json").write_text(json.dumps(result))
    p = subprocess.run([sys.executable, "-m", "ktest", "report", str(tmp_path / "result.json")],
                       capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    for f in ("index.html", "junit.xml", "kcidb.json", "summary.md"):
        assert (tmp_path / f).stat().st_size > 100


def test_report_missing_result_is_one_line(tmp_path):
    p = subprocess.run([sys.executable, "-m", "ktest", "report", str(tmp_path / "nope.json")],
                       capture_output=True, text=True)
    assert p.returncode == 2 and "[no-result]" in p.stderr and "Traceback" not in p.stderr


def test_control_bytes_from_the_console_keep_junit_well_formed(result, tmp_path):
    """An ESC in a splat title (console text) made junit.xml unreadable, and CI lost every result."""
    import xml.etree.ElementTree as ET
    r = copy.deepcopy(result)
    r["splats"]["new"] = [{"kind": "warning", "fingerprint": "warning:x\x1b[31m", "title": "WARNING: \x1b[31mred\x07\x00"}]
    r["checks"][0]["verdict"] = "still failing, worse"
    r["checks"][0]["messages"]["patched"] = ["bad \x1b]8;;http://x\x07link"]
    f = tmp_path / "junit.xml"
    f.write_text(render_junit(R(r)))
    ET.parse(f)                                  # well-formed
    cases = {c.name: c for s in JUnitXml.fromfile(str(f)) for c in s}
    assert any("\\x1b" in (c.result[0].message or "") for c in cases.values() if c.result)
    assert cases[r["checks"][0]["path"]].result[0].message.startswith("still failing, worse")


def test_every_output_file_is_world_readable(result, tmp_path):
    write_all(R(result), tmp_path)
    from ktest.base.cache import write_json_atomic
    write_json_atomic(tmp_path / "result.json", result)
    for f in ("index.html", "junit.xml", "kcidb.json", "summary.md", "result.json"):
        assert (tmp_path / f).stat().st_mode & 0o777 == 0o644, f


def test_every_changed_check_comes_with_the_command_that_reproduces_it(tmp_path):
    """A node id (not a rebuilt -k name), the side's kernel build by key, the run's repetitions; in the
    page, the summary and (for regressions) the terminal."""
    import json as _json

    from ktest.cli import run_summary_lines
    from ktest.report.outputs import render_html, render_summary, reproduce

    r = _json.loads((FIXTURE.parent / "result-bonding.json").read_text())
    by = {c["path"]: c for c in r["checks"]}
    fixed = by["bonding.active_backup.failover_event_and_peer_notification"]
    checks = {c.path: c for c in R(r).checks}
    cmds = reproduce(R(r), checks[fixed["path"]])
    node = "testcases/bonding/test_active_backup.py::test_failover_event_and_peer_notification"
    assert cmds == {"base": f"ktest boot --build fcf931a89902040999ebbe84 --testcases {node} --reps 5",
                    "patched": f"ktest boot --build 5db939eae43d780927930222 --testcases {node} --reps 5"}
    upstream = reproduce(R(r), checks["bonding.upstream.bond_options.num_grat_arp"])["patched"]
    assert "'testcases/bonding/test_upstream.py::test_bond_options[num_grat_arp]'" in upstream, \
        "a sub-result's own check, quoted for the shell"
    assert reproduce(R(r), checks["smoke.guest_basics"]) == {}, "an unchanged check needs none"
    assert f"Reproduce on patched: <code>ktest boot --build 5db939eae43d780927930222 --testcases {node}" \
        in render_html(R(r), tmp_path)
    assert "To reproduce a check" in render_summary(R(r))
    r["verdict"]["regressions"] = [fixed["path"]]
    assert any(l.startswith(f"  reproduce {fixed['path']} on patched: ktest boot") for l in
               run_summary_lines(R(r), tmp_path))


def test_a_node_id_is_found_from_any_directory(tmp_path, monkeypatch):
    from ktest.boot.checks import PROJECT, check_path

    monkeypatch.chdir(tmp_path)
    p = check_path("testcases/test_smoke.py::test_guest_basics")
    assert str(p) == f"{PROJECT}/testcases/test_smoke.py::test_guest_basics"
    assert check_path(tmp_path) == tmp_path.resolve(), "an existing path is taken as it is"


def test_report_links_the_trends_page_only_for_a_recorded_run(result):
    from ktest.report.history import anchor

    assert "history.html" not in render_html(R(result), FIXTURE.parent)       # a result from before trends
    r = copy.deepcopy(result)
    r["history"] = {"previous": None, "last_good": None, "changes": [], "trends": True}
    page = render_html(R(r), FIXTURE.parent)
    want = anchor(r["series"]["name"], r["tree"]["name"], r["tree"]["base"])
    assert f'<a href="../history.html#{want}">' in page and 'id="history"' in page
    assert "history.html" in render_summary(R(r)) and "history.html" not in render_summary(R(result))
    r["history"] = {"previous": None, "last_good": None, "changes": [], "skipped": "shard run"}
    assert 'id="history"' not in render_html(R(r), FIXTURE.parent)


def test_each_latency_says_which_clock_timed_it():
    from ktest.base.result import MetricResult
    from ktest.report.outputs import _over_boots, metric_clock

    base = {"unit": "ms", "decisions": {"centre": "SAME"}, "mde": 12.0}
    M = MetricResult.from_json
    assert metric_clock(M({**base, "metric": "up_to_running_kernel"})) == "kernel (kprobes)"
    assert metric_clock(M({**base, "metric": "up_to_running"})) == "user space"
    assert metric_clock(M({"metric": "tx_packets", "unit": "count"})) is None
    assert "clock: kernel (kprobes)" in _over_boots(M({**base, "metric": "cut_to_down_kernel"}))


def test_the_page_says_which_extra_rounds_were_booted_and_why(result):
    """The rounds record's list of extra rounds (the schema's `rounds.extra`) reaches the page."""
    r = copy.deepcopy(result)
    r["rounds"] = {"planned": 2, "booted": 3, "max": 6, "extra": [{"rounds": [3], "because": ["a.b/lat"]}]}
    page = render_html(R(r), FIXTURE.parent)
    assert "Rounds 3 were booted because 1 metric(s) were inconclusive: a.b/lat." in page
    assert "3 round(s) per side" in page and "at most 6" in page


def test_the_page_gives_the_calibrations_false_alarm_rate_with_its_interval(result):
    r = copy.deepcopy(result)
    name = "ktest-rule/3, calibrated floors (held-out boots)"
    r["calibration"] = {"key": "k-tcg-bonding", "boots": 8, "kernel_release": "6.12.118", "accel": "tcg",
                        "splits": 210, "rounds": 2, "rates": {name: 10 / 210, "old rule (ktest-rule/1)": 0.376},
                        "intervals": {name: {"low": 0.0, "high": 0.1995, "method": "jackknife over 8 boots"}}}
    page = render_html(R(r), FIXTURE.parent)
    assert f"{name}: 4.8 % (95 % interval 0.0–20.0 %)" in page
    assert "old rule (ktest-rule/1): 37.6 %;" in page or "old rule (ktest-rule/1): 37.6 %." in page


def test_the_page_shows_the_control_paths_spread_per_boot_and_next_to_each_floor(result):
    r = copy.deepcopy(result)
    ctl = "linkwatch.host_link.host_cable_pull_and_restore.expired/restore_to_running_kernel"
    r["resolution"] = [{"area": "linkwatch", "control": ctl, "unit": "ms", "base": [0.4, None, 0.8],
                        "patched": [0.5]}]
    # a metric compared under ktest-rule/3 (the fixture predates it): the spread stands next to its floor
    m = next(m for c in r["checks"] if c["path"].startswith("linkwatch.") for m in c["metrics"] if m["unit"] == "ms")
    m.update(q_value=0.5, noise_floor=20.0, floor_source="declared", resolution=1.2)
    page = render_html(R(r), FIXTURE.parent)
    assert f"the control path {ctl}" in page and "over base boots 0.4 ms, –, 0.8 ms; patched boots 0.5 ms" in page
    assert page.count(", control spread 0.6 ms") == 1
    assert "floor 20.0 ms, within-boot IQR 1.2 ms, control spread 0.6 ms" in page
    assert "control spread" not in render_html(R(result), FIXTURE.parent)
