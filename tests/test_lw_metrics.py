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


def test_a_cut_that_lands_in_another_phases_window_is_that_phases_sample():
    """Seen in calibration boots: a cut aimed at 0-0.2 of the interval landed at 299, 376 and 1138 ms, and
    the check was a setup error.  Now a landing is classified where it fell: the middle's sample is kept
    for armed_mid, which takes it before aiming, and only a landing in no window is a miss."""
    from lwbench import Landings, MissedAim

    lw = Landings({"armed": (0.0, 0.2), "armed_mid": (0.35, 0.65), "armed_late": (0.72, 0.95)})
    assert lw.land("armed", 150.0, 1000.0, "a1") == "a1"
    with pytest.raises(MissedAim, match="kept for armed_mid"):
        lw.land("armed", 376.0, 1000.0, "m1")
    with pytest.raises(MissedAim) as miss:
        lw.land("armed", 1138.0, 1000.0, "x")
    assert "kept" not in str(miss.value)
    with pytest.raises(MissedAim, match="kept for armed_late"):
        lw.land("armed_mid", 800.0, 1000.0, "l1")
    assert lw.take("armed_mid", 5) == ["m1"] and lw.take("armed_mid", 5) == []
    assert lw.take("armed_late", 0) == [] and lw.take("armed_late", 1) == ["l1"]
    # a check that is not aimed (the expired phase, window None) takes nothing
    with pytest.raises(MissedAim):
        lw.land("armed", 500.0, 1000.0, "m2")
    assert lw.take(None, 5) == [] and lw.take("expired", 5) == [] and lw.take("armed_mid", 5) == ["m2"]


def test_the_aim_is_the_windows_middle_early_by_the_recent_round_trips():
    from lwbench import Landings

    lw = Landings({"armed_mid": (0.35, 0.65)})
    assert lw.wait_ms("armed_mid", 1000.0, 1000.0, 1100.0) == pytest.approx(400.0)
    lw.lags.extend([500.0, 30.0, 40.0, 50.0, 60.0, 70.0])     # the oldest is past the recent five
    assert lw.wait_ms("armed_mid", 1000.0, 1000.0, 1100.0) == pytest.approx(350.0)
    assert lw.wait_ms("armed_mid", 1000.0, 1000.0, 1700.0) == 0.0, "late already: ask at once"


def test_the_interval_is_the_gap_between_the_runs_that_sent_the_messages_seen():
    """Seen in a noop run: the interval measured in user space came out 1599 ms for a 1000 ms interval,
    and armed_late's window (0.72-0.95 of it) then lay past the real interval.  In the kernel's clock each
    run is the notification that sent the message seen; a dummy's first run still pending at the first
    request is not it, and the user-space delays (here up to 600 ms) do not enter."""
    from lwbench import kernel_gaps

    events = [Event(10.0, "notify", {}), Event(12.0, "notify", {}),            # the dummy's first run, then a's off
              Event(1012.0, "notify", {}), Event(1620.0, "notify", {}),       # b's off (seen at 1611), a's on
              Event(2012.1, "notify", {})]                                      # a's off again, asked at 1630
    spans = [(5.0, 40.0), (30.0, 1611.0), (1630.0, 2020.0)]
    assert kernel_gaps(events, spans) == pytest.approx([1000.0, 1000.1])
    with pytest.raises(AssertionError, match="no notification between 3000.0 and 3100.0"):
        kernel_gaps(events, spans + [(3000.0, 3100.0)])
    # with the runs' starts in the trace, from start to start: a's off notified 17 ms into its run, and
    # the notifications alone would say 984 ms
    ev = lambda t, n="notify": Event(t, n, {})     # noqa: E731
    traced = [ev(9.0, "linkwatch_run"), ev(10.0), ev(11.0, "linkwatch_run"), ev(28.0),
              ev(1011.0, "linkwatch_run"), ev(1012.0), ev(1619.0, "linkwatch_run"), ev(1620.0),
              ev(2011.0, "linkwatch_run"), ev(2012.1)]
    assert kernel_gaps(traced, spans) == pytest.approx([1000.0, 1000.0])
    assert kernel_gaps([e for e in traced if e.name == "notify"], spans) == pytest.approx([984.0, 1000.1])


