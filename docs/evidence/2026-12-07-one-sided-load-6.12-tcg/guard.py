"""The experiment's two runs, base side against base side (the same kernel, quiet against beside two
CPU-bound processes), judged by ktest's compare_checks with the host-load rule and without it (its gap
set out of reach): which timing changes the rule held back, and each boot's host wait."""
import json, sys
from pathlib import Path
sys.path.insert(0, sys.argv[3] if len(sys.argv) > 3 else str(Path(__file__).resolve().parents[3]))   # python guard.py RUN_A RUN_B [KTEST_CHECKOUT]
from ktest.judge import verdict

def boots(d, side):
    r = json.loads((Path(d) / "result.json").read_text())
    return [b for b in r["boots"] if b["side"] == side]

q, l = boots(sys.argv[1], "base"), boots(sys.argv[2], "base")
out = {"host_wait_boot": {"quiet": [b["env"].get("host_wait_share") for b in q],
                          "loaded": [b["env"].get("host_wait_share") for b in l]}, "metrics": []}
with_rule = verdict.compare_checks(q, l)
gap = verdict.HOST_LOAD_GAP
verdict.HOST_LOAD_GAP = 2.0
without = verdict.compare_checks(q, l)
verdict.HOST_LOAD_GAP = gap
for c1, c0 in zip(with_rule, without):
    for m1, m0 in zip(c1["metrics"], c0["metrics"]):
        if m0["verdict"] == "context":
            continue
        out["metrics"].append({"check": c1["path"], "metric": m1["metric"], "unit": m1["unit"],
                               "without_rule": m0["verdict"], "with_rule": m1["verdict"],
                               "base_median": m1["base_median"], "patched_median": m1["patched_median"],
                               "host_wait": c1["host_wait"], "reason": m1["reason"]})
json.dump(out, sys.stdout, indent=1)
print()
