"""Bond topologies for the bonding checks.

    netns kt_h1                 netns kt_sw                      netns kt_h2
    kb0 (bond) -- s0 ====veth==== p0 --+
               -- s1 ====veth==== p1 --+-- br0 (bridge) -- ph2 ====veth==== h2e
               -- s2 ====veth==== p2 --+

Taking pN down in the switch makes the bond's slave sN lose carrier, as a cable pull would.
192.0.2.0/24 and 2001:db8::/64 are documentation prefixes, used only inside these namespaces.
"""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Callable
from typing import Any, NamedTuple

from ktest.guest import ktrace
from ktest.guest.lib import HostStarved, ip_batch, netns, proc_net, sh
from ktest.guest.nl import Link

H1, SW, H2 = "kt_h1", "kt_sw", "kt_h2"
BOND = "kb0"
H1_IP, H2_IP = "192.0.2.1", "192.0.2.2"
H1_IP6, H2_IP6 = "2001:db8::1", "2001:db8::2"


# A failover and a failback in the kernel's clock (kprobe events, ktest.guest.ktrace; the `kclock` fixture of
# conftest.py): a slave's carrier going off (or coming back) and the bond changing its active slave
# (bond_change_active_slave, which sends NETDEV_BONDING_FAILOVER).  Between the two lie the monitor's tick
# and its work, which are what is timed; no user space, no netlink delivery.  `bond` is the bond's
# net_device (struct bonding's first member, bond_dev), so that the bond's own carrier going off when it
# has no active slave left is told from the slave's; `new` is the struct slave (0: none) and `newdev` its
# net_device (struct slave's first member, dev; meaningless when `new` is 0, a fetch through NULL that
# the kernel does not store), to tell which slave the bond changed to.  `mii_monitor` is each run of the
# MII monitor's work (bond_mii_monitor, every miimon ms), which splits a miimon failover into the wait for
# the monitor's tick and the monitor's own work (veth_switch_ms).  `arp_send` is every ARP the stack sends
# with it: the gratuitous ARPs of a peer notification (NETDEV_NOTIFY_PEERS -> inetdev_send_gratuitous_arp,
# type 1, on the bond's net_device), which time the notifications (peer_notify_ms); the ARP monitor and
# neighbour resolution send theirs by other paths.
FAILOVER_PROBES = {"carrier_off": ("netif_carrier_off", "dev=%di:x64"),
                   "carrier_on": ("netif_carrier_on", "dev=%di:x64"),
                   "change_active": ("bond_change_active_slave",
                                     "bond=+0(%di):x64 new=%si:x64 newdev=+0(%si):x64"),
                   "mii_monitor": ("bond_mii_monitor", ""),
                   "arp_send": ("arp_send", "type=%di:s32 dev=%cx:x64")}
ARPOP_REQUEST = 1
# probes that fire on every tick or every notification, not once per cable event: left out of a cable
# event's interval and of what a failed one prints
BACKGROUND_PROBES = ("mii_monitor", "arp_send", "timer_start", "timer_expire_entry")
# the timers of delayed works (the MII monitor's among them): when each was due and when the timer softirq
# ran it, which says whether the host ran the guest while a failover was timed (tick_lag)
FAILOVER_TIMERS = {"timer/timer_start": ("function", "delayed_work_timer_fn"),
                   "timer/timer_expire_entry": ("function", "delayed_work_timer_fn")}

SETUP_MS: list[float] = []   # each topology's build time in this check (the conftest records it)


def ipj(ns: str, args: str):
    return json.loads(sh(f"ip -n {ns} -j {args}") or "[]")


