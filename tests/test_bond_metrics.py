"""The bonding checks' pure measurement helpers, on the host."""

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "testcases" / "bonding"))

import bondlib  # noqa: E402
from bondlib import longest_gap_ms, loss_window_ms, lost_after, wait_drained  # noqa: E402
from ktest.guest.lib import SetupNotEstablished  # noqa: E402


def test_loss_window_is_measured_in_the_senders_clock():
    send_t = [i * 0.002 for i in range(10)]           # one packet every 2 ms
    assert loss_window_ms(send_t, set(range(10))) == 0.0, "nothing lost: no window"
    # 3, 4 and 5 lost: from the send of 2 (the last that arrived) to the send of 6 (the first after)
    assert abs(loss_window_ms(send_t, {0, 1, 2, 6, 7, 8, 9}) - 8.0) < 1e-9
    # the longest of two runs counts; a loss before the first arrival has no start and does not
    assert abs(loss_window_ms(send_t, {1, 2, 4, 8, 9}) - 8.0) < 1e-9



def test_traffic_after_the_switch_is_judged_apart_from_the_loss_before_it():
    """A starved guest's ARP monitor notices the cut late: most of a short stream can be lost before the
    bond switches.  Whether traffic flows again is asked of the packets sent once it had switched."""
    send_t = [i * 0.002 for i in range(100)]
    got = set(range(10)) | set(range(70, 100))          # 10..69 lost while the cut went unnoticed
    assert lost_after(send_t, got, 0.14) == (0, 30), "after the switch (t = 140 ms, seq 70) all arrived"
    assert lost_after(send_t, got, 0.10) == (20, 50), "a switch seen earlier counts the tail of the gap"
    assert lost_after(send_t, got - {90, 91}, 0.14) == (2, 30)
    assert lost_after(send_t, got, 1.0) == (0, 0), "nothing sent after t"


def test_the_senders_longest_pause_after_the_switch():
    """A guest that did not run for a while shows as a pause in the sender's 2 ms rhythm: the evidence
    given when the ARP monitor declared the new active slave down meanwhile."""
    send_t = [0.000, 0.002, 0.004, 0.240, 0.242, 0.244]
    assert round(longest_gap_ms(send_t, 0.0), 3) == 236.0
    assert round(longest_gap_ms(send_t, 0.1), 3) == 2.0, "the pause before t is not counted"
    assert longest_gap_ms(send_t, 0.244) == 0.0, "one send: no interval"


class _Clock:
    """A clock that moves only when slept on: the drain's rule, without wall-clock time."""

    def __init__(self):
        self.t = 0.0

    def __call__(self) -> float:
        return self.t

    def sleep(self, s: float) -> None:
        self.t += s


def test_a_stream_drains_until_its_last_packet_or_quiet():
    clock = _Clock()
    got = [1, 2]

    def arrived():                      # the tail arrives while the receiver waits: 5 more, 1 per 20 ms
        if len(got) < 7 and round(clock.t * 100) % 2 == 0:
            got.append(len(got) + 1)
        return len(got)

    assert wait_drained(arrived, lambda: 7 in got, clock=clock, sleep=clock.sleep), "the last packet arrived"
    assert len(got) == 7 and clock.t < 0.3, "stopped when the last arrived, not after a fixed drain"
    clock2 = _Clock()
    assert not wait_drained(lambda: 3, lambda: False, quiet_s=0.3, clock=clock2, sleep=clock2.sleep), \
        "the last packet was lost: gives up once nothing arrived for quiet_s"
    assert 0.3 < clock2.t < 0.35
    clock3 = _Clock()
    trickle = iter(range(10**6))
    assert not wait_drained(lambda: next(trickle), lambda: False, cap_s=3.0, clock=clock3, sleep=clock3.sleep), \
        "a trickle that never ends stops at the cap"
    assert 3.0 <= clock3.t < 3.05


