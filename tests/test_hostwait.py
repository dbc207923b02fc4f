"""The host's record of how long a guest waited for a host CPU (ktest.boot.hostwait): the window arithmetic
on recorded samples, and the /proc readers on real processes of this host."""

import os
import shutil
import subprocess
import sys

import pytest

from ktest.boot.checks import add_host_wait
from ktest.boot.hostwait import Sample, Sampler, clock_offset, console_stamp, read_threads, session_qemus, wait_share

MS = 1_000_000


def test_wait_share_is_the_waited_part_of_the_wanted_time_over_threads_seen_at_both_ends():
    samples = [Sample(10.0, {1: (0, 0), 2: (0, 0)}),
               Sample(11.0, {1: (100 * MS, 300 * MS), 2: (100 * MS, 100 * MS), 3: (999 * MS, 0)}),
               Sample(12.0, {1: (200 * MS, 600 * MS), 2: (150 * MS, 250 * MS)})]
    # 10-11 s: thread 3 appeared meanwhile and is left out: 200 ms ran, 400 ms waited
    assert wait_share(samples, 10.0, 11.0) == pytest.approx(400 / 600)
    # a window inside 10.2-10.8 takes the samples around it, never fewer
    assert wait_share(samples, 10.2, 10.8) == pytest.approx(400 / 600)
    assert wait_share(samples, 10.5, 11.5) == pytest.approx(850 / 1200)      # 10-12 s: 350 ran, 850 waited
    assert wait_share(samples, 9.0, 11.0) is None and wait_share(samples, 11.0, 13.0) is None
    assert wait_share([Sample(1.0, {1: (5, 5)}), Sample(2.0, {1: (5, 5)})], 1.0, 2.0) is None   # nothing wanted


def test_a_window_the_guest_outlived_by_less_than_the_slack_ends_at_the_last_sample():
    samples = [Sample(10.0, {1: (0, 0)}), Sample(10.2, {1: (100 * MS, 100 * MS)}),
               Sample(10.4, {1: (200 * MS, 100 * MS)})]
    # the guest powered off 0.04 s after its last record and 0.1 s after the last reading
    assert wait_share(samples, 10.0, 10.5) is None
    assert wait_share(samples, 10.0, 10.5, slack=0.4) == pytest.approx(100 / 300)
    assert wait_share(samples, 10.0, 10.9, slack=0.4) is None        # more than the slack is missing
    assert wait_share(samples, 10.4, 10.5, slack=0.4) is None        # nothing sampled inside the window


def test_the_guest_clock_is_placed_by_the_console_line_that_arrived_soonest():
    assert console_stamp("[   47.701503] ktest: check start x") == pytest.approx(47.701503)
    assert console_stamp("ktest: no stamp") is None and console_stamp("[ not a stamp] x") is None
    assert clock_offset([(100.5, 50.0), (100.2, 50.1), (103.0, 52.0)]) == pytest.approx(50.1)
    assert clock_offset([]) is None
    s = Sampler(sid=0)
    for host, line in ((100.5, "[   50.000000] a"), (100.9, "[   50.100000] b"), (101.0, "no stamp"),
                       (100.2, "[   50.100000] c")):
        s.console(line, host)
    assert s.offset() == pytest.approx(50.1) and len(s.pairs) == 2     # only the pairs that lowered it
    s.samples = [Sample(149.0, {7: (0, 0)}), Sample(152.0, {7: (MS, 3 * MS)})]
    assert s.share_guest(99.5, 101.0) == pytest.approx(0.75)      # host 149.6-151.1
    results = [{"id": "f.py::t", "finished_at_uptime_s": 101.0}, {"id": "f.py::t::case", "finished_at_uptime_s": 101.0},
               {"id": "f.py::u", "finished_at_uptime_s": 120.0}]     # 18 s past the last sample
    add_host_wait(results, [{"id": "f.py::t", "uptime_s": 99.5}, {"id": "f.py::u", "uptime_s": 101.0}], s)
    # a sub-result takes its program's window; a window past the last sample gets none
    assert [r.get("host_wait_share") for r in results] == [0.75, 0.75, None]


def test_read_threads_reads_a_real_process_that_ran():
    child = subprocess.Popen([sys.executable, "-c", "sum(range(3_000_000)); print('done', flush=True); input()"],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline().strip() == "done"
        got = read_threads([child.pid])
        assert child.pid in got                  # the main thread's tid is the pid
        run, wait = got[child.pid]
        assert run > 0 and wait >= 0
        assert read_threads([2 ** 22 + 12345]) == {}     # no such process: nothing, no error
    finally:
        child.communicate("\n")


@pytest.mark.skipif(shutil.which("sleep") is None, reason="no sleep(1)")
def test_session_qemus_finds_a_qemu_named_process_in_that_session_only(tmp_path):
    exe = tmp_path / "qemu-system-x86_64"
    exe.symlink_to(shutil.which("sleep"))       # comm comes from the name it was executed by
    other = subprocess.Popen([str(tmp_path / "qemu-system-x86_64"), "30"], start_new_session=True)
    plain = subprocess.Popen(["sleep", "30"], start_new_session=True)
    try:
        assert session_qemus(other.pid) == [other.pid]
        assert session_qemus(plain.pid) == []
        other.kill()
        os.waitid(os.P_PID, other.pid, os.WEXITED | os.WNOWAIT)     # ended, left unreaped: a zombie
        assert session_qemus(other.pid) == [] and read_threads([other.pid]) == {}
        assert other.pid not in session_qemus(os.getsid(0))
    finally:
        for p in (other, plain):
            p.kill()
            p.wait()


def test_the_sampler_follows_the_guests_qemu_after_a_short_lived_one_in_its_session(tmp_path):
    """vng may run a QEMU before the guest's own in the same session: the sampler must not keep the pid
    of one that has gone (observed, not timed: each step waits for the process table to show it)."""
    sleep = shutil.which("sleep")
    (tmp_path / "qemu-probe").symlink_to(sleep)
    (tmp_path / "qemu-system-x86_64").symlink_to(sleep)
    sh = subprocess.Popen(["sh", "-c", f"{tmp_path}/qemu-probe 1; read x; exec {tmp_path}/qemu-system-x86_64 30"],
                          stdin=subprocess.PIPE, start_new_session=True, text=True)
    try:
        s = Sampler(sid=sh.pid, every=0.0)
        while not session_qemus(sh.pid):
            os.sched_yield()
        (probe,) = session_qemus(sh.pid)
        assert probe != sh.pid
        s.poll(1.0)
        assert list(s.samples[-1].threads) == [probe]
        while probe in session_qemus(sh.pid):
            os.sched_yield()              # the probe has ended (a zombie counts as ended)
        sh.stdin.write("\n")
        sh.stdin.flush()
        while session_qemus(sh.pid) != [sh.pid]:
            os.sched_yield()              # sh has exec'ed the guest's QEMU
        s.poll(2.0)
        assert list(s.samples[-1].threads) == [sh.pid]
    finally:
        sh.kill()
        sh.wait()
