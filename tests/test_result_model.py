"""The typed model of ktest.result/1 (ktest.base.result): a stored document round-trips exactly, a newer
writer's keys survive, statuses and outcomes are enums with the same JSON, and a result made here
validates against the schema."""

import json
from pathlib import Path

import jsonschema
import pytest
from results import minimal

from ktest.base.errors import BadResult
from ktest.base.result import (BuildRecord, CheckResult, Outcome, Result, Rounds, Settings, Side, Status, TreeRef,
                               Verdict, result_schema)

FIXTURES = Path(__file__).parent / "fixtures"


@pytest.mark.parametrize("fixture", ["result-linkwatch.json", "result-bonding.json"])
def test_a_stored_result_round_trips_exactly(fixture):
    doc = json.loads((FIXTURES / fixture).read_text())
    r = Result.from_json(doc)
    assert r.to_json() == doc
    assert isinstance(r.outcome.status, Outcome) and isinstance(r.checks[0].base.status, Status)
    assert all(isinstance(s, Status) for c in r.checks for s in c.patched.statuses)


def test_keys_the_model_does_not_know_are_kept_where_they_were():
    doc = minimal(future={"x": 1}, checks=[{"path": "a.b", "base": {"status": "PASS", "statuses": ["PASS"], "new": 2},
                                            "patched": {"status": "WEIRD", "statuses": []}, "verdict": "unchanged",
                                            "later": [1]}])
    doc["settings"]["newer"] = "yes"
    r = Result.from_json(doc)
    assert r.extra == {"future": {"x": 1}} and r.settings.extra == {"newer": "yes"}
    assert r.checks[0].extra == {"later": [1]} and r.checks[0].base.extra == {"new": 2}
    assert r.checks[0].patched.status == "WEIRD", "a word the enum lacks stays the string it was"
    assert r.to_json() == doc


def test_fields_set_after_reading_are_written_and_absent_ones_stay_absent():
    r = Result.from_json(minimal())
    assert "rounds" not in r.to_json() and "judged_with" not in r.to_json()
    r.rounds = Rounds(planned=2, booted=3, max=6, extra_rounds=[{"rounds": [3], "because": ["m"]}])
    out = r.to_json()
    assert out["rounds"] == {"planned": 2, "booted": 3, "max": 6, "extra": [{"rounds": [3], "because": ["m"]}]}
    assert Result.from_json(out).rounds == r.rounds, "the schema's `extra` (rounds) is not the model's extra keys"


def test_a_result_made_here_validates_and_leaves_out_what_it_has_not_got():
    r = Result(run_id="r1", created="2026-12-05T00:00:00Z", command="ktest run s",
               tree=TreeRef(name="linux", base_rev="v6.12", base="a" * 40),
               series=Result.from_json(minimal()).series, settings=Settings(rounds=2, reps=5))
    r.builds.append(BuildRecord.failed("base", "a" * 40, "make: *** Error 2"))
    r.verdict = Verdict.could_not_run("build", "the base does not build")
    doc = r.to_json()
    jsonschema.validate(doc, result_schema(), cls=jsonschema.Draft202012Validator)
    assert doc["verdict"] == {"status": "could not run", "exit_code": 2, "regressions": [], "improvements": [],
                              "flaky": [], "inconclusive": [], "undecided": [], "not_run": [], "not_compared": [],
                              "crash": None, "stage": "build", "error": "the base does not build"}
    assert "history" not in doc and "rounds" not in doc and doc["builds"][0]["status"] == "FAIL"
    assert json.loads(json.dumps(doc)) == doc, "enums are written as their strings"


def test_outcomes_carry_their_exit_codes_and_a_missing_verdict_reads_as_unknown():
    assert [o.exit_code for o in (Outcome.NO_REGRESSION, Outcome.REGRESSION, Outcome.COULD_NOT_RUN,
                                  Outcome.UNDECIDED)] == [0, 1, 2, 3]
    assert Result.from_json(minimal()).outcome.status == Outcome.UNKNOWN
    assert Result.from_json(minimal()).outcome.exit_code == 2


def test_a_check_gives_each_side_and_the_side_enum_is_its_json_word():
    c = CheckResult.from_json({"path": "p", "base": {"status": "PASS"}, "patched": {"status": "FAIL"},
                               "verdict": "regression"})
    assert c.side(Side.BASE).status == Status.PASS and c.side("patched").status == "FAIL"
    assert [s.value for s in Side] == ["base", "patched"]


def test_read_is_the_edge_it_refuses_what_the_schema_refuses(tmp_path):
    p = tmp_path / "result.json"
    p.write_text(json.dumps({**minimal(), "verdict": {"status": "fine", "exit_code": 0, "regressions": [],
                                                      "improvements": [], "flaky": []}}))
    with pytest.raises(BadResult, match="verdict"):
        Result.read(p)
    p.write_text(json.dumps(minimal()))
    assert Result.read(p).run_id == "test-run"


def test_a_run_stopped_before_its_verdict_counts_only_the_boots_that_are_evidence():
    from ktest.report.outputs import render_summary

    boots = [{"side": "base", "purpose": "round"}, {"side": "patched", "purpose": "round"},
             {"side": "patched", "purpose": "retry"}, {"side": "patched", "purpose": "culprit"}]
    r = Result.from_json(minimal(boots=boots))
    assert r.boots_told() == "1 base and 2 patched boot(s)", "a culprit-search boot ran another kernel"
    assert "after 1 base and 2 patched boot(s); nothing was judged." in render_summary(r)


def test_a_result_names_the_ktest_commit_that_judged_it():
    """From a git checkout, ktest_version carries the checkout's commit (and whether tracked files differ),
    so that a rate quoted from a stored result can be reproduced at that commit."""
    import subprocess
    from pathlib import Path

    from ktest import __version__
    from ktest.host.gitutil import ktest_version

    root = Path(__file__).resolve().parent.parent
    v = ktest_version(__version__)
    if not (root / ".git").exists():
        assert v == __version__
        return
    head = subprocess.run(["git", "-C", str(root), "rev-parse", "--short=12", "HEAD"], capture_output=True,
                          text=True, check=True).stdout.strip()
    assert v.startswith(f"{__version__}+g{head}") and v.removeprefix(f"{__version__}+g{head}") in ("", ".dirty")
