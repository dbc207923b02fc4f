"""A check whose precondition cannot be established in a boot is a setup ERROR, not the kernel's FAIL:
the guest plugin (ktest.guest.plugin, run here in a real pytest session on the host) marks it infra,
and an assertion about the kernel stays a FAIL."""

import json
import subprocess
import sys
from pathlib import Path

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


def test_a_missed_aim_has_a_budget_of_its_own():
    """A cut aimed at a phase that lands outside every window is a miss of the aim, not a failed setup:
    four misses in a row set the check up when the fifth lands, and only AIM_MISSES per repetition wanted
    end it.  A precondition that fails between misses still counts in a row."""
    from ktest.guest.lib import AIM_MISSES, MissedAim, PreconditionNotMet, SetupNotEstablished, repeat
    import pytest

    script = iter(["miss"] * 4 + ["ok"] + ["miss", "not", "miss", "ok"])

    def aimed():
        what = next(script)
        if what == "miss":
            raise MissedAim("the cut landed at 1.14 of the interval")
        if what == "not":
            raise PreconditionNotMet("the limit had not expired")
        return 1.0

    assert repeat(2, aimed) == ([1.0, 1.0], 7)

    tries = []

    def always_off():
        tries.append(1)
        raise MissedAim("the cut landed at 1.14 of the interval")

    with pytest.raises(SetupNotEstablished, match=f"the aim missed {AIM_MISSES * 2 + 1} times for 2 repetitions"):
        repeat(2, always_off)
    assert len(tries) == AIM_MISSES * 2 + 1
    assert repeat(0, always_off) == ([], 0) and len(tries) == AIM_MISSES * 2 + 1, "nothing left to aim"


def test_a_repetition_the_host_starved_is_redone_on_a_budget_of_its_own():
    """HostStarved is not counted in a row (a busy host starves a guest now and then, not for good), and
    a boot that spends its budget is a setup error that says so, never a sample."""
    import pytest

    from ktest.guest.lib import STARVED, HostStarved, PreconditionNotMet, SetupNotEstablished, repeat

    script = iter(["starved"] * 3 + ["ok", "not", "starved", "ok"])     # 4 starved: 2 repetitions' budget

    def timed():
        what = next(script)
        if what == "starved":
            raise HostStarved("the MII monitor's tick ran 5 jiffies late")
        if what == "not":
            raise PreconditionNotMet("the bond was already on s2")
        return 1.0

    why: list[str] = []
    assert STARVED == 2
    assert repeat(2, timed, why) == ([1.0, 1.0], 5)
    assert sum("jiffies late" in w for w in why) == 4

    def always():
        raise HostStarved("the MII monitor's tick ran 9 jiffies late")

    with pytest.raises(SetupNotEstablished, match=f"the host starved the guest {STARVED * 3 + 1} times for 3"):
        repeat(3, always)
