"""`ktest run` orchestration on a fake tree with canned guest results (no VM): interleaving, retry of
patched-only failures, the culprit search within a series, history, and the outputs."""

import math
from pathlib import Path

import pytest

from fakekernel import make_series
from ktest.boot.checks import GuestRun
from ktest.base.progress import Silent
from ktest.run import RunOptions, run_series
from ktest.host.tree import user_tree
from ktest.boot.vm import BootResult


def _metric(s):
    fields = s if isinstance(s, dict) else {"samples": s}
    return {"name": "lat", "unit": "ms", **fields, "n": len(fields["samples"])}


def canned(behaviour):
    """A run_checks stand-in: behaviour(kernel_text, label, expr) -> list of (path, status, samples) or
    (path, status, samples, duration_s); samples may be a dict of the metric's fields ("samples" and e.g.
    "min_effect").  calls: (label, expr, slow, ids) of each boot."""
    calls = []

    def fake_run_checks(cache, bzimage, outdir, *, label="kernel", expr=None, slow=True, **kw):
        outdir.mkdir(parents=True, exist_ok=True)
        (outdir / "console.log").write_text("[    0.000000] Linux version fake\n")
        (outdir / "stdout.log").write_text("")
        calls.append((label, expr, slow, kw.get("ids")))
        results = [{"id": p, "path": p, "status": st, "duration_s": (took or [0.1])[0], "message": None, "log": "",
                    "metrics": [_metric(s)] if s else [],
                    "timelines": [], "notes": {}}
                   for p, st, s, *took in behaviour(Path(bzimage).read_text(), label, expr)]
        boot = BootResult(outcome="ok", exit_code=0, duration_s=1.0, started_after_s=0.5,
                          console_log=outdir / "console.log", stdout_log=outdir / "stdout.log")
        return GuestRun(label=label, boot=boot, started={}, finished={}, results=results, splats=[],
                        env={"accel": "tcg"})

    return fake_run_checks, calls


@pytest.fixture
def three_patches(tmp_path, fake_tree):
    return make_series(fake_tree, tmp_path / "s", [
        ("net/core/dev.c", "int d1;\n", "net: one"),
        ("net/core/dev.c", "int d2;\n", "net: two"),
        ("net/core/dev.c", "int d3;\n", "net: three")])


def test_culprit_is_the_first_patch_that_shows_the_regression(tmp_path, fake_tree, three_patches, cache,
                                                              monkeypatch):
    t = user_tree(cache, fake_tree)
    images = {}

    def behaviour(image, label, expr):
        images.setdefault(label, image)
        # patch 2 (and so patch 3, the series head) breaks check "a"
        bad = label.startswith("patched") or label == "patch-2"
        return [("area.a", "FAIL" if bad else "PASS", [10.0, 11, 12]), ("area.b", "PASS", [5.0, 5, 6])]

    fake, calls = canned(behaviour)
    runner = fake
    opts = RunOptions(rounds=2, reps=3, reports=tmp_path / "reports", testcases=[Path("testcases/test_smoke.py")], vms=1)
    result, outdir = run_series(cache, t, str(three_patches), opts, Silent(), runner=runner)
    result = result.to_json()   # the document it wrote
    labels = [c[0] for c in calls]
    assert labels[:4] == ["base-1", "patched-1", "base-2", "patched-2"], "interleaved"
    assert [c[2] for c in calls[:4]] == [True, True, False, False], "slow checks in round 1 only"
    assert "patch-1" in labels and "patch-2" in labels
    assert result["verdict"]["exit_code"] == 1 and result["verdict"]["regressions"] == ["area.a"]
    assert result["culprit"]["patch"] == 2 and result["culprit"]["subject"] == "net: two"
    assert (outdir / "index.html").exists() and (tmp_path / "reports" / "latest").resolve() == outdir


def test_patched_only_failure_is_retried_and_labelled_flaky(tmp_path, fake_tree, three_patches, cache,
                                                            monkeypatch):
    t = user_tree(cache, fake_tree)
    fails = {"n": 0}

    def behaviour(image, label, expr):
        st = "PASS"
        if label == "patched-1" and fails["n"] == 0:
            fails["n"] += 1
            st = "FAIL"
        return [("area.a", st, [])]

    fake, calls = canned(behaviour)
    runner = fake
    opts = RunOptions(rounds=2, reps=3, reports=tmp_path / "reports", testcases=[Path("testcases/test_smoke.py")], vms=1)
    result, _ = run_series(cache, t, str(three_patches), opts, Silent(), runner=runner)
    result = result.to_json()   # the document it wrote
    # 1 of 2 patched boots failed, 0 of 2 base: not yet evidence either way, so the check is booted again
    # on both sides until Fisher's test decides; passing every time, 1 of 5 against 0 of 5 is "no
    # difference" (a 50-point rise in the failure rate would have shown with power 0.8)
    retries = [c for c in calls if "-retry" in c[0]]
    assert [c[0] for c in retries] == [f"{side}-retry{k}" for k in (1, 2, 3) for side in ("base", "patched")]
    assert all(c[1] == "a" for c in retries)
    (check,) = result["checks"]
    assert check["patched"]["statuses"] == ["FAIL"] + ["PASS"] * 4 and check["verdict"] == "flaky"
    assert check["failures"]["decision"] == "SAME" and check["failures"]["base"] == [0, 5]
    assert result["verdict"]["exit_code"] == 0 and result["verdict"]["flaky"] == ["area.a"]