def test_a_wait_that_times_out_raises_what_the_caller_names():
    """The stream's waits for its own setup are SetupNotEstablished (a setup ERROR), a check's other
    waits an AssertionError (the kernel's FAIL): one poll loop, the kind of failure named by the caller."""
    from bondlib import wait_until
    from ktest.guest.lib import SetupNotEstablished

    with pytest.raises(SetupNotEstablished, match="waiting for 100 packets"):
        wait_until(lambda: False, 0.0, what="100 packets", exc=SetupNotEstablished)
    with pytest.raises(AssertionError, match="waiting for the failover"):
        wait_until(lambda: False, 0.0, what="the failover")


def test_a_monitor_keeps_the_events_after_a_match_for_the_next_wait():
    """A slave's carrier-off and the bond's failover can arrive in one read: waiting for the first must
    not lose the second."""
    from ktest.guest.nl import LinkEvent, Monitor

    def ev(i, name):
        return LinkEvent(float(i), "NEWLINK", i, name, 0, "DOWN")

    m = Monitor()
    try:
        m.pending = [ev(1, "a"), ev(2, "b"), ev(3, "c")]
        sink: list = []
        got = m.wait_for(lambda e: e.name == "b", 0.0, sink)
        assert got.name == "b" and [e.name for e in sink] == ["a", "b"]
        assert m.wait_for(lambda e: e.name == "c", 0.0).name == "c", "kept, even with no time left"
        assert m.wait_for(lambda e: True, 0.0) is None
    finally:
        m.close()


def test_a_threaded_monitor_stamps_each_multicast_on_arrival():
    """Two link events some ms apart keep their gap though nobody looks until both have arrived: the
    reader thread stamps each on receipt.  A bridge device of the host is brought up and down (root
    only: creating a link needs CAP_NET_ADMIN)."""
    import os
    import subprocess
    import time

    import pytest

    from ktest.guest.nl import ThreadedMonitor

    if os.geteuid() != 0 or subprocess.run(["ip", "link", "add", "kt_tm0", "type", "bridge"],
                                           capture_output=True).returncode != 0:
        pytest.skip("needs root and the bridge driver to make link events")
    m = ThreadedMonitor()
    try:
        subprocess.run(["ip", "link", "set", "kt_tm0", "up"], check=True)
        time.sleep(0.2)
        subprocess.run(["ip", "link", "set", "kt_tm0", "down"], check=True)
        time.sleep(0.2)                       # both have arrived before anyone reads
        evs = [e for e in m.events(1000.0) if e.name == "kt_tm0"]
        while len(evs) < 2 and (more := m.events(500.0)):
            evs += [e for e in more if e.name == "kt_tm0"]
        ups = [e.t_ms for e in evs if e.flags & 1]
        downs = [e.t_ms for e in evs if not e.flags & 1]
        assert ups and downs, [e.to_json() for e in evs]
        assert downs[-1] - ups[0] > 100.0, "stamped when each arrived, not when they were read"
    finally:
        m.close()
        subprocess.run(["ip", "link", "del", "kt_tm0"], capture_output=True)


class _Trace:
    """A kernel tracer that has recorded these kprobe events (ktest.guest.ktrace.Event)."""

    def __init__(self, events):
        self.events = events

    def read(self):
        return self.events


A, B, BOND = 0xA0, 0xB0, 0xF0      # the slaves' and the bond's net_devices
SA, SB = 0x5A, 0x5B                 # the slaves' struct slave


def _to(t_ms, slave):
    """The bond's change of active slave to `slave` (A, B or None) as the kprobe records it."""
    from ktest.guest.ktrace import Event

    new, dev = {A: (SA, A), B: (SB, B), None: (0, 0xDEAD)}[slave]    # through NULL: whatever was there
    return Event(t_ms, "change_active", {"bond": BOND, "new": new, "newdev": dev})


def _carrier(t_ms, on, dev=A):
    from ktest.guest.ktrace import Event

    return Event(t_ms, "carrier_on" if on else "carrier_off", {"dev": dev})


