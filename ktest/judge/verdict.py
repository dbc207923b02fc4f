"""From guest runs of both sides to per-check verdicts.  Pure: dicts in, dicts out.

Inputs are the `guest-run.json` records of each boot (see checks.GuestRun.to_json): results per check,
splats per boot.  Status order follows KCIDB: FAIL > ERROR > MISS > PASS > DONE > SKIP.
"""

from __future__ import annotations

import functools
import statistics
from collections import OrderedDict
from collections.abc import Callable
from typing import TYPE_CHECKING, NamedTuple

from ktest.judge.crash import LABEL
from ktest.base.result import CheckResult, Expectation, Json, Outcome, Result, Verdict
from ktest.judge.stats import ALPHA, DRIFT_ALPHA, POWER, RULE, Comparison, compare, judge

if TYPE_CHECKING:
    import numpy as np

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


def _entry() -> Json:
    """A check's collected results on one side before any is added (collect)."""
    return {"statuses": [], "metrics": OrderedDict(), "timelines": [], "messages": [], "notes": {}, "infra": 0,
            "host_wait": []}


def collect(runs: list[Json]) -> "OrderedDict[str, Json]":
    """path -> {statuses, metrics{name: {unit, samples, boots, lower_is_better, min_effect}}, timelines,
    messages, notes}.  `boots` keeps each boot's samples apart: the boot is the unit of replication."""
    out: OrderedDict[str, Json] = OrderedDict()
    for bi, run in enumerate(runs):
        for r in run.get("results", []):
            c = out.setdefault(r["path"], _entry())
            c["statuses"].append(r["status"])
            c["infra"] += bool(r.get("infra"))
            if r.get("host_wait_share") is not None:
                c["host_wait"].append(r["host_wait_share"])
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


EMPTY = {"statuses": [], "metrics": {}, "timelines": [], "messages": [], "notes": {}, "infra": 0, "host_wait": []}


def add_unreported(sides: list[tuple[list[Json], "OrderedDict[str, Json]"]]) -> None:
    """A case an upstream program reports in some boot (a sub-result, id "NODEID::name"), missing from
    a boot in which that program ran and failed (seen: bond_options.sh's prio group ended by the
    runner's 1200 s timeout on a slow patched boot, its last case never printed): a FAIL of that boot,
    so that its failure counts decide, never a regression of one missing draw.  `sides`: each side's
    boots and collect() of them, extended in place."""
    subs: dict[str, dict[str, str]] = {}           # program's node id -> {case id: case path}
    for runs, _ in sides:
        for run in runs:
            ids = {r.get("id") for r in run.get("results", [])}
            for r in run.get("results", []):
                parent = (r.get("id") or "").rpartition("::")[0]
                if parent in ids:
                    subs.setdefault(parent, {})[r["id"]] = r["path"]
    for runs, got in sides:
        for run in runs:
            results = run.get("results", [])
            ids = {r.get("id") for r in results}
            for r in results:
                if r.get("id") not in subs or r["status"] not in ("FAIL", "ERROR") or r.get("infra"):
                    continue
                for case, path in subs[r["id"]].items():
                    if case in ids:
                        continue
                    c = got.setdefault(path, _entry())
                    c["statuses"].append("FAIL")
                    c["messages"].append(f"not reported: {r['path']} ended before this case"
                                         + (f" ({r['message'][:200]})" if r.get("message") else ""))


def judged_status(c: Json) -> str:
    """A side's status for the comparison: a result the machine failed (an infrastructure error, such
    as the host's link control) says nothing of the kernel and is left out; a side with nothing else
    asserted nothing ("SKIP", so that the check is "not compared", never a regression)."""
    if not c["infra"]:
        return side_status(c["statuses"])
    kept = list(c["statuses"])
    for _ in range(c["infra"]):
        kept.remove("ERROR")            # an infrastructure error is always an ERROR result
    return side_status(kept) if kept else "SKIP"


FAIL_EFFECT = 0.5          # the smallest rise of a check's failure rate (per boot) that matters


def failure_counts(c: Json) -> tuple[int, int]:
    """(boots that failed the check, boots that passed or failed it) on one side: an infrastructure
    error is neither; a skip asserted nothing."""
    fails = sum(s in ("FAIL", "ERROR") for s in c["statuses"]) - c["infra"]
    return fails, fails + sum(s == "PASS" for s in c["statuses"])


