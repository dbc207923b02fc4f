"""Fixtures for the bonding checks."""

import pytest

import bondlib


@pytest.fixture(autouse=True)
def topology_setup_time(record):
    """Note how long each bond topology took to build in this check (ms): the cost every bonding
    check pays before it measures anything."""
    bondlib.SETUP_MS.clear()
    yield
    if bondlib.SETUP_MS:
        record.note("topology_setup_ms", list(bondlib.SETUP_MS))
