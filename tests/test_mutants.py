"""Sensitivity, for real: two mutants of the corpus (tests/data/mutants) built and booted against the
default tree.  Each must be called a regression by the check meant to catch it, and nothing an
improvement.  `ci/bench-sensitivity.sh` runs the whole corpus."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
MUTANTS = ROOT / "tests" / "data" / "mutants"


def test_every_mutant_declares_what_must_catch_it():
    """Positives ("regression") name the checks that must catch them and a -k expression selecting them;
    negatives ("none": behaviour-preserving refactors) name none, and their "breaks" says so."""
    names = sorted(p.name for p in MUTANTS.iterdir() if p.is_dir())
    areas = {"regression": set(), "none": set()}
    counts = {"regression": 0, "none": 0}
    for n in names:
        spec = json.loads((MUTANTS / n / "mutant.json").read_text())
        assert spec["name"] == n, n
        assert spec["area"] in ("linkwatch", "bonding"), n
        assert spec["expect"] in ("regression", "none"), n
        if spec["expect"] == "regression":
            assert spec["catch"] and spec["expr"], n
        else:
            assert spec["catch"] == [] and spec["breaks"].startswith("nothing: "), n
        patches = list((MUTANTS / n).glob("*.patch"))
        assert len(patches) == 1, n
        assert patches[0].read_text().startswith("From "), n   # git format-patch
        counts[spec["expect"]] += 1
        areas[spec["expect"]].add(spec["area"])
    assert counts["regression"] >= 10
    assert counts["none"] >= 4
    assert areas["regression"] == areas["none"] == {"linkwatch", "bonding"}


FAKE_KTEST = r"""#!/usr/bin/env python3
# a stand-in for `ktest run MUTANT_DIR ... --reports DIR`: writes DIR/latest/result.json as scripted
import json, os, sys
from pathlib import Path
args = sys.argv[1:]
name = Path(args[1]).name
reports = Path(args[args.index("--reports") + 1])
with open(os.environ["FAKE_LOG"], "a") as f:
    f.write(json.dumps(args) + "\n")
status, code, regressions, improvements, undecided = json.loads(os.environ["FAKE_" + name.replace("-", "_")])
checks = [{"path": p, "verdict": "regression", "metrics": []} for p in regressions]
boots = [{"side": s, "purpose": "round", "label": f"{s}-{i}"} for s in ("base", "patched") for i in (1, 2)]
boots.append({"side": "patched", "purpose": "bisect", "label": "bisect-1"})
(reports / "latest").mkdir(parents=True)
(reports / "latest" / "result.json").write_text(json.dumps({
    "run_id": "r-" + name, "env": {"accel": "tcg"}, "tree": {"name": "linux-6.12.118"},
    "settings": {"expr": None, "check_areas": ["linkwatch"]}, "checks": checks, "boots": boots,
    "verdict": {"status": status, "exit_code": code, "regressions": regressions, "improvements": improvements,
                "flaky": [], "undecided": undecided}}))
