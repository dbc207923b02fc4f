#!/usr/bin/env python3
"""How many boots a side an A/A run needs before it stops being undecided: the evidence behind
`--rounds` and `--max-rounds`.  Reads the boots of one kernel that `ktest calibrate` kept (runs.json, or
runs.json.gz as docs/evidence/ stores them), judges every split of them into two groups of k boots with
the run's rule (ktest-rule/3, on the split's own noise: a machine with no noise model yet), and prints,
per k, the share of splits that come out a false regression, a false change and undecided, and the
metrics most often in doubt.

    .venv/bin/python ci/bench_rounds.py docs/evidence/2026-12-04-calibrate-linkwatch-6.12-tcg/runs.json.gz
    .venv/bin/python ci/bench_rounds.py RUNS --json > rounds.json

Splits reach only half the boots kept.  Beyond them, --model N reads the same boots' between-boot noise
(the noise model a run uses) and gives, per n = 2..N boots a side, the chance that a harmless run settles
every verdict metric (green, not undecided; model_table).  Once as a first run on a machine (floors
estimated, no noise model), once after a calibration (--calibration, the calibration.json kept beside
the boots: its floors and noise model).  A model from measured noise, not a measurement of runs.
"""

from __future__ import annotations

import argparse
import gzip
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from ci.bench_confusion import provenance  # noqa: E402
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


def model_table(runs: list[dict], ns: list[int], floors: dict | None = None, pooled: bool = True) -> dict:
    """Per n boots a side, the chance that a harmless run of n boots a side settles each verdict metric,
    and the run as a whole (every metric and aspect settled: green rather than undecided), on these
    boots' between-boot noise.  An aspect settles when its one-sided 95 % upper bound on the harmful
    shift falls within its floor (stats.decide_aspect); with no true shift that is
    P(T_df < f / se - t_0.95,df), se = sqrt(2 var / n).  `floors`: a calibration's (else each metric's
    floor is estimated from all these boots' samples, as a first run estimates it from its base);
    `pooled`: the run has these boots' noise model (a calibration or a history) and adds its degrees of
    freedom to its own 2n - 2.  The run-level chance multiplies the metrics' as if independent."""
    import math
    import statistics

    import scipy.stats as sps

    from ktest.judge.calibration import collect, noise_model
    from ktest.judge.stats import MIN_SAMPLES, TAIL_UNITS, p90, to_scale
    from ktest.judge.stats import floors as run_floors

    noise = noise_model(runs)
    per: dict[str, dict[str, float]] = {}
    for path, c in collect(runs).items():
        for name, m in c["metrics"].items():
            k = f"{path}/{name}"
            if k not in noise or m.get("context"):
                continue
            fwd, _ = to_scale(m["unit"])
            cf, tf, _src = run_floors(m["unit"], m["samples"], m.get("min_effect"), (floors or {}).get(k),
                                      m.get("min_effect_tail"))
            aspects = [("centre", statistics.median(m["samples"]), cf)]
            if m["unit"] in TAIL_UNITS and "tail" in noise[k] and len(m["samples"]) >= MIN_SAMPLES:
                aspects.append(("tail", float(p90(m["samples"]) or 0.0), tf))
            by_n = {}
            for n in ns:
                pr = 1.0
                for aspect, centre, floor in aspects:
                    var, pdf = noise[k][aspect]["var"], noise[k][aspect]["df"]
                    df = 2 * n - 2 + (pdf if pooled else 0)
                    f = (fwd(centre + floor) - fwd(centre)) if m["lower_is_better"] else \
                        (fwd(centre) - fwd(max(centre - floor, 0.0)))
                    se = math.sqrt(var * 2.0 / n)
                    pr *= 1.0 if se == 0 else float(sps.t.cdf(f / se - sps.t.ppf(0.95, df), df))
                by_n[str(n)] = pr
            per[k] = by_n
    out: dict = {"metrics": len(per), "by_boots_a_side": {}}
    for n in ns:
        probs = [v[str(n)] for v in per.values()]
        out["by_boots_a_side"][str(n)] = {"run_settles": math.prod(probs),
                                          "metrics_settled_expected": sum(probs)}
    last = str(ns[-1])
    out["least_settled_at_most"] = sorted(({"metric": k, "settles": v[last], "at_2": v[str(ns[0])]}
                                           for k, v in per.items()), key=lambda x: x["settles"])[:8]
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("runs", type=Path)
    ap.add_argument("--boots", type=int, nargs="+", default=[2, 3, 4], help="boots a side to try")
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--model", type=int, metavar="N", help="also model 2..N boots a side from the boots' noise")
    ap.add_argument("--calibration", type=Path, help="calibration.json of these boots: its floors for --model")
    a = ap.parse_args(argv)
    at = provenance()           # the code that judges is the code loaded now, whatever changes meanwhile
    runs = load(a.runs)
    table = rounds_table(runs, a.boots)
    model = {}
    ns = list(range(2, (a.model or 2) + 1))
    if a.model:
        model["a first run: estimated floors, no noise model"] = model_table(runs, ns, pooled=False)
        if a.calibration:
            model["after a calibration: its floors and noise model"] = model_table(
                runs, ns, json.loads(a.calibration.read_text())["floors"])
    if a.json:
        print(json.dumps({"source": str(a.runs), **at, "boots_of_one_kernel": len(runs), "by_boots_a_side": table,
                          **({"model": model} if model else {})}, indent=1))
        return 0
    print(f"{len(runs)} boots of one kernel; every split into two groups of k boots, judged on its own noise")
    print(" k  splits  false regression  false change  undecided")
    for k, v in table.items():
        print(f"{k:>2} {v['splits']:>7} {v['false_regression'] * 100:>16.1f}% {v['false_change'] * 100:>12.1f}%"
              f" {v['undecided'] * 100:>9.1f}%")
        for m in v["metrics_most_in_doubt"]:
            print(f"      in doubt in {m['splits']} splits: {m['metric']}")
    for kind, mt in model.items():
        print(f"model, {kind}: a harmless run of n boots a side settles ({mt['metrics']} verdict metrics)")
        print("   n  run green  metrics settled (expected)")
        for n, v in mt["by_boots_a_side"].items():
            print(f"  {n:>2} {v['run_settles'] * 100:>9.1f}% {v['metrics_settled_expected']:>10.1f}")
        for u in mt["least_settled_at_most"][:5]:
            print(f"      least settled: {u['metric']} ({u['at_2'] * 100:.0f}% at {ns[0]}, {u['settles'] * 100:.0f}% at {ns[-1]})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
