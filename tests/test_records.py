"""The run's typed records (ktest.base.records: BuildRecord, BootRecord, Culprit, Verdict) serialise to the
ktest.result/1 JSON that recorded runs hold and the schema describes."""

import copy
import json
from pathlib import Path

import jsonschema
import pytest

from ktest.base.result import result_schema
from ktest.base.records import Build, Warning_
from ktest.base.result import BootRecord, BuildRecord, Culprit, Verdict

FIXTURES = sorted((Path(__file__).parent / "fixtures").glob("result-*.json"))


def _validates(result: dict) -> None:
    jsonschema.validate(result, result_schema(), cls=jsonschema.Draft202012Validator)


@pytest.mark.parametrize("path", FIXTURES, ids=lambda p: p.name)
def test_a_recorded_verdict_reads_back_and_writes_the_same_fields(path):
    v = json.loads(path.read_text())["verdict"]
    again = Verdict.from_json(v).to_json()
    assert {k: again[k] for k in v} == v, "every recorded field, unchanged"
    assert set(again) - set(v) <= {"inconclusive", "not_run", "not_compared", "crash", "undecided"}, \
        "newer fields only, empty"


@pytest.mark.parametrize("path", FIXTURES, ids=lambda p: p.name)
def test_records_written_into_a_recorded_result_still_validate(path, tmp_path):
    r = json.loads(path.read_text())
    b = Build(commit="c0ffee", config_key="k", key="abc", dir=tmp_path, status="PASS", cached=True,
              duration_s=12.345, warnings=[Warning_("net/core/dev.c", 1, "unused variable")])
    built = BuildRecord.of("patch 1/1", b, [Warning_("net/core/dev.c", 1, "unused variable")]).to_json()
    assert set(built) == set(r["builds"][0]), "the fields a recorded build has"
    assert built["duration_s"] == 12.3 and built["n_warnings"] == 1 and built["new_warnings"][0]["file"] == "net/core/dev.c"
    failed = BuildRecord.failed("base", "c0ffee", "make: *** [vmlinux] Error 2").to_json()
    assert failed["status"] == "FAIL" and failed["key"] is None and failed["error"].startswith("make")

    boot = copy.deepcopy(r["boots"][0])
    run = {k: v for k, v in boot.items() if k not in ("side", "round", "purpose")}
    run["boot"]["console_log"] = str(tmp_path / "boots" / "base-1" / "console.log")
    rec = BootRecord(run, "patched", 0, "retry").to_json(tmp_path)
    assert rec["boot"]["console_log"] == "boots/base-1/console.log", "logs relative to the run dir"
    assert run["boot"]["console_log"].startswith("/"), "the guest run itself is not changed"
    assert (rec["side"], rec["round"], rec["purpose"]) == ("patched", 0, "retry")

    r["builds"] = [built, failed]
    r["boots"] = [rec]
    r["culprit"] = Culprit(1, "net: one", "does not build", "error: x").to_json()
    r["verdict"] = Verdict("regression", 1, regressions=["build of patch 1/1"], rule="r", stage="build",
                           error="error: x").to_json()
    _validates(r)
    r["verdict"] = Verdict.could_not_run("apply", "patch 1 does not apply").to_json()
    _validates(r)


def test_a_verdict_that_cannot_run_after_all_keeps_its_lists():
    v = Verdict("no regression", 0, improvements=["a.b"], rule="r")
    c = v.cannot_run("boot", "the base never booted")
    assert (c.status, c.exit_code, c.stage, c.improvements) == ("could not run", 2, "boot", ["a.b"])
    assert v.status == "no regression", "a new record; the old one is not changed"
    assert "stage" not in v.to_json() and "error" not in v.to_json(), "absent, not null, when there is none"
    assert Culprit(2, "s", "why").to_json() == {"patch": 2, "subject": "s", "why": "why"}


def test_a_result_without_a_verdict_reads_as_unknown_and_exit_2():
    """A run cut short before its verdict: outputs and the history read it as "no verdict" and exit 2, never 0."""
    v = Verdict.read(None)
    assert (v.status, v.exit_code, v.regressions, v.crash) == ("no verdict", 2, [], None)
    assert Verdict.read({"status": "regression", "exit_code": 1, "regressions": ["a"], "improvements": [],
                         "flaky": [], "some_future_field": 1}).regressions == ["a"], "unknown fields are ignored"
