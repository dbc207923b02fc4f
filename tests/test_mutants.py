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
    names = sorted(p.name for p in MUTANTS.iterdir() if p.is_dir())
    assert len(names) >= 10
    areas = set()
    for n in names:
        spec = json.loads((MUTANTS / n / "mutant.json").read_text())
        assert spec["expect"] == "regression" and spec["catch"] and spec["expr"], n
        assert len(list((MUTANTS / n).glob("*.patch"))) == 1, n
        areas.add(spec["area"])
    assert areas == {"linkwatch", "bonding"}


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
