"""From guest runs of both sides to per-check verdicts.  Pure: dicts in, dicts out.

Inputs are the `guest-run.json` records of each boot (see checks.GuestRun.to_json): results per check,
splats per boot.  Status order follows KCIDB: FAIL > ERROR > MISS > PASS > DONE > SKIP.
"""

from __future__ import annotations

from collections import OrderedDict

from .crash import LABEL
from .records import Verdict
from .stats import RULE, compare, judge

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


def collect(runs: list[dict]) -> "OrderedDict[str, dict]":
    """path -> {statuses, metrics{name: {unit, samples, boots, lower_is_better, min_effect}}, timelines,
    messages, notes}.  `boots` keeps each boot's samples apart: the boot is the unit of replication."""
    out: OrderedDict[str, dict] = OrderedDict()
    for bi, run in enumerate(runs):
        for r in run.get("results", []):
            c = out.setdefault(r["path"], {"statuses": [], "metrics": OrderedDict(), "timelines": [],
                                           "messages": [], "notes": {}, "infra": 0})
            c["statuses"].append(r["status"])
            c["infra"] += bool(r.get("infra"))
            if r.get("message"):
                c["messages"].append(r["message"])
            for m in r.get("metrics", []):
                d = c["metrics"].setdefault(m["name"], {"unit": m["unit"], "samples": [], "boots": {},
                                                        "lower_is_better": m.get("lower_is_better", True),
                                                        "context": m.get("context", False),
                                                        "min_effect": m.get("min_effect"),
                                                        "min_effect_tail": m.get("min_effect_tail")})
                d["samples"].extend(m["samples"])
                d["boots"].setdefault(bi, []).extend(m["samples"])
            c["timelines"].extend(r.get("timelines", []))
            c["notes"].update(r.get("notes", {}))
    return out


EMPTY = {"statuses": [], "metrics": {}, "timelines": [], "messages": [], "notes": {}, "infra": 0}


def judged_status(c: dict) -> str:
    """A side's status for the comparison: a result the machine failed (an infrastructure error, such
    as the host's link control) says nothing of the kernel and is left out; a side with nothing else
    asserted nothing ("SKIP", so that the check is "not compared", never a regression)."""
    if not c["infra"]:
        return side_status(c["statuses"])
    kept = list(c["statuses"])
    for _ in range(c["infra"]):
        kept.remove("ERROR")            # an infrastructure error is always an ERROR result
    return side_status(kept) if kept else "SKIP"


REGRESSIONS = ("regression", "metric regression", "still failing, worse")
IMPROVEMENTS = ("fixed", "metric improvement", "still failing, better")


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
    ran = ("PASS", "FAIL", "ERROR")
    if (base == "SKIP" and patched in ran) or (patched == "SKIP" and base in ran) or \
            (base == "MISS" and patched in ("FAIL", "ERROR")):
        return "not compared"       # one side asserted something, the other did not: no comparison
    return "unchanged"


def compare_checks(base_runs: list[dict], patched_runs: list[dict], calibration: dict | None = None) -> list[dict]:
    """Per-check verdicts.  `calibration`: {"<path>/<metric>": {"centre": floor, "tail": floor}} from
    `ktest calibrate`, the measured noise of each metric on this kernel and accel.  All metrics of the
    run are judged together (the multiple-testing correction is run-wide, see stats)."""
    b, p = collect(base_runs), collect(patched_runs)
    checks, pending = [], []
    for path in list(b) + [x for x in p if x not in b]:
        bc, pc = b.get(path, EMPTY), p.get(path, EMPTY)
        bs, ps = side_status(bc["statuses"]), side_status(pc["statuses"])
        tr = transition(judged_status(bc), judged_status(pc))
        metrics = []
        for name in list(bc["metrics"]) + [n for n in pc["metrics"] if n not in bc["metrics"]]:
            bm, pm = bc["metrics"].get(name), pc["metrics"].get(name)
            m0 = bm or pm
            cmp = compare(name, m0["unit"], list((bm or {}).get("boots", {}).values()),
                          list((pm or {}).get("boots", {}).values()), m0["lower_is_better"],
                          min_effect=m0.get("min_effect"), calibrated=(calibration or {}).get(f"{path}/{name}"),
                          min_effect_tail=m0.get("min_effect_tail"))
            skipped = [side for side, st in (("base", bs), ("patched", ps)) if st == "SKIP"]
            if skipped:   # a check that skipped asserted nothing; numbers it left behind prove nothing either
                cmp.verdict, cmp.reason = "inconclusive", f"not compared: the check skipped on {' and '.join(skipped)}"
            elif m0.get("context"):
                cmp.verdict, cmp.reason = "context", "recorded to explain the check's metrics; not compared"
            pending.append((cmp, bm, pm))
            metrics.append(cmp)
        checks.append({
            "path": path, "base": {"status": bs, "statuses": bc["statuses"], "infra_errors": bc["infra"]},
            "patched": {"status": ps, "statuses": pc["statuses"], "infra_errors": pc["infra"]},
            "transition": tr, "verdict": tr,
            "metrics": metrics,
            "timelines": {"base": bc["timelines"][:1], "patched": pc["timelines"][:1]},
            "messages": {"base": bc["messages"][:3], "patched": pc["messages"][:3]},
            "notes": {"base": bc["notes"], "patched": pc["notes"]},
        })
    _mark_crashed(checks, crash_diff(base_runs, patched_runs))
    judge([c for c, _, _ in pending])
    js = {id(c): {**c.to_json(), "base_samples": bm["samples"] if bm else [], "patched_samples": pm["samples"] if pm else []}
          for c, bm, pm in pending}
    for c in checks:
        c["metrics"] = [js[id(m)] for m in c["metrics"]]
        c["verdict"] = check_verdict(c["transition"], [m["verdict"] for m in c["metrics"]])
        if nr := c.get("not_run"):
            c["verdict"] = "crashed" if nr["during"] else "not run"
    return checks