def exact_significant(p: float) -> bool:
    """An exact test's p-value rejects at p <= ALPHA (its chance of doing so under no difference is at
    most ALPHA, the p-value of a discrete test being super-uniform); the tolerance covers the float
    arithmetic of an exact 1/20."""
    return p <= ALPHA * (1.0 + 1e-9)


def _fisher_greater(kp: int, n_p: int, kb: int, n_b: int) -> float:
    """One-sided Fisher exact p: does the patched side fail more often than the base?"""
    from scipy.stats import hypergeom

    # kp failures among n_p draws from n_p + n_b boots of which kp + kb failed
    return float(hypergeom.sf(kp - 1, n_p + n_b, kp + kb, n_p))


NUISANCE_GAMMA = 0.001     # Berger-Boos: the base's failure rate is searched within its 99.9 % interval


def _restricted_rates(ka: "np.ndarray", n_a: int, kb: "np.ndarray", n_b: int, margin: float,
                      grid: int = 2001) -> tuple["np.ndarray", "np.ndarray"]:
    """The maximum-likelihood failure rates (patched, base) of each outcome under ra = rb + margin, the
    boundary of the null hypothesis of a rise that matters (Farrington-Manning), over a grid of rb."""
    import numpy as np

    rb = np.linspace(0.0, 1.0 - margin, grid)
    ra = rb + margin
    la, l1a, lb, l1b = (np.log(np.clip(x, 1e-300, 1.0)) for x in (ra, 1 - ra, rb, 1 - rb))
    ll = ka[..., None] * la + (n_a - ka)[..., None] * l1a + kb[..., None] * lb + (n_b - kb)[..., None] * l1b
    best = rb[np.argmax(ll, axis=-1)]
    return best + margin, best


@functools.cache
def rise_ruled_out_p(kb: int, n_b: int, kp: int, n_p: int, margin: float = FAIL_EFFECT) -> float:
    """The p-value of a non-inferiority test: H0 "the patched side fails at least `margin` more often
    than the base" (a rise of its failure rate per boot that matters) against "it fails less than that
    more often".  Exact and unconditional: the Farrington-Manning score statistic, its p-value the
    largest over the base's failure rate rb (the nuisance) of P(statistic <= observed | rb, rb + margin),
    rb searched within a 1 - NUISANCE_GAMMA Clopper-Pearson interval of the base's counts and
    NUISANCE_GAMMA added (Berger-Boos).  A p-value <= 1 - POWER rules the rise out: of runs in which the
    patch raised the failure rate by `margin`, at most 1 - POWER would.  Where the base fails most of the
    time a rise of `margin` is impossible and small counts rule it out (5 of 5 against 4 of 5: 0.19)."""
    import numpy as np
    from scipy.stats import beta, binom

    i, j = np.indices((n_p + 1, n_b + 1))          # every outcome: i patched and j base failures
    ra, rb = _restricted_rates(i, n_p, j, n_b, margin)
    se = np.sqrt(np.maximum(ra * (1 - ra) / n_p + rb * (1 - rb) / n_b, 1e-12))
    score = (i / n_p - j / n_b - margin) / se
    at_most = (score <= score[kp, kb] + 1e-9).astype(float)
    lo = beta.ppf(NUISANCE_GAMMA / 2, kb, n_b - kb + 1) if kb > 0 else 0.0
    hi = beta.ppf(1 - NUISANCE_GAMMA / 2, kb + 1, n_b - kb) if kb < n_b else 1.0
    hi = min(hi, 1.0 - margin)
    if lo > hi:                 # the base fails too often for a rise of `margin` to be possible
        return NUISANCE_GAMMA
    nuisance = np.linspace(lo, hi, 401)
    pb = binom.pmf(np.arange(n_b + 1)[None, :], n_b, nuisance[:, None])
    pa = binom.pmf(np.arange(n_p + 1)[None, :], n_p, nuisance[:, None] + margin)
    return float(min(1.0, np.einsum("gi,ij,gj->g", pa, at_most, pb).max() + NUISANCE_GAMMA))


