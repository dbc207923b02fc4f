#!/usr/bin/env python3
"""Judge the boots a calibration kept again with today's rule: the run-level false-alarm rates with
their 95 % intervals (jackknife over boots) and, per metric, the smallest harmful change a run of n boots
a side would detect.  For a calibration recorded before ktest wrote those, or after the rule changed.

    .venv/bin/python ci/rejudge_calibration.py docs/evidence/2026-12-05-calibrate-bonding-c-6.12-tcg/runs.json.gz \
        --rounds 2 > docs/evidence/2026-12-05-calibrate-bonding-c-6.12-tcg/rejudged.json
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from ci.bench_confusion import provenance  # noqa: E402
from ci.bench_rounds import load  # noqa: E402
from ktest.judge.calibration import calibrate  # noqa: E402
from ktest.judge.stats import RULE  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("runs", type=Path, help="runs.json or runs.json.gz that `ktest calibrate --out` kept")
    ap.add_argument("--rounds", type=int, default=2, help="boots a side of each split (the run's --rounds)")
    a = ap.parse_args(argv)
    at = provenance()           # the code that judges is the code loaded now, whatever changes meanwhile
    runs = load(a.runs)
    cal = calibrate(runs, a.rounds)
    print(json.dumps({"source": str(a.runs), "rule": RULE, **at, "boots": len(runs), "rounds": a.rounds,
                      "splits": cal["splits"], "rates": cal["rates"], "intervals": cal["intervals"],
                      "detectable": cal["detectable"]}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
