"""Run inside a real guest by tests/test_kernel_boot.py (not a check): one host link request."""

from ktest.guest.lib import host_set_link, virtio_nics


def test_the_host_cuts_the_link():
    host_set_link(virtio_nics()[1], False)