@functools.cache
def failure_test(kb: int, n_b: int, kp: int, n_p: int) -> tuple[str, float]:
    """DIFFERENT, SAME or UNKNOWN for a check's failure counts, and the p-value.  DIFFERENT: Fisher's
    exact test (one-sided), p <= ALPHA.  SAME: the patched side fails no more often than the base, or a
    rise of FAIL_EFFECT in its failure rate is ruled out (rise_ruled_out_p <= 1 - POWER: Pinpoint's
    'high threshold', as a test whose error is bounded at every base failure rate; an earlier rule asked
    for power against the base's observed rate + FAIL_EFFECT, capped at 1, and at a base failing 4 of 5
    boots never settled).  UNKNOWN: more boots."""
    if n_p == 0 or n_b == 0:
        return "UNKNOWN", 1.0
    if kp == 0 or kp / n_p <= kb / n_b:
        return "SAME", 1.0
    p = _fisher_greater(kp, n_p, kb, n_b)
    if exact_significant(p):
        return "DIFFERENT", p
    return ("SAME" if rise_ruled_out_p(kb, n_b, kp, n_p) <= 1.0 - POWER else "UNKNOWN"), p


def failure_verdict(bc: Json, pc: Json, tr: str, history: tuple[int, int] | list[int] | None = None) -> Json | None:
    """A check that failed in some patched boots: its failure counts decide (None: no patched failure
    or no base that ran it).  `history`: (failed, boots) of the same check on the same base kernel in
    earlier runs, counted with the base."""
    kp, n_p = failure_counts(pc)
    kb, n_b = failure_counts(bc)
    if (bc["infra"] or pc["infra"]) and (n_b or n_p) and min(n_b, n_p) < 2:
        # the machine (host link control) or the setup failed some boots, and too few are left on a side
        # to compare: more boots, not "not compared"; a side on which every boot failed so, for both
        # sides, is the machine's and stays "not compared"
        return {"decision": "UNKNOWN", "p": 1.0, "base": [kb, n_b], "patched": [kp, n_p], "history": None,
                "verdict": "undecided", "why": f"set up in {n_b} base and {n_p} patched boot(s) only "
                                               f"({bc['infra']} and {pc['infra']} failed to set up)"}
    if kp == 0 or n_b == 0:
        return None
    hk, hn = history or (0, 0)
    dec, p = failure_test(kb + hk, n_b + hn, kp, n_p)
    mixed = any(0 < k < n for k, n in ((kb, n_b), (kp, n_p)))
    verdict = {"DIFFERENT": "regression", "UNKNOWN": "undecided"}.get(dec) or ("flaky" if mixed else tr)
    return {"decision": dec, "p": p, "base": [kb, n_b], "patched": [kp, n_p],
            "history": [hk, hn] if history else None, "verdict": verdict}


def fix_not_shown(bc: Json, pc: Json, history: tuple[int, int] | list[int] | None = None) -> str | None:
    """Why a check that failed in every base boot and passed in every patched one is not yet shown fixed,
    or None: "fixed" is a claim as a regression is, by the same exact test the other way round (Fisher,
    one-sided, p <= ALPHA), with the base's failures in earlier runs of the same kernel (`history`)
    counted with its own.  2 boots a side give p = 1/6, 3 give 1/20: a fix is shown from 3 boots a side
    (fewer with a history of base failures), and a base that failed only in this run's boots (seen: a
    setup ping of a starved guest, 2 of 8 boots, which a split put on one side) is not called fixed.
    An improvement buys no rounds: the check is "not compared", with this reason."""
    kb, n_b = failure_counts(bc)
    kp, n_p = failure_counts(pc)
    hk, hn = history or (0, 0)
    if kp or not kb or not n_p:
        return None
    p = _fisher_greater(kb + hk, n_b + hn, kp, n_p)
    if exact_significant(p):
        return None
    past = f", {hk} of {hn} in earlier runs of this base" if hn else ""
    return (f"fails in {kb} of {n_b} base boots{past} and none of {n_p} patched: p={p:.3g}, "
            f"too few boots to show it fixed")


