"""Run inside a real guest by tests/test_kernel_boot.py (not a check): the host cuts a virtio NIC's link,
then the kernel panics with the cable still out.  The host must be left with nothing of that boot."""

from pathlib import Path

from ktest.guest.lib import host_set_link, virtio_nics

DIRECT = Path("/sys/kernel/debug/provoke-crash/DIRECT")


def test_a_the_host_cuts_the_link():
    ans = host_set_link(virtio_nics()[1], False)
    assert ans["ok"] and ans["up"] is False


def test_b_panic_with_the_cable_out():
    DIRECT.write_text("PANIC\n")
    raise AssertionError("unreachable: the guest should have panicked")
