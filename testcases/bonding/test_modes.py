"""How the other modes transmit: balance-rr spreads, broadcast duplicates, balance-xor hashes flows."""

from __future__ import annotations

import socket

import pytest

from bondlib import H1, H2_IP, BondTopo, setup_ping
from ktest.guest.lib import netns


def _udp_from_h1(flows: int, per_flow: int) -> int:
    with netns(H1):
        socks = [socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for _ in range(flows)]
    for s in socks:
        s.bind(("0.0.0.0", 0))
    n = 0
    for _ in range(per_flow):
        for s in socks:
            s.sendto(b"ktest", (H2_IP, 9))
            n += 1
    for s in socks:
        s.close()
    return n


def _all_up(t: BondTopo) -> None:
    t.wait(lambda: all(t.mii_status().get(s) == "up" for s in t.slaves), what="all slaves up")


@pytest.mark.parametrize("mode", ["balance-rr", "broadcast", "balance-xor"])
def test_transmit_distribution(record, mode):
    opts = "xmit_hash_policy layer3+4" if mode == "balance-xor" else ""
    with BondTopo(mode=mode, opts=opts) as t:
        _all_up(t)
        setup_ping(H1, H2_IP)
        before = t.peer_rx()
        sent = _udp_from_h1(flows=30 if mode == "balance-xor" else 1, per_flow=2 if mode == "balance-xor" else 60)
        d = t.wait_peer_rx(before, 3 * sent if mode == "broadcast" else sent)
        record.note("tx_per_slave", d)
        record.note("sent", sent)
        if mode == "balance-rr":
            assert all(v >= sent // 3 - 2 for v in d.values()), f"round robin over 3 slaves: {d}"
        elif mode == "broadcast":
            assert all(v >= sent for v in d.values()), f"broadcast sends every packet on every slave: {d}"
        else:
            assert sum(v > 0 for v in d.values()) >= 2, f"30 flows hash onto more than one slave: {d}"
            assert sum(d.values()) < 2 * sent, f"xor does not duplicate: {d}"