def correct_failure_tests(failures: list[Json]) -> None:
    """The run-wide correction for failure counts, as for metrics: Benjamini-Hochberg over the Fisher
    p-values of every check that failed more often on the patched side (the checks that were tested).
    A bonding run has some hundred upstream cases, a few of which flake on both sides: each one tested
    at 5 % on its own would, now and then, be a false regression.  A check whose raw p is within ALPHA
    but whose q is not stays UNKNOWN: more boots (a check that fails in every patched boot and no base
    one reaches q <= ALPHA with a boot or two more)."""
    from ktest.judge.stats import adjust

    tested = [f for f in failures if f.get("p", 1.0) < 1.0 and not f.get("why")]
    for f, q in zip(tested, adjust([f["p"] for f in tested])):
        f["q"] = q
        if f["decision"] == "DIFFERENT" and not exact_significant(q):
            f["decision"], f["verdict"] = "UNKNOWN", "undecided"
            f["why"] = (f"fails in {f['patched'][0]} of {f['patched'][1]} patched boots, {f['base'][0]} of "
                        f"{f['base'][1]} base: p={f['p']:.3g}, but q={q:.3g} over the {len(tested)} checks "
                        f"whose failures were tested")


def shown_status(c: Json) -> str:
    """A side's status as the report shows it: a boot the machine or the setup failed is left out
    (a PASS beside one setup ERROR is PASS, not FLAKY), unless every boot failed so."""
    if c["infra"] and c["infra"] < len(c["statuses"]):
        return judged_status(c)
    return side_status(c["statuses"])


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


# A timing metric's decided change is in doubt when the host starved one side's guests more while the
# check ran (ktest.boot.hostwait: the share of the time the guest's QEMU threads wanted a host CPU that
# they waited for one, per boot): every boot of the slower side waited more than every boot of the
# other, by HOST_LOAD_GAP or more at the medians.  Under TCG a starved guest's own clock counts the
# time it did not run, so such a change may be the host's; more boots, under other load, settle it.
HOST_LOAD_GAP = 0.10
# ... unless the change is larger than any the host's load could make: a guest that waits for a host CPU
# 90 % of the time it wants one runs 10x slower, and the largest shift a one-sided load made here was 2x
# (the loss window, docs/evidence/2026-12-07-one-sided-load-6.12-tcg).  Seen: the linkwatch seed's bounce,
# 916 -> 0.8 ms, held back on 1-vCPU guests because the base guests waited 46-55 % and the patched 26-40 %.
HOST_LOAD_MAX_RATIO = 10.0
TIME_UNITS = frozenset({"ms", "s", "us", "ns"})


def host_load_doubt(c: Comparison, base: list[float], patched: list[float]) -> str | None:
    """Why `c`'s decided change (regressed or improved) may be the host's load and not the kernel's, or
    None.  base, patched: the check's host wait share in each boot of each side (hostwait)."""
    if c.verdict not in ("regressed", "improved") or c.unit not in TIME_UNITS or not base or not patched:
        return None
    patched_slower = (c.verdict == "regressed") == c.lower_is_better
    slow, fast = (patched, base) if patched_slower else (base, patched)
    if min(slow) <= max(fast) or statistics.median(slow) - statistics.median(fast) < HOST_LOAD_GAP:
        return None
    lo, hi = sorted((abs(c.base_median or 0.0), abs(c.patched_median or 0.0)))
    if hi > HOST_LOAD_MAX_RATIO * lo:
        return None

    def pct(xs: list[float]) -> str:
        lo, hi = f"{100 * min(xs):.0f}", f"{100 * max(xs):.0f}"
        return (lo if lo == hi else f"{lo}-{hi}") + " %"
    seen = "longer" if patched_slower else "shorter"
    return (f"{c.reason}; not decided: the patched times are {seen}, and the host starved the "
            f"{'patched' if patched_slower else 'base'} side's guests more while this check ran (they waited "
            f"for a host CPU {pct(slow)} of the time they wanted one, the other side's {pct(fast)}): the "
            "change may be the host's load, not the kernel's; more boots can settle it")


class _Pending(NamedTuple):
    """A metric's comparison on its way to a verdict: its two sides' collected metric (None: the side did
    not measure it) and its check's host wait share per boot of each side."""
    cmp: Comparison
    base: Json | None
    patched: Json | None
    base_wait: list[float]
    patched_wait: list[float]


