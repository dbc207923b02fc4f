"""ktest's own crash self-test, run inside a real guest by tests/test_kernel_boot.py (not a check).

LKDTM (built into the base config) provokes real splats: a WARNING the kernel survives, then a panic
that ends the guest mid-run.  The host must still get the results written before the panic, plus
both splats with their fingerprints.
"""

from pathlib import Path

DIRECT = Path("/sys/kernel/debug/provoke-crash/DIRECT")


def test_a_runs_before_the_crash():
    assert DIRECT.exists(), "LKDTM is built in and debugfs is mounted"


def test_b_warning_is_survived():
    DIRECT.write_text("WARNING\n")
    assert Path("/proc/self").exists()


def test_c_panic_ends_the_guest():
    DIRECT.write_text("PANIC\n")
    raise AssertionError("unreachable: the guest should have panicked")
