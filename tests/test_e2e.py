"""End to end, for real: `ktest run patches/linkwatch` builds, boots base and patched kernels, and the
series' declared expected effect holds."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.kernel
ROOT = Path(__file__).resolve().parent.parent


def test_run_linkwatch_series_expected_effect_holds(tmp_path):
    reports = tmp_path / "reports"
    p = subprocess.run([sys.executable, "-m", "ktest", "run", "patches/linkwatch", "--reports", str(reports)],
                       cwd=ROOT, capture_output=True, text=True, timeout=3600, env=dict(os.environ))
    assert p.returncode in (0, 1), p.stderr[-3000:]
    result = json.loads((reports / "latest" / "result.json").read_text())
    assert result["checkout"]["valid"] is True
    assert result["settings"]["check_areas"] == ["linkwatch"]
    held = {(e["check"], e["metric"]): e["held"] for e in result["expected"]}
    assert held and all(v is True for v in held.values()), json.dumps(result["expected"], indent=1)
    assert p.returncode == result["verdict"]["exit_code"] == 0, result["verdict"]
    for f in ("index.html", "junit.xml", "kcidb.json", "summary.md"):
        assert (reports / "latest" / f).exists()
