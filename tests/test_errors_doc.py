"""docs/errors.md lists every error code ktest has, with its exit code; the bad-input table exercises
only codes that are listed."""

import inspect
import re
from pathlib import Path

from ktest.base import errors

DOC = Path(__file__).parent.parent / "docs" / "errors.md"


def codes() -> dict[str, int]:
    return {c.code: c.exit_code for _, c in inspect.getmembers(errors, inspect.isclass)
            if issubclass(c, errors.KtestError) and c.code != "error"}


def documented() -> dict[str, int]:
    rows = re.findall(r"^\| `([a-z-]+)` \| [^|]+ \| (\d+) \|", DOC.read_text(), re.M)
    return {code: int(exit_code) for code, exit_code in rows}


def test_every_error_code_is_documented_with_its_exit_code():
    assert documented() == codes()


def test_the_bad_input_table_uses_documented_codes():
    from test_bad_inputs import CASES

    used = {c[2] for c in CASES}
    assert used <= set(documented()), used - set(documented())


def test_exit_3_is_left_to_the_undecided_verdict():
    assert 3 not in codes().values()
