"""ktest calibrate's arithmetic on recorded-shape runs (no VM)."""

import numpy as np
import pytest

from ktest.judge import calibration
from ktest.base.cache import Cache
from ktest.base.machine import env_guest_key


def guest(samples_by_path):
    return {"results": [{"path": p, "status": "PASS", "message": None, "timelines": [], "notes": {},
                         "metrics": [{"name": "lat", "unit": "ms", "samples": s, "n": len(s)}]}
                        for p, s in samples_by_path.items()], "splats": [], "env": {"kernel_release": "6.12.117+"}}


def test_every_split_of_k_boots_into_two_groups_once():
    assert len(list(calibration.splits(8, 2))) == 210
    assert len(list(calibration.splits(4, 2))) == 3
    assert all(not set(a) & set(b) for a, b in calibration.splits(6, 3))


def test_boot_to_boot_noise_becomes_the_floor_and_rates_are_reported():
    rng = np.random.default_rng(7)
    # each boot of one kernel has its own offset (0-30 ms): the shift between groups of boots is noise
    runs = [guest({"lw.x": list(100 + off + rng.random(5)), "lw.y": list(5 + rng.random(5))})
            for off in rng.uniform(0, 30, 6)]
    cal = calibration.calibrate(runs, 2)
    assert cal["splits"] == 45
    x = cal["metrics"]["lw.x/lat"]
    assert 10 < x["centre"] < 35 and len(x["boot_medians"]) == 6
    assert x["false_change_v2_calibrated"] == 0.0, "a shift no larger than the noise is never called"
    rates = cal["rates"]
    assert set(rates) >= {"old rule (ktest-rule/1)", "ktest-rule/3, estimated floors"}
    assert rates["old rule (ktest-rule/1)"] >= rates["ktest-rule/3, estimated floors"]


def test_stored_calibration_is_found_for_a_run(tmp_path):
    cache = Cache.open(tmp_path / "c")

    class Tree:
        base, name = "ab" * 20, "fake"
    rng = np.random.default_rng(1)
    runs = [guest({"lw.x": list(100 + rng.random(5))}) for _ in range(4)]
    for r in runs:
        r["env"].update(accel="tcg", cpus=1)
    data = calibration.record(cache, Tree, "linkwatch", "tcg", runs, 2, 5)
    assert data["guest"] == "tcg-1cpu"
    got = calibration.for_run(cache, Tree, ["linkwatch", "bonding"], guest="tcg-1cpu")
    assert got.floors == data["floors"] and "lw.x/lat" in got.floors
    assert got.summary()["boots"] == 4 and got.summary()["rule"] == "ktest-rule/3"
    assert calibration.for_run(cache, Tree, ["linkwatch"], guest="kvm-1cpu") is None
    # guests of another shape are another machine's noise: 2-vCPU guests' floors do not judge 1-vCPU guests
    for r in runs:
        r["env"]["cpus"] = 2
    assert calibration.record(cache, Tree, "bonding", "tcg", runs, 2, 5)["guest"] == "tcg-2cpu"
    assert calibration.for_run(cache, Tree, ["bonding"], guest="tcg-1cpu") is None
    assert calibration.for_run(cache, Tree, ["bonding"], guest="tcg-2cpu") is not None


def test_held_out_floors_come_only_from_boots_the_split_does_not_use():
    # boots 0 and 1 are slow (a noisy neighbour): a floor from the other boots has not seen that
    meds = [300, 300, 100, 100, 100, 100, 100, 100]
    runs = [guest({"lw.x": [m + d for d in (0.0, 0.5, 1.0, 1.5, 2.0)]}) for m in meds]
    raw = calibration.judge_splits(runs, 2)
    floors_for = calibration.held_out_floors(raw["shifts"], 8)
    assert floors_for((0, 2), (1, 3))["lw.x/lat"]["centre"] < 5, "the slow boots are in the split, not held out"
    assert floors_for((2, 3), (4, 5))["lw.x/lat"]["centre"] >= 199, "held out: the slow boots set the floor"
    cal = calibration.calibrate(runs, 2)
    held = cal["rates"]["ktest-rule/3, calibrated floors (held-out boots)"]
    insample = cal["rates"]["ktest-rule/3, calibrated floors (in-sample)"]
    assert insample == 0.0 and held > insample, "out of sample the two slow boots together cry wolf"
    assert cal["metrics"]["lw.x/lat"]["false_change_v2_held_out"] == held


def test_held_out_rate_needs_two_spare_groups():
    runs = [guest({"lw.x": [100.0, 101.0, 102.0]}) for _ in range(6)]
    assert calibration.calibrate(runs, 2)["rates"]["ktest-rule/3, calibrated floors (held-out boots)"] is None