def test_a_failover_is_timed_from_the_carrier_event_in_the_kernels_clock():
    from test_virtio_slaves import _kernel_change

    ev = [_carrier(1000.0, False), _to(1130.0, B)]
    for arp in (True, False):
        assert _kernel_change(_Trace(ev), "carrier_off", 990.0, arp).total == 130.0
    assert _kernel_change(None, "carrier_off", 990.0, True) is None, "no kprobe events: no kernel time"
    with pytest.raises(AssertionError, match="no carrier-off"):
        _kernel_change(_Trace(ev[1:]), "carrier_off", 990.0, True)
    # the failback: to A after A's carrier-on
    assert _kernel_change(_Trace([_carrier(1000.0, True), _to(1042.0, A)]), "carrier_on", 990.0, False).total == 42.0
    got = _kernel_change(_Trace(ev), "carrier_off", 990.0, False)
    assert got.wait is None and got.work is None, "no monitor runs traced (an ARP bond): no split"


def test_a_virtio_miimon_failover_splits_at_the_monitors_runs_as_the_veths_does():
    """Ticks every 10 ms; the carrier-off 3 ms before one; that run and the next cannot take the RTNL
    (the config-change work holds it), the third makes the change 0.5 ms after it starts."""
    from test_virtio_slaves import _kernel_change

    from ktest.guest.ktrace import Event

    ticks = [Event(t, "mii_monitor", {}) for t in (997.0, 1003.0, 1004.0, 1008.0)]
    ev = sorted([_carrier(1000.0, False), *ticks, _arp(1008.6), _to(1008.5, B)], key=lambda e: e.t_ms)
    got = _kernel_change(_Trace(ev), "carrier_off", 990.0, False)
    assert (got.total, got.wait, got.retry, got.work) == pytest.approx((8.5, 3.0, 5.0, 0.5))


def test_a_virtio_miimon_failover_whose_tick_ran_late_is_redone_an_arp_one_is_not_asked():
    """The monitor's run at 997 ms (read before the request) queued its tick for jiffy J+3; it expired 5
    jiffies late and the change came 21 ms after the carrier-off: the host's time, redone.  The same
    trace on time is timed; an ARP bond's switch has no MII monitor to ask."""
    from test_virtio_slaves import _kernel_change

    from ktest.guest.ktrace import Event
    from ktest.guest.lib import HostStarved

    j = 4295000000
    earlier = [Event(997.0, "mii_monitor", {}, 0, 40),
               Event(997.2, "timer_start", {"expires": j + 3, "timeout": 3, "bucket_expiry": j + 3}, 0, 40)]

    def trace(now):
        return [_carrier(1000.0, False), Event(1020.0, "timer_expire_entry", {"now": now, "baseclk": j + 3}, 0, 0),
                Event(1020.5, "mii_monitor", {}, 0, 40), _to(1021.0, B)]

    with pytest.raises(HostStarved, match="ran 5 jiffies late in a switch of 21.0 ms"):
        _kernel_change(_Trace(trace(j + 8)), "carrier_off", 990.0, False, earlier=earlier)
    assert _kernel_change(_Trace(trace(j + 3)), "carrier_off", 990.0, False, earlier=earlier).total == 21.0
    assert _kernel_change(_Trace(trace(j + 8)), "carrier_off", 990.0, True, earlier=earlier).total == 21.0


