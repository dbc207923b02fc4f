"""802.3ad between two bonds in two namespaces, LACP over veth (no bridge: LACPDUs are link-local)."""

from __future__ import annotations

import re
import subprocess
import time

import pytest

from ktest.guest.lib import ip_batch, proc_net, sh

A, B = "kt_la", "kt_lb"
A_IP, B_IP = "198.51.100.1", "198.51.100.2"
# LACP port state bits (IEEE 802.1AX)
SYNC, COLLECTING, DISTRIBUTING = 0x08, 0x10, 0x20


def proc(ns: str, bond: str) -> str:
    return proc_net(ns, f"bonding/{bond}")


def slaves(text: str) -> dict[str, dict]:
    out = {}
    for block in text.split("Slave Interface: ")[1:]:
        name = block.split("\n", 1)[0].strip()
        agg = re.search(r"Aggregator ID: (\d+)", block)
        actor = re.search(r"details actor lacp pdu:.*?port state: (\d+)", block, re.S)
        partner = re.search(r"details partner lacp pdu:.*?port state: (\d+)", block, re.S)
        out[name] = {"agg": int(agg.group(1)) if agg else None,
                     "actor_state": int(actor.group(1)) if actor else 0,
                     "partner_state": int(partner.group(1)) if partner else 0,
                     "mii": re.search(r"MII Status: (\w+)", block).group(1)}
    return out


def active_agg(text: str) -> dict:
    m = re.search(r"Active Aggregator Info:\s+Aggregator ID: (\d+)\s+Number of ports: (\d+).*?"
                  r"Partner Mac Address: ([0-9a-f:]+)", text, re.S)
    return {"id": int(m.group(1)), "ports": int(m.group(2)), "partner": m.group(3)} if m else {}


def _drop_pair() -> None:
    ip_batch(None, [f"netns del {ns}" for ns in (A, B)], check=False)


def _build_pair() -> None:
    """Two 802.3ad bonds joined by two veth pairs, built in five `ip -batch` execs; both bonds come up
    last, A then B."""
    _drop_pair()
    ip_batch(None, [f"netns add {ns}" for ns in (A, B)])
    bond = "type bond mode 802.3ad lacp_rate fast miimon 50"
    ip_batch(A, ["link set lo up", f"link add ka0 {bond}"]
             + [f"link add a{i} type veth peer name b{i} netns {B}" for i in range(2)])
    ip_batch(B, ["link set lo up", f"link add kb0 {bond}"] + [f"link set b{i} master kb0" for i in range(2)])
    ip_batch(A, [f"link set a{i} master ka0" for i in range(2)] + [f"addr add {A_IP}/24 dev ka0", "link set ka0 up"])
    ip_batch(B, [f"addr add {B_IP}/24 dev kb0", "link set kb0 up"])


@pytest.fixture
def lacp_pair():
    _build_pair()
    yield
    _drop_pair()


def _converged() -> bool:
    a, b = proc(A, "ka0"), proc(B, "kb0")
    ok = SYNC | COLLECTING | DISTRIBUTING
    return all(active_agg(t).get("ports") == 2 and all((s["partner_state"] & ok) == ok for s in slaves(t).values())
               for t in (a, b))


def _time_to_converge() -> float:
    """ms from both bonds up to both aggregators of 2 ports with every partner in sync, collecting and
    distributing, polled every 20 ms (the state machines tick every 100 ms; /proc is read in process, and a finer poll
    would take the CPU the state machines run on)."""
    t0 = time.monotonic()
    deadline = t0 + 30
    while not _converged():
        assert time.monotonic() < deadline, f"LACP did not converge in 30 s:\n{proc(A, 'ka0')}"
        time.sleep(0.02)
    return (time.monotonic() - t0) * 1000.0


def test_aggregator_forms_and_survives_a_port_failure(record, reps, lacp_pair):
    """Two bonds negotiate one aggregator of both ports; a port fails and the other carries on.
    lacp_converge is the time from both bonds up to a converged aggregator on both sides (user space,
    polled every 20 ms), over max(3, reps // 2) formations of the pair a boot: the fixture's, then the
    pair rebuilt from scratch each time, so that every sample takes the same path."""
    converge = [_time_to_converge()]
    for _ in range(max(3, reps // 2) - 1):
        _build_pair()
        converge.append(_time_to_converge())
    # the smallest change that matters: half the fast-rate LACPDU period (1 s) at the centre, a whole one
    # at the p90.  Convergence waits on periodic LACPDUs and 100 ms state-machine ticks, so one boot's
    # formations spread by some 800 ms on their own (2459-3344 ms in one 6.12 run under TCG); a change
    # smaller than half a period is the protocol's own phase, one of a period is an exchange more
    record.metric("lacp_converge", converge, "ms", min_effect=500.0, min_effect_tail=1000.0)
    a, b = proc(A, "ka0"), proc(B, "kb0")
    mac_a = sh(f"ip netns exec {A} cat /sys/class/net/ka0/address").strip()
    mac_b = sh(f"ip netns exec {B} cat /sys/class/net/kb0/address").strip()
    assert active_agg(a)["partner"] == mac_b and active_agg(b)["partner"] == mac_a, "each bond's partner is the other"
    sa = slaves(a)
    assert len({s["agg"] for s in sa.values()}) == 1 and next(iter(sa.values()))["agg"] == active_agg(a)["id"], \
        "both ports are in the active aggregator"
    sh(f"ip netns exec {A} ping -q -c 3 -i 0.1 -W 1 {B_IP}")
    # one port fails: the other carries on
    sh(f"ip -n {B} link set b0 down")
    deadline = time.monotonic() + 10
    while active_agg(proc(A, "ka0")).get("ports") != 1:   # a0 leaves the aggregator (LACPDUs stop)
        assert time.monotonic() < deadline, f"the failed port never left the aggregator:\n{proc(A, 'ka0')}"
        time.sleep(0.05)
    sh(f"ip netns exec {A} ping -q -c 5 -i 0.1 -W 1 {B_IP}")


def test_actor_port_prio(request):
    """Newer kernels let each port carry an actor port priority; detect support, do not assume it.
    iproute2's support is known before any topology is built: a skip costs no setup."""
    help_text = subprocess.run(["ip", "link", "help", "bond_slave"], capture_output=True, text=True)
    if "actor_port_prio" not in help_text.stdout + help_text.stderr:
        pytest.skip("iproute2 here cannot set actor_port_prio (the kernel may support it)")
    request.getfixturevalue("lacp_pair")
    sh(f"ip -n {A} link set a0 type bond_slave actor_port_prio 100")
    assert "actor_port_prio 100" in sh(f"ip -n {A} -d link show a0")