def test_history_links_runs_of_the_same_series(tmp_path, fake_tree, three_patches, cache, monkeypatch):
    t = user_tree(cache, fake_tree)
    state = {"bad": False}
    fake, _ = canned(lambda image, label, expr: [("area.a", "FAIL" if state["bad"] and "patched" in label
                                                  else "PASS", [])])
    runner = fake
    opts = RunOptions(rounds=1, reps=3, reports=tmp_path / "reports", testcases=[Path("x")], bisect=False)
    first, _ = run_series(cache, t, str(three_patches), opts, Silent(), runner=runner)
    first = first.to_json()   # the document it wrote
    state["bad"] = True
    second, _ = run_series(cache, t, str(three_patches), opts, Silent(), runner=runner)
    second = second.to_json()   # the document it wrote
    h = second["history"]
    assert h["previous"]["run_id"] == first["run_id"] and h["previous"]["same_patches"]
    assert h["last_good"]["run_id"] == first["run_id"]
    assert h["changes"] == [{"path": "area.a", "before": "unchanged", "now": "regression"}]


def test_each_run_report_links_the_trends_page_beside_it(tmp_path, fake_tree, three_patches, cache, monkeypatch):
    """After each run reports/history.html holds the series' metric across its runs; the report links
    its section, and still does when `ktest report` renders it again."""
    import re

    from ktest.cli import main
    from ktest.report.history import anchor

    t = user_tree(cache, fake_tree)
    state = {"base": [10.0, 11.0, 12.0]}
    fake, _ = canned(lambda image, label, expr: [("area.a", "PASS", state["base"] if "base" in label
                                                  else [x + 100 for x in state["base"]])])
    runner = fake
    opts = RunOptions(rounds=1, reps=3, reports=tmp_path / "reports", testcases=[Path("x")], bisect=False)
    first, _ = run_series(cache, t, str(three_patches), opts, Silent(), runner=runner)
    first = first.to_json()   # the document it wrote
    state["base"] = [20.0, 21.0, 22.0]
    second, outdir = run_series(cache, t, str(three_patches), opts, Silent(), runner=runner)
    second = second.to_json()   # the document it wrote
    trends = (tmp_path / "reports" / "history.html").read_text()
    assert trends.count('<svg class="trend-chart"') == 1
    for median in ("11.00", "21.00", "111.00", "121.00"):       # base and patched medians of both runs
        assert f"<td>{median}</td>" in trends
    assert first["run_id"] in trends and second["run_id"] in trends
    want = anchor(second["series"]["name"], second["tree"]["name"], second["tree"]["base"])
    assert f'<section id="{want}"' in trends
    for render in range(2):
        page = (outdir / "index.html").read_text()
        (href,) = re.findall(r'<p id="trends-link"><a href="([^"]+)"', page)
        assert href == f"../history.html#{want}" and (outdir / href.partition("#")[0]).resolve().is_file()
        assert "history.html" in (outdir / "summary.md").read_text()
        if render == 0:
            assert main(["report", str(outdir), "--cache", str(cache.root)]) == 0
    first_page = (tmp_path / "reports" / first["run_id"] / "index.html").read_text()
    assert "first recorded run" in first_page and 'id="trends-link"' in first_page


def test_a_base_kernel_that_never_boots_is_could_not_run_not_no_regression(tmp_path, fake_tree, three_patches,
                                                                          cache, monkeypatch):
    """Found on 6.1: every boot of both sides panicked before the harness; the run said "no regression"."""
    t = user_tree(cache, fake_tree)
    fake, _ = canned(lambda image, label, expr: [])

    def never_started(*a, **kw):
        gr = fake(*a, **kw)
        gr.started, gr.boot.outcome, gr.boot.exit_code = None, "panic", 255
        return gr

    runner = never_started
    opts = RunOptions(rounds=2, reps=3, reports=tmp_path / "reports", testcases=[Path("x")])
    result, outdir = run_series(cache, t, str(three_patches), opts, Silent(), runner=runner)
    result = result.to_json()   # the document it wrote
    v = result["verdict"]
    assert v["status"] == "could not run" and v["exit_code"] == 2 and v["stage"] == "boot"
    assert "never reached the guest harness in 2 boot(s) (panic)" in v["error"]
    assert "could not run" in (outdir / "summary.md").read_text()


