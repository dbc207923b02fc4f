"""The spread of every timing metric's base samples in stored `ktest run` results: what the A/B rule has
to see a change through.  Per metric (ms): boots a side, samples, the base median, IQR and p90 - median
(pooled over the base boots), the spread of the base boots' medians, the run's verdict on it and the
smallest harmful change the run could have detected (ktest-rule/3's MDE).  Per run: its verdict, exit
code, boots a side, seconds, the ktest that judged it, what was left in doubt and the boots' setup
errors (check results the plugin reported as not set up, per side).

Usage: python ci/bench_spread.py LABEL=RESULT_JSON... > spread.json   (run from the repository root)
       python ci/bench_spread.py LABEL=CALIBRATION_DIR/runs.json.gz ...  (a calibration's boots, all of
       one kernel: pooled as a run's base side; no verdict, no MDE)
       python ci/bench_spread.py --table SPREAD_JSON... > table.md
The second form prints, per metric, each run's base IQR and p90 - median side by side (markdown), for
the timing metrics that judge a run and the kernel-clock ones; a metric a run did not measure is "-".
"""

import argparse
import gzip
import json
import sys
from pathlib import Path

import numpy as np


def spread(result: dict) -> dict:
    out = {}
    for c in result.get("checks", []):
        for m in c.get("metrics", []):
            b = np.asarray(m.get("base_samples") or [], float)
            if m.get("unit") != "ms" or b.size == 0:
                continue
            boots = (m.get("boot_values") or {}).get("centre", {}).get("base") or []
            out[f"{c['path']}/{m['metric']}"] = _summary(
                b, boots, verdict_metric=m.get("verdict") != "context", verdict=m.get("verdict"),
                boots_base=m.get("boots_base"), mde=None if m.get("mde") is None else round(m["mde"], 2))
    return out


def _summary(b: np.ndarray, boot_medians: list[float], **head: object) -> dict:
    """One metric's base spread: `head`, then n, median, IQR, p90 - median and the boots' medians' range."""
    q1, med, q3, p90 = (float(x) for x in np.percentile(b, [25, 50, 75, 90]))
    return {**head, "n_base": int(b.size), "median": round(med, 2), "iqr": round(q3 - q1, 2),
            "p90_minus_median": round(p90 - med, 2),
            "boot_medians_range": round(max(boot_medians) - min(boot_medians), 2) if boot_medians else None}


def spread_boots(boots: list[dict]) -> dict:
    """As spread(), over guest runs of one kernel (a calibration's runs.json): every boot's samples."""
    per: dict[str, dict] = {}
    for bi, run in enumerate(boots):
        for r in run.get("results", []):
            for m in r.get("metrics", []):
                if m.get("unit") != "ms" or not m.get("samples"):
                    continue
                d = per.setdefault(f"{r['path']}/{m['name']}", {"context": bool(m.get("context")), "boots": {}})
                d["boots"].setdefault(bi, []).extend(float(x) for x in m["samples"])
    out = {}
    for k, d in per.items():
        b = np.concatenate([np.asarray(v, float) for v in d["boots"].values()])
        out[k] = _summary(b, [float(np.median(v)) for v in d["boots"].values()], verdict_metric=not d["context"],
                          verdict=None, boots_base=len(d["boots"]), mde=None)
    return out


def host_wait(result: dict) -> dict:
    """Per side, each boot's host wait share (the share of the time its guest wanted a host CPU that it
    waited for one, ktest.boot.hostwait), in boot order; empty for a run recorded before ktest kept it."""
    out: dict[str, list[float]] = {}
    for b in result.get("boots") or []:
        share = (b.get("env") or {}).get("host_wait_share")
        if share is not None:
            out.setdefault(b.get("side") or "?", []).append(share)
    return out


def table(runs: dict) -> str:
    """Markdown: one row per metric (verdict metrics and `*_kernel` ones), whether it judges the run (or is
    context, e.g. where an event landed in the interval), and per run "IQR / p90 - median"."""
    labels = list(runs)
    names = sorted({k for r in runs.values() for k, m in r["metrics"].items()
                    if m["verdict_metric"] or k.split("/")[-1].endswith("_kernel")})
    rows = ["| metric | judges | " + " | ".join(labels) + " |", "|---|---|" + "---|" * len(labels)]
    for k in names:
        judges = any(r["metrics"].get(k, {}).get("verdict_metric") for r in runs.values())
        cells = []
        for lb in labels:
            m = runs[lb]["metrics"].get(k)
            cells.append("-" if m is None else f"{m['iqr']:.1f} / {m['p90_minus_median']:.1f}")
        rows.append(f"| `{k}` | {'yes' if judges else 'context'} | " + " | ".join(cells) + " |")
    return "\n".join(rows)


def _read(path: str) -> object:
    """A JSON file, gzipped or not."""
    raw = Path(path).read_bytes()
    return json.loads(gzip.decompress(raw) if raw[:2] == b"\x1f\x8b" else raw)


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(prog="bench_spread.py", description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("runs", nargs="+", metavar="LABEL=PATH",
                    help="a ktest run's result.json or a calibration's runs.json(.gz); with --table, spread.json files")
    ap.add_argument("--table", action="store_true", help="print the markdown table of spread.json files")
    args = ap.parse_args(argv)
    runs: dict = {}
    path = ""
    try:
        if args.table:
            for path in args.runs:
                runs.update(_read(path))        # type: ignore[call-overload]
            print(table(runs))
            return 0
        for arg in args.runs:
            label, eq, path = arg.partition("=")
            if not eq or not label or not path:
                ap.error(f"'{arg}' is not LABEL=PATH")
            r = _read(path)
            if isinstance(r, list):         # a calibration's boots
                runs[label] = {"boots": len(r), "metrics": spread_boots(r)}
                continue
            if not isinstance(r, dict) or "series" not in r or "checks" not in r:
                raise ValueError("neither a ktest result.json nor a calibration's runs.json")
            v = r.get("verdict") or {}
            runs[label] = {"run_id": r.get("run_id"), "series": r["series"]["name"], "tree": r["tree"]["name"],
                           "accel": (r.get("env") or {}).get("accel"), "rule": v.get("rule"),
                           "status": v.get("status"), "exit_code": v.get("exit_code"),
                           "rounds": (r.get("rounds") or {}).get("booted"), "duration_s": r.get("duration_s"),
                           "ktest_version": r.get("ktest_version"),
                           "in_doubt": sorted(set(v.get("undecided") or []) | set(v.get("inconclusive") or [])),
                           "setup_errors": {side: sum((c.get(side) or {}).get("infra_errors") or 0
                                                      for c in r["checks"]) for side in ("base", "patched")},
                           "host_wait": host_wait(r),
                           "metrics": spread(r)}
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as e:
        why = getattr(e, "strerror", None) or (f"no {e}" if isinstance(e, KeyError) else str(e))
        print(f"bench_spread.py: error: {path}: {why}", file=sys.stderr)
        return 2
    json.dump(runs, sys.stdout, indent=1)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
