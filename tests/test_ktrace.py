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


# timer:timer_start as TP_printk writes it (kernel/time/timer.c, include/trace/events/timer.h); the
# pointer is hashed, and may be all digits
TIMERS = """\
     kworker/u8:1-25      [001] .....   100.000000: linkwatch_run: (linkwatch_event+0x0/0x30)
              ip-301      [000] .....   100.400000: carrier_off: (netif_carrier_off+0x0/0x50) dev=0xffff888003a5c000
     kworker/1:1-30       [001] d.s1.   100.400005: timer_start: timer=00000000a1b2c3d4 function=delayed_work_timer_fn expires=4294968100 [timeout=40] bucket_expiry=4294968101 cpu=1 idx=36 flags=
              ip-301      [000] d..1.   100.400010: timer_start: timer=0000000012345678 function=delayed_work_timer_fn expires=4294968000 [timeout=150] bucket_expiry=4294968006 cpu=0 idx=90 flags=
              ip-301      [000] d..1.   100.402000: timer_start: timer=0000000012345678 function=delayed_work_timer_fn expires=4294968000 [timeout=150] bucket_expiry=4294968008 cpu=0 idx=90 flags=
"""


def test_a_delayed_works_timer_tells_how_far_the_wheel_rounded_its_delay_up():
    ev = ktrace.parse(TIMERS)
    assert [e.name for e in ev] == ["linkwatch_run", "carrier_off", "timer_start", "timer_start", "timer_start"]
    off = ev[1]
    assert (off.cpu, off.pid) == (0, 301) and (ev[3].cpu, ev[3].pid) == (0, 301) and (ev[2].cpu, ev[2].pid) == (1, 30)
    assert ev[3].args == {"timer": 12345678, "expires": 4294968000, "timeout": 150, "bucket_expiry": 4294968006,
                          "cpu": 0, "idx": 90}
    # the carrier-off's own timer: the same task's, at once; another task's timer just before it is not it
    t = ktrace.wheel_rounding(ev, off)
    assert t is ev[3] and t.args["bucket_expiry"] - t.args["expires"] == 6
    # a timer started later than the queuing could have been is some other work's
    assert ktrace.wheel_rounding(ev, off, within_ms=0.005) is None
    # where the task is not known, the CPU tells
    off.pid = None
    assert ktrace.wheel_rounding(ev, off) is ev[3]
    # a work queued with no delay starts no timer: nothing to round
    no_delay = TIMERS.replace("[timeout=150]", "[timeout=0]")
    assert ktrace.wheel_rounding(ktrace.parse(no_delay), off) is None


def test_a_jiffy_is_measured_between_timer_events_far_enough_apart():
    assert ktrace.jiffy_ms([(1000.0, 4294968000), (2000.0, 4294968250)]) == 4.0
    assert ktrace.jiffy_ms([(1000.0, 4294968000), (1200.0, 4294968050)]) is None     # 50 jiffies: too close
    assert ktrace.jiffy_ms([(1000.0, 4294968000)]) is None


def test_a_tracepoint_is_enabled_with_its_filter_and_a_missing_one_is_said(tmp_path, monkeypatch):
    """KTrace on a stand-in tracefs (plain files): what it writes, and the jiffy from what it read."""
    for f in ("kprobe_events", "trace_clock", "trace", "trace_pipe", "events/enable", "events/ktest/enable",
              "events/timer/timer_start/enable", "events/timer/timer_start/filter"):
        (tmp_path / f).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / f).write_text("")
    monkeypatch.setattr(ktrace, "root", lambda: tmp_path)
    monkeypatch.setattr(ktrace, "symbol", lambda name: 0xffffffff810a1b20 if name == "delayed_work_timer_fn" else None)
    t = ktrace.KTrace({"carrier_off": ("netif_carrier_off", "dev=%di:x64")},
                      {"timer/timer_start": ("function", "delayed_work_timer_fn"),
                       "timer/timer_expire_entry": ("function", "delayed_work_timer_fn"),
                       "sched/sched_wakeup": ("function", "no_such_symbol")})
    assert (tmp_path / "events/timer/timer_start/filter").read_text() == "function == 0xffffffff810a1b20"
    assert (tmp_path / "events/timer/timer_start/enable").read_text() == "1"
    assert t.tracepoints == ["timer/timer_start"] and len(t.missing) == 2
    assert "no tracepoint" in t.missing[0] and "no address for no_such_symbol" in t.missing[1]
    (tmp_path / "trace_pipe").write_text(TIMERS)
    assert len(t.read()) == 5 and t.jiffy_ms() is None          # all started in one jiffy
    with open(tmp_path / "trace_pipe", "a") as f:
        f.write("  ip-301  [000] d..1.   101.400005: timer_start: timer=1 function=delayed_work_timer_fn "
                "expires=4294968460 [timeout=150] bucket_expiry=4294968464 cpu=0 idx=90 flags=\n")
    assert len(t.read()) == 1 and t.jiffy_ms() == 4.0          # 1000 ms and 250 jiffies after the first start
    t.close()
    assert (tmp_path / "events/timer/timer_start/enable").read_text() == "0"


def test_how_late_the_timer_softirq_ran_the_timers_of_a_window():
    """timer_expire_entry lines as 6.12 prints them: `now` is jiffies when the softirq ran the timer,
    `baseclk` the wheel's jiffy it expired at.  A vCPU its host preempted for 100 ms runs them 25 jiffies
    late at HZ=250; only the window's timers count."""
    from ktest.guest.ktrace import parse, timer_lag

    lines = "\n".join([
        " <idle>-0 [001] ..s1. 100.000100: timer_expire_entry: timer=00000000a1b2c3d4 "
        "function=delayed_work_timer_fn now=4295000000 baseclk=4295000000",
        " <idle>-0 [000] ..s1. 100.012100: timer_expire_entry: timer=00000000a1b2c3d4 "
        "function=delayed_work_timer_fn now=4295000004 baseclk=4295000003",
        " kworker/0:1-31 [000] ..s1. 100.200000: timer_expire_entry: timer=00000000deadbeef "
        "function=delayed_work_timer_fn now=4295000050 baseclk=4295000025",
    ])
    ev = parse(lines)
    assert [e.name for e in ev] == ["timer_expire_entry"] * 3 and ev[2].args["now"] == 4295000050
    assert timer_lag(ev, 100_000.0, 100_100.0) == 1
    assert timer_lag(ev, 100_000.0, 100_300.0) == 25
    assert timer_lag(ev, 100_300.0, 100_400.0) is None, "no timer expired in the window"
