"""Where ktest's checks live: the one place that knows.

In a checkout the checks are `testcases/` next to the `ktest/` package (the project's top level).
Installed (`pip install .`), they are data files under `<prefix>/share/ktest/testcases/`, as
pyproject.toml's `data-files` puts them.  ROOT is the directory that holds `testcases/`; checks' node
ids ("testcases/linkwatch/test_operstate.py::test_dummy_carrier") are relative to it, in the guest
(pytest runs with --rootdir=ROOT) and on the host alike.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent   # the ktest package itself (this is ktest/base/home.py)


def _root() -> Path:
    # the guest runs Python with -S (no site.py, so no venv prefix): the host tells it, in run.sh
    if os.environ.get("KTEST_ROOT"):
        return Path(os.environ["KTEST_ROOT"])
    checkout = PACKAGE.parent
    if (checkout / "testcases").is_dir():
        return checkout
    return Path(sys.prefix) / "share" / "ktest"


ROOT = _root()
TESTCASES = ROOT / "testcases"
SMOKE = TESTCASES / "test_smoke.py"
