#!/usr/bin/env python3
"""How many boots a side an A/A run needs before it stops being undecided: the evidence behind
`--rounds` and `--max-rounds`.  Reads the boots of one kernel that `ktest calibrate` kept (runs.json, or
runs.json.gz as docs/evidence/ stores them), judges every split of them into two groups of k boots with
the run's rule (ktest-rule/3, on the split's own noise: a machine with no noise model yet), and prints,
per k, the share of splits that come out a false regression, a false change and undecided, and the
metrics most often in doubt.

    .venv/bin/python ci/bench_rounds.py docs/evidence/2026-12-04-calibrate-linkwatch-6.12-tcg/runs.json.gz
    .venv/bin/python ci/bench_rounds.py RUNS --json > rounds.json
"""

from __future__ import annotations

import argparse
import gzip
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from ktest.judge.calibration import judge_splits  # noqa: E402


def load(path: Path) -> list[dict]:
    raw = path.read_bytes()
    return json.loads(gzip.decompress(raw) if raw[:2] == b"\x1f\x8b" else raw)


def rounds_table(runs: list[dict], ks: list[int]) -> dict:
    out = {}
    for k in ks:
        if 2 * k > len(runs):
            continue
        r = judge_splits(runs, k)
        doubt = sorted(((m, v["inconclusive"]) for m, v in r["metrics"].items() if v["inconclusive"]),
                       key=lambda x: -x[1])[:5]
        out[str(k)] = {"splits": r["splits"], "false_regression": r["run_false_regression_v2"],
                       "false_change": r["run_false_change_v2"], "undecided": r["run_undecided"],
                       "metrics_most_in_doubt": [{"metric": m, "splits": n} for m, n in doubt]}
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("runs", type=Path)
    ap.add_argument("--boots", type=int, nargs="+", default=[2, 3, 4], help="boots a side to try")
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args(argv)
    runs = load(a.runs)
    table = rounds_table(runs, a.boots)
    if a.json:
        print(json.dumps({"source": str(a.runs), "boots_of_one_kernel": len(runs), "by_boots_a_side": table},
                         indent=1))
        return 0
    print(f"{len(runs)} boots of one kernel; every split into two groups of k boots, judged on its own noise")
    print(" k  splits  false regression  false change  undecided")
    for k, v in table.items():
        print(f"{k:>2} {v['splits']:>7} {v['false_regression'] * 100:>16.1f}% {v['false_change'] * 100:>12.1f}%"
              f" {v['undecided'] * 100:>9.1f}%")
        for m in v["metrics_most_in_doubt"]:
            print(f"      in doubt in {m['splits']} splits: {m['metric']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
