"""From guest runs of both sides to per-check verdicts.  Pure: dicts in, dicts out.

Inputs are the `guest-run.json` records of each boot (see checks.GuestRun.to_json): results per check,
splats per boot.  Status order follows KCIDB: FAIL > ERROR > MISS > PASS > DONE > SKIP.
"""

from __future__ import annotations

from collections import OrderedDict

from .stats import compare

STATUS_ORDER = ["FAIL", "ERROR", "MISS", "PASS", "DONE", "SKIP"]


def side_status(statuses: list[str]) -> str:
    """One status for a side that ran a check several times."""
    s = set(statuses)
    if not s:
        return "MISS"
    if len(s) == 1:
        return statuses[0]
    if "PASS" in s and s & {"FAIL", "ERROR"}:
        return "FLAKY"
    return min(s, key=STATUS_ORDER.index)


def _collect(runs: list[dict]) -> "OrderedDict[str, dict]":
    """path -> {statuses, metrics{name: {unit, samples, lower_is_better}}, timeline, message}"""
    out: OrderedDict[str, dict] = OrderedDict()
    for run in runs:
        for r in run.get("results", []):
            c = out.setdefault(r["path"], {"statuses": [], "metrics": OrderedDict(), "timelines": [],
                                           "messages": [], "notes": {}})
            c["statuses"].append(r["status"])
            if r.get("message"):
                c["messages"].append(r["message"])
            for m in r.get("metrics", []):
                d = c["metrics"].setdefault(m["name"], {"unit": m["unit"], "samples": [],
                                                        "lower_is_better": m.get("lower_is_better", True),
                                                        "context": m.get("context", False)})
                d["samples"].extend(m["samples"])
            c["timelines"].extend(r.get("timelines", []))
            c["notes"].update(r.get("notes", {}))
    return out


def transition(base: str, patched: str) -> str:
    if base == "PASS" and patched in ("FAIL", "ERROR", "MISS"):
        return "regression"
    if base in ("FAIL", "ERROR") and patched == "PASS":
        return "fixed"
    if "FLAKY" in (base, patched):
        return "flaky"
    if base in ("FAIL", "ERROR") and patched in ("FAIL", "ERROR"):
        return "still failing"
    if base == "MISS" and patched == "PASS":
        return "new"
    return "unchanged"


def compare_checks(base_runs: list[dict], patched_runs: list[dict]) -> list[dict]:
    b, p = _collect(base_runs), _collect(patched_runs)
    checks = []
    for path in list(b) + [x for x in p if x not in b]:
        bc = b.get(path, {"statuses": [], "metrics": {}, "timelines": [], "messages": [], "notes": {}})
        pc = p.get(path, {"statuses": [], "metrics": {}, "timelines": [], "messages": [], "notes": {}})
        bs, ps = side_status(bc["statuses"]), side_status(pc["statuses"])
        tr = transition(bs, ps)
        metrics = []
        for name in list(bc["metrics"]) + [n for n in pc["metrics"] if n not in bc["metrics"]]:
            bm, pm = bc["metrics"].get(name), pc["metrics"].get(name)
            unit = (bm or pm)["unit"]
            lib = (bm or pm)["lower_is_better"]
            cmp = compare(name, unit, bm["samples"] if bm else [], pm["samples"] if pm else [], lib).to_json()
            skipped = [side for side, st in (("base", bs), ("patched", ps)) if st == "SKIP"]
            if skipped:   # a check that skipped asserted nothing; numbers it left behind prove nothing either
                cmp.update(verdict="inconclusive", reason=f"not compared: the check skipped on {' and '.join(skipped)}")
            elif (bm or pm).get("context"):
                cmp.update(verdict="context", reason="recorded to explain the check's metrics; not compared")
            metrics.append({**cmp, "base_samples": bm["samples"] if bm else [],
                            "patched_samples": pm["samples"] if pm else []})
        verdict = tr
        if tr == "unchanged" and any(m["verdict"] == "regressed" for m in metrics):
            verdict = "metric regression"
        elif tr == "unchanged" and any(m["verdict"] == "improved" for m in metrics):
            verdict = "metric improvement"
        checks.append({
            "path": path, "base": {"status": bs, "statuses": bc["statuses"]},
            "patched": {"status": ps, "statuses": pc["statuses"]}, "transition": tr, "verdict": verdict,
            "metrics": metrics,
            "timelines": {"base": bc["timelines"][:1], "patched": pc["timelines"][:1]},
            "messages": {"base": bc["messages"][:3], "patched": pc["messages"][:3]},
            "notes": {"base": bc["notes"], "patched": pc["notes"]},
        })
    return checks


def splat_diff(base_runs: list[dict], patched_runs: list[dict]) -> dict:
    def fps(runs):
        out = OrderedDict()
        for r in runs:
            for s in r.get("splats", []):
                out.setdefault(s["fingerprint"], s)
        return out

    b, p = fps(base_runs), fps(patched_runs)
    new = [s for fp, s in p.items() if fp not in b and not s.get("known")]
    return {"base": list(b.values()), "patched": list(p.values()), "new": new}


def expected_effects(expected: dict | None, checks: list[dict]) -> list[dict]:
    """Did the series' declared effect hold?  decrease/increase: a significant change that way;
    none: no significant change.  Not measured: held is None."""
    out = []
    by_path = {c["path"]: c for c in checks}
    for e in (expected or {}).get("checks", []):  # status transitions, e.g. "fixed"
        c = by_path.get(e["check"])
        held = None if c is None else c["transition"] == e["transition"]
        observed = "not run" if c is None else f"{c['base']['status']} -> {c['patched']['status']} ({c['transition']})"
        out.append({**e, "metric": "status", "change": e["transition"], "held": held, "observed": observed})
    for e in (expected or {}).get("metrics", []):
        c = by_path.get(e["check"])
        m = next((m for m in (c or {}).get("metrics", []) if m["metric"] == e["metric"]), None)
        held, observed = None, "not measured"
        if m and m["verdict"] not in ("inconclusive", "context"):
            sig = m["verdict"] in ("improved", "regressed")
            if e["change"] == "decrease":
                held = sig and m["delta"] < 0
            elif e["change"] == "increase":
                held = sig and m["delta"] > 0
            else:
                held = not sig
            observed = m["reason"]
        elif m:
            observed = m["reason"]
        out.append({**e, "held": held, "observed": observed})
    return out


def overall(checks: list[dict], splats: dict, builds_ok: bool = True) -> dict:
    regressions = [c["path"] for c in checks if c["verdict"] in ("regression", "metric regression")]
    regressions += [f"new {s['kind']}: {s['fingerprint']}" for s in splats.get("new", [])]
    return {
        "status": "regression" if regressions else "no regression",
        "regressions": regressions,
        "improvements": [c["path"] for c in checks if c["verdict"] in ("fixed", "metric improvement")],
        "flaky": [c["path"] for c in checks if c["verdict"] == "flaky"],
        "exit_code": 1 if regressions else 0,
    }
