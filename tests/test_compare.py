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