def test_calibration_boots_are_a_noise_model_and_pool_with_the_history():
    import math

    runs = [guest({"lw.x": [m - 1, m, m + 1]}) for m in (100.0, 110.0, 90.0, 105.0)]
    model = calibration.noise_model(runs, "calibration (4 boots)")
    logs = [math.log(m + 5) for m in (100.0, 110.0, 90.0, 105.0)]
    mean = sum(logs) / 4
    c = model["lw.x/lat"]["centre"]
    assert c["df"] == 3 and math.isclose(c["var"], sum((x - mean) ** 2 for x in logs) / 3)
    hist = {"lw.x/lat": {"centre": {"var": 0.01, "df": 6}, "source": "history (3 earlier runs)"}}
    pooled = calibration.pool_noise(model, hist)["lw.x/lat"]
    assert pooled["centre"]["df"] == 9 and pooled["source"] == "calibration (4 boots) + history (3 earlier runs)"
    v = model["lw.x/lat"]["centre"]["var"]
    assert math.isclose(pooled["centre"]["var"], (3 * v + 6 * 0.01) / 9)


def test_ktest_calibrate_builds_boots_and_stores_a_calibration(tmp_path, fake_tree, monkeypatch):
    """The command end to end on the fake tree: its base is built by the fake make, the boots are the
    recorded run's base boots (a stand-in runner, as for `ktest run`), and the calibration is stored
    where a later run of the same base finds it."""
    import json
    from pathlib import Path

    from replay import _costs, _guest_run

    from ktest import cli

    recorded = json.loads((Path(__file__).parent / "fixtures" / "result-linkwatch.json").read_text())
    base = [b for b in recorded["boots"] if b["side"] == "base"]
    costs = _costs(base[0]["results"])
    labels = []

    def runner(cache, bzimage, outdir, *, label="kernel", shard=None, **kw):
        labels.append(label)
        run = _guest_run(outdir, label, base[len(labels) % len(base)]["results"], costs, shard)
        run.started = {"uptime_at_harness_s": 5.0}       # the harness started: the boot counts
        return run

    monkeypatch.setenv("KTEST_CACHE", str(tmp_path / "c"))
    out = tmp_path / "cal"
    rc = cli.main(["calibrate", "--tree", str(fake_tree), "--area", "linkwatch", "--boots", "4", "--rounds", "2",
                   "--accel", "tcg", "--vms", "2", "--out", str(out)], runner=runner)
    assert rc == 0
    assert sorted(labels) == [f"calibrate-{i}" for i in range(1, 5)]
    data = json.loads((out / "calibration.json").read_text())
    assert data["boots"] == 4 and data["area"] == "linkwatch" and data["accel"] == "tcg" and data["splits"] == 3
    assert len(json.loads((out / "runs.json").read_text())) == 4
    stored = calibration.load(Cache(tmp_path / "c"), data["key"])
    assert stored is not None and stored["floors"] == data["floors"]


def test_a_rate_over_splits_that_share_boots_carries_an_interval_over_boots():
    splits = list(calibration.splits(8, 2))
    # nothing fired: the 8 boots are two independent runs' worth, and two quiet runs bound little
    quiet = calibration.rate_interval({s: False for s in splits}, 8, 2)
    assert quiet["low"] == 0.0 and abs(quiet["high"] - (1 - 0.05 ** 0.5)) < 1e-9
    # every false alarm rests on one boot (boot 0 in the first group): leaving it out takes them all away
    fired = {s: 0 in s[0] for s in splits}
    rate = sum(fired.values()) / len(fired)
    iv = calibration.rate_interval(fired, 8, 2)
    assert iv["method"] == "jackknife over 8 boots"
    assert 0.0 <= iv["low"] < rate < iv["high"] <= 1.0
    # as many false alarms spread evenly over the boots: leaving one out changes the rate less
    even = {s: i % round(1 / rate) == 0 for i, s in enumerate(splits)}
    assert abs(sum(even.values()) - sum(fired.values())) <= 3
    wide = iv["high"] - iv["low"]
    assert calibration.rate_interval(even, 8, 2)["high"] - calibration.rate_interval(even, 8, 2)["low"] < wide


def test_the_smallest_detectable_change_shrinks_with_boots_and_never_goes_under_the_floor():
    rng = np.random.default_rng(3)
    runs = [guest({"lw.x": list(100 + off + rng.random(5))}) for off in rng.uniform(0, 30, 6)]
    for r in runs:          # a count that never moves: only a whole event can count as a change
        r["results"].append({"path": "lw.c", "status": "PASS", "message": None, "timelines": [], "notes": {},
                             "metrics": [{"name": "n", "unit": "count", "samples": [2, 2, 2], "n": 3}]})
    cal = calibration.calibrate(runs, 2)
    x = cal["detectable"]["lw.x/lat"]
    by_n = [x["by_boots_a_side"][str(n)] for n in range(2, calibration.DETECT_UP_TO + 1)]
    assert by_n == sorted(by_n, reverse=True) and by_n[0] > by_n[-1]
    assert min(by_n) >= x["floor"] == pytest.approx(cal["floors"]["lw.x/lat"]["centre"], abs=1e-3)
    assert set(cal["detectable"]["lw.c/n"]["by_boots_a_side"].values()) == {0.5}
    assert set(cal["intervals"]) == {k for k, v in cal["rates"].items() if "floors" in k and v is not None}


