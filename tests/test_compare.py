"""`ktest compare RUN_A RUN_B` on recorded runs: B's side judged against A's by the run's own rule."""

import copy
import json
from pathlib import Path

from ktest import cli

FIXTURE = Path(__file__).parent / "fixtures" / "result-linkwatch.json"


def stored(tmp_path, name, result) -> Path:
    d = tmp_path / name
    d.mkdir()
    (d / "result.json").write_text(json.dumps(result))
    return d


def swapped(result: dict, run_id: str) -> dict:
    """The same boots with the sides exchanged: this run's patched kernel is the fixture's base."""
    r = copy.deepcopy(result)
    r["run_id"] = run_id
    for b in r["boots"]:
        b["side"] = {"base": "patched", "patched": "base"}[b["side"]]
    return r


def test_compare_judges_b_against_a_with_the_run_rule(tmp_path, capsys):
    fx = json.loads(FIXTURE.read_text())
    a = stored(tmp_path, "a", fx)
    b = stored(tmp_path, "b", swapped(fx, "20260101-000000-2-bbbb"))
    cache = ["--cache", str(tmp_path / "cache")]

    # B's patched kernel is the old, slow one: against A's patched side that is a regression (exit 1)
    assert cli.main(["compare", str(a), str(b), "--out", str(tmp_path / "ab"), *cache]) == 1
    m = json.loads((tmp_path / "ab" / "result.json").read_text())
    assert m["compare"]["a"]["run_id"] == fx["run_id"] and m["compare"]["side"] == "patched"
    assert m["compare"]["a"]["boots"] == m["compare"]["b"]["boots"] == 2
    assert "linkwatch.operstate.virtio_bounce.gap_0_1s" in m["verdict"]["regressions"]
    assert m["series"]["expected"] is None and m["expected"] == [], "a series' declared effect is not run -> run"
    assert {b["boot"]["console_log"].split("/")[0] for b in m["boots"]} == {"A", "B"}
    assert cli.main(["report", str(tmp_path / "ab"), *cache]) == 0, "the comparison re-renders from its data"
    for f in ("index.html", "junit.xml", "kcidb.json", "summary.md"):
        assert (tmp_path / "ab" / f).is_file()
    assert 'id="compare"' in (tmp_path / "ab" / "index.html").read_text()
    out = capsys.readouterr().out
    assert "compare patched sides" in out and "regression" in out

    # the other way round it is an improvement (with, at 2 boots a side, one metric still in doubt:
    # undecided, exit 3); base sides of a run and its copy: no change
    assert cli.main(["compare", str(b), str(a), "--out", str(tmp_path / "ba"), *cache]) == 3
    m = json.loads((tmp_path / "ba" / "result.json").read_text())
    assert "linkwatch.operstate.virtio_bounce.gap_0_1s" in m["verdict"]["improvements"]
    assert m["verdict"]["status"] == "undecided" and m["verdict"]["undecided"]
    c = stored(tmp_path, "c", {**fx, "run_id": "20260101-000000-3-cccc"})
    # the same boots on both sides: nothing moved, but 2 boots a side cannot rule out a 5 ms harm on the
    # noisiest metric either, so the honest answer is undecided, not green
    assert cli.main(["compare", str(a), str(c), "--side", "base", "--out", str(tmp_path / "ac"), *cache]) == 3
    m = json.loads((tmp_path / "ac" / "result.json").read_text())
    assert m["verdict"]["status"] == "undecided" and not m["verdict"]["improvements"]
    assert not m["verdict"]["regressions"]


def test_compare_refuses_runs_without_evidence(tmp_path, capsys):
    fx = json.loads(FIXTURE.read_text())
    a = stored(tmp_path, "a", fx)
    none = stored(tmp_path, "none", {**fx, "run_id": "20260101-000000-4-dddd", "boots": []})
    cache = ["--cache", str(tmp_path / "cache")]
    assert cli.main(["compare", str(a), str(none), *cache]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "[nothing-to-compare]" in err[0] and "run B" in err[0], err
    assert cli.main(["compare", str(a), "no-such-run", *cache]) == 2
    assert "[run-not-found]" in capsys.readouterr().err


def test_compare_is_judged_with_the_history_of_bs_base_kernel(tmp_path):
    """As a run of B's tree is: the noise its base kernel's earlier runs measured on this machine, and
    that kernel's failure rates only when A's compared side is that kernel (the base sides), never for
    a patched kernel the history never booted as a base."""
    from ktest.base.cache import Cache
    from ktest.base.result import Result
    from ktest.report.history import History

    fx = json.loads(FIXTURE.read_text())
    cache = Cache(tmp_path / "cache")
    hist = History.open(cache.history_db)
    for k in range(4):      # earlier runs of the same base kernel: A/A data
        r = {**fx, "run_id": f"20251201-000000-{k}-hhhh"}
        hist.record(Result.from_json(r), tmp_path / f"h{k}.json")
    a = stored(tmp_path, "a", fx)
    c = stored(tmp_path, "c", {**fx, "run_id": "20260101-000000-3-cccc"})
    args = ["--cache", str(tmp_path / "cache")]
    for side in ("base", "patched"):
        cli.main(["compare", str(a), str(c), "--side", side, "--out", str(tmp_path / side), *args])
        jw = json.loads((tmp_path / side / "result.json").read_text())["judged_with"]
        assert jw["noise"] and all("history" in v["source"] for v in jw["noise"].values()), jw["noise"]
        assert bool(jw["fail_history"]) == (side == "base"), (side, jw["fail_history"])
