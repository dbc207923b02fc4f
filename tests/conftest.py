import signal
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

# guest_cases/ run inside a VM (see test_kernel_boot.py), never on the host
collect_ignore = ["guest_cases"]

# A suite started as a background job (`cmd &` in a script) inherits SIGINT ignored, and so would every
# ktest it starts: the Ctrl-C tests would then wait forever.  A handled signal is reset to the default
# in a child at exec, so handling it here gives the children the disposition a terminal gives them.
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)

from fakekernel import make_series, make_tree  # noqa: E402

from ktest.base.cache import Cache  # noqa: E402


@pytest.fixture(scope="session", autouse=True)
def _own_history(tmp_path_factory):
    """Runs the tests start (the kernel tests use the real build cache) record into a history of the
    test session's own, never into the user's (unless KTEST_DB already names one)."""
    import os

    if "KTEST_DB" not in os.environ:
        os.environ["KTEST_DB"] = str(tmp_path_factory.mktemp("history") / "history.sqlite")
    yield


@pytest.fixture
def cache(tmp_path, monkeypatch) -> Cache:
    monkeypatch.delenv("KTEST_DB", raising=False)       # a fake cache keeps its own history, as a user's would
    return Cache.open(tmp_path / "cache")


@pytest.fixture
def fake_tree(tmp_path) -> Path:
    return make_tree(tmp_path / "linux")


@pytest.fixture
def fake_series(tmp_path, fake_tree) -> Path:
    return make_series(fake_tree, tmp_path / "series", [
        ("net/core/link_watch.c", "int a;\nint b2;\nint c;\n", "net: change b"),
        ("net/core/dev.c", "int d;\n#warning new thing\n", "net: dev warns"),
    ], cover=True)
