#!/usr/bin/env bash
# The test command: set up everything (apt, venv, package), then run the whole test suite, including
# the tests marked `kernel` that build and boot the real default tree.  Extra args go to pytest
# (e.g. `ci/test.sh -m "not kernel"` for the fast unit tests only).  The 25 slowest tests are listed at
# the end, so a CI run shows where its minutes went (the cold builds and the boots).
set -euo pipefail
cd "$(dirname "$0")/.."
ci/setup.sh
# lint first: a defect ruff finds (an unused import, an undefined name) fails CI in seconds
.venv/bin/ruff check ktest tests testcases ci
.venv/bin/mypy
exec .venv/bin/python -m pytest -ra --durations=25 "$@" tests