def test_a_retry_boots_just_the_failing_checks_by_node_id(tmp_path, fake_tree, three_patches, cache, monkeypatch):
    """Not every parametrization of the function (a -k name would select all eleven upstream programs)."""
    from ktest.boot.checks import GuestRun
    from ktest.boot.vm import BootResult

    t = user_tree(cache, fake_tree)
    calls = []

    def fake(cache, bz, outdir, *, label, paths=None, expr=None, shard=None, **kw):
        calls.append((label, [str(p) for p in paths or []], expr, shard))
        outdir.mkdir(parents=True, exist_ok=True)
        for f in ("console.log", "stdout.log"):
            (outdir / f).write_text("")
        flaky = label == "patched-1"
        res = [{"id": f"testcases/b/test_up.py::test_ks[{p}]", "path": f"b.up.ks.{p}", "duration_s": 1.0,
                "status": "FAIL" if flaky and p == "arp" else "PASS", "message": None, "log": "", "metrics": [],
                "timelines": [], "notes": {}} for p in ("prio", "arp")]
        boot = BootResult(outcome="ok", exit_code=0, duration_s=1.0, started_after_s=0.5,
                          console_log=outdir / "console.log", stdout_log=outdir / "stdout.log")
        return GuestRun(label=label, boot=boot, started={}, finished={}, results=res, splats=[], env={"accel": "tcg"})

    runner = fake
    opts = RunOptions(rounds=2, reps=3, reports=tmp_path / "reports", testcases=[Path("testcases")], vms=1,
                      bisect=False, shard=(1, 2))
    result, _ = run_series(cache, t, str(three_patches), opts, Silent(), runner=runner)
    result = result.to_json()   # the document it wrote
    retries = [c for c in calls if "-retry" in c[0]]
    assert retries and len(retries) % 2 == 0
    assert [c[1:] for c in retries] == [(["testcases/b/test_up.py::test_ks[arp]"], None, None)] * len(retries), \
        "its node id, no -k, no shard split of a one-check collection"
    assert result["verdict"]["flaky"] == ["b.up.ks.arp"]


def test_a_retry_gives_a_check_that_took_minutes_a_guest_of_its_own(tmp_path, fake_tree, three_patches, cache):
    """Three checks fail in the first patched boot only; two of them took minutes there (upstream
    programs): each retry boots them in guests of their own, the longest first, and the quick one in a
    third, so that no guest runs the sum of them past its hard timeout.  Each check's counts grow by
    one boot per retry on each side, as before."""
    from ktest.boot.checks import GuestRun
    from ktest.boot.vm import BootResult

    t = user_tree(cache, fake_tree)
    calls = []
    took = {"prio": 900.0, "arp": 300.0, "xmit": 2.0}

    def fake(cache, bz, outdir, *, label, paths=None, expr=None, shard=None, **kw):
        calls.append((label, [str(p) for p in paths or []]))
        outdir.mkdir(parents=True, exist_ok=True)
        for f in ("console.log", "stdout.log"):
            (outdir / f).write_text("")
        ran = [p.split("[")[1].rstrip("]") for p in map(str, paths or [])] if "-retry" in label else list(took)
        res = [{"id": f"testcases/b/test_up.py::test_ks[{p}]", "path": f"b.up.ks.{p}", "duration_s": took[p],
                "status": "FAIL" if label == "patched-1" else "PASS", "message": None, "log": "", "metrics": [],
                "timelines": [], "notes": {}} for p in ran if p in took]
        boot = BootResult(outcome="ok", exit_code=0, duration_s=1.0, started_after_s=0.5,
                          console_log=outdir / "console.log", stdout_log=outdir / "stdout.log")
        return GuestRun(label=label, boot=boot, started={}, finished={}, results=res, splats=[], env={"accel": "tcg"})

    opts = RunOptions(rounds=2, reps=3, reports=tmp_path / "reports", testcases=[Path("testcases")], vms=1,
                      bisect=False)
    result, _ = run_series(cache, t, str(three_patches), opts, Silent(), runner=fake)
    first = [c for c in calls if c[0].startswith("patched-retry1")]
    node = "testcases/b/test_up.py::test_ks[{}]".format
    assert first == [("patched-retry1-p1", [node("prio")]), ("patched-retry1-p2", [node("arp")]),
                     ("patched-retry1-p3", [node("xmit")])], first
    doc = result.to_json()
    by = {c["path"]: c for c in doc["checks"]}
    retries = len([c for c in calls if c[0].startswith("base-retry")]) // 3
    for p in took:
        assert by[f"b.up.ks.{p}"]["failures"]["base"][1] == 2 + retries, by[f"b.up.ks.{p}"]["failures"]


