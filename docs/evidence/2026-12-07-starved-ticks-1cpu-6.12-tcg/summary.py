"""Per boot and check: the kept samples' spread and what the starved-tick rule refused (as the README's table).

    python docs/evidence/2026-12-07-starved-ticks-1cpu-6.12-tcg/summary.py
"""
import gzip
import json
import statistics
from pathlib import Path

here = Path(__file__).parent
for f in sorted(here.glob("*.json.gz")):
    run = json.load(gzip.open(f))
    for r in run["results"]:
        notes = r.get("notes", {})
        if "reps_redone" not in notes:
            continue
        ms = {m["name"]: m["samples"] for m in r["metrics"]}
        key = "failover_latency_kernel" if "failover_latency_kernel" in ms else "loss_window"
        xs = sorted(ms[key])
        q1, _, q3 = statistics.quantiles(xs, n=4)
        refused = notes.get("starved_switches", [])
        print(f"{f.name.split('.')[0]:3} {r['path'].rsplit('.', 1)[-1]:22} {key:24} kept {len(xs):2}  "
              f"median {statistics.median(xs):6.1f}  IQR {q3 - q1:5.1f}  max {xs[-1]:6.1f}  refused {notes['reps_redone']}: "
              f"{[(x['ms'], x['lag_jiffies']) for x in refused]}")