def test_a_bond_that_never_fails_over_is_a_fail_not_the_change_after_the_restore():
    """The cut's trace is read after A's cable is back and the bond on A again: a bond that stayed on A
    after the carrier-off (or changed only ahead of it) must not be timed to the change back to A."""
    from test_virtio_slaves import _kernel_change

    from ktest.guest.lib import PreconditionNotMet

    stayed = [_carrier(1230.0, False), _carrier(5200.0, True), _to(5260.0, A)]
    with pytest.raises(AssertionError, match="did not change its active slave away from"):
        _kernel_change(_Trace(stayed), "carrier_off", 990.0, True)
    ticks = [_arp(1300.0 + 20 * i, dev=0xB1) for i in range(20)]     # another bond's notifications
    with pytest.raises(AssertionError, match="did not change its active slave away from") as e:
        _kernel_change(_Trace(stayed[:1] + ticks + stayed[1:]), "carrier_off", 990.0, True)
    assert "arp_send" not in str(e.value), "the ARPs do not crowd out the events that tell"
    with pytest.raises(AssertionError, match="did not change its active slave away from"):
        _kernel_change(_Trace(stayed), "carrier_off", 990.0, True, 5000.0)
    # ARP: on B ahead of the carrier-off, and back to A only after the restore: redone (the window ends
    # at the restore's request), never 4030 ms
    early = [_to(1100.0, B), *stayed]
    with pytest.raises(PreconditionNotMet, match="130 ms before the slave's carrier-off"):
        _kernel_change(_Trace(early), "carrier_off", 990.0, True, 5000.0)


def test_a_change_of_slave_before_the_carrier_event_is_redone_under_arp_and_fails_under_miimon():
    """An ARP monitor acts on missed replies, not on the carrier: in a starved guest it failed over before
    the NIC's config-change work ran netif_carrier_off, and the next change after the carrier-off (8.6 s
    later, after B flapped) was taken for the failover.  Such a repetition is redone, not timed.  A miimon
    bond reads the carrier: the same order there is the kernel's fault."""
    from test_virtio_slaves import _kernel_change

    from ktest.guest.lib import PreconditionNotMet

    ev = [_to(1100.0, B), _carrier(1230.0, False), _to(9000.0, A), _to(9840.0, B)]
    with pytest.raises(PreconditionNotMet, match="130 ms before the slave's carrier-off"):
        _kernel_change(_Trace(ev), "carrier_off", 990.0, True)
    with pytest.raises(AssertionError, match="under miimon"):
        _kernel_change(_Trace(ev), "carrier_off", 990.0, False)
    # a change before the host's request is the previous repetition's, not this one's
    assert _kernel_change(_Trace(ev), "carrier_off", 1150.0, True).total == 8610.0
    # on no slave at the carrier-off (the monitor had failed both): nothing of the cut's to time either
    none = [_to(1100.0, None), *ev[1:]]
    with pytest.raises(PreconditionNotMet, match="or on none, 130 ms before"):
        _kernel_change(_Trace(none), "carrier_off", 990.0, True)
    # the failback: back on A before A's carrier-on, and no change after it
    back = [_to(1100.0, A), _carrier(1230.0, True)]
    with pytest.raises(PreconditionNotMet, match="130 ms before the slave's carrier-on"):
        _kernel_change(_Trace(back), "carrier_on", 990.0, True)


def test_a_flap_that_came_back_before_the_carrier_event_leaves_the_failover_to_time():
    """A starved ARP monitor that failed A over and back before the cut leaves the bond on A at the
    carrier-off: the change after it is the monitor's reaction to the cut, and is timed."""
    from test_virtio_slaves import _kernel_change

    ev = [_to(1050.0, B), _to(1100.0, A), _carrier(1230.0, False), _to(1360.0, B)]
    assert _kernel_change(_Trace(ev), "carrier_off", 990.0, True).total == 130.0
    # the bond's own carrier-off (no active slave left, its net_device the change's "bond") is not the slave's
    assert _kernel_change(_Trace([_carrier(1000.0, False, BOND), *ev]), "carrier_off", 990.0, True).total == 130.0


def test_a_failover_through_no_active_slave_is_redone_under_arp_and_fails_under_miimon():
    """A starved ARP monitor that declares both slaves down after the cut leaves the bond with none until
    B's next reply (seen: 806 ms in a run of a behaviour-preserving patch, where the failover takes
    120-160 ms): that interval times B's return, and the repetition is redone.  Under miimon, with B's
    carrier up, a failover through none is the kernel's."""
    from test_virtio_slaves import _kernel_change

    from ktest.guest.lib import PreconditionNotMet

    ev = [_carrier(1000.0, False), _to(1163.0, None), _to(1806.0, B)]
    with pytest.raises(PreconditionNotMet, match="no active slave 163 ms after the slave's carrier-off, until 806 ms"):
        _kernel_change(_Trace(ev), "carrier_off", 990.0, True)
    with pytest.raises(AssertionError, match="no active slave 163 ms .* under miimon"):
        _kernel_change(_Trace(ev), "carrier_off", 990.0, False)


