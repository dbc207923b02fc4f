"""Slow checks (the upstream selftests, marked @pytest.mark.slow) get a guest of their own in round 1
when a run has a pool: the guest plugin's KTEST_SLOW modes, the host-side collection that finds them,
and the run's job plan."""

import json
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from fakekernel import make_series
from ktest.boot.checks import PROJECT, slow_checks
from ktest.base.progress import Silent
from ktest.run import RunOptions, run_series
from ktest.host.tree import user_tree
from test_run_orchestration import canned

CHECKS = ("import pytest\n"
          "@pytest.mark.slow\n@pytest.mark.parametrize('group', ['prio', 'arp'])\ndef test_upstream(group): pass\n"
          "def test_fast(): pass\n"
          "def test_other(): pass\n")


@pytest.fixture
def tc(tmp_path) -> Path:
    d = tmp_path / "tc"
    d.mkdir()
    (d / "test_a.py").write_text(CHECKS)
    return d


def guest_session(tmp_path, tc, mode, **env):
    out = tmp_path / f"out-{mode}-{len(env)}"
    out.mkdir()
    p = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "ktest.guest.plugin", "-p", "no:cacheprovider",
                        f"--ktest-out={out}", "--rootdir", str(tmp_path), str(tc)], capture_output=True, text=True,
                       cwd=PROJECT, env={"PYTHONPATH": str(PROJECT), "PATH": "/usr/bin:/bin", "KTEST_SLOW": mode, **env})
    assert p.returncode == 0, p.stdout + p.stderr
    res = {json.loads(l)["id"].split("::")[-1]: json.loads(l)["status"]
           for l in (out / "results.jsonl").read_text().splitlines()}
    return json.loads((out / "selection.json").read_text()), res


@pytest.mark.parametrize("mode,expect", [
    ("1", {"test_upstream[prio]": "PASS", "test_upstream[arp]": "PASS", "test_fast": "PASS", "test_other": "PASS"}),
    ("0", {"test_upstream[prio]": "SKIP", "test_upstream[arp]": "SKIP", "test_fast": "PASS", "test_other": "PASS"}),
    ("only", {"test_upstream[prio]": "PASS", "test_upstream[arp]": "PASS"}),
    ("none", {"test_fast": "PASS", "test_other": "PASS"}),
])
def test_guest_plugin_slow_modes(tmp_path, tc, mode, expect):
    sel, res = guest_session(tmp_path, tc, mode)
    assert res == expect
    assert len(sel["selected"]) == 4, "the shard's part is the whole collection in every mode (merge compares it)"
    assert sorted(c["id"].split("::")[-1] for c in sel["collected"] if c["slow"]) == ["test_upstream[arp]",
                                                                                       "test_upstream[prio]"]


def test_a_guest_given_a_part_of_the_slow_checks_runs_just_that_part(tmp_path, tc):
    sel, _ = guest_session(tmp_path, tc, "1")
    part = [c["id"] for c in sel["collected"] if c["id"].endswith("[arp]")]
    sel, res = guest_session(tmp_path, tc, "only", KTEST_IDS=json.dumps(part))
    assert res == {"test_upstream[arp]": "PASS"}


def test_a_guest_given_a_part_of_the_other_checks_runs_just_that_part_and_still_collects_all(tmp_path, tc):
    sel, _ = guest_session(tmp_path, tc, "1")
    part = [c["id"] for c in sel["collected"] if c["id"].endswith("test_other")]
    sel, res = guest_session(tmp_path, tc, "none", KTEST_IDS=json.dumps(part))
    assert res == {"test_other": "PASS"}
    assert len(sel["collected"]) == 4, "the whole collection: the report orders checks by it"
    sel, res = guest_session(tmp_path, tc, "0", KTEST_IDS=json.dumps(part))
    assert res == {"test_other": "PASS"}, "a later round's part: the slow checks are not even skipped here"


