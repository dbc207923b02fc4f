"""The A/B rule (ktest-rule/2) on recorded and constructed samples.  Each side is a list of boots."""

import numpy as np
import pytest
from scipy import stats as sps

from ktest.stats import MIN_SAMPLES, centre_p, compare, compare_v1, judge, percentile, tail_p


def one(metric, unit, base, patched, **kw):
    c = compare(metric, unit, base, patched, **kw)
    judge([c])
    return c


def test_clear_improvement():
    c = one("up_to_running", "ms", [[905, 898, 910, 902, 899], [903, 907, 900, 901, 904]],
            [[3.1, 2.9, 4.0, 3.3, 3.0], [3.2, 2.8, 3.9, 3.4, 3.1]])
    assert c.verdict == "improved" and c.separated and c.delta < 0 and c.aspect == "centre"
    assert c.boots_base == c.boots_patched == 2 and c.replicated == {"centre": True, "tail": True}


def test_regression_on_lower_is_better_and_higher_is_better_flips():
    base, worse = [[10, 11, 12, 10, 11], [11, 12, 10, 11, 10]], [[50, 52, 49, 51, 55], [50, 53, 52, 49, 54]]
    assert one("m", "ms", base, worse).verdict == "regressed"
    assert one("throughput", "count", base, worse, lower_is_better=False).verdict == "improved"


def test_same_distribution_is_unchanged():
    c = one("m", "ms", [[100, 120, 90, 110, 105]], [[95, 115, 108, 101, 118]])
    assert c.verdict == "unchanged" and not c.separated


def test_three_samples_a_side_can_never_be_significant_alone():
    """LKP's 'ranges separate' fires by chance in 10 % of 3-vs-3 pairs; an exact test cannot go below
    p = 0.1 there, so the rule does not call it."""
    c = one("m", "ms", [[100.0, 101, 102]], [[200.0, 201, 202]])
    assert c.separated and c.p_value == pytest.approx(0.1) and c.verdict != "regressed"


def test_too_few_samples_is_inconclusive():
    c = one("m", "ms", [[1, 2]], [[100, 200, 300]])
    assert c.verdict == "inconclusive" and str(MIN_SAMPLES) in c.reason


def test_boot_clustered_null_does_not_fire():
    """Boots differ from each other (one patched boot ran slow throughout, as 6.1's first-up-after-probe
    did in some boots and not others): pooled samples look shifted (p < 0.05), but the shift does not
    hold in every boot, so it is not called."""
    base = [[100, 101, 102, 101, 100], [101, 102, 100, 101, 103]]
    patched = [[100, 101, 102, 101, 103], [150, 151, 149, 150, 152]]
    assert compare_v1(sum(base, []), sum(patched, []), "ms") == "changed", "the old rule cried wolf here"
    c = one("m", "ms", base, patched)
    assert c.p_value < 0.05 and c.replicated["centre"] is False
    assert c.verdict == "inconclusive" and c.needs_boots


def test_bimodal_tail_shift_fires_although_the_median_holds():
    """Fast in most reps, a second in a third of them, in every boot: the median barely moves, the
    p90 does.  Three boots a side are suggestive (6 slow samples of 36 is thin evidence), so the run
    boots more; with six boots a side it is a regression, decided by the tail."""
    rng = np.random.default_rng(1)
    boot = lambda: list(10 + rng.random(6))
    bimodal = lambda: list(10 + rng.random(4)) + [990.0 + rng.random(), 1005.0 + rng.random()]
    base, patched = [boot() for _ in range(6)], [bimodal() for _ in range(6)]
    c = one("up_to_running", "ms", base[:3], patched[:3])
    assert c.verdict == "inconclusive" and c.needs_boots
    c = one("up_to_running", "ms", base, patched)
    assert abs(c.delta) < 5, "the median stays put"
    assert c.verdict == "regressed" and c.aspect == "tail" and c.delta_p90 > 900


def test_still_failing_worse_counts_are_a_regression():
    """6.12 peer notification: base already sees 2 of 3 gratuitous ARPs; a patch that sends 1 (6/6 a
    side) is significantly worse."""
    c = one("grat_arp_seen", "count", [[2, 2, 2], [2, 2, 2]], [[1, 1, 1], [1, 1, 1]], lower_is_better=False)
    assert c.verdict == "regressed" and c.p_value < 0.01


def test_few_ms_jitter_is_not_a_regression_under_the_calibrated_floor():
    """A comment-only series: virtio_first_up_after_probe 3.4 -> 9.5 ms median, n 10/10, every check
    PASS.  Under the noise calibrated on this machine (12 ms between boots of one kernel) it is no change."""
    base = [[2.9, 3.1, 3.3, 3.4, 3.4], [3.5, 3.6, 4.0, 4.4, 5.1]]
    patched = [[6.8, 8.0, 8.9, 9.2, 9.4], [9.6, 10.1, 11.0, 12.5, 15.3]]
    assert one("up_to_running", "ms", base, patched).verdict == "regressed", "uncalibrated, the 5 ms floor fires"
    c = one("up_to_running", "ms", base, patched, calibrated={"centre": 12.0, "tail": 14.0})
    assert c.verdict == "unchanged" and c.floor_source == "calibrated" and c.noise_floor == 12.0
    c = one("up_to_running", "ms", base, patched, min_effect=50.0)
    assert c.verdict == "unchanged" and c.floor_source == "declared"


def test_run_wide_correction_needs_stronger_evidence_with_more_metrics():
    base, patched = [[10.0, 11, 12, 13, 14, 15]], [[14.0, 15, 16, 17, 18, 19.5]]
    alone = one("m", "count", base, patched)
    assert alone.verdict == "regressed"
    crowd = [compare(f"m{i}", "count", [[1, 2, 3, 4, 5, 6]], [[1, 2, 3, 4, 5, 6]]) for i in range(20)]
    c = compare("m", "count", base, patched)
    judge(crowd + [c])
    assert alone.q_value == alone.p_value < c.q_value
    assert c.verdict != "regressed"


def test_spread_out_metric_needs_a_shift_beyond_its_iqr():
    base = [[12.0, 38.6, 61.0, 85.0, 30.0]]
    patched = [[52.9, 40.0, 70.0, 95.0, 48.0]]
    c = one("failover_latency", "ms", base, patched)
    assert c.verdict in ("unchanged", "inconclusive") and c.noise_floor >= 30


def test_a_count_that_moves_by_one_event_every_time_is_a_change():
    c = one("grat_arp_seen", "count", [[2, 2, 2], [2, 2, 2]], [[3, 3, 3], [3, 3, 3]], lower_is_better=False)
    assert c.verdict == "improved" and c.separated
    c = one("lost_packets", "count", [[2, 2, 1], [3, 2, 2]], [[1, 2, 2], [1, 2, 1]])
    assert c.verdict == "unchanged"


def test_tests_agree_with_scipy_references():
    a, b = [1.0, 2, 3, 4, 5, 6], [11.0, 12, 13, 14, 15, 16]
    assert centre_p(a, b) == pytest.approx(sps.mannwhitneyu(a, b, method="exact").pvalue)
    assert centre_p([1.0, 2, 3], [1.0, 2, 3]) == pytest.approx(1.0, abs=0.01)
    # exact enumeration: all 6 large values on one side of 12 happens in 2 of C(12, 6) splits
    assert tail_p(a, b) == pytest.approx(2 / 924, rel=0.05)


def test_percentile():
    assert percentile([1, 2, 3, 4, 5], 0.5) == 3
    assert percentile([1, 2, 3, 4, 5], 0.9) == pytest.approx(4.6)
    assert percentile([], 0.5) is None