def test_a_failover_event_ahead_of_the_carrier_event_is_taken_only_on_the_kernels_word():
    """With no failover event after the slave's carrier NEWLINK but one ahead of it, user space cannot
    tell a failover ahead of the carrier from one whose event arrived first: with a kernel trace that
    event is taken (_kernel_change decides), without one the repetition is redone."""
    from test_virtio_slaves import _failover_event

    from ktest.guest.ktrace import Event
    from ktest.guest.lib import PreconditionNotMet

    carrier, early, after = Event(1230.0, "NEWLINK"), Event(1100.0, "FAILOVER"), Event(1360.0, "FAILOVER")
    assert _failover_event(after, early, carrier, "carrier-off", None) is after
    assert _failover_event(None, early, carrier, "carrier-off", _Trace([])) is early
    with pytest.raises(PreconditionNotMet, match="130 ms before the slave's carrier-off"):
        _failover_event(None, early, carrier, "carrier-off", None)


def test_a_failover_event_from_before_the_hosts_request_never_stands_in_for_the_cuts():
    """The monitor listens from before the cut: a failover event from then (a starved ARP monitor's flap)
    is not the cut's, neither when one follows the carrier event nor when none does (a kernel that sends
    no BONDING_FAILOVER for the cut fails, its event not taken from before)."""
    from test_virtio_slaves import _failover_after_carrier

    from vbond import VBOND, VirtioBond

    from ktest.guest.nl import LinkEvent

    def Event(t_ms, what):      # noqa: N802 (a rtnetlink event: the bond's failover, or a slave's carrier)
        if what == "FAILOVER":
            return LinkEvent(t_ms, "NEWLINK", 9, VBOND, 0, "up", "BONDING_FAILOVER")
        return LinkEvent(t_ms, "NEWLINK", 7, "eth0", 0, "down")

    Vb = VirtioBond

    class Mon:
        def __init__(self, later):
            self.later = later

        def wait_for(self, pred, timeout_ms, sink):
            for e in self.later:
                sink.append(e)
                if pred(e):
                    return e
            return None

    old, off, after, ahead = (Event(900.0, "FAILOVER"), Event(1230.0, "NEWLINK"), Event(1360.0, "FAILOVER"),
                              Event(1100.0, "FAILOVER"))
    assert _failover_after_carrier(Mon([after]), Vb, [old, off], 990.0) == (after, None)
    with pytest.raises(AssertionError, match="no such event"):
        _failover_after_carrier(Mon([]), Vb, [old, off], 990.0)
    assert _failover_after_carrier(Mon([]), Vb, [old, ahead, off], 990.0) == (None, ahead)


def test_a_veth_cable_event_is_timed_from_its_first_carrier_event_to_the_change_it_causes():
    """veth_close() of the switch port sets the carrier off on both ends, microseconds apart: the first
    is the pull.  The change back to A after the plug of the previous repetition is before the request
    and never counts; nor does the plug's own change after a cut."""
    from bondlib import veth_switch_ms

    port, slave = 0xC1, A
    before = [_carrier(400.0, True), _to(450.0, A)]             # the previous repetition's plug and failback
    cut = [_carrier(1000.0, False, port), _carrier(1000.004, False, slave), _to(1021.5, B)]
    got = veth_switch_ms(before + cut, "carrier_off", 990.0)
    assert got.total == pytest.approx(21.5)
    assert got.wait is None and got.work is None and got.retry is None, "no monitor runs traced: no split"
    plug = [_carrier(2000.0, True, port), _carrier(2000.003, True, slave), _to(2310.0, A)]
    assert veth_switch_ms(cut + plug, "carrier_on", 1990.0).total == pytest.approx(310.0)


