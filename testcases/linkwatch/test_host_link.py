"""Link events that come from the host, as in the microVM of the linkwatch report: the virtio-net NIC's
link is cut and restored in QEMU (QMP set_link, through ktest's host link control), not by `ip link`
in the guest.  The guest sees virtio's config-change interrupt, then netif_carrier_off/on, then
linkwatch.

Each repetition starts from an observed state of the rate limit (lwbench: expired, or armed by an
observed non-urgent run on a spare dummy), asks the host to change the link and times, in the guest's
CLOCK_MONOTONIC, from the host's acknowledgement to the RTM_NEWLINK that shows the new operstate.  The
request-to-ack round trip is recorded as context: it bounds when the carrier changed."""

from __future__ import annotations

import time

import pytest

from lwbench import PreconditionNotMet, check_invariants, is_oper_down, is_running_up, repeat
from ktest.guestlib import HostLinkError, host_set_link
from ktest.nl import ifindex, now_ms

MIN_EFFECT_MS = 50.0          # as the other linkwatch latencies (test_operstate.py)
MIN_EFFECT_TAIL_MS = 200.0


def _set(nic: str, up: bool) -> dict:
    """A HostLinkError propagates: the plugin reports the check as ERROR, "infrastructure: ..."."""
    return host_set_link(nic, up)


def _after(ack: dict) -> float:
    """When the cable changed, in the guest's clock (ms): the NIC's config-change interrupt as the guest
    saw it fire (polled every 0.2 ms while the request was out), else the host's acknowledgement, which
    a look at a file on 9p can see tens of ms late under load."""
    return (ack["t_irq"] if ack.get("t_irq") is not None else ack["t_ack"]) * 1000.0


def _irq_lead(acks: list[dict]) -> list[float]:
    """How long before the ack was seen the interrupt had fired (ms): the error the ack would add."""
    return [(a["t_ack"] - a["t_irq"]) * 1000.0 for a in acks if a.get("t_irq") is not None]


@pytest.fixture
def nic(bench, spare_nic):
    """The spare virtio NIC, admin up and running, with its host link up again afterwards."""
    idx = ifindex(spare_nic)
    bench.ensure_up(idx)
    yield spare_nic, idx
    try:
        host_set_link(spare_nic, True)
    except HostLinkError:
        pass