print(f"{name}: {status}")
sys.exit(code)
"""


def _bench(tmp_path, names, outcomes, env_extra=None):
    fake = tmp_path / "ktest"
    fake.write_text(FAKE_KTEST)
    fake.chmod(0o755)
    env = dict(os.environ, KTEST_BIN=str(fake), KTEST_BENCH_OUT=str(tmp_path / "out"),
               FAKE_LOG=str(tmp_path / "calls"), **(env_extra or {}))
    env.update({"FAKE_" + n.replace("-", "_"): json.dumps(o) for n, o in outcomes.items()})
    return subprocess.run(["bash", str(ROOT / "ci" / "bench-sensitivity.sh"), *names], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)


def test_bench_writes_the_confusion_table_of_full_runs(tmp_path):
    catch = json.loads((MUTANTS / "lw-interval-2hz" / "mutant.json").read_text())["catch"]
    outcomes = {
        "lw-interval-2hz": ["regression", 1, catch, [], []],                       # caught
        "lw-stacked-not-urgent": ["undecided", 3, [], [], ["linkwatch.x/up: in doubt"]],   # a miss, not green
        "bond-prio-inverted": ["no regression", 0, [], [], []],                    # missed: a false green
        "bond-xmit-any-slave": ["regression", 1, ["bonding.active_backup.peer_notification"], [], []],  # elsewhere
        "lw-refactor-run-budget": ["no regression", 0, [], [], []],                # clean
        "bond-refactor-prio-helper": ["regression", 1, ["bonding.a.b"], [], []],   # flagged
        "vnet-refactor-link-helper": ["undecided", 3, [], ["linkwatch.y"], ["linkwatch.y/z: in doubt"]],
    }
    p = _bench(tmp_path, list(outcomes), outcomes)
    assert p.returncode == 1, p.stdout + p.stderr
    calls = [json.loads(line) for line in (tmp_path / "calls").read_text().splitlines()]
    assert len(calls) == len(outcomes)
    assert all("-k" not in c and "--no-bisect" in c and "--testcases" not in c for c in calls)   # full runs
    doc = json.loads((tmp_path / "out" / "confusion.json").read_text())
    by = {r["name"]: r for r in doc["mutants"]}
    assert by["lw-interval-2hz"]["outcome"] == "caught" and by["lw-interval-2hz"]["caught"]
    assert by["lw-stacked-not-urgent"]["outcome"] == "undecided" and by["lw-stacked-not-urgent"]["exit_code"] == 3
    assert by["bond-prio-inverted"]["outcome"] == "missed"
    x = by["bond-xmit-any-slave"]
    assert x["outcome"] == "red elsewhere" and not x["caught"], x
    assert x["catch_verdicts"] == {"bonding.active_backup.xmit_only_through_active": "absent"}
    assert by["lw-refactor-run-budget"]["outcome"] == "clean"
    assert by["bond-refactor-prio-helper"]["outcome"] == "flagged"
    assert by["vnet-refactor-link-helper"]["false_improvements"] == ["linkwatch.y"]
    assert by["vnet-refactor-link-helper"]["undecided"] == ["linkwatch.y/z: in doubt"]
    assert by["lw-interval-2hz"]["boots"] == {"base": 2, "patched": 2}   # the culprit search's boot not counted
    assert all(isinstance(r["seconds"], int) and r["full_run"] for r in doc["mutants"])
    assert doc["totals"]["positives"] == {"total": 4, "caught": 1, "red_elsewhere": 1, "missed": 1,
                                          "undecided": 1, "could_not_run": 0, "false_green": 1}
    assert doc["totals"]["negatives"] == {"total": 3, "clean": 1, "flagged": 1, "undecided": 1, "could_not_run": 0}
    assert doc["accel"] == "tcg" and len(doc["ktest_commit"]) == 40 and doc["started"]
    assert "positives: 1/4 caught, 1 red by other checks" in p.stdout and "negatives: 1/3 clean" in p.stdout
    assert (tmp_path / "out" / "confusion.txt").read_text() in p.stdout


def test_bench_selects_a_set(tmp_path):
    negatives = sorted(p.name for p in MUTANTS.iterdir() if p.is_dir()
                       and json.loads((p / "mutant.json").read_text())["expect"] == "none")
    p = _bench(tmp_path, [], {n: ["no regression", 0, [], [], []] for n in negatives},
               {"KTEST_BENCH_SET": "negatives"})
    assert p.returncode == 0, p.stdout + p.stderr
    doc = json.loads((tmp_path / "out" / "confusion.json").read_text())
    assert sorted(r["name"] for r in doc["mutants"]) == negatives
    assert doc["totals"]["negatives"]["clean"] == len(negatives)


@pytest.mark.parametrize("args, env", [(["no-such-mutant"], {}), ([], {"KTEST_BENCH_SET": "some"})])
def test_bench_refuses_bad_selections(tmp_path, args, env):
    p = _bench(tmp_path, args, {}, env)
    assert p.returncode == 2 and "bench-sensitivity:" in p.stderr
    assert not (tmp_path / "calls").exists()


@pytest.mark.parametrize("args, said", [(["--help"], None), ([], "arguments are required"),
                                        (["/no/such/dir", "lw-interval-2hz"], "not a directory"),
                                        (["OUT", "no-such-mutant"], "no mutant no-such-mutant")])
def test_the_table_alone_refuses_bad_arguments_in_one_line(tmp_path, args, said):
    args = [str(tmp_path) if a == "OUT" else a for a in args]
    p = subprocess.run([sys.executable, "ci/bench_confusion.py", *args], cwd=ROOT, capture_output=True, text=True)
    assert "Traceback" not in p.stderr
    if said is None:
        assert p.returncode == 0 and "MUTANT" in p.stdout
    else:
        assert p.returncode == 2 and said in p.stderr and not (tmp_path / "confusion.json").exists()


@pytest.mark.kernel
@pytest.mark.parametrize("name", ["lw-stacked-not-urgent", "bond-xmit-any-slave"])
def test_mutant_is_caught(name, tmp_path):
    spec = json.loads((MUTANTS / name / "mutant.json").read_text())
    p = subprocess.run([sys.executable, "-m", "ktest", "run", str(MUTANTS / name), "-k", spec["expr"], "--no-bisect",
                        "--reports", str(tmp_path / "r"), "--db", str(tmp_path / "h.sqlite")],
                       cwd=ROOT, capture_output=True, text=True, timeout=3600, env=dict(os.environ))
    result = json.loads((tmp_path / "r" / "latest" / "result.json").read_text())
    v = result["verdict"]
    assert p.returncode == 1 and v["status"] == "regression", (v, p.stderr[-2000:])
    by = {c["path"]: c for c in result["checks"]}
    for path in spec["catch"]:
        assert by[path]["verdict"] in ("regression", "metric regression", "still failing, worse"), by[path]
    assert v["improvements"] == []


@pytest.mark.kernel
def test_a_modest_timing_change_on_one_path_is_caught_in_a_full_run(tmp_path):
    """Issue 28's acceptance: a virtio_net patch that adds 40 ms to the host-side link down only (one path,
    in the kernel's clock a few ms long) is a regression in a full run of its area: every linkwatch check,
    no -k, so the run-wide correction counts them all."""
    spec = json.loads((MUTANTS / "vnet-down-debounce-40ms" / "mutant.json").read_text())
    p = subprocess.run([sys.executable, "-m", "ktest", "run", str(MUTANTS / spec["name"]), "--no-bisect",
                        "--reports", str(tmp_path / "r"), "--db", str(tmp_path / "h.sqlite")],
                       cwd=ROOT, capture_output=True, text=True, timeout=3600, env=dict(os.environ))
    result = json.loads((tmp_path / "r" / "latest" / "result.json").read_text())
    v = result["verdict"]
    assert result["settings"]["expr"] is None and result["settings"]["check_areas"] == ["linkwatch"]
    assert p.returncode == 1 and v["status"] == "regression", (v, p.stderr[-2000:])
    by = {c["path"]: c for c in result["checks"]}
    for path in spec["catch"]:
        assert by[path]["verdict"] == "metric regression", by[path]
        m = {x["metric"]: x for x in by[path]["metrics"]}["cut_to_down_kernel"]
        assert m["verdict"] == "regressed" and 30 < m["delta"] < 60, m
    assert v["improvements"] == []
