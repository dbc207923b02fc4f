"""The ktest.result/1 schema (ktest/schema/result-1.json): recorded results and what `ktest run` writes
today validate against it, and `ktest report`/`merge` name the first place a foreign result breaks it."""

import copy
import json
from pathlib import Path

import jsonschema
import pytest

from fakekernel import make_series
from ktest.base.errors import BadResult
from ktest.base.result import result_schema, validate as validate_result
from ktest.base.progress import Silent
from ktest.run import RunOptions, run_series
from ktest.host.tree import user_tree
from test_run_orchestration import canned

FIXTURES = sorted((Path(__file__).parent / "fixtures").glob("result-*.json"))


def test_the_schema_is_a_valid_draft_2020_12_schema():
    jsonschema.Draft202012Validator.check_schema(result_schema())


@pytest.mark.parametrize("path", FIXTURES, ids=lambda p: p.name)
def test_recorded_results_validate(path):
    assert len(FIXTURES) >= 2
    jsonschema.validate(json.loads(path.read_text()), result_schema(), cls=jsonschema.Draft202012Validator)


def test_what_a_run_writes_today_validates(tmp_path, fake_tree, cache, monkeypatch):
    """A regression and a could-not-run result, written by run_series on a fake tree."""
    t = user_tree(cache, fake_tree)
    series = make_series(fake_tree, tmp_path / "s", [("net/core/dev.c", "int d1;\n", "net: one")])
    fake, _ = canned(lambda image, label, expr: [("area.a", "FAIL" if label.startswith("patched") else "PASS",
                                                  [10.0, 11, 12])])
    runner = fake
    opts = RunOptions(rounds=2, reps=3, reports=tmp_path / "r", testcases=[Path("testcases/test_smoke.py")], vms=1)
    result, outdir = run_series(cache, t, str(series), opts, Silent(), runner=runner)
    result = result.to_json()   # the document it wrote
    assert result["verdict"]["status"] == "regression"
    on_disk = json.loads((outdir / "result.json").read_text())
    jsonschema.validate(on_disk, result_schema(), cls=jsonschema.Draft202012Validator)

    never = canned(lambda image, label, expr: [("area.a", "SKIP", [])])[0]
    result, outdir = run_series(cache, t, str(series), opts, Silent(), runner=never)
    result = result.to_json()   # the document it wrote
    assert result["verdict"]["status"] == "could not run"
    jsonschema.validate(json.loads((outdir / "result.json").read_text()), result_schema(),
                        cls=jsonschema.Draft202012Validator)


@pytest.mark.parametrize("break_it,where", [
    (lambda r: r["verdict"].update(status="probably fine"), "at verdict/status"),
    (lambda r: r["verdict"].update(exit_code=0.5), "at verdict/exit_code"),
    (lambda r: r["boots"][0].pop("side"), "at boots/0"),
    (lambda r: r["checks"][0]["metrics"][0]["base_samples"].append("fast"), "base_samples/"),
    (lambda r: r.pop("verdict"), "at the top level"),
    # what the report computes with: a number where it multiplies or takes a median
    (lambda r: r.update(resolution=[{"area": "linkwatch", "control": "a/b", "base": ["0.4"], "patched": []}]),
     "at resolution/0/base/0"),
    (lambda r: r.update(calibration={"rates": {"x": "5 %"}}), "at calibration/rates/x"),
    (lambda r: r.update(calibration={"rates": {}, "intervals": {"x": {"low": "0", "high": 1}}}),
     "at calibration/intervals/x/low"),
])
def test_a_broken_result_is_refused_naming_the_place(tmp_path, break_it, where):
    r = json.loads(FIXTURES[0].read_text())
    assert any(c["metrics"] for c in r["checks"])
    r["checks"].sort(key=lambda c: not c["metrics"])   # the first check has metrics
    bad = copy.deepcopy(r)
    break_it(bad)
    validate_result(r, tmp_path / "result.json")
    with pytest.raises(BadResult) as e:
        validate_result(bad, tmp_path / "result.json")
    assert where in e.value.render(), e.value.render()