def test_recorded_boots_of_one_kernel_at_two_boots_a_side_never_make_a_regression(monkeypatch):
    """Recorded null data, not simulated: the 8 boots that the linkwatch calibration of 2026-12-05 kept
    (docs/evidence/, one 6.12 kernel under TCG, four guests on two cores, today's checks), split into 2 + 2
    as a run of 2 rounds would see them and judged with estimated floors, as a machine with no
    calibration judges.  The first 30 of its 210 splits, to keep this test short (the committed
    rejudged.json has all 210: none fired).  None may be a regression; in doubt is allowed (more rounds)."""
    import gzip
    import json
    from pathlib import Path

    f = Path(__file__).parent.parent / "docs/evidence/2026-12-05-calibrate-linkwatch-c-6.12-tcg/runs.json.gz"
    runs = json.loads(gzip.decompress(f.read_bytes()))
    assert len(runs) == 8 and all(r["results"] for r in runs)
    monkeypatch.setattr(calibration, "MAX_SPLITS", 30)
    got = calibration.judge_splits(runs, 2)
    assert got["splits"] == 30
    assert got["run_false_regression_v2"] == 0.0 and got["run_false_change_v2"] == 0.0
    assert sum(m["v2_changed"] for m in got["metrics"].values()) == 0
    assert len(got["metrics"]) >= 15, "the timing metrics of the area were compared"


def test_floors_grow_from_the_history_once_it_knows_a_metric_better_than_the_calibration():
    """The history's floor is the 99 % quantile of the A/A shift between the run's two sides (two-sided t
    on the history's degrees of freedom), on the compared scale, placed upwards from the run's base: the
    test's upward floor is exactly that shift, and it shrinks as the run boots more."""
    import math

    from scipy.stats import t as t_dist

    from ktest.judge import stats

    hist = {"lw.x/lat": {"centre": {"var": 0.02, "df": 10}, "tail": {"var": 0.05, "df": 10},
                         "source": "history (5 earlier runs)"},
            "lw.y/lat": {"centre": {"var": 0.02, "df": 6}, "source": "history (3 earlier runs)"}}
    got = calibration.history_floors(hist)
    assert set(got) == {"lw.x/lat"}, "6 degrees of freedom are too few to set a floor"
    f = got["lw.x/lat"]
    assert f["df"] == 10 and f["source"] == "history (5 earlier runs)" and f["history"]["tail"]["var"] == 0.05
    # a calibration that knows the metric at least as well keeps its own floor
    assert calibration.history_floors(hist, {"lw.x/lat": {"centre": {"var": 0.03, "df": 10}}}) == {}
    assert set(calibration.history_floors(hist, {"lw.x/lat": {"centre": {"var": 0.03, "df": 7}}})) == {"lw.x/lat"}

    q = float(t_dist.ppf(0.995, 10))
    base = [40.0, 50.0, 60.0]
    fwd, _ = stats.to_scale("ms")
    centre, tail, src = stats.floors("ms", base, None, f, boots=(2, 2))
    assert src == "history" and math.isclose(fwd(50.0 + centre) - fwd(50.0), q * math.sqrt(0.02))
    assert math.isclose(fwd(stats.p90(base) + tail) - fwd(stats.p90(base)), q * math.sqrt(0.05))
    at6 = stats.floors("ms", base, None, f, boots=(6, 6))[0]
    assert math.isclose(fwd(50.0 + at6) - fwd(50.0), q * math.sqrt(0.02 / 3)), "a mean of more boots is steadier"
    # never under the declared smallest change that matters
    assert stats.floors("ms", base, 500.0, f)[::2] == (500.0, "declared")


@pytest.mark.parametrize("env, key", [
    ({"accel": "tcg", "cpus": 1}, "tcg-1cpu"),
    ({"accel": "kvm", "cpus": 4}, "kvm-4cpu"),
    ({"accel": "tcg"}, "tcg-2cpu"),                       # recorded before guests had one vCPU
    ({"accel": "../../etc/x", "cpus": 1}, None),          # the key names a file under cache/calibration
    ({"accel": "tcg", "cpus": "1"}, None),
    ({"accel": "tcg", "cpus": True}, None),
    ({"accel": "tcg", "cpus": 0}, None),
    ({}, None),
    (None, None),
])
def test_a_results_guest_shape_is_taken_only_from_sane_values(env, key):
    assert env_guest_key(env) == key
