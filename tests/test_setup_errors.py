"""A check whose precondition cannot be established in a boot is a setup ERROR, not the kernel's FAIL:
the guest plugin (ktest.guest.plugin, run here in a real pytest session on the host) marks it infra,
and an assertion about the kernel stays a FAIL."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

PROJECT = Path(__file__).resolve().parent.parent

CHECKS = '''\
from ktest.guest.lib import PreconditionNotMet, repeat

def test_never_set_up():
    def one():
        raise PreconditionNotMet("the arming event waited 900 ms: the limit had not expired")
    repeat(3, one)

def test_set_up_on_the_second_try():
    tries = []
    def one():
        tries.append(1)
        if len(tries) == 1:
            raise PreconditionNotMet("not yet")
        return 1.0
    out, redone = repeat(2, one)
    assert out == [1.0, 1.0] and redone == 1

def test_kernel_wrong():
    assert 1 == 2, "operstate never reached UP"

def wait_until(pred, exc=AssertionError):
    """Raise exc (AssertionError, the kernel's FAIL; SetupNotEstablished for a check's setup)."""
    if not pred():
        raise exc("timed out waiting for active slave s1 (have s0)")

def test_kernel_wrong_in_a_helper_that_names_the_setup_error():
    wait_until(lambda: False)
'''


def test_a_precondition_never_established_is_a_setup_error_and_a_kernel_assertion_a_failure(tmp_path):
    tc = tmp_path / "tc"
    tc.mkdir()
    (tc / "test_s.py").write_text(CHECKS)
    out = tmp_path / "out"
    out.mkdir()
    p = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "ktest.guest.plugin", "-p", "no:cacheprovider",
                        f"--ktest-out={out}", "--rootdir", str(tmp_path), str(tc)], capture_output=True, text=True,
                       cwd=PROJECT, env={"PYTHONPATH": str(PROJECT), "PATH": "/usr/bin:/bin"})
    res = {json.loads(l)["id"].split("::")[-1]: json.loads(l) for l in (out / "results.jsonl").read_text().splitlines()}
    never = res["test_never_set_up"]
    assert never["status"] == "ERROR" and never.get("infra") is True, never
    assert never["message"].startswith("setup: ") and "precondition not established after 3 retries" in never["message"]
    assert res["test_set_up_on_the_second_try"]["status"] == "PASS"
    wrong = res["test_kernel_wrong"]
    assert wrong["status"] == "FAIL" and not wrong.get("infra"), wrong
    # the exception's type decides, never the traceback's text: a helper whose source (shown in the
    # traceback) names SetupNotEstablished made the kernel's FAIL of an inverted prio a setup ERROR
    helper = res["test_kernel_wrong_in_a_helper_that_names_the_setup_error"]
    assert helper["status"] == "FAIL" and not helper.get("infra"), helper
    assert not helper["message"].startswith("setup: "), helper
    assert p.returncode != 0


def test_each_repetition_has_its_own_retries_and_a_precondition_that_never_holds_ends_the_check():
    """Seen under load: armed_late's cut, aimed at 0.72-0.95 of the interval, landed outside it in about
    one repetition of five, and a budget of 3 for the whole check made 2 of 12 boots setup errors.  Four
    misses spread over five repetitions now set the check up; four in a row still end it."""
    from ktest.guest.lib import PreconditionNotMet, SetupNotEstablished, repeat
    import pytest

    script = iter([False, True, False, True, True, False, True, False, True])   # False: the cut missed

    def sometimes():
        if not next(script):
            raise PreconditionNotMet("the cut landed outside the window")
        return 1.0

    out, redone = repeat(5, sometimes)
    assert out == [1.0] * 5 and redone == 4

    tries = []

    def never():
        tries.append(1)
        raise PreconditionNotMet("the limit had not expired")

    with pytest.raises(SetupNotEstablished, match="after 3 retries: .*the limit had not expired"):
        repeat(5, never)
    assert len(tries) == 4


@pytest.mark.parametrize("kind", ["MissedAim", "HostStarved"])
def test_a_budgeted_precondition_has_a_budget_of_its_own(kind):
    """A cut aimed at a phase that lands outside every window is a miss of the aim, and a repetition the
    host starved (the MII monitor's tick ran late) timed the host: neither is a failed setup.  Each is
    redone up to its kind's `per_rep` per repetition wanted, not counted in a row (four in a row set the
    check up when the fifth succeeds); a precondition that fails between them still counts in a row, and
    a boot that spends the budget is a setup error that says which kind, never a sample."""
    from ktest.guest import lib
    from ktest.guest.lib import PreconditionNotMet, SetupNotEstablished, repeat

    exc = getattr(lib, kind)
    assert exc.per_rep >= 2, "the script below spends 4 of 2 repetitions' budget"
    script = iter(["budgeted"] * 3 + ["ok"] + ["budgeted", "not", "ok"])

    def one():
        what = next(script)
        if what == "budgeted":
            raise exc("the cut landed at 1.14 of the interval")
        if what == "not":
            raise PreconditionNotMet("the limit had not expired")
        return 1.0

    why: list[str] = []
    assert repeat(2, one, why) == ([1.0, 1.0], 5)
    assert sum("1.14" in w for w in why) == 4

    tries = []

    def always():
        tries.append(1)
        raise exc("the MII monitor's tick ran 9 jiffies late")

    with pytest.raises(SetupNotEstablished, match=f"{exc.what} {exc.per_rep * 2 + 1} times for 2 repetitions"):
        repeat(2, always)
    assert len(tries) == exc.per_rep * 2 + 1
    assert repeat(0, always) == ([], 0) and len(tries) == exc.per_rep * 2 + 1, "nothing left to do"


def test_each_budgeted_kind_spends_its_own_budget():
    """Misses of the aim do not spend the starved repetitions' budget, nor the other way round."""
    from ktest.guest.lib import AIM_MISSES, STARVED, HostStarved, MissedAim, repeat

    script = iter([MissedAim] * (AIM_MISSES * 2) + [HostStarved] * (STARVED * 2) + [None, None])

    def one():
        exc = next(script)
        if exc is not None:
            raise exc("redo")
        return 1.0

    assert repeat(2, one) == ([1.0, 1.0], (AIM_MISSES + STARVED) * 2)