def test_rerun_repeats_a_stored_run_on_the_same_builds(tmp_path, fake_tree, three_patches, cache, monkeypatch,
                                                       capsys):
    """`ktest run --rerun RUN_ID`: the stored run's series, tree and settings, checked to be the same
    patches, base and artifacts; other run options, a changed series and an unknown run are refused."""
    from ktest import cli

    runner, calls = canned(lambda image, label, expr: [("area.a", "PASS", [10.0, 11, 12])])
    db, common = tmp_path / "h.sqlite", ["--cache", str(cache.root)]
    first = ["run", str(three_patches), "--tree", str(fake_tree), "--testcases", "testcases/test_smoke.py",
             "--rounds", "2", "--max-rounds", "2", "--reps", "3", "--vms", "1", "--kconfig-add", "CONFIG_X=y",
             "--reports", str(tmp_path / "r1"), "--db", str(db), *common]
    assert cli.main(first, runner=runner) == 0
    old = __import__("json").loads((tmp_path / "r1" / "latest" / "result.json").read_text())
    n_boots = len(calls)
    # the pool is the host's (a larger one would split the checks over more guests): the same here
    assert cli.main(["run", "--rerun", old["run_id"], "--reports", str(tmp_path / "r2"), "--db", str(db),
                     "--vms", "1", *common], runner=runner) == 0
    new = __import__("json").loads((tmp_path / "r2" / "latest" / "result.json").read_text())
    assert new["settings"]["rerun_of"] == old["run_id"] and new["run_id"] != old["run_id"]
    assert [b["key"] for b in new["builds"]] == [b["key"] for b in old["builds"]], "the same builds"
    for k in ("rounds", "max_rounds", "reps", "testcases", "kconfig_add", "kconfig_areas"):
        assert new["settings"][k] == old["settings"][k], k
    assert len(calls) == 2 * n_boots, "the rerun booted as many guests as the run"
    assert 'id="rerun"' in (tmp_path / "r2" / "latest" / "index.html").read_text()
    capsys.readouterr()

    # a run directory works as well as its id; another setting or a changed series is refused
    assert cli.main(["run", "--rerun", str(tmp_path / "r1" / "latest"), "--reps", "7", *common]) == 2
    assert "[rerun-with-option]" in capsys.readouterr().err
    assert cli.main(["run", "--rerun", "20000101-000000-1-abcd", "--db", str(db), *common]) == 2
    assert "[run-not-found]" in capsys.readouterr().err
    p = sorted(three_patches.glob("0002-*.patch"))[0]
    p.write_text(p.read_text().replace("net: two", "net: two, reworded"))
    assert cli.main(["run", "--rerun", old["run_id"], "--db", str(db), *common]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "[rerun-differs]" in err[0] and "patches changed" in err[0], err


def test_earlier_runs_base_boots_are_the_noise_model_and_failure_history_of_the_next(
        tmp_path, fake_tree, three_patches, cache, monkeypatch):
    """Two runs of 3 rounds record their base boots; the third run of the same base build and accel is
    judged with that noise (4 degrees of freedom) and the base's failure rate, and says so in the result."""
    t = user_tree(cache, fake_tree)
    boot = {"n": 0}

    def behaviour(image, label, expr):
        boot["n"] += 1
        k = boot["n"] % 3
        return [("area.a", "PASS", [100.0 + k, 101 + k, 102 + k]), ("area.f", "FAIL" if k == 0 else "PASS", [])]

    fake, _ = canned(behaviour)
    runner = fake
    opts = RunOptions(rounds=3, max_rounds=3, reps=3, reports=tmp_path / "reports", testcases=[Path("x")],
                      bisect=False, db=tmp_path / "h.sqlite", vms=1)
    first, _ = run_series(cache, t, str(three_patches), opts, Silent(), runner=runner)
    first = first.to_json()   # the document it wrote
    assert first["judged_with"]["noise"] == {} and first["judged_with"]["fail_history"] == {}
    run_series(cache, t, str(three_patches), opts, Silent(), runner=runner)
    third, _ = run_series(cache, t, str(three_patches), opts, Silent(), runner=runner)
    third = third.to_json()   # the document it wrote
    jw = third["judged_with"]
    assert jw["noise"]["area.a/lat"]["centre"]["df"] == 4
    assert jw["noise"]["area.a/lat"]["source"] == "history (2 earlier runs)"
    failed, ran = jw["fail_history"]["area.f"]
    assert ran == 6 and 0 < failed < ran
    (m,) = next(c for c in third["checks"] if c["path"] == "area.a")["metrics"]
    assert m["noise"].startswith("history")


def test_the_floor_grows_from_the_history_once_it_has_enough_base_boots(tmp_path, fake_tree, three_patches, cache):
    """Four runs of 3 rounds leave 8 degrees of freedom of the base kernel's between-boot noise: the
    fifth run's floor for the metric comes from the history, not from its own base samples, and the run
    keeps what it used (judged_with); the fourth, with 6, still estimates it."""
    t = user_tree(cache, fake_tree)
    boot = {"n": 0}

    def behaviour(image, label, expr):
        boot["n"] += 1
        k = boot["n"] % 3
        return [("area.a", "PASS", [100.0 + 4 * k, 101 + 4 * k, 102 + 4 * k])]

    fake, _ = canned(behaviour)
    opts = RunOptions(rounds=3, max_rounds=3, reps=3, reports=tmp_path / "reports", testcases=[Path("x")],
                      bisect=False, db=tmp_path / "h.sqlite", vms=1)
    got = []
    for _ in range(5):
        r, _ = run_series(cache, t, str(three_patches), opts, Silent(), runner=fake)
        got.append(r.to_json())
    fourth, fifth = got[3], got[4]
    (m4,) = next(c for c in fourth["checks"] if c["path"] == "area.a")["metrics"]
    (m5,) = next(c for c in fifth["checks"] if c["path"] == "area.a")["metrics"]
    assert m4["floor_source"] == "estimated" and not (fourth["judged_with"]["floors"] or {})
    assert m5["floor_source"] == "history", m5["reason"]
    f = fifth["judged_with"]["floors"]["area.a/lat"]
    assert f["df"] == 8 and f["source"] == "history (4 earlier runs)" and f["history"]["centre"]["var"] > 0
    assert m5["noise_floor"] != m4["noise_floor"]


def test_retries_end_when_a_check_can_never_be_set_up_on_one_side(tmp_path, fake_tree, three_patches, cache,
                                                                  monkeypatch):
    """A setup the patched kernel never lets the check establish (an ERROR marked infra in every boot) adds
    nothing to the counts: the retries stop at the boot limit and the run is undecided, not green."""
    t = user_tree(cache, fake_tree)

    def fake(cache, bz, outdir, *, label, **kw):
        outdir.mkdir(parents=True, exist_ok=True)
        for f in ("console.log", "stdout.log"):
            (outdir / f).write_text("")
        bad = label.startswith("patched")
        res = [{"id": "t::a", "path": "area.a", "duration_s": 1.0, "status": "ERROR" if bad else "PASS",
                "infra": bad, "message": "setup: never" if bad else None, "log": "", "metrics": [],
                "timelines": [], "notes": {}},
               {"id": "t::b", "path": "area.b", "duration_s": 1.0, "status": "PASS", "message": None, "log": "",
                "metrics": [], "timelines": [], "notes": {}}]
        boot = BootResult(outcome="ok", exit_code=0, duration_s=1.0, started_after_s=0.5,
                          console_log=outdir / "console.log", stdout_log=outdir / "stdout.log")
        return GuestRun(label=label, boot=boot, started={}, finished={}, results=res, splats=[], env={"accel": "tcg"})

    runner = fake
    opts = RunOptions(rounds=2, reps=3, reports=tmp_path / "reports", testcases=[Path("x")], vms=2, bisect=False)
    result, _ = run_series(cache, t, str(three_patches), opts, Silent(), runner=runner)
    result = result.to_json()   # the document it wrote
    retries = [b for b in result["boots"] if b["purpose"] == "retry"]
    assert len(retries) == 2 * 8, "retry boots stop at 8 a side"
    v = result["verdict"]
    assert v["status"] == "undecided" and v["undecided"][0].startswith("area.a: set up in")


def test_a_run_interrupted_after_its_boots_says_interrupted_never_a_verdict(tmp_path, fake_tree, three_patches,
                                                                           cache):
    """Ctrl-C (or SIGTERM) while a patched-only failure is booted again: the boots of rounds 1-2 stay with
    the verdict "interrupted" (exit 130, no claim), the outputs name the stage, and the run is not in the
    history: its base boots were never judged."""
    import json

    from ktest.base.errors import Interrupted
    from ktest.report.history import History

    t = user_tree(cache, fake_tree)

    def behaviour(image, label, expr):
        if "-retry" in label:
            raise KeyboardInterrupt
        return [("area.a", "FAIL" if label == "patched-1" else "PASS", [])]

    fake, _ = canned(behaviour)
    reports = tmp_path / "reports"
    opts = RunOptions(rounds=2, reps=3, reports=reports, db=tmp_path / "h.sqlite",
                      testcases=[Path("testcases/test_smoke.py")], vms=1)
    with pytest.raises(Interrupted) as e:
        run_series(cache, t, str(three_patches), opts, Silent(), runner=fake)
    (outdir,) = [d for d in reports.iterdir() if d.is_dir() and not d.is_symlink()]
    assert "ktest report" in e.value.line()
    doc = json.loads((outdir / "result.json").read_text())
    v = doc["verdict"]
    assert (v["status"], v["exit_code"]) == ("interrupted", 130), v
    assert "retries" in v["error"] and "2 base and 2 patched boot(s)" in v["error"], v["error"]
    first = (outdir / "summary.md").read_text().splitlines()[0]
    assert "**interrupted**" in first and "no regression" not in first, first
    assert "interrupted" in (outdir / "index.html").read_text()
    assert History.open(tmp_path / "h.sqlite").runs() == [], "an unjudged run is not A/A data"
    from ktest.base.result import validate
    validate(doc, outdir / "result.json")        # as `ktest report DIR` reads it again


def test_a_decided_regression_stops_the_boots_that_would_settle_other_doubts(tmp_path, fake_tree, three_patches,
                                                                              cache):
    """Round 2 decides that area.a regressed (its metric four times the base in every boot) while
    area.b's wide metric is still in doubt: no third round is booted (it could only add to the list),
    the run is a regression, and the rounds record says why the boots stopped."""
    t = user_tree(cache, fake_tree)
    spread = {"base": [[5.0, 40, 90], [8.0, 70, 20]], "patched": [[6.0, 80, 30], [50.0, 9, 60]]}

    def behaviour(image, label, expr):
        side, rnd = label.split("-")[0], int(label.split("-")[1])
        a = [10.0, 10.2, 10.1, 10.3, 10.2] if side == "base" else [40.0, 40.3, 40.1, 40.2, 40.4]
        return [("area.a", "PASS", a), ("area.b", "PASS", spread[side][(rnd - 1) % 2])]

    fake, calls = canned(behaviour)
    opts = RunOptions(rounds=2, max_rounds=6, reps=3, reports=tmp_path / "reports", vms=1,
                      testcases=[Path("testcases/test_smoke.py")], bisect=False)
    result, outdir = run_series(cache, t, str(three_patches), opts, Silent(), runner=fake)
    doc = result.to_json()
    assert doc["verdict"]["regressions"] == ["area.a"], doc["verdict"]
    assert [c[0] for c in calls] == ["base-1", "patched-1", "base-2", "patched-2"], "no round 3"
    assert doc["rounds"]["booted"] == 2 and "area.a" in doc["rounds"]["stopped"], doc["rounds"]
    assert "Boots stopped early" in (outdir / "summary.md").read_text()


def test_a_decided_regression_stops_the_failure_count_retries(tmp_path, fake_tree, three_patches, cache):
    """Seen on bond-xmit-any-slave: a regression decided at round 2, then 80 minutes of retries for the
    failure counts of other checks.  area.a's metric decides the run; area.b fails in 1 of 2 patched
    boots (its counts cannot decide at 2 boots): no retry is booted, area.b is shown undecided, the run
    is a regression, and the rounds record says why the retries stopped.  Without the regression the
    same failure is retried (test_patched_only_failure_is_retried_and_labelled_flaky)."""
    t = user_tree(cache, fake_tree)

    def behaviour(image, label, expr):
        side = label.split("-")[0]
        a = [10.0, 10.2, 10.1, 10.3, 10.2] if side == "base" else [40.0, 40.3, 40.1, 40.2, 40.4]
        return [("area.a", "PASS", a), ("area.b", "FAIL" if label == "patched-1" else "PASS", [])]

    fake, calls = canned(behaviour)
    opts = RunOptions(rounds=2, max_rounds=6, reps=3, reports=tmp_path / "reports", vms=1,
                      testcases=[Path("testcases/test_smoke.py")], bisect=False)
    result, outdir = run_series(cache, t, str(three_patches), opts, Silent(), runner=fake)
    doc = result.to_json()
    assert [c[0] for c in calls] == ["base-1", "patched-1", "base-2", "patched-2"], "no retry"
    assert doc["verdict"]["exit_code"] == 1 and doc["verdict"]["regressions"] == ["area.a"], doc["verdict"]
    b = next(c for c in doc["checks"] if c["path"] == "area.b")
    assert b["verdict"] == "undecided" and b["failures"]["patched"] == [1, 2], b
    assert "no failure-count retries" in doc["rounds"]["stopped"] and "1 check(s) left undecided" in \
        doc["rounds"]["stopped"], doc["rounds"]
    summary = (outdir / "summary.md").read_text()
    assert "no failure-count retries" in summary
    assert "Also in doubt after 2 round(s)" in summary and "exit 3" not in summary, summary
    assert "\n- area.b: fails in 1 of 2 patched boots" in summary, summary


def test_after_a_decided_regression_one_batch_names_the_checks_that_fail_on_patched_only(tmp_path, fake_tree,
                                                                                         three_patches, cache):
    """area.a's metric decides the run in its 3 rounds; area.b fails in every patched boot and no base one,
    area.c in one patched boot of three.  One boot a side more is booted, for area.b alone (it names what
    the patch broke, and 4 of 4 against 0 of 4 decides it beside area.c: q = 0.03; area.c's counts could
    not settle in a boot), and none after it whatever it showed, though the run may boot 2 a side at once."""
    t = user_tree(cache, fake_tree)

    doc, calls = _area_a_decides(cache, t, three_patches, tmp_path, 3, 6, lambda side, label: [
        ("area.b", "FAIL" if side == "patched" else "PASS", []), ("area.c", "FAIL" if label == "patched-1" else "PASS", [])])
    labels = sorted(c[0] for c in calls)
    assert labels == ["base-1", "base-2", "base-3", "base-retry1", "patched-1", "patched-2", "patched-3",
                      "patched-retry1"], labels
    assert sorted(c[1] for c in calls if "retry" in c[0]) == ["b", "b"], calls
    by = {c["path"]: c for c in doc["checks"]}
    assert by["area.b"]["failures"]["patched"] == [4, 4] and by["area.b"]["failures"]["base"] == [0, 4]
    assert by["area.b"]["verdict"] == "regression", by["area.b"]
    assert by["area.c"]["verdict"] == "undecided" and by["area.c"]["failures"]["patched"] == [1, 3]
    assert doc["verdict"]["exit_code"] == 1 and "no failure-count retries" in doc["rounds"]["stopped"]


def _area_a_decides(cache, tree, series, tmp_path, rounds, max_rounds, rows):
    """A fake run (4 guests at once) in which area.a's metric decides a regression (10 -> 40 ms) beside
    the rows(side, label) of other checks; (result document, the boots' calls)."""
    def behaviour(image, label, expr):
        side = label.split("-")[0]
        a = [10.0, 10.2, 10.1, 10.3, 10.2] if side == "base" else [40.0, 40.3, 40.1, 40.2, 40.4]
        got = [("area.a", "PASS", a)] + rows(side, label)
        return [r for r in got if expr is None or r[0].split(".")[-1] in expr.split()]

    fake, calls = canned(behaviour)
    opts = RunOptions(rounds=rounds, max_rounds=max_rounds, reps=3, reports=tmp_path / "reports", vms=4,
                      testcases=[Path("testcases/test_smoke.py")], bisect=False)
    result, _ = run_series(cache, tree, str(series), opts, Silent(), runner=fake)
    return result.to_json(), calls


def _tested(path, patched, base, history=None, verdict="undecided"):
    """A check as compare() leaves it, its failure counts tested (p and q from the run-wide correction)."""
    from ktest.judge.verdict import failure_test

    hk, hn = history or (0, 0)
    dec, p = failure_test(base[0] + hk, base[1] + hn, patched[0], patched[1])
    return {"path": path, "verdict": verdict, "failures": {"patched": patched, "base": base, "history": history,
                                                           "decision": "UNKNOWN", "p": p, "q": p}}


OTHERS = [_tested(f"up.{i}", [1, 1], [0, 1]) for i in range(15)]     # upstream cases, once a round


@pytest.mark.parametrize("family, boots", [
    ([_tested("x", [2, 2], [0, 8], [0, 2])], 1),                      # 3 of 3 against 0 of 11: p = 0.003
    ([_tested("x", [2, 2], [0, 8], [0, 2])] + OTHERS, 1),             # q = 0.04 among 16
    ([_tested("x", [2, 2], [0, 2])], 1),                              # 3 of 3 against 0 of 3: p = 0.05
    ([_tested("x", [2, 2], [0, 2])] + OTHERS, 4),                     # q = 0.8 among 16 after one (seen at
                                                                      # 9b04c99), 0.063 after 3, 0.017 after 4
    ([_tested("x", [1, 1], [0, 1])], 2),                              # 2 of 2 against 0 of 2: p = 0.17
    ([_tested("x", [1, 1], [0, 1])] + OTHERS, None),                  # 5 of 5 against 0 of 5 among 16: q = 0.06
    ([_tested("x", [1, 2], [0, 2])], None),                           # not in every patched boot
    ([_tested("x", [2, 2], [1, 2])], None),                           # fails on the base too
    ([_tested("x", [2, 2], [0, 8], [1, 9])], None),                   # and in the base's history
    ([_tested("x", [2, 2], [0, 8], [0, 2], verdict="crashed")], None),
])
def test_how_many_more_boots_could_name_a_check_after_a_decided_regression(family, boots):
    from ktest.run import NAMING_BOOTS, _boots_to_name

    assert _boots_to_name(family, NAMING_BOOTS).get("x") == boots
    assert ("x" in _boots_to_name(family, 1)) is (boots == 1)


def test_naming_boots_a_fast_check_until_the_correction_can_call_it_and_a_slow_one_at_most_once(
        tmp_path, fake_tree, three_patches, cache):
    """area.a's metric decides the run in 2 rounds.  area.b fails in every patched boot and no base one;
    beside area.c (1 of 2 patched, p = 0.5) and area.up (an upstream program, 200 s a boot, failing in
    every patched boot) one boot more a side could not call it (3 of 3 against 0 of 3: q = 0.15 among
    3) and two can (4 of 4 against 0 of 4: q = 0.04).  So 2 boots a side are booted for area.b at once
    (vms=4): area.up, which one boot cannot decide either, is not booted again, nor area.c."""
    t = user_tree(cache, fake_tree)

    def rows(side, label):
        bad = "FAIL" if side == "patched" else "PASS"
        return [("area.b", bad, []), ("area.c", "FAIL" if label == "patched-1" else "PASS", []), ("area.up", bad, [], 200.0)]

    doc, calls = _area_a_decides(cache, t, three_patches, tmp_path, 2, 2, rows)
    retries = sorted(c[0] for c in calls if "retry" in c[0])
    assert retries == ["base-retry1-1", "base-retry1-2", "patched-retry1-1", "patched-retry1-2"], calls
    assert {c[1] for c in calls if "retry" in c[0]} == {"b"}, calls
    by = {c["path"]: c for c in doc["checks"]}
    assert by["area.b"]["failures"]["patched"] == [4, 4] and by["area.b"]["failures"]["base"] == [0, 4]
    assert by["area.b"]["verdict"] == "regression", by["area.b"]
    assert by["area.up"]["verdict"] == "undecided" and by["area.up"]["failures"]["patched"] == [2, 2]
    assert doc["verdict"]["exit_code"] == 1 and "no failure-count retries" in doc["rounds"]["stopped"]


@pytest.mark.parametrize("area", ["linkwatch", "bonding"])
def test_without_max_rounds_a_run_in_doubt_boots_up_to_its_areas_default(tmp_path, fake_tree, three_patches, cache,
                                                                        area, monkeypatch):
    """A metric that stays in doubt: with no --max-rounds, a run of the linkwatch checks boots up to that
    area's max_rounds for it, a bonding run up to bonding's.  What is tested is the rounds, so the doubt
    is made to last: the judgement is the real one, with the metric kept in doubt on top (noise alone
    settles, as it should, somewhere between 6 and 11 boots a side depending on the draw)."""
    from ktest import areas, run as run_mod

    import random

    real = run_mod.overall

    def in_doubt(*a, **kw):
        v = real(*a, **kw)
        if "area.b/lat" not in v.inconclusive:
            v.inconclusive.append("area.b/lat")
        return v
    monkeypatch.setattr(run_mod, "overall", in_doubt)
    t = user_tree(cache, fake_tree)

    def behaviour(image, label, expr):
        # each boot its own level, spread e-fold around 30 ms, both sides alike
        rng = random.Random(label)
        level = 30.0 * math.exp(rng.gauss(0.0, 1.0))
        return [("area.b", "PASS", [level * (1 + 0.01 * i) for i in range(3)])]

    fake, calls = canned(behaviour)
    opts = RunOptions(rounds=2, max_rounds=None, reps=3, reports=tmp_path / "reports", vms=1,
                      testcases=[areas.TESTCASES / area], bisect=False)
    result, _ = run_series(cache, t, str(three_patches), opts, Silent(), runner=fake)
    doc = result.to_json()
    want = areas.get(area).max_rounds
    assert doc["settings"]["check_areas"] == [area]
    assert doc["rounds"]["max"] == want and doc["rounds"]["booted"] == want, doc["rounds"]
    assert len([c for c in calls if c[0].startswith("base-")]) == want
    last = doc["rounds"]["extra"][-1]
    assert last["rounds"][-1] == want and last["because"] == ["area.b/lat"], "booted for the doubt, to the last"
