"""active-backup over virtio-net slaves whose cables the host pulls (QMP set_link), the seed article's real
setting: miimon and ARP monitoring, failover with a stream through the bond, failback by prio under
primary_reselect.  Topology and clocks: see vbond.py.

Times are taken from one rtnetlink monitor in the bond's namespace (CLOCK_MONOTONIC at receipt, one
process): a slave's carrier change is reported at once (a LAG port's carrier change is an urgent
linkwatch event, linkwatch_urgent_event()), and the bond's failover is its NETDEV_BONDING_FAILOVER
(IFLA_EVENT on the bond's RTM_NEWLINK).  The cut itself is the NIC's config-change interrupt as the
guest saw it fire (guestlib.host_set_netdev polls its count); its distance to the carrier-off event is
context, as is the request channel's round trip."""

from __future__ import annotations

import socket
import struct
import threading
import time

import pytest

from ktest.guest.lib import PreconditionNotMet, SetupNotEstablished, netns, repeat
from ktest.guest.nl import now_ms
from bondlib import (BACKGROUND_PROBES, Switch, longest_gap_ms, loss_window_ms, lost_after, monitor_split,
                     note_redone, record_monitor_split, refuse_starved, setup_ping, switch_lag, wait_drained,
                     wait_until)
from vbond import ARP_MS, MIIMON_MS, VB, VP, VP_IP, VirtioBond

PERIOD_S = 0.002
AFTER_PACKETS = 100         # sent after the switch before the stream stops (~0.2 s unloaded)
# after a change of slave ahead of the carrier event, how long to wait for one after it (a flap that came
# back before the carrier event is followed by the real change; a change that was the real one, by none)
EARLY_WAIT_MS = 3000.0

# the failback checks' ARP monitor: 10 missed intervals (500 ms) before a slave is declared down
FAILBACK_ARP_MISSED_MAX = 10


def _interval_ms(monitor: str) -> float:
    return float(MIIMON_MS if monitor == "miimon" else ARP_MS)


class Stream:
    """UDP with sequence numbers from the bond's namespace to the far NIC, every PERIOD_S, in a thread;
    loss and the loss window (the sender's clock) when stopped."""

    def __init__(self):
        with netns(VP):
            self.rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.rx.bind((VP_IP, 9998))
        self.rx.settimeout(0.1)
        with netns(VB):
            self.tx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.got: set[int] = set()
        self.send_t: list[float] = []
        self.stop = threading.Event()          # the sender's
        self.stop_rx = threading.Event()       # the receiver's, once the tail has drained
        # daemon threads: a check that fails mid-stream must not keep the guest's harness from exiting
        self.threads = [threading.Thread(target=self._recv, daemon=True),
                        threading.Thread(target=self._send, daemon=True)]
        for t in self.threads:
            t.start()

    def _recv(self):
        while not self.stop_rx.is_set():
            try:
                self.got.add(struct.unpack("!I", self.rx.recv(64)[:4])[0])
            except socket.timeout:
                continue

    def _send(self):
        seq = 0
        while not self.stop.is_set():
            self.send_t.append(time.monotonic())
            try:
                self.tx.sendto(struct.pack("!I", seq), (VP_IP, 9998))
            except OSError:       # no route or no slave for a moment: that packet is lost
                pass
            seq += 1
            time.sleep(PERIOD_S)

    def wait_flowing(self, n: int, timeout_s: float = 10.0) -> None:
        """Until the receiver has n packets: the stream flows through the bond before the cut (observed,
        not slept on).  None in timeout_s: the boot could not set the check up."""
        wait_until(lambda: len(self.got) >= n, timeout_s, exc=SetupNotEstablished,
                   what=f"{n} packets delivered through the bond before the cut")

    def wait_sent_after(self, t: float, n: int, timeout_s: float = 10.0) -> None:
        """Until the sender has sent n packets at or after `t` (time.monotonic()): the observation window
        after the failover, established by watching the sender rather than by a sleep.  A sender that
        cannot send them in timeout_s is a starved guest: the boot could not set the check up."""
        wait_until(lambda: sum(1 for ts in self.send_t[-n:] if ts >= t) >= n, timeout_s, exc=SetupNotEstablished,
                   what=f"the stream's sender to send {n} packets after the failover (a starved guest)")

    def lost_after(self, t: float) -> tuple[int, int]:
        """(lost, sent) among the packets sent at or after `t`; call after finish()."""
        return lost_after(self.send_t, self.got, t)

    def longest_gap_ms(self, t: float) -> float:
        """The longest pause of the sender after `t` (ms): a guest that did not run its threads for so long
        did not run the bond's monitor either."""
        return longest_gap_ms(self.send_t, t)

    def finish(self, quiet_s: float = 0.3, cap_s: float = 3.0) -> tuple[int, float, int]:
        """(lost, loss window ms, sent) once the receiver has drained what was in flight: until the last
        packet sent arrived, or nothing arrived for quiet_s (observed; a starved guest's far NIC hands
        the tail over late, and a receiver stopped with the sender counted it lost), at most cap_s."""
        self.stop.set()
        self.threads[1].join()
        last = len(self.send_t) - 1
        wait_drained(lambda: len(self.got), lambda: last in self.got, quiet_s, cap_s)
        self.stop_rx.set()
        self.threads[0].join()
        self.rx.close()
        self.tx.close()
        sent = len(self.send_t)
        return sent - len(self.got), loss_window_ms(self.send_t, self.got), sent