@pytest.mark.parametrize("limit", ["expired", "armed"])
def test_host_cable_pull_and_restore(bench, record, reps, nic, limit):
    """Cable out, then back in, on an admin-up virtio NIC.  Carrier off is not an urgent linkwatch event
    (linkwatch_urgent_event(): carrier is not ok), so with the limit armed its operstate DOWN waits for
    the rest of the interval; carrier on finds the qdisc deactivated by the off (qdisc_tx_changing), so
    it is urgent either way.  With the limit armed, the verdict metric is when the DOWN came after the
    observed arming run (about one interval, if the cut waits for it); cut_to_down is context."""
    name, idx = nic
    off_ms, on_ms, rtt, timelines, acks = [], [], [], [], []

    def one():
        t_arm = bench.arm() if limit == "armed" else None
        if t_arm is None:
            bench.expire()
        bench.drain()
        seen: list = []
        ack = _set(name, False)
        if limit == "armed" and _after(ack) - t_arm > bench.interval_ms() * 0.8:
            raise PreconditionNotMet(f"the cut came {_after(ack) - t_arm:.0f} ms after the arming run: "
                                     "most of the interval had gone")
        down = bench.wait(is_oper_down(idx), "operstate DOWN after the host cut the link", seen)
        ack_on = _set(name, True)
        up = bench.wait(is_running_up(idx), "RUNNING + UP after the host restored the link", seen)
        t0 = _after(ack)
        tl = [{"t_ms": 0.0, "event": "host: link off (config interrupt)"},
              {"t_ms": round(_after(ack_on) - t0, 3), "event": "host: link on (config interrupt)"}]
        tl += [e.to_json(t0) for e in seen if e.index == idx]
        check_invariants(tl)
        rtt.extend([ack["request_ms"], ack_on["request_ms"]])
        acks.extend([ack, ack_on])
        # armed: when the DOWN came after the observed arming run, which does not depend on how late in
        # the interval the cut happened to land (nor on the measured interval, which load can stretch)
        release = down.t_ms - t_arm if t_arm is not None else None
        return down.t_ms - _after(ack), up.t_ms - _after(ack_on), sorted(tl, key=lambda e: e["t_ms"]), release

    results, redone = repeat(reps, one)
    off_ms, on_ms = [r[0] for r in results], [r[1] for r in results]
    if limit == "armed":
        record.metric("arm_to_down", [r[3] for r in results], "ms", min_effect=MIN_EFFECT_MS,
                      min_effect_tail=MIN_EFFECT_TAIL_MS)
        record.metric("cut_to_down", off_ms, "ms", context=True)
    else:
        record.metric("cut_to_down", off_ms, "ms", min_effect=MIN_EFFECT_MS, min_effect_tail=MIN_EFFECT_TAIL_MS)
    record.metric("restore_to_running", on_ms, "ms", min_effect=MIN_EFFECT_MS, min_effect_tail=MIN_EFFECT_TAIL_MS)
    record.metric("host_request_rtt", rtt, "ms", context=True)
    record.metric("irq_before_ack", _irq_lead(acks), "ms", context=True)
    record.note("interrupt_seen", f"{len(_irq_lead(acks))} of {len(acks)} changes")
    record.timeline("cut_and_restore", sorted(results, key=lambda r: r[0])[len(results) // 2][2])
    record.note("reps_redone", redone)
    record.note("rate_limit_interval_ms", bench.interval_ms())
    # the kernel must end where the host left the link: the wait()s above fail otherwise


@pytest.mark.parametrize("gap_ms", [50, 200])
def test_host_short_flap(bench, record, reps, nic, gap_ms):
    """Cable out and back in within a fraction of the interval, the limit armed: what does the guest's
    userspace see?  The off is not urgent and waits; whether the on arrives while it is still pending,
    and so whether operstate DOWN is ever reported, is measured: per repetition, whether a DOWN was seen
    and when RUNNING + UP was last reported, after the observed arming run (and, as context, after the
    host's acknowledgement of the restore)."""
    name, idx = nic
    saw_down, to_running = [], []

    def one():
        t_arm = bench.arm()
        bench.drain()
        seen: list = []
        ack = _set(name, False)
        time.sleep(gap_ms / 1000.0)
        ack_on = _set(name, True)
        if _after(ack_on) - t_arm > bench.interval_ms() * 0.95:
            raise PreconditionNotMet(f"the restore came {_after(ack_on) - t_arm:.0f} ms after the arming run: "
                                     "the limit had (nearly) expired")
        # settle: one full interval after the restore, every pending event has been processed
        deadline = _after(ack_on) + bench.interval_ms() * 1.05 + 50.0
        while now_ms() < deadline:
            seen.extend(bench.mon.events(max(1.0, deadline - now_ms())))
        bench._note(seen)
        mine = [e for e in seen if e.index == idx]
        downs = [e for e in mine if is_oper_down(idx)(e)]
        ups = [e for e in mine if is_running_up(idx)(e)]
        assert mine and is_running_up(idx)(mine[-1]), \
            f"after the flap the last report must be RUNNING + UP: {[e.to_json(_after(ack)) for e in mine]}"
        t0 = _after(ack)
        tl = [{"t_ms": 0.0, "event": "host: link off (config interrupt)"},
              {"t_ms": round(_after(ack_on) - t0, 3), "event": "host: link on (config interrupt)"}]
        tl += [e.to_json(t0) for e in mine]
        check_invariants(tl)
        return ((1.0 if downs else 0.0), ups[-1].t_ms - _after(ack_on), sorted(tl, key=lambda e: e["t_ms"]),
                ups[-1].t_ms - t_arm)

    results, redone = repeat(reps, one)
    saw_down = [r[0] for r in results]
    record.metric("down_reported", saw_down, "count", context=True)
    # when userspace last heard RUNNING + UP, after the observed arming run (see the cable pull)
    record.metric("arm_to_last_running", [r[3] for r in results], "ms", min_effect=MIN_EFFECT_MS,
                  min_effect_tail=MIN_EFFECT_TAIL_MS)
    record.metric("restore_to_last_running", [r[1] for r in results], "ms", context=True)
    record.timeline("flap", results[len(results) // 2][2])
    record.note("reps_redone", redone)
    record.note("down_reported_in_reps", f"{int(sum(saw_down))} of {len(saw_down)}")