def compare_checks(base_runs: list[Json], patched_runs: list[Json], calibration: Json | None = None,
                   once: frozenset[str] | set[str] = frozenset(), noise: Json | None = None,
                   fail_history: Json | None = None) -> list[Json]:
    """Per-check verdicts.  `calibration`: {"<path>/<metric>": {"centre": floor, "tail": floor}} from
    `ktest calibrate`, the measured noise of each metric on this kernel and accel.  All metrics of the
    run are judged together (the multiple-testing correction is run-wide, see stats).  `once`: paths of
    checks that run in one boot a side by design; `noise`: {"<path>/<metric>": noise model} (stats);
    `fail_history`: {path: (failed, boots)} of the base kernel in earlier runs."""
    b, p = collect(base_runs), collect(patched_runs)
    add_unreported([(base_runs, b), (patched_runs, p)])
    checks: list[Json] = []
    pending: list[_Pending] = []
    # the run's base boots are tested against each noise model it uses: DRIFT_ALPHA is shared among them,
    # so that a run warns of drift by chance in DRIFT_ALPHA of runs, not in one per metric
    models = sum(sum(a in model for a in ("centre", "tail")) for path, c in b.items() for name, m in c["metrics"].items()
                 if not m.get("context") and (model := (noise or {}).get(f"{path}/{name}")))
    drift_alpha = DRIFT_ALPHA / max(1, models)
    for path in list(b) + [x for x in p if x not in b]:
        bc, pc = b.get(path, EMPTY), p.get(path, EMPTY)
        bs, ps = shown_status(bc), shown_status(pc)
        tr = transition(judged_status(bc), judged_status(pc))
        if tr == "unchanged" and (bc["infra"] or pc["infra"]) and judged_status(bc) == judged_status(pc) == "SKIP":
            tr = "not compared"     # the machine failed it everywhere (or it skipped where it did not)
        metrics = []
        for name in list(bc["metrics"]) + [n for n in pc["metrics"] if n not in bc["metrics"]]:
            bm, pm = bc["metrics"].get(name), pc["metrics"].get(name)
            m0 = bm or pm
            cmp = compare(name, m0["unit"], list((bm or {}).get("boots", {}).values()),
                          list((pm or {}).get("boots", {}).values()), m0["lower_is_better"],
                          min_effect=m0.get("min_effect"), calibrated=(calibration or {}).get(f"{path}/{name}"),
                          min_effect_tail=m0.get("min_effect_tail"), noise=(noise or {}).get(f"{path}/{name}"),
                          once=path in once, drift_alpha=drift_alpha)
            skipped = [side for side, st in (("base", bs), ("patched", ps)) if st == "SKIP"]
            if skipped:   # a check that skipped asserted nothing; numbers it left behind prove nothing either
                cmp.verdict, cmp.reason = "inconclusive", f"not compared: the check skipped on {' and '.join(skipped)}"
                cmp.needs_boots, cmp.doubt = False, None
            elif m0.get("context"):
                cmp.verdict, cmp.reason = "context", "recorded to explain the check's metrics; not compared"
                cmp.needs_boots, cmp.doubt = False, None
            pending.append(_Pending(cmp, bm, pm, bc["host_wait"], pc["host_wait"]))
            metrics.append(cmp)
        checks.append({
            "path": path, "base": {"status": bs, "statuses": bc["statuses"], "infra_errors": bc["infra"]},
            "patched": {"status": ps, "statuses": pc["statuses"], "infra_errors": pc["infra"]},
            "transition": tr, "verdict": tr,
            "failures": failure_verdict(bc, pc, tr, (fail_history or {}).get(path)),
            "metrics": metrics,
            "timelines": {"base": bc["timelines"][:1], "patched": pc["timelines"][:1]},
            "messages": {"base": bc["messages"][:3], "patched": pc["messages"][:3]},
            "notes": {"base": bc["notes"], "patched": pc["notes"]},
            "host_wait": {"base": bc["host_wait"], "patched": pc["host_wait"]},
        })
    correct_failure_tests([c["failures"] for c in checks if c["failures"]])
    _mark_crashed(checks, crash_diff(base_runs, patched_runs))
    judge([x.cmp for x in pending])
    for x in pending:
        cmp = x.cmp
        if why := host_load_doubt(cmp, x.base_wait, x.patched_wait):
            cmp.doubt = "harm" if cmp.verdict == "regressed" else "benefit"
            cmp.verdict, cmp.needs_boots, cmp.aspect, cmp.reason = "inconclusive", True, None, why
    js = {id(x.cmp): {**x.cmp.to_json(), "base_samples": x.base["samples"] if x.base else [],
                      "patched_samples": x.patched["samples"] if x.patched else []}
          for x in pending}
    for c in checks:
        c["metrics"] = [js[id(m)] for m in c["metrics"]]
        c["verdict"] = check_verdict((c["failures"] or {}).get("verdict") or c["transition"],
                                     [m["verdict"] for m in c["metrics"]],
                                     any(m.get("doubt") == "harm" for m in c["metrics"]))
        if nr := c.get("not_run"):
            c["verdict"] = "crashed" if nr["during"] else "not run"
        elif c["verdict"] == "fixed" and c["path"] in once:
            # one boot a side by design (an upstream program): a base failure beside a patched pass is one
            # draw each, which a flaky case gives by chance (seen in a full bonding run of a refactor)
            c["verdict"] = "not compared"
            c["why"] = ("runs in one boot a side by design: one failing base boot beside one passing patched "
                        "boot does not show it fixed")
        elif c["verdict"] == "fixed" and (why := fix_not_shown(b.get(c["path"], EMPTY), p.get(c["path"], EMPTY),
                                                               (fail_history or {}).get(c["path"]))):
            c["verdict"], c["why"] = "not compared", why
    return checks


