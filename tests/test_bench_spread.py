"""ci/bench_spread.py on a recorded run: the spread of each timing metric's base samples."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent


def test_spread_of_a_recorded_run():
    fx = ROOT / "tests" / "fixtures" / "result-linkwatch.json"
    p = subprocess.run([sys.executable, "ci/bench_spread.py", f"lw={fx}"], cwd=ROOT, capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    got = json.loads(p.stdout)["lw"]
    r = json.loads(fx.read_text())
    (c,) = [c for c in r["checks"] if c["path"] == "linkwatch.operstate.veth_control"]
    (m,) = [m for m in c["metrics"] if m["metric"] == "up_to_running"]
    s = got["metrics"]["linkwatch.operstate.veth_control/up_to_running"]
    q1, q3 = np.percentile(m["base_samples"], [25, 75])
    assert s["iqr"] == round(float(q3 - q1), 2) and s["n_base"] == len(m["base_samples"])
    assert got["exit_code"] == r["verdict"]["exit_code"] and all(k.count("/") == 1 for k in got["metrics"])
