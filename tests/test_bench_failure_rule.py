"""ci/bench_failure_rule.py: the failure-count rule's outcomes over the retries, computed exactly."""

import pytest

from ci.bench_failure_rule import CASES, outcomes


@pytest.mark.parametrize("name, rb, ra", CASES)
def test_every_run_ends_one_way_or_another(name, rb, ra):
    got = outcomes(rb, ra)
    assert got["DIFFERENT"] + got["SAME"] + got["UNKNOWN"] == pytest.approx(1.0, abs=1e-3), name
    assert 0.0 <= got["unseen"] <= got["SAME"] + 1e-9
    assert 2.0 <= got["mean_boots"] <= 8.0


def test_the_certain_cases():
    """A check that never fails is never judged; one that fails every patched boot and no base boot is a
    regression once 4 boots a side give p = 1/70 (2 of 2 against 0 of 2 is p = 1/6: undecided)."""
    assert outcomes(0.0, 0.0) == {"DIFFERENT": 0.0, "SAME": 1.0, "UNKNOWN": 0.0, "unseen": 1.0, "mean_boots": 2.0}
    assert outcomes(0.0, 1.0) == {"DIFFERENT": 1.0, "SAME": 0.0, "UNKNOWN": 0.0, "unseen": 0.0, "mean_boots": 4.0}


def test_a_failure_in_half_the_patched_boots_is_seen_by_the_first_two_in_three_runs_of_four():
    assert outcomes(0.0, 0.5)["unseen"] == pytest.approx(0.25)
