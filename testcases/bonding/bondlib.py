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

from ktest.guestlib import netns, sh
from ktest.nl import Link

H1, SW, H2 = "kt_h1", "kt_sw", "kt_h2"
BOND = "kb0"
H1_IP, H2_IP = "192.0.2.1", "192.0.2.2"
H1_IP6, H2_IP6 = "2001:db8::1", "2001:db8::2"


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
        self.teardown()
        for ns in (H1, SW, H2):
            sh(f"ip netns add {ns} && ip -n {ns} link set lo up")
        sh(f"ip -n {SW} link add br0 type bridge && ip -n {SW} link set br0 up")
        sh(f"ip -n {H1} link add {BOND} type bond mode {self.mode} miimon {self.miimon} {self.opts}")
        # (options naming a slave, e.g. primary, go in `post`: applied once the slaves exist)
        for i, (s, p) in enumerate(zip(self.slaves, self.peers)):
            sh(f"ip link add {s} netns {H1} type veth peer name {p} netns {SW}")
            sh(f"ip -n {SW} link set {p} master br0 up")
            sh(f"ip -n {H1} link set {s} master {BOND}")
            if self.prios is not None:
                sh(f"ip -n {H1} link set {s} type bond_slave prio {self.prios[i]}")
        if self.post:
            self.bond_set(self.post)
        sh(f"ip link add h2e netns {H2} type veth peer name ph2 netns {SW}")
        sh(f"ip -n {SW} link set ph2 master br0 up")
        sh(f"ip -n {H2} addr add {H2_IP}/24 dev h2e && ip -n {H2} addr add {H2_IP6}/64 dev h2e nodad && "
           f"ip -n {H2} link set h2e up")
        # no link-local address on the bond: one unsolicited NA per notification, for the one address
        sh(f"ip -n {H1} link set {BOND} addrgenmode none")
        sh(f"ip -n {H1} addr add {H1_IP}/24 dev {BOND} && ip -n {H1} addr add {H1_IP6}/64 dev {BOND} nodad && "
           f"ip -n {H1} link set {BOND} up")
        if self.mode in ("active-backup", "balance-tlb", "balance-alb"):
            self.wait(lambda: self.active() is not None, what="an active slave")
        else:  # no single active slave: wait for the bond to be up
            self.wait(lambda: sh(f"ip netns exec {H1} cat /sys/class/net/{BOND}/operstate").strip() == "up",
                      what="the bond up")
        return self

    def __exit__(self, *exc):
        self.teardown()

    @staticmethod
    def teardown() -> None:
        for ns in (H1, SW, H2):
            sh(f"ip netns del {ns}", check=False)

    # -- state ------------------------------------------------------------------------------------
    def info(self) -> dict:
        return ipj(H1, f"-d link show {BOND}")[0]["linkinfo"]["info_data"]

    def active(self) -> str | None:
        v = sh(f"ip netns exec {H1} cat /sys/class/net/{BOND}/bonding/active_slave").strip()
        return v or None

    def proc(self) -> str:
        return sh(f"ip netns exec {H1} cat /proc/net/bonding/{BOND}")

    def proc_active(self) -> str | None:
        for line in self.proc().splitlines():
            if line.startswith("Currently Active Slave:"):
                v = line.split(":", 1)[1].strip()
                return None if v == "None" else v
        return None

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
        t0 = time.monotonic()
        while time.monotonic() - t0 < timeout:
            if pred():
                return time.monotonic() - t0
            time.sleep(0.02)
        raise AssertionError(f"timed out after {timeout}s waiting for {what}")

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


def ping(ns: str, dst: str, count: int = 5, interval: float = 0.05, check: bool = True) -> str:
    v6 = "-6 " if ":" in dst else ""
    return sh(f"ip netns exec {ns} ping {v6}-q -n -c {count} -i {interval} -W 1 {dst}", check=check)
