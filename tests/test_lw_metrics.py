"""The linkwatch checks' pure measurement helpers, on the host (recorded kernel traces)."""

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "testcases" / "linkwatch"))

from lwbench import PreconditionNotMet  # noqa: E402
from test_operstate import _kernel_up  # noqa: E402

from ktest.guest.ktrace import Event  # noqa: E402

DEV, OTHER = 0xD0, 0xE0


class _Trace:
    def __init__(self, events):
        self.events = events

    def read(self):
        return self.events


def _req(t):
    return Event(t, "change_flags", {"dev": DEV})


def _note(t, dev=DEV):
    return Event(t, "notify", {"dev": dev})


def test_an_up_is_timed_to_linkwatchs_notification_before_the_running_message():
    timeline: list[dict] = []
    assert _kernel_up(_Trace([_req(1000.1), _note(1003.0, OTHER), _note(1005.1)]), 1000.0, 1006.6, timeline) \
        == pytest.approx(5.0)
    assert [e["event"] for e in timeline][-1] == "kernel: linkwatch notifies (netdev_state_change)"


def test_a_running_message_built_while_linkwatch_ran_is_timed_to_the_notification_just_after_it():
    """Seen on a loaded guest: the up request's own RTM_NEWLINK 0.4 ms after the request already showed
    RUNNING (the run had set the operstate on the other vCPU), the run's notification at 0.9 ms.  That is
    linkwatch's processing of the up, timed; three such repetitions in a row were once a setup error."""
    timeline: list[dict] = []
    got = _kernel_up(_Trace([_req(1000.0), _note(1000.9)]), 999.9, 1000.4, timeline)
    assert got == pytest.approx(0.9)
    assert "after the request's own RTM_NEWLINK" in timeline[-1]["event"]
    with pytest.raises(PreconditionNotMet, match="no notification of the device after its up request"):
        _kernel_up(_Trace([_note(990.0), _req(1000.0), _note(1000.9, OTHER)]), 999.9, 1000.4, [])
    with pytest.raises(PreconditionNotMet, match="no dev_change_flags"):
        _kernel_up(_Trace([_note(1000.9)]), 999.9, 1000.4, [])


def test_an_event_read_while_waiting_for_another_is_found_again_in_the_journal():
    """The veth's late-phase up: the pending dummy's run came before the veth's RUNNING message, and the
    wait for that message read it.  Waiting for it afresh found nothing for 10 s (a FAIL on the base);
    the journal has it, and the precondition then says it came before the up."""
    from collections import deque

    from lwbench import Bench, is_oper_down

    from ktest.guest.nl import LinkEvent

    def ev(t, index, oper):
        return LinkEvent(t, "NEWLINK", index, f"d{index}", 1, oper)

    b = Bench.__new__(Bench)
    b.journal = deque([ev(900.0, 7, "DOWN"), ev(1200.0, 8, "UP"), ev(1250.0, 7, "DOWN")], maxlen=8)
    waited = []
    b.wait = lambda pred, what: waited.append(what) or ev(2000.0, 7, "DOWN")
    assert b.wait_since(is_oper_down(7), 1000.0, "the pending run").t_ms == 1250.0, "not the one before t_from"
    assert not waited
    assert b.wait_since(is_oper_down(7), 1300.0, "the pending run").t_ms == 2000.0 and waited == ["the pending run"]