def test_a_miimon_failover_splits_into_the_wait_for_the_tick_and_the_runs_own_work():
    """Monitor runs every 12 ms; the pull lands 5 ms before one; that run cannot take the RTNL and tries
    again a jiffy (4 ms) later, which makes the change 0.2 ms after it starts: wait 5, work 0.2, and the
    retry is in neither part."""
    from bondlib import veth_switch_ms
    from ktest.guest.ktrace import Event

    def run(t):
        return Event(t, "mii_monitor", {})

    ev = [run(995.0), _carrier(1000.0, False), run(1005.0), run(1009.0), _to(1009.2, B), run(1021.0)]
    got = veth_switch_ms(ev, "carrier_off", 990.0)
    assert (got.total, got.wait, got.retry, got.work) == pytest.approx((9.2, 5.0, 4.0, 0.2))
    assert (got.runs, got.gap_max) == (2, pytest.approx(5.0))


def test_an_updelay_failback_says_whether_it_counted_more_ticks_or_waited_longer_for_each():
    """updelay 300 ms at miimon 10 is 30 of the monitor's ticks (12 ms each at HZ=250): a failback of
    about 370 ms on a guest that ran at its pace, and the same 31 runs over 1300 ms on a guest its host
    starved (one gap of 250 ms among them; seen 1300 ms under load, 530-850 ms quiet).  The context
    metrics tell the two apart: the runs, and the longest gap."""
    from bondlib import record_monitor_split, veth_switch_ms
    from ktest.guest.ktrace import Event

    def plug_and_ticks(period, stall_at=None, stall=0.0):
        ev, t = [_carrier(1000.0, True)], 1000.0
        for i in range(31):
            t += period + (stall if i == stall_at else 0.0)
            ev.append(Event(t, "mii_monitor", {}))
        return ev + [_to(t + 0.3, A)]

    pace, starved = (veth_switch_ms(plug_and_ticks(12.0), "carrier_on", 990.0),
                     veth_switch_ms(plug_and_ticks(32.0, 10, 250.0), "carrier_on", 990.0))
    assert pace.runs == starved.runs == 31
    assert pace.total == pytest.approx(372.3) and starved.total == pytest.approx(1242.3)
    assert (pace.gap_max, starved.gap_max) == (pytest.approx(12.0), pytest.approx(282.0))

    class Rec:
        def __init__(self):
            self.metrics = {}

        def metric(self, name, samples, unit, context=False, min_effect=None):
            self.metrics[name] = (samples, unit, context, min_effect)

    rec = Rec()
    record_monitor_split(rec, [pace, starved])
    assert rec.metrics["monitor_runs"] == ([31.0, 31.0], "count", True, None)
    assert rec.metrics["monitor_gap_max_kernel"][0] == [pytest.approx(12.0), pytest.approx(282.0)]
    assert all(m[2] for m in rec.metrics.values()), "context only, unless the runs are judged"
    rec = Rec()
    record_monitor_split(rec, [pace, starved], judge_runs=True)
    assert rec.metrics["monitor_runs"] == ([31.0, 31.0], "count", False, 2.0), "the count is the verdict metric"


def test_a_veth_bond_left_with_no_slave_or_no_change_is_the_kernels_fail():
    from bondlib import veth_switch_ms

    with pytest.raises(AssertionError, match="no carrier-off after the request"):
        veth_switch_ms([_to(1021.5, B)], "carrier_off", 990.0)
    from ktest.guest.ktrace import Event

    ticks = [Event(1000.0 + 12 * i, "mii_monitor", {}) for i in range(40)]
    with pytest.raises(AssertionError, match="did not change its active slave after the carrier-off") as e:
        veth_switch_ms([_carrier(1000.0, False), *ticks], "carrier_off", 990.0)
    assert "mii_monitor" not in str(e.value), "the monitor's ticks do not crowd out the events that tell"
    with pytest.raises(AssertionError, match="no active slave 5 ms after the carrier-off"):
        veth_switch_ms([_carrier(1000.0, False), _to(1005.0, None), _to(1030.0, B)], "carrier_off", 990.0)