CRASH_VERDICTS = ("crashed", "not run")   # counted under their side's crash, not as regressions of their own


def crash_diff(base_runs: list[Json], patched_runs: list[Json]) -> Json:
    """Each side's crashes (checks.GuestRun's "crash" per boot), one per fingerprint with the boots it
    happened in and every check it cut off; "new": the patched side's that the base does not have and
    that no known-issues entry explains."""
    def side(runs: list[Json]) -> list[Json]:
        out: OrderedDict[str, Json] = OrderedDict()
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


def _mark_crashed(checks: list[Json], crashes: Json) -> None:
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


def _where(cr: Json) -> str:
    return cr.get("during") or cr.get("where") or "?"


def check_verdict(tr: str, metric_verdicts: list[str], harm_in_doubt: bool = False) -> str:
    """A check's verdict from its status transition and its metrics.  A check that fails on both sides
    is still compared on its metrics: it can get worse (or better) while failing.  A check whose
    statuses did not change but a metric of which may have got worse is "undecided", not "unchanged"."""
    worse, better = "regressed" in metric_verdicts, "improved" in metric_verdicts
    if tr == "unchanged":
        return ("metric regression" if worse else "undecided" if harm_in_doubt else
                "metric improvement" if better else tr)
    if tr == "still failing":
        return "still failing, worse" if worse else "still failing, better" if better else tr
    if tr == "flaky" and worse:         # failing now and then on both sides, and slower too
        return "metric regression"
    return tr


def splat_diff(base_runs: list[Json], patched_runs: list[Json]) -> Json:
    """Splats by fingerprint on each side; `new`: on patched only (and not a known issue), each with the
    number of patched boots that showed it (`boots` of `of`)."""
    def fps(runs: list[Json]) -> OrderedDict[str, Json]:
        out: OrderedDict[str, Json] = OrderedDict()
        for r in runs:
            for s in r.get("splats", []):
                out.setdefault(s["fingerprint"], s)
        return out

    def seen(fp: str) -> int:
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


def unconfirmed_stall(splat: Json) -> bool:
    """A new stall-kind splat seen in fewer than two patched boots (stored results without counts: no)."""
    return splat["kind"] in STARVATION_KINDS and splat.get("boots", 2) < 2


def expected_effects(expected: Json | None, checks: list[Json]) -> list[Json]:
    """Did the series' declared effect hold?  decrease/increase: a significant change that way;
    none: no significant change.  Not measured, or measured and not decided at these boots
    ("undecided": true): held is None."""
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
        fallback = ""
        if m is None and e["metric"].endswith("_kernel"):
            # a kernel without kprobe events times the same latency in user space only
            user = e["metric"].removesuffix("_kernel")
            m = next((m for m in (c or {}).get("metrics", []) if m["metric"] == user), None)
            fallback = f"(no kernel timestamps here: judged on {user}, timed in user space) " if m else ""
        held, observed = None, "not measured"
        if m and m["verdict"] not in ("inconclusive", "context"):
            sig = m["verdict"] in ("improved", "regressed")
            if e["change"] == "decrease":
                held = sig and m["delta"] < 0
            elif e["change"] == "increase":
                held = sig and m["delta"] > 0
            else:
                held = not sig
            observed = fallback + m["reason"]
        elif m:
            observed = fallback + m["reason"]
        out.append({**e, "held": held, "observed": observed, **({"undecided": True} if m and held is None and m.get("doubt") else {})})
    return out


