"""`ktest run` in a real terminal (a pseudo-terminal driven by pexpect), with a fake tree and a fake
vng whose guests start their harness and then hang: the live table of guests is drawn, and Ctrl-C
ends the run with one line, exit 130, and no guest left running."""

import os
import sys
import time
from pathlib import Path

import pexpect

HERE = Path(__file__).parent
PROJECT = HERE.parent


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_in_a_terminal_the_run_draws_its_guests_and_ctrl_c_leaves_none(tmp_path, fake_tree, fake_series):
    pids = tmp_path / "pids"
    env = dict(os.environ, KTEST_CACHE=str(tmp_path / "cache"), KTEST_VNG=str(HERE / "fakevng.py"),
               FAKE_VNG_MODE="stall", FAKE_VNG_PIDS=str(pids), TERM="xterm-256color", COLUMNS="160", LINES="40")
    child = pexpect.spawn(sys.executable, ["-m", "ktest", "run", str(fake_series), "--tree", str(fake_tree),
                                           "--reports", str(tmp_path / "reports"), "--testcases",
                                           "testcases/test_smoke.py", "--vms", "2", "--accel", "tcg"],
                          cwd=str(PROJECT), env=env, dimensions=(40, 160), timeout=180, encoding="utf-8")
    try:
        child.expect(r"guest.*state.*check.*done")       # the live table's header
        child.expect(r"base-1 .*checks")                  # a guest whose harness is running checks
        while not (pids.exists() and len(pids.read_text().split()) >= 4):   # both guests (vng + "qemu")
            time.sleep(0.1)
        started = [int(p) for p in pids.read_text().split()]
        child.sendintr()                                  # Ctrl-C, as the terminal sends it
        child.expect("ktest: interrupted")
        child.expect(pexpect.EOF)
    finally:
        child.close(force=True)
    assert child.exitstatus == 130, (child.exitstatus, child.signalstatus)
    time.sleep(0.3)
    assert [p for p in started if alive(p)] == [], "no guest outlives Ctrl-C"