def test_slow_checks_are_split_by_declared_cost_over_half_the_pool():
    from ktest.run import slow_parts

    costs = {"prio": 500.0, "arp_validate": 450.0, "num_grat_arp": 110.0, "lacpdu": 30.0, "panic": 10.0}
    assert slow_parts(costs, 2) == [list(costs)], "a pool of two: one slow guest a side"
    two = slow_parts(costs, 4)
    assert sorted(sum(two, [])) == sorted(costs) and len(two) == 2
    loads = sorted(sum(costs[i] for i in p) for p in two)
    assert loads == [540.0, 560.0], "largest first, each to the lighter guest: 500+30+10 and 450+110"
    assert len(slow_parts({"a": 1.0, "b": 2.0}, 8)) == 2, "never more guests than checks"
    assert slow_parts({}, 4) == []


def test_host_collection_finds_the_slow_checks_a_guest_would_run(tc):
    assert [i.split("::")[-1] for i in slow_checks([tc])] == ["test_upstream[prio]", "test_upstream[arp]"]
    assert list(slow_checks([tc]).values()) == [10.0, 10.0], "with their costs (undeclared: the default)"
    assert [i.split("::")[-1] for i in slow_checks([tc], "arp or fast")] == ["test_upstream[arp]"]
    assert slow_checks([tc], "not upstream") == {}
    assert slow_checks([tc / "missing.py"]) == {}, "a collection that fails finds nothing"


def test_round_one_gives_the_slow_checks_their_own_guest_first(tmp_path, fake_tree, cache, tc, monkeypatch):
    t = user_tree(cache, fake_tree)
    series = make_series(fake_tree, tmp_path / "s", [("net/core/dev.c", "int d1;\n", "net: one")])

    # the two slow guests must be up at the same time: neither returns until the other has started
    # (the timeout only turns a scheduling bug into a failure instead of a hang)
    both_slow = threading.Barrier(2, timeout=120)

    def behaviour(image, label, expr):
        if label.endswith("-slow"):
            both_slow.wait()
        return [("area.fast", "PASS", [1.0, 1, 1])]

    fake, calls = canned(behaviour)
    runner = fake
    opts = RunOptions(rounds=2, reps=3, reports=tmp_path / "r", testcases=[tc], vms=2)
    result, _ = run_series(cache, t, str(series), opts, Silent(), runner=runner)
    result = result.to_json()   # the document it wrote
    started = [(c[0], c[2]) for c in calls]
    # two guests at once: the slow pair first, then round 1's other checks and round 2
    assert sorted(started[:2]) == [("base-1-slow", "only"), ("patched-1-slow", "only")]
    assert sorted(started[2:6]) == [("base-1", "none"), ("base-2", False), ("patched-1", "none"), ("patched-2", False)]
    assert result["settings"]["slow_checks"]["own_guest"] is True
    assert [(b["label"], b["round"]) for b in result["boots"]][:2] == [("base-1-slow", 1), ("base-1", 1)]

    calls.clear()
    one = RunOptions(rounds=2, reps=3, reports=tmp_path / "r1", testcases=[tc], vms=1)
    run_series(cache, t, str(series), one, Silent(), runner=runner)
    assert [(c[0], c[2]) for c in calls[:4]] == [("base-1", True), ("patched-1", True), ("base-2", False),
                                                 ("patched-2", False)], "one guest at a time: no split"


def test_a_larger_pool_splits_round_ones_slow_checks_over_guests_of_their_own(tmp_path, fake_tree, cache, tc,
                                                                              monkeypatch):
    t = user_tree(cache, fake_tree)
    series = make_series(fake_tree, tmp_path / "s", [("net/core/dev.c", "int d1;\n", "net: one")])
    fake, calls = canned(lambda image, label, expr: [("area.fast", "PASS", [1.0, 1, 1])])
    runner = fake
    opts = RunOptions(rounds=2, reps=3, reports=tmp_path / "r", testcases=[tc], vms=4)
    result, _ = run_series(cache, t, str(series), opts, Silent(), runner=runner)
    result = result.to_json()   # the document it wrote
    slow = {c[0]: c[2] for c in calls if "-slow" in c[0]}
    assert sorted(slow) == ["base-1-slow1", "base-1-slow2", "patched-1-slow1", "patched-1-slow2"]
    assert slow["base-1-slow1"] == slow["patched-1-slow1"] and slow["base-1-slow2"] == slow["patched-1-slow2"]
    assert sorted(slow["base-1-slow1"] + slow["base-1-slow2"]) == sorted(slow_checks([tc])), "each once"
    assert result["settings"]["slow_checks"]["guests_per_side"] == 2
    assert [c[2] for c in calls if c[0] == "base-1"] == ["none"]


