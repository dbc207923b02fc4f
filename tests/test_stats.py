import pytest

from ktest.stats import MIN_SAMPLES, compare, mann_whitney_p, percentile


def test_clear_improvement_separated_ranges():
    c = compare("up_to_running", "ms", [905, 898, 910, 902, 899], [3.1, 2.9, 4.0, 3.3, 3.0])
    assert c.verdict == "improved" and c.separated and c.delta < 0
    assert c.base_median == 902 and c.patched_median == 3.1


def test_regression_on_lower_is_better():
    c = compare("m", "ms", [10, 11, 12, 10, 11], [50, 52, 49, 51, 55])
    assert c.verdict == "regressed"


def test_higher_is_better_flips():
    c = compare("throughput", "count", [10, 11, 12, 10, 11], [50, 52, 49, 51, 55], lower_is_better=False)
    assert c.verdict == "improved"


def test_same_distribution_is_unchanged():
    c = compare("m", "ms", [100, 120, 90, 110, 105], [95, 115, 108, 101, 118])
    assert c.verdict == "unchanged" and not c.separated


def test_tiny_but_separated_change_is_within_noise_floor():
    c = compare("m", "ms", [100.0, 100.1, 100.2], [101.0, 101.1, 101.2])
    assert c.separated and c.verdict == "unchanged" and "noise floor" in c.reason


def test_too_few_samples_is_inconclusive():
    c = compare("m", "ms", [1, 2], [100, 200, 300])
    assert c.verdict == "inconclusive" and str(MIN_SAMPLES) in c.reason


def test_mann_whitney_extremes():
    assert mann_whitney_p([1, 2, 3, 4, 5, 6], [11, 12, 13, 14, 15, 16]) < 0.01
    assert mann_whitney_p([1, 2, 3], [1, 2, 3]) == pytest.approx(1.0)


def test_percentile():
    assert percentile([1, 2, 3, 4, 5], 0.5) == 3
    assert percentile([1, 2, 3, 4, 5], 0.9) == pytest.approx(4.6)
    assert percentile([], 0.5) is None


def test_spread_out_metric_needs_a_shift_beyond_its_iqr():
    # failover latency with miimon 100: uniform over the tick; a 14 ms median shift is noise
    base = [12.0, 38.6, 61.0, 85.0, 30.0]
    patched = [52.9, 40.0, 70.0, 95.0, 48.0]
    c = compare("failover_latency", "ms", base, patched)
    assert c.verdict == "unchanged" and c.noise_floor >= 30


def test_a_count_that_moves_by_one_event_every_time_is_a_change():
    """Found on 6.1: 2 -> 3 gratuitous ARPs in all 6+6 samples was called 'within noise floor 1.0 count'."""
    c = compare("grat_arp_seen", "count", [2] * 6, [3] * 6, lower_is_better=False)
    assert c.verdict == "improved" and c.separated
    c = compare("lost_packets", "count", [2, 2, 1, 3, 2, 2], [1, 2, 2, 1, 2, 1])
    assert c.verdict == "unchanged"
