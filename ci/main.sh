#!/usr/bin/env bash
# The main job on a fresh machine: set up everything, then test the linkwatch series against the
# default tree (Debian's linux-source 6.12, prepared on first use).  Args replace the series.
set -euo pipefail
cd "$(dirname "$0")/.."
ci/setup.sh
if [ $# -eq 0 ]; then set -- patches/linkwatch; fi
exec .venv/bin/ktest run "$@"
