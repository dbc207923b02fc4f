import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

# guest_cases/ run inside a VM (see test_kernel_boot.py), never on the host
collect_ignore = ["guest_cases"]

from fakekernel import make_series, make_tree  # noqa: E402

from ktest.cache import Cache  # noqa: E402


@pytest.fixture
def cache(tmp_path) -> Cache:
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
