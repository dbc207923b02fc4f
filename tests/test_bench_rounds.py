"""ci/bench_rounds.py: A/A splits of one kernel's boots, judged at k boots a side (no VM)."""

import gzip
import json
import subprocess
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent


def _boot(rng, shift=0.0):
    """One boot of one kernel: a latency whose boot-to-boot spread is 10 % and rep spread 5 %."""
    level = 100.0 * np.exp(rng.normal(0, 0.10)) + shift
    samples = [float(x) for x in level * np.exp(rng.normal(0, 0.05, 5))]
    return {"started": {}, "results": [{"path": "area.check", "status": "PASS", "message": None, "timelines": [],
                                        "notes": {}, "metrics": [{"name": "lat", "unit": "ms", "samples": samples,
                                                                  "n": 5, "min_effect": 50.0}]}], "splats": []}


def test_splits_of_one_kernels_boots_at_each_size(tmp_path):
    rng = np.random.default_rng(7)
    runs = [_boot(rng) for _ in range(6)]
    f = tmp_path / "runs.json.gz"
    f.write_bytes(gzip.compress(json.dumps(runs).encode()))
    p = subprocess.run([sys.executable, "ci/bench_rounds.py", str(f), "--boots", "2", "3", "4", "--json"], cwd=ROOT,
                       capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    got = json.loads(p.stdout)
    assert got["boots_of_one_kernel"] == 6
    t = got["by_boots_a_side"]
    # 6 boots: C(6,2)*C(4,2)/2 = 45 splits of 2 v 2, C(6,3)/2 = 10 of 3 v 3; 4 v 4 needs 8 boots
    assert set(t) == {"2", "3"} and t["2"]["splits"] == 45 and t["3"]["splits"] == 10
    # one kernel against itself, with a floor (50 ms) far above its spread: never a regression
    assert t["2"]["false_regression"] == 0.0 and t["3"]["false_regression"] == 0.0
    assert all(0.0 <= v["undecided"] <= 1.0 for v in t.values())


def test_a_kept_calibration_is_judged_again_with_intervals_and_detectable_changes(tmp_path):
    rng = np.random.default_rng(11)
    f = tmp_path / "runs.json"
    f.write_text(json.dumps([_boot(rng) for _ in range(6)]))
    p = subprocess.run([sys.executable, "ci/rejudge_calibration.py", str(f), "--rounds", "2"], cwd=ROOT,
                       capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    got = json.loads(p.stdout)
    assert got["boots"] == 6 and got["splits"] == 45 and got["rule"] == "ktest-rule/3"
    est = "ktest-rule/3, estimated floors"
    iv = got["intervals"][est]
    assert iv["low"] <= got["rates"][est] <= iv["high"]
    d = got["detectable"]["area.check/lat"]
    assert d["floor"] >= 50.0 and d["by_boots_a_side"]["2"] >= d["by_boots_a_side"]["6"] >= 50.0


def _runs(rng, n, min_effect):
    runs = [_boot(rng) for _ in range(n)]
    for r in runs:
        r["results"][0]["metrics"][0]["min_effect"] = min_effect
    return runs


def test_the_model_gives_the_chance_a_harmless_run_settles_growing_with_its_boots():
    """10 % boot-to-boot noise: a 50 ms floor on 100 ms is settled by few runs of 2 boots a side with only
    their own boots (2 degrees of freedom), by most with a noise model pooled in, and by nearly all at 12
    boots; a floor under the noise (estimated: 10 % of the median) is rarely settled at 2 boots."""
    sys.path.insert(0, str(ROOT))
    from ci.bench_rounds import model_table

    wide = _runs(np.random.default_rng(3), 8, 50.0)
    ns = [2, 3, 4, 6, 12]
    alone = model_table(wide, ns, pooled=False)
    pooled = model_table(wide, ns)
    assert alone["metrics"] == pooled["metrics"] == 1
    a = [alone["by_boots_a_side"][str(n)]["run_settles"] for n in ns]
    p = [pooled["by_boots_a_side"][str(n)]["run_settles"] for n in ns]
    assert a == sorted(a) and p == sorted(p), "more boots never settle less"
    assert all(x <= y for x, y in zip(a, p)), "the noise model's degrees of freedom only help"
    assert 0.05 < a[0] < 0.5 < p[0] and a[-1] > 0.99 and p[-1] <= 1.0
    narrow = model_table(_runs(np.random.default_rng(3), 8, None), ns, pooled=False)
    assert narrow["by_boots_a_side"]["2"]["run_settles"] < 0.5 * a[0]
    (least,) = narrow["least_settled_at_most"]
    assert least["metric"] == "area.check/lat" and least["at_2"] == narrow["by_boots_a_side"]["2"]["run_settles"]