class BondTopo:
    def __init__(self, mode: str = "active-backup", n: int = 3, miimon: int = 10, opts: str = "",
                 prios: list[int] | None = None, post: str = ""):
        self.mode, self.n, self.miimon, self.opts, self.prios, self.post = mode, n, miimon, opts, prios, post
        self.slaves = [f"s{i}" for i in range(n)]
        self.peers = [f"p{i}" for i in range(n)]

    # -- lifecycle --------------------------------------------------------------------------------
    def __enter__(self) -> "BondTopo":
        """Build the topology in five `ip -batch` execs, one per namespace step, instead of a shell and
        an `ip` per step: under TCG each exec costs tens of milliseconds.  The order is the one a
        per-step script would use: switch ports are up before their slaves are enslaved, so every
        slave has carrier when it joins and enslave order decides among equals."""
        t0 = time.monotonic()
        self.teardown()
        ip_batch(None, [f"netns add {ns}" for ns in (H1, SW, H2)])
        ip_batch(H2, ["link set lo up", "link add h2e type veth peer name ph2 netns " + SW,
                      f"addr add {H2_IP}/24 dev h2e", f"addr add {H2_IP6}/64 dev h2e nodad", "link set h2e up"])
        ip_batch(H1, ["link set lo up", f"link add {BOND} type bond mode {self.mode} miimon {self.miimon} {self.opts}"]
                 + [f"link add {s} type veth peer name {p} netns {SW}" for s, p in zip(self.slaves, self.peers)])
        ip_batch(SW, ["link set lo up", "link add br0 type bridge", "link set br0 up"]
                 + [f"link set {p} master br0 up" for p in self.peers] + ["link set ph2 master br0 up"])
        steps = []
        for i, s in enumerate(self.slaves):
            steps.append(f"link set {s} master {BOND}")
            if self.prios is not None:
                steps.append(f"link set {s} type bond_slave prio {self.prios[i]}")
        if self.post:  # options naming a slave, e.g. primary: applied once the slaves exist
            steps.append(f"link set {BOND} type bond {self.post}")
        # no link-local address on the bond: one unsolicited NA per notification, for the one address
        steps += [f"link set {BOND} addrgenmode none", f"addr add {H1_IP}/24 dev {BOND}",
                  f"addr add {H1_IP6}/64 dev {BOND} nodad", f"link set {BOND} up"]
        ip_batch(H1, steps)
        if self.mode in ("active-backup", "balance-tlb", "balance-alb"):
            self.wait(lambda: self.active() is not None, what="an active slave")
        else:  # no single active slave: wait for the bond to be up
            self.wait(lambda: self.operstate() == "up", what="the bond up")
        SETUP_MS.append(round((time.monotonic() - t0) * 1000.0, 1))
        return self

    def __exit__(self, *exc):
        self.teardown()

    @staticmethod
    def teardown() -> None:
        ip_batch(None, [f"netns del {ns}" for ns in (H1, SW, H2)], check=False)

    # -- state ------------------------------------------------------------------------------------
    def info(self) -> dict:
        return ipj(H1, f"-d link show {BOND}")[0]["linkinfo"]["info_data"]

    def proc(self) -> str:
        """/proc/net/bonding/kb0, read in process from H1."""
        return proc_net(H1, f"bonding/{BOND}")

    def active(self) -> str | None:
        """The active slave as /proc/net/bonding shows it: read in process, so polling it is cheap."""
        return active_slave(self.proc())

    def sysfs_active(self) -> str | None:
        """The active slave through the other interface, sysfs (an exec: sysfs shows a namespace's
        devices only when mounted in it), to cross-check active()."""
        v = sh(f"ip netns exec {H1} cat /sys/class/net/{BOND}/bonding/active_slave").strip()
        return v or None

    def operstate(self) -> str:
        return sh(f"ip netns exec {H1} cat /sys/class/net/{BOND}/operstate").strip()

    def mii_status(self) -> dict[str, str]:
        """Each slave's MII status (up/down/going back...) from /proc/net/bonding, in process."""
        out = {}
        for block in self.proc().split("Slave Interface: ")[1:]:
            for line in block.splitlines():
                if line.startswith("MII Status:"):
                    out[block.split("\n", 1)[0].strip()] = line.split(":", 1)[1].strip()
                    break
        return out

    def slave_state(self, s: str) -> str:
        return sh(f"ip netns exec {H1} cat /sys/class/net/{s}/bonding_slave/state").strip()

    def set_prio(self, s: str, prio: int) -> None:
        sh(f"ip -n {H1} link set {s} type bond_slave prio {prio}")

    def bond_set(self, opts: str) -> None:
        sh(f"ip -n {H1} link set {BOND} type bond {opts}")

    def peer(self, s: str) -> str:
        return self.peers[self.slaves.index(s)]

    def cut(self, s: str) -> None:
        """Pull slave s's cable: its switch-side peer goes down, s loses carrier.  In-process
        netlink, so a timestamp taken just before is within microseconds of the fault."""
        self._switch_port(self.peer(s), up=False)

    def plug(self, s: str) -> None:
        self._switch_port(self.peer(s), up=True)

    @staticmethod
    def _switch_port(port: str, up: bool) -> None:
        with netns(SW):
            link = Link()
            idx = socket.if_nametoindex(port)
        try:
            link.set(idx, up=up)
        finally:
            link.close()

    def peer_rx(self) -> dict[str, int]:
        """Packets each slave transmitted, counted at its switch-side peer."""
        out = {}
        for d in ipj(SW, "-s link show"):
            if d["ifname"] in self.peers:
                out[self.slaves[self.peers.index(d["ifname"])]] = d["stats64"]["rx"]["packets"]
        return out

    def bond_stats(self) -> dict:
        return ipj(H1, f"-s link show {BOND}")[0]["stats64"]

    def wait(self, pred, timeout: float = 10.0, what: str = "condition") -> float:
        return wait_until(pred, timeout, what)

    def wait_active(self, s: str | None, timeout: float = 10.0) -> float:
        return self.wait(lambda: self.active() == s, timeout, f"active slave {s} (have {self.active()})")

    def miimon_ticks(self, n: int) -> None:
        """Let n of this bond's own miimon periods pass: the window in which the link monitor would act
        on a change, for a check that asserts that nothing happens.  Expressed in the interval this
        topology configured, so it follows a check that sets another miimon; no kernel constant."""
        time.sleep(n * self.miimon / 1000.0)

    def wait_peer_rx(self, before: dict[str, int], total: int, timeout: float = 5.0) -> dict[str, int]:
        """Wait until the switch-side peers have counted `total` more packets than `before` (or the
        timeout: the caller's assertions then say what is missing), and the counts have stopped moving."""
        t0, last = time.monotonic(), None
        while time.monotonic() - t0 < timeout:
            now = self.peer_rx()
            if sum(now[s] - before[s] for s in self.slaves) >= total and now == last:
                break
            last = now
            time.sleep(0.02)
        return {s: self.peer_rx()[s] - before[s] for s in self.slaves}