CRASH_VERDICTS = ("crashed", "not run")   # counted under their side's crash, not as regressions of their own


def crash_diff(base_runs: list[dict], patched_runs: list[dict]) -> dict:
    """Each side's crashes (checks.GuestRun's "crash" per boot), one per fingerprint with the boots it
    happened in and every check it cut off; "new": the patched side's that the base does not have and
    that no known-issues entry explains."""
    def side(runs):
        out: OrderedDict[str, dict] = OrderedDict()
        for i, r in enumerate(runs):
            c = r.get("crash")
            if not c:
                continue
            d = out.setdefault(c["fingerprint"], {**c, "not_run": [], "boots": [], "of_boots": 0})
            d["boots"].append(r.get("label") or f"boot {i + 1}")
            d["not_run"] += [p for p in c.get("not_run", []) if p not in d["not_run"]]
        for d in out.values():
            d["of_boots"] = len(runs)
        return list(out.values())

    b, p = side(base_runs), side(patched_runs)
    seen = {c["fingerprint"] for c in b}
    return {"base": b, "patched": p, "new": [c for c in p if c["fingerprint"] not in seen and not c.get("known")]}


def _mark_crashed(checks: list[dict], crashes: dict) -> None:
    """A check with no result on a side whose kernel crashed did not run because of that crash (or is
    the check the crash happened in): say so instead of counting it as a regression of its own.  A
    check that ran, even if it failed because of the crash, keeps its verdict."""
    for c in checks:
        for side in ("patched", "base"):
            if c[side]["status"] != "MISS" or not crashes[side]:
                continue
            cr = next((x for x in crashes[side] if x.get("during") == c["path"]), None)
            during = cr is not None
            cr = cr or next((x for x in crashes[side] if c["path"] in x.get("not_run", [])), crashes[side][0])
            c["not_run"] = {"side": side, "during": during, "fingerprint": cr["fingerprint"], "kind": cr["kind"],
                            "reason": (f"the {side} kernel crashed ({LABEL.get(cr['kind'], cr['kind'])}) during "
                                       f"this check" if during else
                                       f"not run: {side} kernel crashed in {_where(cr)}")}
            break


def _where(cr: dict) -> str:
    return cr.get("during") or cr.get("where") or "?"


def check_verdict(tr: str, metric_verdicts: list[str]) -> str:
    """A check's verdict from its status transition and its metrics.  A check that fails on both sides
    is still compared on its metrics: it can get worse (or better) while failing."""
    worse, better = "regressed" in metric_verdicts, "improved" in metric_verdicts
    if tr == "unchanged":
        return "metric regression" if worse else "metric improvement" if better else tr
    if tr == "still failing":
        return "still failing, worse" if worse else "still failing, better" if better else tr
    return tr


def splat_diff(base_runs: list[dict], patched_runs: list[dict]) -> dict:
    """Splats by fingerprint on each side; `new`: on patched only (and not a known issue), each with the
    number of patched boots that showed it (`boots` of `of`)."""
    def fps(runs):
        out = OrderedDict()
        for r in runs:
            for s in r.get("splats", []):
                out.setdefault(s["fingerprint"], s)
        return out

    def seen(fp):
        return sum(any(s["fingerprint"] == fp for s in r.get("splats", [])) for r in patched_runs)

    b, p = fps(base_runs), fps(patched_runs)
    new = [{**s, "boots": seen(fp), "of": len(patched_runs)} for fp, s in p.items()
           if fp not in b and not s.get("known")]
    return {"base": list(b.values()), "patched": list(p.values()), "new": new}


# What a starved vCPU prints as well as a kernel bug: under TCG on a loaded host, an RCU stall or a soft
# lockup can appear in one boot of a harmless series (seen: 1 of 10 no-op runs, rcu_gp_fqs_loop, while
# the host ran two runs, a mutant run and the unit tests).  Like a check that fails in one patched boot,
# such a splat is retried and counts only when a second patched boot shows it.
STARVATION_KINDS = ("rcu_stall", "soft_lockup")


def unconfirmed_stall(splat: dict) -> bool:
    """A new stall-kind splat seen in fewer than two patched boots (stored results without counts: no)."""
    return splat["kind"] in STARVATION_KINDS and splat.get("boots", 2) < 2


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


