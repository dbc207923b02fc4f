"""ktest.guest.ktrace's parser on trace_pipe lines as the kernel writes them for kprobe events (no VM)."""

from ktest.guest import ktrace

PIPE = """\
          <idle>-0       [000] d.h2.    41.113000: config_irq: (virtnet_config_changed+0x0/0x40)
     kworker/0:1-12      [000] .....    41.114250: carrier_off: (netif_carrier_off+0x0/0x50) dev=0xffff888003a5c000
     kworker/0:2-31      [001] .....    41.120500: linkwatch_run: (linkwatch_event+0x0/0x30)
     kworker/0:2-31      [001] .....    41.121000: notify: (netdev_state_change+0x0/0x90) dev=0xffff888003a5c000
     kworker/0:2-31      [001] .....    41.121100: notify: (netdev_state_change+0x0/0x90) dev=0xffff888003b00000
# a comment line, and a torn one
     kworker/0:2-31      [001] .....    41.1
"""


def test_kprobe_lines_become_events_in_ms_with_their_device():
    ev = ktrace.parse(PIPE)
    assert [e.name for e in ev] == ["config_irq", "carrier_off", "linkwatch_run", "notify", "notify"]
    assert ev[0].t_ms == 41113.0 and ev[1].args == {"dev": 0xffff888003a5c000}
    nic = ev[1].args["dev"]
    down = ktrace.first(ev, "notify", ev[1].t_ms, dev=nic)
    assert down is ev[3] and down.t_ms - ev[0].t_ms == 8.0
    assert ktrace.last(ev, "linkwatch_run", down.t_ms) is ev[2]
    assert ktrace.first(ev, "notify", 0, dev=0x1) is None
    assert ev[3].to_json(ev[0].t_ms) == {"t_ms": 8.0, "event": "kernel: notify", "dev": "0xffff888003a5c000"}
    # the last notification of a device before a moment (the RTM_NEWLINK that user space saw)
    assert ktrace.last(ev, "notify", 41121.2, dev=nic) is ev[3]
    assert ktrace.last(ev, "notify", 41121.2) is ev[4]
    assert ktrace.last(ev, "notify", 41120.9, dev=nic) is None


def test_optional_gives_none_in_a_kernel_without_kprobe_events(monkeypatch):
    monkeypatch.setattr(ktrace, "available", lambda: "no kprobe events in this kernel")
    with ktrace.optional({"notify": ("netdev_state_change", "dev=%di:x64")}) as t:
        assert t is None
