"""A bond over virtio-net NICs whose cables the host pulls: the seed article's setting, NIC slaves losing
carrier, not veth peers.

    netns kt_vb                                     netns kt_vp
    kv0 (active-backup) -- A (virtio, QEMU n0) --+
                        -- B (virtio, QEMU n1) --+-- QEMU hub 0 -- C (virtio, n2) 198.51.100.2

A and B are vng's `--network loop` pair, C is the NIC ktest adds to the same hub.  A hub floods every
frame to every port, as a switch floods broadcasts: the backup slave hears what the active one sends.
The host cuts a slave's link with QMP set_link (ktest's host link control): the guest sees virtio's
config-change interrupt and netif_carrier_off, as a cable pull.  198.51.100.0/24 is a documentation
prefix, used only inside these namespaces.  Leaving restores the cables, releases the NICs and moves
them back to the initial namespace, where the other checks expect them.
"""

from __future__ import annotations

import os
import socket
import time

import pytest

from ktest.guest.lib import (HostLinkError, config_irq, host_set_netdev, ip_batch, netns, nic_netdev, proc_net,
                            virtio_nics)
from bondlib import active_slave, wait_until
from ktest.guest.nl import IFF_LOWER_UP, ThreadedMonitor

VB, VP = "kt_vb", "kt_vp"
VBOND = "kv0"
VB_IP, VP_IP = "198.51.100.1", "198.51.100.2"
MIIMON_MS = 10
ARP_MS = 50


def _by_pci(nics: list[str]) -> list[str]:
    return sorted(nics, key=lambda n: os.path.realpath(f"/sys/class/net/{n}/device/.."))


class VirtioBond:
    def __init__(self, monitor: str = "miimon", prios: tuple[int, int] = (10, 0), reselect: str = "always",
                 missed_max: int | None = None):
        """missed_max: the ARP monitor's arp_missed_max (the kernel's default, 2, when None): how many
        intervals without a reply declare a slave down."""
        self.monitor, self.prios, self.reselect, self.missed_max = monitor, prios, reselect, missed_max

    def __enter__(self) -> "VirtioBond":
        nics = _by_pci(virtio_nics())
        if len(nics) < 3:
            pytest.skip(f"needs three virtio-net NICs on one QEMU hub (vng's loop pair and ktest's third), "
                        f"found {nics}")
        self.a, self.b, self.c = nics[:3]
        self.slaves = [self.a, self.b]
        self.netdev = {n: nic_netdev(n) for n in nics[:3]}     # mapped here: sysfs shows them only in this ns
        self.irq = {n: config_irq(n) for n in nics[:3]}        # /proc/interrupts is the system's: any ns
        for n in self.slaves:
            self.host(n, True)
        t0 = time.monotonic()
        ip_batch(None, [f"netns add {VB}", f"netns add {VP}"]
                 + [f"link set {n} down" for n in nics[:3]]
                 + [f"link set {n} netns {VB}" for n in self.slaves] + [f"link set {self.c} netns {VP}"])
        ip_batch(VP, ["link set lo up", f"addr add {VP_IP}/24 dev {self.c}", f"link set {self.c} up"])
        mon = f"miimon {MIIMON_MS}" if self.monitor == "miimon" else \
            f"arp_interval {ARP_MS} arp_ip_target {VP_IP}" + \
            (f" arp_missed_max {self.missed_max}" if self.missed_max else "")
        steps = ["link set lo up",
                 f"link add {VBOND} type bond mode active-backup {mon} primary_reselect {self.reselect}"]
        for n, prio in zip(self.slaves, self.prios):
            steps += [f"link set {n} master {VBOND}", f"link set {n} type bond_slave prio {prio}"]
        steps += [f"link set {VBOND} addrgenmode none", f"addr add {VB_IP}/24 dev {VBOND}", f"link set {VBOND} up"]
        ip_batch(VB, steps)
        with netns(VB):
            self.ifindex = {n: socket.if_nametoindex(n) for n in self.slaves}
        self.setup_ms = (time.monotonic() - t0) * 1000.0
        return self

    def __exit__(self, *exc):
        for n in self.slaves:
            try:
                self.host(n, True)
            except HostLinkError:
                pass
        ip_batch(VB, [f"link del {VBOND}"] + [f"link set {n} netns 1" for n in self.slaves], check=False)
        ip_batch(VP, [f"link set {self.c} netns 1"], check=False)
        ip_batch(None, [f"netns del {VB}", f"netns del {VP}"], check=False)

    # -- the host's side -----------------------------------------------------------------------------
    def host(self, nic: str, up: bool) -> dict:
        """Pull (up=False) or plug the cable of slave `nic` in QEMU; the host's acknowledgement."""
        return host_set_netdev(self.netdev[nic], up, irq=self.irq[nic])

    # -- state ---------------------------------------------------------------------------------------
    def active(self) -> str | None:
        return active_slave(proc_net(VB, f"bonding/{VBOND}"))

    def failures(self, nic: str) -> int:
        """The bond's "Link Failure Count" of slave `nic` (/proc/net/bonding, read in process)."""
        block = proc_net(VB, f"bonding/{VBOND}").split(f"Slave Interface: {nic}\n", 1)[1]
        for line in block.splitlines():
            if line.startswith("Link Failure Count:"):
                return int(line.split(":", 1)[1])
            if line.startswith("Slave Interface:"):
                break
        raise AssertionError(f"no Link Failure Count for {nic} in /proc/net/bonding/{VBOND}")

    def wait(self, pred, timeout: float = 10.0, what: str = "condition") -> None:
        wait_until(pred, timeout, what, poll=0.01)

    def wait_active(self, nic: str | None, timeout: float = 10.0) -> None:
        self.wait(lambda: self.active() == nic, timeout, f"active slave {nic} (have {self.active()})")

    def monitor_events(self) -> ThreadedMonitor:
        """A link-event monitor in the bond's namespace (the slaves' carrier, the bond's failover), read
        by a thread of its own so that each event is stamped on arrival."""
        with netns(VB):
            return ThreadedMonitor()

    def carrier_off(self, nic: str):
        idx = self.ifindex[nic]
        return lambda e: e.index == idx and e.kind == "NEWLINK" and not e.flags & IFF_LOWER_UP

    def carrier_on(self, nic: str):
        idx = self.ifindex[nic]
        return lambda e: e.index == idx and e.kind == "NEWLINK" and bool(e.flags & IFF_LOWER_UP)

    @staticmethod
    def failover(e) -> bool:
        return e.name == VBOND and e.ifla_event == "BONDING_FAILOVER"