def has_evidence(checks: list[dict]) -> bool:
    """Did both sides run at least one check that asserted something (PASS or FAIL, not SKIP/MISS)?"""
    ran = ("PASS", "FAIL", "ERROR", "FLAKY")
    return any(c["base"]["status"] in ran and c["patched"]["status"] in ran and c["transition"] != "not compared"
               for c in checks) or \
        any(c["transition"] == "regression" for c in checks)


def overall(checks: list[dict], splats: dict, builds_ok: bool = True, crashes: dict | None = None) -> dict:
    """The run's verdict.  A new crash of the patched kernel comes first, as one regression: the checks
    it kept from running are listed under it (`not_run`), not as regressions of their own."""
    crashes = crashes or {"base": [], "patched": [], "new": []}
    crash_fps = {c["fingerprint"] for c in crashes["new"]}
    regressions = [f"new {c['kind']}: {c['fingerprint']}" for c in crashes["new"]]
    regressions += [c["path"] for c in checks if c["verdict"] in REGRESSIONS]
    regressions += [f"new {s['kind']}: {s['fingerprint']}" for s in splats.get("new", [])
                    if s["fingerprint"] not in crash_fps and not unconfirmed_stall(s)]
    stalls = [f"{s['kind']}: {s['fingerprint']} ({s['boots']} of {s['of']} patched boots, not reproduced)"
              for s in splats.get("new", []) if s["fingerprint"] not in crash_fps and unconfirmed_stall(s)]
    lead = (crashes["new"] or crashes["patched"] or crashes["base"] or [None])[0]
    v = Verdict(
        "regression" if regressions else "no regression", 1 if regressions else 0,
        regressions=regressions,
        improvements=[c["path"] for c in checks if c["verdict"] in IMPROVEMENTS],
        flaky=[c["path"] for c in checks if c["verdict"] == "flaky"] + stalls,
        inconclusive=[f"{c['path']}/{m['metric']}" for c in checks for m in c["metrics"] if m.get("needs_boots")],
        not_run=[c["path"] for c in checks if c["verdict"] in CRASH_VERDICTS],
        not_compared=[c["path"] for c in checks if c["verdict"] == "not compared"],
        rule=RULE,
        crash={**lead, "side": "patched" if lead in crashes["patched"] else "base",
               "new": lead in crashes["new"]} if lead else None)
    if not regressions and not has_evidence(checks):
        # a run with no evidence is never "no regression"
        v = v.cannot_run("checks", "no check ran and asserted something on both sides: there is no evidence "
                                   "either way")
    return v.to_json()


def collection_order(boots: list[dict]):
    """A sort key putting checks in the order the guest plugin collected them (the first boot that
    says), a sub-result (id "NODEID::name") after its check; None when no boot says."""
    sel = next((b["selection"] for b in boots if b.get("selection") and b["selection"].get("collected")), None)
    if sel is None:
        return None
    pos = {c["id"]: k for k, c in enumerate(sel["collected"])}
    rank = {}
    for b in boots:
        for r in b.get("results", []):
            nid = r["id"]
            while nid and nid not in pos:
                nid = nid.rpartition("::")[0]
            rank.setdefault(r["path"], pos.get(nid, len(pos)))
    return lambda check: rank.get(check["path"], len(pos))


def conclude(result: dict, base_runs: list[dict], patched_runs: list[dict],
             calibration: dict | None = None) -> None:
    """Checks, splats, expectations and the verdict from both sides' guest runs (rounds and retries),
    into `result`.  `ktest run` and `ktest merge` (on the pooled runs of all shards) both conclude
    here.  Checks come in collection order whichever boot ran them first (a slow check's own guest,
    a shard)."""
    from .console import KnownIssues

    checks = compare_checks(base_runs, patched_runs, calibration)
    order = collection_order(base_runs + patched_runs)
    if order is not None:
        checks.sort(key=order)
    known = KnownIssues(result.get("known_checks") or [])
    for c in checks:
        if c["base"]["status"] in ("FAIL", "ERROR", "FLAKY") and (why := known.check(c["path"])):
            c["known_issue"] = why
    splats, crashes = splat_diff(base_runs, patched_runs), crash_diff(base_runs, patched_runs)
    result.update(checks=checks, splats=splats, crashes=crashes,
                  expected=expected_effects(result["series"].get("expected"), checks))
    result["verdict"] = overall(checks, splats, crashes=crashes)
    # Without a base that ran its checks there is nothing to compare against: a kernel that cannot
    # boot on both sides is not "no regression".  (A patched side that cannot boot is a regression.)
    if base_runs and all(r.get("started") is None for r in base_runs):
        outcomes = ", ".join(sorted({(r.get("boot") or {}).get("outcome", "?") for r in base_runs}))
        result["verdict"] = Verdict.from_json(result["verdict"]).cannot_run(
            "boot", f"the base kernel never reached the guest harness in {len(base_runs)} boot(s) ({outcomes}); "
                    f"see its console log").to_json()
