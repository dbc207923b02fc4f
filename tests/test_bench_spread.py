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
    assert got["in_doubt"] == [] and got["setup_errors"] == {"base": 0, "patched": 0}


def test_the_table_puts_each_runs_spread_side_by_side(tmp_path):
    fx = ROOT / "tests" / "fixtures" / "result-linkwatch.json"
    for label in ("quiet", "loaded"):
        p = subprocess.run([sys.executable, "ci/bench_spread.py", f"{label}={fx}"], cwd=ROOT, capture_output=True,
                           text=True, check=True)
        (tmp_path / f"{label}.json").write_text(p.stdout)
    got = json.loads((tmp_path / "quiet.json").read_text())["quiet"]["metrics"]
    p = subprocess.run([sys.executable, "ci/bench_spread.py", "--table", str(tmp_path / "quiet.json"),
                        str(tmp_path / "loaded.json")], cwd=ROOT, capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    lines = p.stdout.splitlines()
    assert lines[0] == "| metric | judges | quiet | loaded |"
    s = got["linkwatch.operstate.veth_control/up_to_running"]
    row = [ln for ln in lines if ln.startswith("| `linkwatch.operstate.veth_control/up_to_running`")]
    assert row == [f"| `linkwatch.operstate.veth_control/up_to_running` | {'yes' if s['verdict_metric'] else 'context'} | {s['iqr']:.1f} / "
                   f"{s['p90_minus_median']:.1f} | {s['iqr']:.1f} / {s['p90_minus_median']:.1f} |"]
    want = {k for k, m in got.items() if m["verdict_metric"] or k.endswith("_kernel")}
    assert {ln.split("`")[1] for ln in lines[2:]} == want and len(lines) == 2 + len(want)


def test_a_runs_doubt_and_setup_errors_are_on_record(tmp_path):
    r = json.loads((ROOT / "tests" / "fixtures" / "result-linkwatch.json").read_text())
    r["verdict"].update(undecided=["b.check"], inconclusive=["a.check/m", "b.check"])
    r["checks"][0]["base"]["infra_errors"] = 1
    r["checks"][1]["patched"]["infra_errors"] = 2
    for b, share in zip(r["boots"], (0.7, 0.81, 0.65, 0.9)):
        b.setdefault("env", {})["host_wait_share"] = share
    fx = tmp_path / "result.json"
    fx.write_text(json.dumps(r))
    p = subprocess.run([sys.executable, "ci/bench_spread.py", f"doubt={fx}"], cwd=ROOT, capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    got = json.loads(p.stdout)["doubt"]
    assert got["in_doubt"] == ["a.check/m", "b.check"] and got["setup_errors"] == {"base": 1, "patched": 2}
    want: dict = {}
    for b, share in zip(r["boots"], (0.7, 0.81, 0.65, 0.9)):
        want.setdefault(b["side"], []).append(share)
    assert got["host_wait"] == want and sum(map(len, want.values())) == min(4, len(r["boots"])) > 0


def test_spread_of_a_calibrations_boots(tmp_path):
    """A calibration keeps its boots as guest runs (runs.json, gzip-compressed in docs/evidence): every
    boot's samples pooled, the spread of the boots' medians, context metrics marked as such."""
    import gzip

    def boot(samples, ctx):
        return {"results": [{"path": "linkwatch.x", "status": "PASS", "metrics": [
            {"name": "lat_kernel", "unit": "ms", "samples": samples},
            {"name": "where", "unit": "ms", "samples": ctx, "context": True},
            {"name": "count", "unit": "", "samples": [1.0]}]}]}

    boots = [boot([1.0, 2.0, 3.0], [5.0]), boot([3.0, 4.0, 5.0], [6.0])]
    f = tmp_path / "runs.json.gz"
    f.write_bytes(gzip.compress(json.dumps(boots).encode()))
    p = subprocess.run([sys.executable, "ci/bench_spread.py", f"cal={f}"], cwd=ROOT, capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    got = json.loads(p.stdout)["cal"]
    assert got["boots"] == 2 and set(got["metrics"]) == {"linkwatch.x/lat_kernel", "linkwatch.x/where"}
    m = got["metrics"]["linkwatch.x/lat_kernel"]
    q1, med, q3, p90 = np.percentile([1, 2, 3, 3, 4, 5], [25, 50, 75, 90])
    assert (m["iqr"], m["p90_minus_median"], m["n_base"]) == (round(q3 - q1, 2), round(p90 - med, 2), 6)
    assert m["boot_medians_range"] == 2.0 and m["verdict_metric"]
    assert not got["metrics"]["linkwatch.x/where"]["verdict_metric"]


def test_bad_arguments_get_one_error_line_and_exit_2(tmp_path):
    (tmp_path / "other.json").write_text('{"x": 1}')
    (tmp_path / "text.json").write_text("not json")
    cases = [([], "required"), (["no-label"], "is not LABEL=PATH"),
             ([f"a={tmp_path / 'absent.json'}"], "No such file"),
             ([f"a={tmp_path / 'other.json'}"], "neither a ktest result.json"),
             ([f"a={tmp_path / 'text.json'}"], "text.json: Expecting value"),
             (["--table", str(tmp_path / "text.json")], "text.json")]
    for argv, said in cases:
        p = subprocess.run([sys.executable, "ci/bench_spread.py", *argv], cwd=ROOT, capture_output=True, text=True)
        assert p.returncode == 2 and said in p.stderr and "Traceback" not in p.stderr, (argv, p.stderr)
        assert p.stdout == ""
    p = subprocess.run([sys.executable, "ci/bench_spread.py", "--help"], cwd=ROOT, capture_output=True, text=True)
    assert p.returncode == 0 and "LABEL=PATH" in p.stdout
