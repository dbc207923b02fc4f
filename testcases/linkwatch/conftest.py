"""Fixtures for linkwatch (operstate latency) checks."""

import pytest

from ktest.guestlib import virtio_nics
from lwbench import Bench


@pytest.fixture
def bench():
    b = Bench()
    yield b
    b.close()


@pytest.fixture
def spare_nic() -> str:
    """The second virtio NIC of the loop pair: used for nothing else."""
    nics = virtio_nics()
    if len(nics) < 2:
        pytest.skip(f"needs two virtio-net NICs, found {nics}")
    return nics[1]