def test_a_sides_other_checks_are_split_by_cost_over_the_guests_the_pool_has_left():
    from ktest.run import check_parts

    costs = {"a": 60.0, "b": 40.0, "c": 30.0, "d": 20.0, "e": 10.0}
    assert check_parts(costs, 4, rounds=2) == [], "four guests, two rounds, two sides: one guest each, whole"
    assert check_parts(costs, 1, rounds=1) == []
    two = check_parts(costs, 4, rounds=1)
    assert sorted(sum(two, [])) == sorted(costs) and len(two) == 2, "each check once"
    assert sorted(sum(costs[i] for i in p) for p in two) == [80.0, 80.0], "balanced by declared cost"
    assert all(p == sorted(p) for p in two), "collection order kept within a guest"
    assert len(check_parts(costs, 8, rounds=1)) == 4
    assert check_parts(costs, 8, rounds=1, slow_guests=2) == two, "the slow checks' guests come off first"
    assert check_parts(costs, 8, rounds=2, slow_guests=2) == []
    assert len(check_parts({"a": 1.0, "b": 1.0}, 8, rounds=1)) == 2, "never more guests than checks"
    assert check_parts({}, 8, rounds=1) == [], "nothing collected: the side runs whole"


def test_a_pool_with_guests_left_splits_each_sides_other_checks(tmp_path, fake_tree, cache, tc, monkeypatch):
    t = user_tree(cache, fake_tree)
    series = make_series(fake_tree, tmp_path / "s", [("net/core/dev.c", "int d1;\n", "net: one")])
    fake, calls = canned(lambda image, label, expr: [("area.fast", "PASS", [1.0, 1, 1])])
    runner = fake
    opts = RunOptions(rounds=1, max_rounds=1, reps=3, reports=tmp_path / "r", testcases=[tc], vms=8)
    result, outdir = run_series(cache, t, str(series), opts, Silent(), runner=runner)
    result = result.to_json()   # the document it wrote
    jobs = {c[0]: (c[2], c[3]) for c in calls}
    assert sorted(jobs) == ["base-1-p1", "base-1-p2", "base-1-slow1", "base-1-slow2",
                            "patched-1-p1", "patched-1-p2", "patched-1-slow1", "patched-1-slow2"]
    parts = [jobs[f"base-1-p{k}"][1] for k in (1, 2)]
    assert parts == [jobs[f"patched-1-p{k}"][1] for k in (1, 2)], "both sides split alike"
    assert sorted(i.split("::")[-1] for i in sum(parts, [])) == ["test_fast", "test_other"], "each once"
    assert {jobs[f"base-1-p{k}"][0] for k in (1, 2)} == {"none"}, "never the slow checks again"
    assert result["settings"]["check_guests"] == [{"rounds": [1], "guests_per_side": 2}]
    assert [(b["side"], b["round"]) for b in result["boots"]].count(("base", 1)) == 4
    assert "each side's checks split by cost over 2 guests" in (outdir / "index.html").read_text()

    calls.clear()
    shard = RunOptions(rounds=1, max_rounds=1, reps=3, reports=tmp_path / "r2", testcases=[tc], vms=8, shard=(1, 2))
    run_series(cache, t, str(series), shard, Silent(), runner=runner)
    assert not any("-p" in c[0] for c in calls), "a shard is a part already: one guest a side"