SMOKE = "smoke."           # the checks of testcases/test_smoke.py: every run has them


def has_evidence(checks: list[Json]) -> bool:
    """Did both sides run at least one check that asserted something (PASS or FAIL, not SKIP/MISS)?  Not
    counting the smoke checks when the run has others: they always run, and a linkwatch series whose
    every linkwatch check skipped proved nothing about linkwatch however well the guest booted."""
    ran = ("PASS", "FAIL", "ERROR", "FLAKY")
    checks = [c for c in checks if not c["path"].startswith(SMOKE)] or checks
    return any(c["base"]["status"] in ran and c["patched"]["status"] in ran and c["transition"] != "not compared"
               for c in checks) or \
        any(c["transition"] == "regression" for c in checks)


def overall(checks: list[Json], splats: Json, builds_ok: bool = True, crashes: Json | None = None) -> Verdict:
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
    undecided = [f"{c['path']}: " + (c["failures"].get("why") or
                                      f"fails in {c['failures']['patched'][0]} of {c['failures']['patched'][1]} "
                                      f"patched boots, {c['failures']['base'][0]} of {c['failures']['base'][1]} base")
                 for c in checks
                 if (c.get("failures") or {}).get("decision") == "UNKNOWN" and c["verdict"] not in CRASH_VERDICTS]
    undecided += [f"{c['path']}/{m['metric']}: {m['reason']}" for c in checks for m in c["metrics"]
                  if m.get("doubt") == "harm" and c["verdict"] not in CRASH_VERDICTS]
    status = Outcome.REGRESSION if regressions else Outcome.UNDECIDED if undecided else Outcome.NO_REGRESSION
    v = Verdict(
        status, status.exit_code,
        regressions=regressions,
        improvements=[c["path"] for c in checks if c["verdict"] in IMPROVEMENTS],
        flaky=[c["path"] for c in checks if c["verdict"] == "flaky"] + stalls,
        inconclusive=[f"{c['path']}/{m['metric']}" for c in checks for m in c["metrics"] if m.get("needs_boots")],
        undecided=undecided,
        not_run=[c["path"] for c in checks if c["verdict"] in CRASH_VERDICTS],
        not_compared=[c["path"] for c in checks if c["verdict"] == "not compared"],
        rule=RULE,
        crash={**lead, "side": "patched" if lead in crashes["patched"] else "base",
               "new": lead in crashes["new"]} if lead else None)
    if not regressions and not has_evidence(checks):
        # a run with no evidence is never "no regression"
        smoke = " but the smoke checks" if any(c["path"].startswith(SMOKE) for c in checks) else ""
        v = v.cannot_run("checks", f"no check{smoke} ran and asserted something on both sides: there is no "
                                   f"evidence either way")
    return v


def collection_order(boots: list[Json]) -> Callable[[Json], int] | None:
    """A sort key putting checks in the order the guest plugin collected them (the first boot that
    says), a sub-result (id "NODEID::name") after its check; None when no boot says."""
    sel = next((b["selection"] for b in boots if b.get("selection") and b["selection"].get("collected")), None)
    if sel is None:
        return None
    pos = {c["id"]: k for k, c in enumerate(sel["collected"])}
    rank: dict[str, int] = {}
    for b in boots:
        for r in b.get("results", []):
            nid = r["id"]
            while nid and nid not in pos:
                nid = nid.rpartition("::")[0]
            rank.setdefault(r["path"], pos.get(nid, len(pos)))
    return lambda check: rank.get(check["path"], len(pos))