def _events_until(mon, pred, timeout_ms: float, sink: list):
    ev = mon.wait_for(pred, timeout_ms, sink)
    assert ev is not None, f"no such event within {timeout_ms:.0f} ms: {[e.to_json() for e in sink][-8:]}"
    return ev


@pytest.mark.cost(120)
@pytest.mark.parametrize("monitor", ["miimon", "arp"])
def test_host_cut_fails_over(record, reps, monitor, kclock):
    """The host pulls the active slave's cable with a stream flowing through the bond: the bond fails over
    to the other slave, and traffic flows again (of the packets sent once the bond has switched, fewer
    than half are lost; the stream is seen flowing before the cut).  failover_ms_kernel is from the
    slave's carrier-off (netif_carrier_off) to the bond's change of active slave
    (bond_change_active_slave), in the kernel's clock; failover_ms is the same interval between the two
    rtnetlink events as user space received them (the verdict metric only without kprobes), and so is
    loss_window_ms, the stream's gap. With miimon the monitor notices the carrier at its next tick, and
    the interval is split, as context, as the veth failover's is (monitor_wait_kernel,
    monitor_retry_kernel, monitor_work_kernel: bondlib.monitor_split); with ARP monitoring only missing
    replies tell (the ARP monitor does not read the carrier), and there is no split.  A repetition in
    which traffic did not flow again because B itself was declared down meanwhile, its cable up (an ARP
    monitor in a guest that did not run for longer than its miss window), is redone and counted in
    reps_redone, never taken as the kernel's FAIL; so is one in which the bond was already on B, or on
    no slave, at A's carrier-off (an ARP monitor that missed replies in a starved guest, or a guest that
    ran the NIC's config-change work late): it has no interval to time, and the next failover after the
    carrier-off, once taken for it, was another event (one sample of 8.6 s).  A flap that came back to A
    before the carrier-off leaves the failover to time; and so is a miimon one in which the MII
    monitor's own tick ran late, a guest its host did not run (_kernel_change, bondlib.refuse_starved).
    Under miimon, which reads the carrier, either order is the kernel's FAIL; so is, under both
    monitors, no change from A to another slave between the carrier-off and the restore's request."""
    failover, cut_to_carrier, lost, window, rtt, timelines = [], [], [], [], [], []
    failover_k: list[Switch] = []
    with VirtioBond(monitor) as vb:
        record.note("topology_setup_ms", round(vb.setup_ms, 1))
        vb.wait_active(vb.a)
        setup_ping(VB, VP_IP, exc=SetupNotEstablished)

        def one():
            mon = vb.monitor_events()
            sink: list = []
            stream = Stream()
            try:
                stream.wait_flowing(AFTER_PACKETS)
                b_failures = vb.failures(vb.b)
                before = kclock.read() if kclock is not None else []
                t_req = now_ms()
                ack = vb.host(vb.a, False)
                off = _events_until(mon, vb.carrier_off(vb.a), 5000, sink)
                fo, early = _failover_after_carrier(mon, vb, sink, t_req)
                vb.wait_active(vb.b)
                t_active = time.monotonic()
                stream.wait_sent_after(t_active, AFTER_PACKETS)
            finally:
                n_lost, win, sent = stream.finish()
                mon.close()
            # judged on the packets sent once the bond had switched: the loss before it noticed the cut
            # (an ARP monitor's missed replies, longer in a starved guest) is the loss window's, not this
            lost_b, sent_b = stream.lost_after(t_active)
            b_failed = vb.failures(vb.b) - b_failures
            t_restore = now_ms()
            vb.host(vb.a, True)
            vb.wait_active(vb.a)              # prio 10 over 0, primary_reselect always: back to A
            setup_ping(VB, VP_IP, exc=SetupNotEstablished)
            if lost_b >= sent_b // 2 and b_failed:
                # B itself was declared down while its cable was up: an ARP monitor's verdict after the
                # guest went without running for longer than its miss window; the precondition "B stays
                # up" did not hold, and the repetition is redone, never counted as the kernel's FAIL
                raise PreconditionNotMet(f"{vb.b} failed meanwhile ({b_failed}x; the sender's longest gap after "
                                         f"the switch {stream.longest_gap_ms(t_active):.0f} ms)")
            assert lost_b < sent_b // 2, (f"traffic flows again after the failover: {lost_b} of the {sent_b} packets "
                                          f"sent once the bond had switched lost ({n_lost} of {sent} in all)")
            fo = _failover_event(fo, early, off, "carrier-off", kclock)
            t0 = off.t_ms
            line = ([{"t_ms": round((ack["t_irq"] or ack["t_ack"]) * 1000.0 - t0, 3),
                      "event": "host: link off (config interrupt)"}]
                    + [e.to_json(t0) | {"ifla_event": e.ifla_event} if e.ifla_event else e.to_json(t0)
                       for e in sink])
            return (_kernel_change(kclock, "carrier_off", t_req, monitor == "arp", t_restore, earlier=before), fo.t_ms - off.t_ms,
                    off.t_ms - (ack["t_irq"] or ack["t_ack"]) * 1000.0, n_lost, win, ack["request_ms"], line)

        why: list[str] = []
        results, n_redone = repeat(reps, one, why)
        for k, fo_ms, c_ms, n_lost, win, rtt_ms, line in results:
            if k is not None:
                failover_k.append(k)
            failover.append(fo_ms)
            cut_to_carrier.append(c_ms)
            lost.append(n_lost)
            window.append(win)
            rtt.append(rtt_ms)
            timelines.append(line)
    record.note("reps_redone", n_redone)
    if why:
        record.note("redone_because", "; ".join(why))
    iv = _interval_ms(monitor)
    if failover_k:
        record.metric("failover_ms_kernel", [k.total for k in failover_k], "ms", min_effect=2 * iv,
                      min_effect_tail=4 * iv)
        record.metric("failover_ms", failover, "ms", context=True)
        record_monitor_split(record, failover_k)
    else:
        record.metric("failover_ms", failover, "ms", min_effect=2 * iv, min_effect_tail=4 * iv)
    # the loss window is timed by a user-space sender and receiver: with the failover in the kernel's clock
    # it is the cross-check (a loaded TCG guest spreads it 70 ms between boots), else a verdict metric
    record.metric("loss_window_ms", window, "ms", min_effect=2 * iv, min_effect_tail=4 * iv,
                  context=bool(failover_k))
    record.metric("lost_packets", lost, "count", context=True)
    record.metric("irq_to_carrier_off", cut_to_carrier, "ms", context=True)
    record.metric("host_request_rtt", rtt, "ms", context=True)
    record.note("monitor", f"{monitor} every {iv:.0f} ms; stream every {PERIOD_S * 1000:.0f} ms")
    mid = sorted(range(len(failover)), key=lambda i: failover[i])[len(failover) // 2]
    record.timeline("cut_and_failover", sorted(timelines[mid], key=lambda e: e["t_ms"]))


def _kernel_change(kclock, carrier: str, t_req: float, arp: bool, t_end: float = float("inf"),
                   earlier: list | tuple = ()) -> Switch | None:
    """The slave's carrier event (`carrier_off` for a failover, `carrier_on` for a failback) to the bond's
    change of active slave onto the slave it should end on (another one after a carrier-off, this one
    after a carrier-on), in the kernel's clock (ms; Switch.total), split at the MII monitor's runs
    (bondlib.monitor_split; an ARP bond's is not); None without kprobe events.  Only events from
    `t_req` (the host's request) to `t_end` (the next request, e.g. the cut's restore) count.

    If, at the carrier event, the bond had already changed onto that slave or to none, or if it was left
    with none on the way, there is no such interval to time.  Under the ARP monitor, which acts on
    missed replies and not on the carrier, that is a starved guest's doing: PreconditionNotMet, and the
    repetition is redone.  A miimon bond reads the carrier and cannot change ahead of it, nor through
    none while the other slave's carrier is up: there it is the kernel's FAIL.

    A miimon bond's switch in which the MII monitor's own tick ran bondlib.STARVED_JIFFIES or more late
    (the trace read `earlier`, before the request, holds the timer its last run queued) timed the host, not the kernel:
    HostStarved, redone.  Called once the topology is back as the next repetition needs it."""
    if kclock is None:
        return None
    # the MII monitor's runs and the notifications' ARPs (bondlib.BACKGROUND_PROBES) are not part of it
    # (the runs split it, at the end)
    read = kclock.read()
    trace = [e for e in read if t_req <= e.t_ms < t_end]
    ev = [e for e in trace if e.name not in BACKGROUND_PROBES]
    bonds = {e.args.get("bond") for e in ev if e.name == "change_active"}
    k_c = next((e for e in ev if e.name == carrier and e.args.get("dev") not in bonds), None)
    what = carrier.replace("_", "-")
    if k_c is None:
        raise AssertionError(f"the kernel trace has no {what} of the slave: {[(e.name, e.t_ms) for e in ev][:12]}")
    slave, back = k_c.args.get("dev"), carrier == "carrier_on"

    def onto(e) -> bool:
        return bool(e.args.get("new")) and (e.args.get("newdev") == slave) == back

    def starved(why: str) -> None:
        if not arp:
            raise AssertionError(f"{why}, under miimon, which reads the carrier: the kernel's doing")
        raise PreconditionNotMet(f"{why} ({STARVED_ARP})")

    changes = [e for e in ev if e.name == "change_active"]
    before = [e for e in changes if e.t_ms < k_c.t_ms]
    if before and (not before[-1].args.get("new") or onto(before[-1])):
        # a flap that came back to the slave it started on is not this: the change after the carrier
        # event is then the monitor's reaction to it, and is timed
        starved(_ahead_of_carrier(what, k_c.t_ms - before[-1].t_ms))
    k_fo = next((e for e in changes if e.t_ms >= k_c.t_ms and onto(e)), None)
    if k_fo is None:
        raise AssertionError(f"the bond did not change its active slave {'back to' if back else 'away from'} the "
                             f"slave after its {what}: {[(e.name, round(e.t_ms - k_c.t_ms)) for e in ev][:12]}")
    if none := next((e for e in changes if k_c.t_ms <= e.t_ms < k_fo.t_ms and not e.args.get("new")), None):
        # the monitor declared the other slave down too (an ARP monitor that missed the replies of both
        # in a starved guest), and the interval times that slave's return, not the reaction to the event
        starved(f"the bond had no active slave {none.t_ms - k_c.t_ms:.0f} ms after the slave's {what}, until "
                f"{k_fo.t_ms - k_c.t_ms:.0f} ms: the monitor declared the other slave down meanwhile")
    sw = monitor_split(trace, k_c.t_ms, k_fo.t_ms)
    if not arp:
        refuse_starved(switch_lag([*earlier, *read], sw), sw)
    return sw


def _failover_after_carrier(mon, vb, sink: list, t_req: float):
    """(the bond's failover event after the slave's carrier event, the last in `sink`; the one ahead of
    it in `sink` and not before `t_req`, the host's request, or None: an event that reached user space
    before the request, such as the cut's own in a failback, is never it).  An ARP monitor acts on
    missed replies, not on the carrier: in a starved guest it can change slaves ahead of the carrier
    event (a flap that comes back, or the change itself when the config-change work ran late).  Then the
    event after it may never come, or be another one (seen: one 8.6 s later, after B flapped), so it is
    waited for only EARLY_WAIT_MS (None if it does not come)."""
    early = next((e for e in sink if vb.failover(e) and e.t_ms >= t_req), None)
    if early is None:
        return _events_until(mon, vb.failover, 10000, sink), None
    return mon.wait_for(vb.failover, EARLY_WAIT_MS, sink), early


def _failover_event(fo, early, carrier_ev, carrier: str, kclock):
    """The failover event to time from `carrier_ev`: `fo`, or with none after it the one ahead of it.
    User space cannot tell a failover ahead of the carrier event from one whose event reached it first
    (the slave's NEWLINK waits for linkwatch's work): the kernel's trace decides (_kernel_change), and
    without one (a kernel without kprobe events) the repetition is redone."""
    if fo is not None:
        return fo
    if kclock is None:
        raise PreconditionNotMet(f"{_ahead_of_carrier(carrier, carrier_ev.t_ms - early.t_ms)}, or its failover "
                                 "event reached user space first")
    return early


def _ahead_of_carrier(carrier: str, ahead_ms: float) -> str:
    return f"the bond was on its new active slave, or on none, {ahead_ms:.0f} ms before the slave's {carrier}"


STARVED_ARP = ("an ARP monitor acts on replies, not on the carrier: a starved guest missed them, or ran the NIC's "
               "config-change work late")


@pytest.mark.cost(120)
@pytest.mark.parametrize("reselect", ["always", "failure"])
@pytest.mark.parametrize("monitor", ["miimon", "arp"])
def test_host_restore_fails_back_by_prio(record, reps, monitor, reselect, kclock):
    """After a cut and failover to the lower-prio slave, the host plugs the cable back in.  prio follows
    the primary_reselect rules (bond_choose_primary_or_current): with `always` the higher-prio slave
    becomes active again, with `failure` the active slave stays.  failback_ms_kernel: from the slave's
    carrier-on (netif_carrier_on) to the bond's change of active slave to it (bond_change_active_slave),
    in the kernel's clock, split under miimon as the failover is; failback_ms is the same interval
    between the two rtnetlink events as user space received them (the verdict metric only without
    kprobes).

    The ARP bond declares a slave down after FAILBACK_ARP_MISSED_MAX intervals without a reply, not the
    default 2: a starved TCG guest processes no reply for a few hundred ms (the longest pause of a
    sender in a loaded boot: 420 ms), and with 2 (100 ms) the ARP monitor failed B under `failure` in
    2 of 8 base boots of a loaded calibration, three times in a row.  The failback is not timed
    through it: a slave that is down comes up on the first reply within one interval.  A repetition in
    which the bond was back on A before A's carrier-on (the ARP monitor heard A before the guest ran the
    NIC's config-change work) has no interval to time: it is redone and counted in reps_redone (under
    miimon, which reads the carrier, it is the kernel's FAIL)."""
    iv = _interval_ms(monitor)
    failback, failback_k = [], []
    missed_max = FAILBACK_ARP_MISSED_MAX if monitor == "arp" else None
    with VirtioBond(monitor, reselect=reselect, missed_max=missed_max) as vb:
        if missed_max:
            record.note("arp_missed_max", missed_max)
        vb.wait(lambda: vb.active() is not None, what="an active slave")
        record.note("first_active", vb.active())
        if vb.active() != vb.a:
            # ARP monitoring finds both slaves down at first and makes active the first it hears from;
            # with `failure` nothing moves it to the higher prio later: hand it to A through B's failure
            vb.host(vb.b, False)
            vb.wait_active(vb.a)
            vb.host(vb.b, True)

        def one():
            # the monitor listens from before the cut: netlink keeps the kernel's order, so the cut's
            # own failover event (which can reach user space after /proc shows B active) comes before
            # A's carrier-on, and only what follows that is the restore's doing
            mon = vb.monitor_events()
            sink: list = []
            try:
                vb.host(vb.a, False)
                vb.wait_active(vb.b)
                _events_until(mon, vb.failover, 10000, sink)      # the cut's own, before t_req
                b_failures = vb.failures(vb.b)
                before = kclock.read() if kclock is not None else []
                t_req = now_ms()
                vb.host(vb.a, True)
                on = _events_until(mon, vb.carrier_on(vb.a), 5000, sink)
                after_on = len(sink)
                if reselect == "always":
                    # as in the cut: an ARP monitor can hear A's replies before the guest runs its
                    # carrier-on, and then the bond is back on A before there is an interval to time
                    fo, early = _failover_after_carrier(mon, vb, sink, t_req)
                    vb.wait_active(vb.a)
                    k = _kernel_change(kclock, "carrier_on", t_req, monitor == "arp", earlier=before)
                    fo = _failover_event(fo, early, on, "carrier-on", kclock)
                    return fo.t_ms - on.t_ms, k
                # the monitor has had 20 of its own intervals to bring A back up and has not reselected
                deadline = now_ms() + 20 * iv
                mon.wait_for(lambda e: False, max(0.0, deadline - now_ms()), sink)
                active, fos = vb.active(), [e.to_json(on.t_ms) for e in sink[after_on:] if vb.failover(e)]
                if vb.failures(vb.b) != b_failures:
                    # B itself was declared down (ARP replies missed under load): its failure, not a
                    # reselection, moved the bond; the precondition "B stays up" did not hold
                    raise PreconditionNotMet(f"{vb.b} failed meanwhile ({vb.failures(vb.b) - b_failures}x)")
                assert active == vb.b, f"primary_reselect failure keeps the active slave {vb.b} (have {active})"
                assert not fos, f"and raises no failover: {fos}"
                return None
            finally:
                mon.close()
                if reselect == "failure" and vb.active() != vb.a:
                    vb.host(vb.b, False)      # B's failure is what hands the bond back to A
                    vb.wait_active(vb.a)
                    vb.host(vb.b, True)

        why: list[str] = []
        results, n_redone = repeat(reps, one, why)
        failback = [r[0] for r in results if r is not None]
        failback_k = [r[1] for r in results if r is not None and r[1] is not None]
    note_redone(record, n_redone, why)
    if reselect == "always" and failback_k:
        record.metric("failback_ms_kernel", [k.total for k in failback_k], "ms", min_effect=2 * iv,
                      min_effect_tail=4 * iv)
        record_monitor_split(record, failback_k)
        record.metric("failback_ms", failback, "ms", context=True)
    elif reselect == "always":
        record.metric("failback_ms", failback, "ms", min_effect=2 * iv, min_effect_tail=4 * iv)
