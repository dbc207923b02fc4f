"""ktest's own oops-then-hang self-test, run inside a real guest by tests/test_kernel_boot.py (not a check).

The second check makes a child process oops (LKDTM's EXCEPTION: a NULL dereference; the kernel kills
the child and lives on, tainted) and then waits forever, like a check whose `ip` waits on a lock the dead
task held.  The host must end the boot soon after (not at the idle timeout), name the Oops and this
check, and report the third check as not run.
"""

import subprocess
import time
from pathlib import Path

DIRECT = Path("/sys/kernel/debug/provoke-crash/DIRECT")


def test_a_runs_before_the_oops():
    assert DIRECT.exists(), "LKDTM is built in and debugfs is mounted"


def test_b_oops_then_hang():
    subprocess.run(["sh", "-c", f"echo EXCEPTION > {DIRECT}"])
    time.sleep(3600)


def test_c_never_runs():
    pass