def once_paths(result: Result, boots: list[Json]) -> frozenset[str]:
    """Paths of the checks that run in one boot a side by design: the slow checks (round 1 only), by
    their node ids in the run's settings."""
    slow = set((result.settings.slow_checks or {}).get("checks") or [])
    if not slow:
        return frozenset()
    out = set()
    for b in boots:
        for r in b.get("results", []):
            nid = r.get("id") or ""
            while nid and nid not in slow:
                nid = nid.rpartition("::")[0]
            if nid:
                out.add(r["path"])
    return frozenset(out)


def control_spread(areas_: list[str], base_runs: list[Json], patched_runs: list[Json]) -> list[Json]:
    """Resolution on record: per area of the run that names a control path (areas/*.toml `control`), that
    metric's spread (interquartile range of its repetitions) in each boot of each side, in boot order
    (None for a boot that ran checks but did not time it at least 4 times; a boot that ran no check is
    left out).  An area whose control path no boot of the run timed has no row."""
    from ktest import areas
    from ktest.judge.stats import boot_iqr

    out = []
    for name in areas_:
        ctl = areas.all_areas().get(name)
        if not ctl or not ctl.control:
            continue
        path, _, metric = ctl.control.rpartition("/")
        row: Json = {"area": name, "control": ctl.control, "unit": None}
        for side, runs in (("base", base_runs), ("patched", patched_runs)):
            iqrs: list[float | None] = []
            for run in runs:
                got = [m for r in run.get("results", []) if r["path"] == path
                       for m in r.get("metrics", []) if m["name"] == metric]
                iqr = boot_iqr(got[0]["samples"]) if got else None
                if got:
                    row["unit"] = got[0]["unit"]
                if run.get("results"):
                    iqrs.append(None if iqr is None else round(iqr, 3))
            row[side] = iqrs
        if row["unit"] is not None:        # the run timed it at all (a -k run may have left it out)
            out.append(row)
    return out


def conclude(result: Result, base_runs: list[Json], patched_runs: list[Json],
             calibration: Json | None = None) -> None:
    """Checks, splats, expectations and the verdict from both sides' guest runs (rounds and retries),
    into `result`.  `ktest run`, `ktest merge` (on the pooled runs of all shards) and `ktest compare`
    all conclude here.  Checks come in collection order whichever boot ran them first (a slow check's
    own guest, a shard).  What the run was judged with (calibrated floors, the noise model and base
    failure rates from the history) is kept in result.judged_with, so that a merge or a re-render
    judges alike."""
    from ktest.judge.console import KnownIssues

    jw = result.judged_with or {}
    if calibration is None:
        calibration = jw.get("floors")
    checks = compare_checks(base_runs, patched_runs, calibration, once=once_paths(result, base_runs + patched_runs),
                            noise=jw.get("noise"), fail_history=jw.get("fail_history"))
    drifted = sorted(f"{c['path']}/{m['metric']}" for c in checks for m in c["metrics"]
                     if "drifted" in (m.get("noise") or ""))
    if jw or drifted:
        result.judged_with = {**jw, "floors": calibration, "drifted": drifted}
    order = collection_order(base_runs + patched_runs)
    if order is not None:
        checks.sort(key=order)
    known = KnownIssues(result.known_checks)
    for c in checks:
        if c["base"]["status"] in ("FAIL", "ERROR", "FLAKY") and (why := known.check(c["path"])):
            c["known_issue"] = why
    splats, crashes = splat_diff(base_runs, patched_runs), crash_diff(base_runs, patched_runs)
    result.resolution = control_spread(result.settings.check_areas, base_runs, patched_runs) or None
    result.checks = [CheckResult.from_json(c) for c in checks]
    result.splats, result.crashes = splats, crashes
    result.expected = [Expectation.from_json(e) for e in expected_effects(result.series.expected, checks)]
    verdict = overall(checks, splats, crashes=crashes)
    # Without a base that ran its checks there is nothing to compare against: a kernel that cannot
    # boot on both sides is not "no regression".  (A patched side that cannot boot is a regression.)
    if base_runs and all(r.get("started") is None for r in base_runs):
        outcomes = ", ".join(sorted({(r.get("boot") or {}).get("outcome", "?") for r in base_runs}))
        verdict = verdict.cannot_run(
            "boot", f"the base kernel never reached the guest harness in {len(base_runs)} boot(s) ({outcomes}); "
                    f"see its console log")
    result.verdict = verdict
