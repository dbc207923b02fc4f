"""Fixtures for linkwatch (operstate latency) checks."""

import pytest

from ktest.guest import ktrace
from ktest.guest.lib import virtio_nics
from lwbench import Bench

# The admin-up request entering the kernel (dev_change_flags, from the RTM_NEWLINK's do_setlink) and the
# notification linkwatch sends once the device's operstate changed (netdev_state_change, from
# linkwatch_do_dev): the up's latency in the kernel's clock, without the guest's scheduling of the
# process that asked and the one that listens.  The first argument is the net_device pointer.  Each run
# of linkwatch's work (linkwatch_event) splits an urgent event's latency into the wait for the work to
# run (the kworker's wake-up: scheduling, no timer) and the run's own work.
UP_PROBES = {"change_flags": ("dev_change_flags", "dev=%di:x64"), "notify": ("netdev_state_change", "dev=%di:x64"),
             "linkwatch_run": ("linkwatch_event", "")}


@pytest.fixture
def bench():
    b = Bench()
    yield b
    b.close()


@pytest.fixture
def kclock():
    """A kernel tracer of the up path (UP_PROBES), or None in a kernel without kprobe events: the checks
    then have their user-space times only, and note why."""
    with ktrace.optional(UP_PROBES) as t:
        yield t


@pytest.fixture
def spare_nic() -> str:
    """The second virtio NIC of the loop pair: used for nothing else."""
    nics = virtio_nics()
    if len(nics) < 2:
        pytest.skip(f"needs two virtio-net NICs, found {nics}")
    return nics[1]