class _Record:
    def __init__(self):
        self.metrics, self.notes = {}, {}

    def metric(self, name, values, unit, context=False, **kw):
        self.metrics[name] = (list(values), context)

    def note(self, key, value):
        self.notes[key] = value


class _Timers:
    def __init__(self, tracepoints, missing, events=(), jiffy=4.0):
        self.tracepoints, self.missing, self.events, self.jiffy = tracepoints, missing, list(events), jiffy

    def jiffy_ms(self):
        return self.jiffy


def test_the_time_from_the_arming_run_is_judged_without_the_wheels_rounding_where_the_trace_times_it():
    from test_host_link import _record_from_arm, _wheel_ms

    reps = [{"arm_to_down": 1028.0, "wheel": 28.0}, {"arm_to_down": 1005.0, "wheel": 4.0}]
    rec = _Record()
    _record_from_arm(rec, _Timers(["timer/timer_start"], []), reps, "arm_to_down", "arm_to_down")
    assert rec.metrics == {"arm_to_down_unrounded_kernel": ([1000.0, 1001.0], False),
                           "arm_to_down_kernel": ([1028.0, 1005.0], True),
                           "wheel_rounding_kernel": ([28.0, 4.0], True)}
    # a kernel whose trace has no timer events: the time with the rounding judges, and the note says why
    rec = _Record()
    _record_from_arm(rec, _Timers([], ["timer/timer_start: no address for delayed_work_timer_fn in this kernel"]),
                     [{"arm_to_down": 1028.0, "wheel": None}], "arm_to_down", "arm_to_down")
    assert rec.metrics == {"arm_to_down_kernel": ([1028.0], False)} and "no address" in rec.notes["timer_trace"]
    # the carrier-off's timer in the trace: its rounding in ms; none found where the trace has timers: redo
    off = Event(100.0, "carrier_off", {"dev": DEV}, cpu=0, pid=7)
    timer = Event(100.01, "timer_start", {"expires": 1250, "timeout": 150, "bucket_expiry": 1256}, cpu=0, pid=7)
    t = _Timers(["timer/timer_start"], [])
    assert _wheel_ms(t, [off, timer], off) == 24.0
    with pytest.raises(PreconditionNotMet, match="no timer started"):
        _wheel_ms(t, [off], off)
    assert _wheel_ms(_Timers([], ["..."]), [off], off) is None
    with pytest.raises(PreconditionNotMet, match="no jiffy"):
        _wheel_ms(_Timers(["timer/timer_start"], [], jiffy=None), [off, timer], off)


def test_how_late_a_repetitions_timers_ran_is_on_record():
    """timer_expire_entry's now - baseclk, in ms: 0 or 1 jiffy on a guest at its pace; 28 in a short
    flap's repetition that read 979.6 ms where the others read 1001.5 (its host had preempted the vCPU).
    Context only: as a precondition (redo a repetition whose timers ran late) it could not be established
    beside 4 other guests on this 2-core host (one check ran out of retries in one boot of two)."""
    from test_host_link import _lag_ms

    def expire(t, late):
        return Event(t, "timer_expire_entry", {"now": 5000 + late, "baseclk": 5000})

    t = _Timers(["timer/timer_start", "timer/timer_expire_entry"], [])
    assert _lag_ms(t, [expire(100.0, 0), expire(200.0, 1)], 0.0, 1000.0) == 4.0
    assert _lag_ms(t, [expire(100.0, 0), expire(500.0, 28)], 0.0, 1000.0) == 112.0
    assert _lag_ms(t, [expire(1500.0, 28)], 0.0, 1000.0) is None, "outside the window: not this repetition's"
    assert _lag_ms(_Timers(["timer/timer_start"], [], jiffy=None), [expire(100.0, 28)], 0.0, 1000.0) is None
