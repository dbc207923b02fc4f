"""Runs inside the guest (imports only ktest.base): the harness (python -m ktest.guest), the pytest
plugin that records results, the checks' library (topologies, netlink, kernel-clock tracing)."""
