#!/usr/bin/env python3
"""The error rates of the failure-count rule, computed exactly: for a check whose true failure rate per
boot is rb on the base and ra on the patched kernel, the chance that a run ends it a regression
(DIFFERENT), no difference (SAME, "flaky" or unchanged) or undecided (UNKNOWN after the retries), and
the share of SAME in which no patched boot of the first 2 failed at all ("unseen": no rule can judge a
failure it never saw).

The run's retries are followed as `ktest run` does them with the default pool (4 guests: 2 boots a side
per retry), from 2 boots a side up to FAIL_MAX_BOOTS: every (base failures, patched failures) outcome is
carried with its binomial probability, a decided one stops, an undecided one boots 2 more a side.  One
check alone (no run-wide correction beside other tested checks, which only makes DIFFERENT rarer), no
history.  A computation over the rule's own function, not a measurement of runs.

    .venv/bin/python ci/bench_failure_rule.py            # a table
    .venv/bin/python ci/bench_failure_rule.py --json     # what docs/evidence keeps
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from ci.bench_confusion import provenance  # noqa: E402
from ktest.judge.verdict import failure_test  # noqa: E402
from ktest.run import FAIL_MAX_BOOTS  # noqa: E402

# (name, base failure rate, patched failure rate)
CASES = [(f"same {rb:g}", rb, rb) for rb in (0.0, 0.1, 0.3, 0.5, 0.8)] + \
        [(f"rise {rb:g} -> {ra:g}", rb, ra) for rb, ra in
         ((0.0, 0.5), (0.1, 0.6), (0.3, 0.8), (0.5, 1.0), (0.0, 0.3), (0.0, 1.0), (0.8, 1.0))]


def outcomes(rb: float, ra: float, start: int = 2, step: int = 2, limit: int = FAIL_MAX_BOOTS) -> dict:
    """P(DIFFERENT), P(SAME), P(UNKNOWN at the limit) and the mean boots a side, exactly."""
    from scipy.stats import binom

    def draws(n: int, r: float) -> list[tuple[int, float]]:
        return [(k, float(binom.pmf(k, n, r))) for k in range(n + 1)]

    live = {(kb, kp): pb * pa for kb, pb in draws(start, rb) for kp, pa in draws(start, ra)}
    n, got, boots = start, {"DIFFERENT": 0.0, "SAME": 0.0, "UNKNOWN": 0.0, "unseen": 0.0}, 0.0
    while live:
        nxt: dict[tuple[int, int], float] = {}
        for (kb, kp), pr in live.items():
            # no patched failure in the first boots: nothing to judge, a pass ("unseen", part of SAME)
            dec = ("unseen" if n == start else "SAME") if kp == 0 else failure_test(kb, n, kp, n)[0]
            if dec != "UNKNOWN" or n + step > limit:
                got[dec] += pr
                got["SAME"] += pr if dec == "unseen" else 0.0
                boots += pr * n
                continue
            for db, pb in draws(step, rb):
                for dp, pa in draws(step, ra):
                    key = (kb + db, kp + dp)
                    nxt[key] = nxt.get(key, 0.0) + pr * pb * pa
        live, n = nxt, n + step
    return {**{k: round(v, 4) for k, v in got.items()}, "mean_boots": round(boots, 2)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    rows = [{"case": name, "base_rate": rb, "patched_rate": ra, **outcomes(rb, ra)} for name, rb, ra in CASES]
    if a.json:
        json.dump({"provenance": provenance(), "limit": FAIL_MAX_BOOTS, "rows": rows}, sys.stdout, indent=1)
        print()
        return 0
    print(f"{'case':<16} {'regression':>10} {'no diff':>8} {'(unseen)':>9} {'undecided':>9} {'boots':>6}")
    for r in rows:
        print(f"{r['case']:<16} {r['DIFFERENT']:>10.3f} {r['SAME']:>8.3f} {r['unseen']:>9.3f} {r['UNKNOWN']:>9.3f} "
              f"{r['mean_boots']:>6.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
