"""Per boot and check, the host wait share (ktest.boot.hostwait.wait_share) from sample.py's readings and
the boot's own records (rw/checks-started.jsonl, rw/results.jsonl); then, per check with a boot on each
side, how far apart the sides' shares were, and how often ktest's host-load rule (every boot of one side
above every boot of the other, medians HOST_LOAD_GAP apart) would fire in either direction.
python analyse.py SAMPLES.jsonl OUT.json"""
import itertools, json, statistics, sys
from collections import defaultdict
from pathlib import Path
sys.path.insert(0, str(Path(__file__).resolve().parents[3]))   # the ktest checkout
from ktest.boot.hostwait import Sample, wait_share
from ktest.judge.verdict import HOST_LOAD_GAP

rows = [json.loads(l) for l in open(sys.argv[1])]
by_boot = defaultdict(list)
for r in rows:
    by_boot[r["boot"]].append(r)
shares = defaultdict(lambda: defaultdict(lambda: defaultdict(list)))     # run dir -> path -> side -> [share]
boots_out = []
for boot, rs in by_boot.items():
    pairs = [(r["pair"][0], r["pair"][1]) for r in rs if r["pair"]]
    if not pairs:
        continue
    off = min(h - g for h, g in pairs)
    samples = [Sample(r["t"], {int(k): tuple(v) for k, v in r["threads"].items()}) for r in rs]
    rw = Path(boot) / "rw"
    try:
        starts = {json.loads(l)["id"]: json.loads(l)["uptime_s"] for l in open(rw / "checks-started.jsonl")}
        results = [json.loads(l) for l in open(rw / "results.jsonl")]
    except OSError:
        continue
    side = "patched" if Path(boot).name.startswith("patched") else "base"
    run = str(Path(boot).parent.parent)
    got = {}
    for res in results:
        t0 = starts.get(res["id"])
        if t0 is None:
            continue
        s = wait_share(samples, t0 + off, res["finished_at_uptime_s"] + off)
        if s is not None and res.get("status") != "SKIP" and "::" not in res["id"].split("::", 1)[1]:
            got[res["path"]] = round(s, 3)
            shares[run][res["path"]][side].append(round(s, 3))
    whole = wait_share(samples, samples[0].t, samples[-1].t)
    boots_out.append({"boot": boot, "side": side, "offset_s": round(off, 3), "samples": len(samples),
                      "whole_boot": None if whole is None else round(whole, 3), "checks": got})
gaps, fired, compared = [], 0, 0
two = []    # per check: the share of its 2-against-2 boot splits on which the rule fires (either way)
per_check = []
for run, paths in shares.items():
    for path, sd in paths.items():
        b, p = sd.get("base", []), sd.get("patched", [])
        if not b or not p:
            continue
        compared += 1
        gap = statistics.median(p) - statistics.median(b)
        gaps.append(gap)
        sep = min(p) > max(b) or min(b) > max(p)
        f = sep and abs(gap) >= HOST_LOAD_GAP
        fired += f
        if len(b) >= 2 and len(p) >= 2:
            hits = tot = 0
            for bb in itertools.combinations(b, 2):
                for pp in itertools.combinations(p, 2):
                    g = statistics.median(pp) - statistics.median(bb)
                    tot += 1
                    hits += (min(pp) > max(bb) or min(bb) > max(pp)) and abs(g) >= HOST_LOAD_GAP
            two.append(hits / tot)
        per_check.append({"run": run, "path": path, "base": b, "patched": p, "gap": round(gap, 3), "fires": f})
ag = sorted(abs(g) for g in gaps)
q = lambda x: ag[min(len(ag) - 1, int(x * len(ag)))] if ag else None
summary = {"boots": len(boots_out), "checks_compared": compared, "rule_fires_either_way": fired,
           "abs_gap_median": q(0.5), "abs_gap_p90": q(0.9), "abs_gap_max": ag[-1] if ag else None,
           "host_load_gap": HOST_LOAD_GAP,
           "checks_with_2_boots_a_side": len(two),
           "fires_at_2_boots_either_way": round(statistics.mean(two), 4) if two else None}
json.dump({"summary": summary, "checks": per_check, "boots": boots_out}, open(sys.argv[2], "w"), indent=1)
print(json.dumps(summary))