def _arp(t_ms, dev=BOND, op=1):
    from ktest.guest.ktrace import Event

    return Event(t_ms, "arp_send", {"type": op, "dev": dev})


def test_a_peer_notification_is_timed_from_the_change_of_slave_to_each_gratuitous_arp():
    """6.12 after a miimon failover: the change sends the first gratuitous ARP itself, the same monitor
    run uses up one notification without sending, and the next tick sends the second.  ARPs of the
    previous repetition's failback, of another device, or replies (op 2) are not the notification's."""
    from bondlib import peer_notify_ms

    failback = [_to(450.0, A), _arp(450.1), _arp(460.0)]
    ev = [_arp(1000.5), _carrier(1001.0, False), _arp(1005.0, dev=A), _to(1011.0, B), _arp(1011.08),
          _arp(1015.0, op=2), _arp(1021.1)]
    got = peer_notify_ms(failback + ev, 990.0)
    assert got.first == pytest.approx(0.08) and got.gaps == pytest.approx([10.02]) and got.sent == 2
    assert got.at == pytest.approx((1011.08, 1021.1))      # when, for a reader to set beside the wire's count
    late = peer_notify_ms([_to(1011.0, B), _arp(1021.0), _arp(1041.0), _arp(1061.0)], 990.0)
    assert (late.first, *late.gaps, late.sent) == pytest.approx((10.0, 20.0, 20.0, 3)), \
        "a notification a tick late, and spaced two ticks apart, is what the metrics show"


def test_a_failover_without_gratuitous_arp_or_change_is_the_kernels_fail():
    from bondlib import peer_notify_ms

    with pytest.raises(AssertionError, match="no gratuitous ARP after its change"):
        peer_notify_ms([_to(1011.0, B), _arp(1012.0, dev=A), _arp(1013.0, op=2)], 990.0)
    with pytest.raises(AssertionError, match="no change of active slave"):
        peer_notify_ms([_to(950.0, B), _arp(1000.0)], 990.0)


def test_a_peer_notification_has_ended_after_20_monitor_ticks_without_an_arp():
    """Counted in the MII monitor's runs, not in wall-clock time: a starved guest's first gratuitous ARP
    192.7 ms after the change, with no tick between, is still to come; 20 ticks after the last ARP it
    has ended.  The previous repetition's failback and its ticks do not count."""
    from bondlib import notifications_done
    from ktest.guest.ktrace import Event

    def ticks(start, n, every=12.0):
        return [Event(start + every * i, "mii_monitor", {}) for i in range(n)]

    old = [_to(450.0, A), _arp(450.1)] + ticks(455.0, 30)
    assert not notifications_done(old, 990.0), "no change after the request yet"
    change = [_to(1011.0, B)]
    assert not notifications_done(old + change, 990.0)
    assert not notifications_done(old + change + [_arp(1203.7)] + ticks(1210.0, 19), 990.0)
    assert notifications_done(old + change + [_arp(1203.7)] + ticks(1210.0, 20), 990.0)
    assert notifications_done(change + ticks(1015.0, 20), 990.0), "none sent: ended all the same, and judged"