def active_slave(proc_text: str) -> str | None:
    """The "Currently Active Slave" of a /proc/net/bonding/BOND text (None when it says None)."""
    for line in proc_text.splitlines():
        if line.startswith("Currently Active Slave:"):
            v = line.split(":", 1)[1].strip()
            return None if v == "None" else v
    return None


def wait_until(pred, timeout: float = 10.0, what: str = "condition", poll: float = 0.02,
               exc: type[Exception] = AssertionError) -> float:
    """Poll pred() until it holds (return the seconds it took) or raise exc after timeout (an
    AssertionError, the kernel's FAIL; SetupNotEstablished when what is waited for is the check's setup)."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if pred():
            return time.monotonic() - t0
        time.sleep(poll)
    raise exc(f"timed out after {timeout}s waiting for {what}")


def ping(ns: str, dst: str, count: int = 5, interval: float = 0.05, check: bool = True, wait_s: int = 1) -> str:
    v6 = "-6 " if ":" in dst else ""
    return sh(f"ip netns exec {ns} ping {v6}-q -n -c {count} -i {interval} -W {wait_s} {dst}", check=check)


def setup_ping(ns: str, dst: str, count: int = 2, tries: int = 3,
               exc: type[Exception] = AssertionError) -> None:
    """A check's connectivity step before (or between) its measurements.  A starved guest (four on two
    host cores) can drop a ping or answer it late (seen: the loss check's one-try ping failed in 2 of 8
    boots of an unchanged kernel beside a CPU-bound process): try again.  If no try gets a reply, raise
    `exc`: by default the kernel's FAIL, because a bond that passes no traffic is broken (a mutant that
    transmits through a backup slave fails here, and must); SetupNotEstablished where the path also
    crosses what the host controls (the virtio slaves' link), a setup error."""
    why = ""
    for _ in range(tries):
        try:
            ping(ns, dst, count=count, wait_s=2)
            return
        except RuntimeError as e:
            why = str(e)
    raise exc(f"no reply to the ping from {ns} to {dst} in {tries} tries: {why[-200:]}")


# a UDP stream's bookkeeping across a failover (pure; the checks' streams keep send times and the
# set of sequence numbers received)

def loss_window_ms(send_t: list[float], received: set[int]) -> float:
    """The longest run of lost packets, in the sender's clock: from the send time of the last packet
    before it that arrived to that of the first after it that arrived (0 when nothing was lost).  The
    receiver's clock would add its own scheduling stalls (under TCG, hundreds of ms) to the outage."""
    longest, prev = 0.0, None
    for seq, t in enumerate(send_t):
        if seq in received:
            if prev is not None and seq - prev > 1:
                longest = max(longest, t - send_t[prev])
            prev = seq
    return longest * 1000.0


def lost_after(send_t: list[float], received: set[int], t: float) -> tuple[int, int]:
    """(lost, sent) among the packets sent at or after `t` (the sender's clock): whether traffic flows
    again once the bond has switched, apart from the loss while it had not yet noticed the cut."""
    after = [seq for seq, ts in enumerate(send_t) if ts >= t]
    return sum(1 for seq in after if seq not in received), len(after)


def wait_drained(arrived: Callable[[], int], done: Callable[[], bool], quiet_s: float = 0.3, cap_s: float = 3.0,
                 clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep) -> bool:
    """Once a stream's sender has stopped: wait until `done()` (its last packet arrived), or until
    `arrived()` (the count received) has not grown for quiet_s, at most cap_s; True when done.  Observed,
    not slept on: a loaded guest's receiving NIC hands the tail over late, and a receiver stopped too
    early counts packets in flight as lost."""
    t_end = clock() + cap_s
    n, t_grew = arrived(), clock()
    while not done():
        if clock() >= t_end:
            return False
        sleep(0.01)
        if arrived() != n:
            n, t_grew = arrived(), clock()
        elif clock() - t_grew > quiet_s:
            return False
    return True


def longest_gap_ms(send_t: list[float], t: float) -> float:
    """The longest interval between consecutive sends at or after `t` (ms; 0 with fewer than two)."""
    after = [ts for ts in send_t if ts >= t]
    return max((b - a for a, b in zip(after, after[1:])), default=0.0) * 1000.0


class Switch(NamedTuple):
    """A change of active slave after a veth cable event, in the kernel's clock (ms; see veth_switch_ms)."""
    total: float                 # the cable event to the change
    wait: float | None           # the cable event to the MII monitor's first run after it (the tick's phase)
    work: float | None           # the monitor's last run before the change to the change (its own work)
    runs: int = 0                # the monitor's runs from the cable event to the change
    gap_max: float | None = None  # the longest time between two of them (or from the event to the first):
    #                              a tick of a few jiffies by design, longer in a guest its host starved
    at: float | None = None      # when the cable event was (kernel ms)

    @property
    def retry(self) -> float | None:
        """Between the monitor's first run after the cable event and the run that made the change: runs
        that saw the change but could not take the RTNL, each trying again a jiffy later."""
        return None if self.wait is None or self.work is None else self.total - self.wait - self.work


def veth_switch_ms(events: list, carrier: str, t_req: float) -> Switch:
    """A veth cable pull or plug (BondTopo.cut or plug) to the bond's change of active slave that it
    causes, in the kernel's clock (ms): from the first `carrier` event ("carrier_off" or "carrier_on",
    FAILOVER_PROBES) at or after `t_req` (CLOCK_MONOTONIC ms, read just before the request) to the first
    change onto a slave after it.  veth_close() and veth_open() of the switch port set the carrier of both
    ends, the port's first, microseconds apart: the first is the pull (or plug).  With the MII monitor's
    runs in the trace, the interval splits into the wait for its first run after the cable event (the
    phase of its tick: anywhere in [0, miimon] by design) and the run that made the change (from its
    start; a run that could not take the RTNL tries again a jiffy later, and that retry is in neither).

    These bonds read the carrier (miimon) and another slave's carrier is up: being left with no active
    slave on the way, or no change at all, is the kernel's FAIL."""
    ev = [e for e in events if e.t_ms >= t_req]
    said = [e for e in ev if e.name not in BACKGROUND_PROBES]   # what an error shows: not every tick
    what = carrier.replace("_", "-")
    k_c = next((e for e in ev if e.name == carrier), None)
    if k_c is None:
        raise AssertionError(f"the kernel trace has no {what} after the request: "
                             f"{[(e.name, round(e.t_ms - t_req, 1)) for e in said][:12]}")
    changes = [e for e in ev if e.name == "change_active" and e.t_ms >= k_c.t_ms]
    onto = next((e for e in changes if e.args.get("new")), None)
    if onto is None:
        raise AssertionError(f"the bond did not change its active slave after the {what}: "
                             f"{[(e.name, round(e.t_ms - k_c.t_ms, 1)) for e in said][:12]}")
    if none := next((e for e in changes if e.t_ms < onto.t_ms and not e.args.get("new")), None):
        raise AssertionError(f"the bond had no active slave {none.t_ms - k_c.t_ms:.0f} ms after the {what}, "
                             "while another slave's carrier was up")
    return monitor_split(ev, k_c.t_ms, onto.t_ms)


def monitor_split(events: list, t_event: float, t_change: float) -> Switch:
    """A cable event at `t_event` to the change of active slave at `t_change` (kernel clock, ms), split at
    the MII monitor's runs between them (FAILOVER_PROBES' mii_monitor): the wait for the first (the
    tick's phase) and the last run's own work; with no run in the trace (an ARP monitor, or no probe on
    the monitor), no split."""
    runs = [e.t_ms for e in events if e.name == "mii_monitor" and t_event <= e.t_ms <= t_change]
    gaps = [b - a for a, b in zip([t_event] + runs, runs)]
    return Switch(t_change - t_event, runs[0] - t_event if runs else None, t_change - runs[-1] if runs else None,
                  len(runs), max(gaps) if gaps else None, t_event)


STARVED_JIFFIES = 2   # the MII monitor's tick run this many jiffies late: the host did not run the guest


def tick_lag(events: list, t0: float, t1: float) -> int | None:
    """The most jiffies by which the timer softirq ran the MII monitor's own timer late between t0 and t1
    (kernel ms): the timer each run of bond_mii_monitor (FAILOVER_PROBES' mii_monitor) queued for its next
    run (timer:timer_start by the same task just after it, ktrace.wheel_rounding: its `bucket_expiry`),
    when it expired (timer:timer_expire_entry at that `baseclk`: `now - baseclk`).  0 on a guest that
    runs at its pace.  A patch that changes the monitor's delay moves the expiry, not the lag; only a
    CPU that did not take the timer interrupt when it was due delays it, here a vCPU its host did not run
    (ktest.guest.lib.HostStarved).  Other delayed works are not asked: a deferrable one runs late by
    design on an idle CPU (seen: 18 jiffies of lag in a 100 ms failover whose monitor ran on time).
    None: no expiry of the monitor's timer in the window in the trace (no timer tracepoints)."""
    runs = [m for m in events if m.name == "mii_monitor" and m.t_ms <= t1]
    # each run's timer starts the next run: those before the last run ahead of t0 expired before it
    first = max((i for i, m in enumerate(runs) if m.t_ms < t0), default=0)
    due = {started.args["bucket_expiry"] for m in runs[first:]
           if (started := ktrace.wheel_rounding(events, m)) is not None}
    lags = [e.args["now"] - e.args["baseclk"] for e in events
            if e.name == "timer_expire_entry" and t0 <= e.t_ms <= t1 and "now" in e.args
            and e.args.get("baseclk") in due]
    return max(lags) if lags else None


def note_redone(record, redone: int, why: list[str], refused: list | None = None) -> None:
    """A check's record of its redone repetitions: how many, the first reasons, and what each switch
    refused as the host's timed (refuse_starved's `refused`)."""
    record.note("reps_redone", redone)
    if why:
        record.note("redone_because", "; ".join(why[:6]))
    if refused:
        record.note("starved_switches", [{"ms": ms, "lag_jiffies": lag} for ms, lag in refused])


def switch_lag(events: list, sw: Switch) -> int | None:
    """tick_lag over the switch `sw`; `events` must include the trace read before its request, which
    holds the timer the monitor's last run before the cable event queued."""
    return None if sw.at is None else tick_lag(events, sw.at, sw.at + sw.total)


def refuse_starved(lag: int | None, sw: Switch, refused: list | None = None) -> None:
    """HostStarved where the MII monitor's tick ran STARVED_JIFFIES or more late in the switch `sw`
    (switch_lag): what was timed is the host's, and the repetition is redone (lib.repeat).  Called once
    the topology is back as the next repetition needs it.  `refused` collects what each refused switch
    timed, (ms, lag in jiffies), for the check's notes: the record of what redoing left out."""
    if lag is not None and lag >= STARVED_JIFFIES:
        if refused is not None:
            refused.append((round(sw.total, 1), lag))
        raise HostStarved(f"the MII monitor's tick ran {lag} jiffies late in a switch of {sw.total:.1f} ms")


RUNS_MIN_EFFECT = 2.0      # monitor_runs: two more ticks than the base's is a change that matters


def record_monitor_split(record, kernel: list[Switch], judge_runs: bool = False) -> None:
    """The parts of these switches as context metrics: monitor_wait_kernel, monitor_retry_kernel and
    monitor_work_kernel (see Switch), when every switch was split; and the monitor's runs in each
    (monitor_runs; the verdict metric with `judge_runs`) and the longest gap between them
    (monitor_gap_max_kernel), which say whether a long switch counted more ticks or waited longer for
    each (a guest its host starved)."""
    for part in ("wait", "retry", "work", "gap_max"):
        xs = [getattr(k, part) for k in kernel]
        if xs and all(x is not None for x in xs):
            record.metric(f"monitor_{part}_kernel", xs, "ms", context=True)
    if kernel and all(k.runs for k in kernel):
        record.metric("monitor_runs", [float(k.runs) for k in kernel], "count", context=not judge_runs,
                      min_effect=RUNS_MIN_EFFECT if judge_runs else None)


class PeerNotify(NamedTuple):
    """A failover's peer notification in the kernel's clock (ms; see peer_notify_ms)."""
    first: float                 # the change of active slave to the first gratuitous ARP
    gaps: list[float]            # between consecutive gratuitous ARPs (the notification's interval)
    at: tuple[float, ...]        # when the bond sent each gratuitous ARP (CLOCK_MONOTONIC ms)

    @property
    def sent(self) -> int:
        """Gratuitous ARPs the bond sent."""
        return len(self.at)


def _notification(events: list, t_req: float) -> tuple[list, Any, list[float]]:
    """The events at or after `t_req`, the first change of active slave onto a slave among them (None if
    none), and the times of the gratuitous ARPs the bond sent after it: arp_send of a request on the
    bond's own net_device (FAILOVER_PROBES)."""
    ev = [e for e in events if e.t_ms >= t_req]
    onto = next((e for e in ev if e.name == "change_active" and e.args.get("new")), None)
    arps = [] if onto is None else [e.t_ms for e in ev if e.name == "arp_send" and e.t_ms >= onto.t_ms
                                    and e.args.get("dev") == onto.args.get("bond")
                                    and e.args.get("type") == ARPOP_REQUEST]
    return ev, onto, arps


def notifications_done(events: list, t_req: float, ticks: int = 20) -> bool:
    """Has the bond finished the peer notification of its first change of active slave after `t_req`
    (CLOCK_MONOTONIC ms), as the kernel's trace shows it: `ticks` runs of the MII monitor after its last
    gratuitous ARP (or after the change, before any)?  Counted in the monitor's ticks, not in wall-clock
    time, which a guest its host starves outlasts before its monitor has ticked (seen: a repetition whose
    capture ended on 200 ms of quiet saw 0 ARPs; the kernel sent its first 192.7 ms after the change)."""
    ev, onto, arps = _notification(events, t_req)
    if onto is None:
        return False
    since = arps[-1] if arps else onto.t_ms
    return sum(e.name == "mii_monitor" and e.t_ms > since for e in ev) >= ticks


def peer_notify_ms(events: list, t_req: float) -> PeerNotify:
    """The bond's change of active slave (the first onto a slave at or after `t_req`, CLOCK_MONOTONIC ms)
    to the gratuitous ARPs of its peer notification, in the kernel's clock: arp_send of a request on the
    bond's own net_device (FAILOVER_PROBES), which bonding causes with NETDEV_NOTIFY_PEERS, the first from
    bond_change_active_slave and the rest from the MII monitor's ticks, one every peer_notif_delay.  What
    the new active's peer receives is counted by the check; this is when the bond sent them.  No change,
    or no gratuitous ARP after it, is the kernel's FAIL."""
    ev, onto, arps = _notification(events, t_req)
    if onto is None:
        raise AssertionError("the kernel trace has no change of active slave after the request: "
                             f"{[(e.name, round(e.t_ms - t_req, 1)) for e in ev if e.name not in BACKGROUND_PROBES][:12]}")
    if not arps:
        raise AssertionError("the bond sent no gratuitous ARP after its change of active slave")
    return PeerNotify(arps[0] - onto.t_ms, [b - a for a, b in zip(arps, arps[1:])], tuple(arps))
