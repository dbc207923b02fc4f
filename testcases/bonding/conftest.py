"""Fixtures for the bonding checks."""

import pytest

import bondlib
from ktest.guest import ktrace


@pytest.fixture(autouse=True)
def topology_setup_time(record):
    """Note how long each bond topology took to build in this check (ms): the cost every bonding
    check pays before it measures anything."""
    bondlib.SETUP_MS.clear()
    yield
    if bondlib.SETUP_MS:
        record.note("topology_setup_ms", list(bondlib.SETUP_MS))


@pytest.fixture
def kclock():
    """A kernel tracer of bondlib.FAILOVER_PROBES and the delayed works' timers (FAILOVER_TIMERS) for the
    check, or None in a kernel without kprobe events (the user-space time is then the verdict metric)."""
    with ktrace.optional(bondlib.FAILOVER_PROBES, bondlib.FAILOVER_TIMERS) as t:
        yield t
