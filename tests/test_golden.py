"""Behaviour unchanged across refactors: the recorded fixtures render byte for byte the summary.md,
junit.xml, kcidb.json and index.html committed in tests/data/golden/ (the page with the run's logs
absent: it is rendered beside the fixture, whose boots' logs are not kept).  A change that means to alter an output
regenerates them (KTEST_UPDATE_GOLDEN=1) and the diff shows in review."""

import json
import os
from pathlib import Path

import pytest

from ktest.report import outputs
from ktest.base.result import Result


HERE = Path(__file__).parent
GOLDEN = HERE / "data" / "golden"
FIXTURES = ["result-linkwatch", "result-bonding"]
RENDERERS = {
    "summary.md": outputs.render_summary,
    "junit.xml": outputs.render_junit,
    "kcidb.json": lambda r: json.dumps(outputs.render_kcidb(r), indent=1, sort_keys=True) + "\n",
    "index.html": lambda r: outputs.render_html(r, HERE / "fixtures"),
}


@pytest.mark.parametrize("out", sorted(RENDERERS))
@pytest.mark.parametrize("fixture", FIXTURES)
def test_recorded_runs_render_as_committed(fixture, out):
    result = Result.read(HERE / "fixtures" / f"{fixture}.json")      # the way `ktest report` reads one
    text = RENDERERS[out](result)
    golden = GOLDEN / f"{fixture}.{out}"
    if os.environ.get("KTEST_UPDATE_GOLDEN"):
        golden.write_text(text)
    assert golden.exists(), f"no {golden.name}: run with KTEST_UPDATE_GOLDEN=1 once and commit it"
    assert text == golden.read_text(), f"{fixture}'s {out} changed; if meant, KTEST_UPDATE_GOLDEN=1"