def test_a_setup_ping_retries_and_then_fails_as_told(monkeypatch):
    """The loss check's ping before its stream failed in 2 of 8 boots of an unchanged kernel beside a
    CPU-bound process (`ping -c 2 -W 1`, one try): now a few tries.  A bond that answers none is the
    kernel's FAIL (a mutant transmitting through a backup slave must be caught there, not filed as a
    setup error); where the host's link control is in the path the caller asks for a setup error."""
    calls = []

    def sh(cmd, check=True):
        calls.append(cmd)
        if len(calls) < ok_on:
            raise RuntimeError(f"`{cmd}` failed (1):")
        return ""
    monkeypatch.setattr(bondlib, "sh", sh)
    ok_on = 3
    bondlib.setup_ping("kt_h1", "192.0.2.2")
    assert len(calls) == 3 and all("ip netns exec kt_h1 ping -q -n -c 2" in c and "-W 2 192.0.2.2" in c for c in calls)
    calls.clear()
    ok_on = 99
    with pytest.raises(AssertionError, match="kt_h1 to 192.0.2.2 in 3 tries"):
        bondlib.setup_ping("kt_h1", "192.0.2.2")
    assert len(calls) == 3
    with pytest.raises(SetupNotEstablished):
        bondlib.setup_ping("kt_vb", "192.0.2.9", exc=SetupNotEstablished)


def test_how_late_the_mii_monitors_own_tick_ran_in_a_failover():
    """The monitor's run at 988 ms queues its next tick for jiffy J+3 (its timer_start, same task); the
    softirq runs that timer at J+5: 2 jiffies late, the host did not run the guest when it was due.
    Another delayed work's timer (a deferrable one, late by design on an idle CPU) does not count; a
    monitor whose delay a patch made longer is not late; no expiry of the monitor's timer, no lag."""
    from bondlib import tick_lag
    from ktest.guest.ktrace import Event

    j = 4295000000

    def started(t, bucket, pid=40):
        return Event(t, "timer_start", {"expires": bucket, "timeout": 3, "bucket_expiry": bucket}, 0, pid)

    def expired(t, now, baseclk):
        return Event(t, "timer_expire_entry", {"now": now, "baseclk": baseclk}, 0, 0)

    run = Event(988.0, "mii_monitor", {}, 0, 40)
    other = [started(900.0, j + 1, pid=77), expired(1002.0, j + 19, j + 1)]
    ev = [*other[:1], run, started(988.3, j + 3), _carrier(1000.0, False), other[1], expired(1010.0, j + 5, j + 3)]
    assert tick_lag(ev, 1000.0, 1012.0) == 2
    assert tick_lag(ev, 1000.0, 1005.0) is None, "the monitor's timer expired after the window"
    assert tick_lag([e for e in ev if e is not run], 1000.0, 1012.0) is None, "no monitor run: no timer of its"
    on_time = [run, started(988.3, j + 10), expired(1030.0, j + 10, j + 10)]
    assert tick_lag(on_time, 1000.0, 1040.0) == 0


def test_a_switch_whose_monitor_tick_ran_late_is_refused_as_the_hosts():
    """switch_lag times the lag over the switch's own interval (from its cable event to its change);
    refuse_starved redoes from STARVED_JIFFIES on, and takes a switch without a trace as it is."""
    import pytest

    from bondlib import STARVED_JIFFIES, Switch, refuse_starved, switch_lag
    from ktest.guest.ktrace import Event
    from ktest.guest.lib import HostStarved

    j = 4295000000
    ev = [Event(988.0, "mii_monitor", {}, 0, 40),
          Event(988.3, "timer_start", {"expires": j + 3, "timeout": 3, "bucket_expiry": j + 3}, 0, 40),
          Event(1010.0, "timer_expire_entry", {"now": j + 3 + STARVED_JIFFIES, "baseclk": j + 3}, 0, 0)]
    sw = Switch(12.0, 10.5, 1.5, 1, 10.5, 1000.0)
    assert switch_lag(ev, sw) == STARVED_JIFFIES
    assert switch_lag(ev, sw._replace(at=None)) is None, "no cable event in the trace: nothing to ask"
    assert switch_lag(ev, sw._replace(total=5.0)) is None, "the tick expired after this switch's change"
    with pytest.raises(HostStarved, match=f"ran {STARVED_JIFFIES} jiffies late in a switch of 12.0 ms"):
        refuse_starved(STARVED_JIFFIES, sw)
    refuse_starved(STARVED_JIFFIES - 1, sw)
    refuse_starved(None, sw)
