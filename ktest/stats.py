"""The A/B rule for metric samples.  Pure functions; no VM, no I/O.  The statistics are scipy's.

RULE (ktest-rule/2), per metric of a run:
1. Centre: exact Mann-Whitney U (a permutation test when samples tie) on all samples of each side.
   Tail (latencies): a permutation test on the difference of the p90s, so a distribution that turns
   bimodal is seen even when its median stays put.
2. Every p-value of the run (all metrics, centre and tail) goes through Benjamini-Hochberg at ALPHA;
   under a harmless series that bounds the chance of any significant metric at ALPHA.
3. The shift must exceed a floor: the larger of the check's declared smallest change that matters
   (`min_effect`) and the metric's noise, measured by `ktest calibrate` on this kernel and accel when a
   calibration exists, else estimated from the base samples (10 % of the median, the IQR, and a
   per-unit minimum).
4. The boot is the unit of replication: the shift must hold in every boot (each boot's median, or p90,
   on its side of the midpoint between the two sides); from 4 boots a side, the boots' medians (p90s)
   must differ by an exact Mann-Whitney test.  A shift seen in some boots only is
   "inconclusive", and `ktest run` boots more rounds to settle it; so does a shift beyond the floor
   with raw p < SUGGESTIVE (0.05) that the correction did not let through.
A metric is regressed if any aspect that passes 1-4 moved the wrong way (users feel the tail), else
improved if one moved the right way, else unchanged.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import asdict, dataclass, field

import numpy as np
from scipy import stats as sps

RULE = "ktest-rule/2"
RULE_TEXT = ("A metric changes only if (1) an exact Mann-Whitney test on the medians, or a permutation test on "
             "the p90s for latencies, is significant after Benjamini-Hochberg across all of the run's metrics "
             "at 5 %; (2) the shift exceeds its floor: the check's declared smallest change that matters, or the "
             "metric's noise measured by `ktest calibrate` on this kernel and accel (else estimated from the base "
             "samples); and (3) the shift holds across boots (every boot; from 4 boots a side, a test on the boots' "
             "medians).  A shift that fails (3), or is suggestive "
             "(raw p < 0.05) but not significant, is inconclusive and more rounds are booted.  A check that fails "
             "on both sides can still get worse.")
MIN_SAMPLES = 3
ALPHA = 0.05
SUGGESTIVE = ALPHA                     # raw p below this, beyond the floor, yet not significant: boot more
REL_FLOOR = 0.10                       # 10 % of the base median (uncalibrated fallback)
# per unit: the least shift that can count at all.  Counts move by whole events: a shift of one event
# is a change (2 -> 3 notifications), half an event is not.
ABS_FLOOR = {"ms": 5.0, "s": 0.005, "count": 0.5, "%": 1.0}
TAIL_UNITS = ("ms", "s")               # latencies: compare the tail too
N_RESAMPLES = 4999
_SEED = 20261201                       # permutation tests are deterministic: same samples, same verdict


@dataclass
class Comparison:
    metric: str
    unit: str
    n_base: int
    n_patched: int
    boots_base: int
    boots_patched: int
    base_median: float | None
    patched_median: float | None
    base_p90: float | None
    patched_p90: float | None
    delta: float | None            # patched - base (medians)
    delta_pct: float | None
    delta_p90: float | None
    p_value: float | None          # centre, raw
    p_tail: float | None           # tail, raw (None: not tested)
    q_value: float | None = None   # centre, after Benjamini-Hochberg over the run
    q_tail: float | None = None
    separated: bool = False
    noise_floor: float = 0.0       # centre
    tail_floor: float | None = None
    floor_source: str = ""         # declared | calibrated | estimated
    replicated: dict = field(default_factory=dict)   # aspect -> bool: the shift holds in every boot
    lower_is_better: bool = True
    verdict: str = "inconclusive"  # improved | regressed | unchanged | inconclusive
    aspect: str | None = None      # centre | tail: what decided a change
    needs_boots: bool = False      # inconclusive in a way that more boots can settle
    reason: str = ""

    def to_json(self) -> dict:
        return asdict(self)


def percentile(xs, q: float) -> float | None:
    """Linear interpolation between order statistics (numpy's default)."""
    if len(xs) == 0:
        return None
    return float(np.percentile(np.asarray(xs, dtype=float), q * 100.0))


def centre_p(base: list[float], patched: list[float]) -> float:
    """Two-sided Mann-Whitney U: exact when no values tie, else a permutation test (exact
    enumeration when small, else N_RESAMPLES draws with a fixed seed)."""
    if len(set(base) | set(patched)) == 1:
        return 1.0
    ties = len(set(base) | set(patched)) < len(base) + len(patched)
    if not ties:
        return float(sps.mannwhitneyu(base, patched, alternative="two-sided", method="exact").pvalue)
    method = sps.PermutationMethod(n_resamples=N_RESAMPLES, rng=np.random.default_rng(_SEED))
    return float(sps.mannwhitneyu(base, patched, alternative="two-sided", method=method).pvalue)


def _p90_diff(x, y, axis=-1):
    return np.percentile(y, 90, axis=axis) - np.percentile(x, 90, axis=axis)


def tail_p(base: list[float], patched: list[float]) -> float:
    """Two-sided permutation test of p90(patched) - p90(base)."""
    if len(set(base) | set(patched)) == 1:
        return 1.0
    r = sps.permutation_test((np.asarray(base, float), np.asarray(patched, float)), _p90_diff,
                             permutation_type="independent", alternative="two-sided", vectorized=True,
                             n_resamples=N_RESAMPLES, rng=np.random.default_rng(_SEED))
    return float(r.pvalue)


BOOT_TEST_MIN = 4                      # boots a side from which replication is a test on boot values


def _replicated(base_boots: list[list[float]], patched_boots: list[list[float]], agg, b: float, p: float) -> bool:
    """Does the shift hold across boots?  With few boots, every boot must sit on its own side of the
    midpoint between the two sides' pooled values; from BOOT_TEST_MIN boots a side, the boots' values
    (medians or p90s) must differ by an exact Mann-Whitney test at ALPHA, in the same direction, so that
    one odd boot among many neither blocks nor makes a verdict."""
    bb = [agg(x) for x in base_boots if x]
    pp = [agg(x) for x in patched_boots if x]
    up = p > b
    if min(len(bb), len(pp)) >= BOOT_TEST_MIN:
        if statistics.median(pp) == statistics.median(bb) or (statistics.median(pp) > statistics.median(bb)) != up:
            return False
        return centre_p(bb, pp) < ALPHA
    mid = (b + p) / 2.0
    return all((v < mid) if up else (v > mid) for v in bb) and all((v > mid) if up else (v < mid) for v in pp)


def _p90(xs):
    return percentile(xs, 0.9)


def floors(unit: str, base: list[float], min_effect: float | None, calibrated: dict | None,
           min_effect_tail: float | None = None) -> tuple[float, float, str]:
    """(centre floor, tail floor, where they come from)."""
    unit_min = ABS_FLOOR.get(unit, 0.0)
    declared = float(min_effect or 0.0)
    declared_tail = float(min_effect_tail or declared)
    if calibrated and calibrated.get("centre") is not None:
        c, t = float(calibrated["centre"]), float(calibrated.get("tail") or calibrated["centre"])
        src = "calibrated"
    else:
        bm, bp90 = statistics.median(base), _p90(base)
        iqr = percentile(base, 0.75) - percentile(base, 0.25)
        c = max(REL_FLOOR * abs(bm), iqr)
        t = max(REL_FLOOR * abs(bp90), iqr)
        src = "estimated"
    centre, tail = max(declared, c, unit_min), max(declared_tail, t, unit_min)
    if declared >= max(c, unit_min):
        src = "declared"
    return centre, tail, src


def compare(metric: str, unit: str, base_boots: list[list[float]], patched_boots: list[list[float]],
            lower_is_better: bool = True, min_effect: float | None = None,
            calibrated: dict | None = None, min_effect_tail: float | None = None) -> Comparison:
    """Raw statistics of one metric (samples grouped by boot).  The verdict is final only after
    `judge()` has seen every comparison of the run (the multiple-testing correction is run-wide)."""
    base = [float(v) for b in base_boots for v in b]
    patched = [float(v) for b in patched_boots for v in b]
    bm = statistics.median(base) if base else None
    pm = statistics.median(patched) if patched else None
    c = Comparison(metric=metric, unit=unit, n_base=len(base), n_patched=len(patched),
                   boots_base=sum(1 for b in base_boots if b), boots_patched=sum(1 for b in patched_boots if b),
                   base_median=bm, patched_median=pm, base_p90=_p90(base), patched_p90=_p90(patched),
                   delta=None, delta_pct=None, delta_p90=None, p_value=None, p_tail=None,
                   lower_is_better=lower_is_better)
    if len(base) < MIN_SAMPLES or len(patched) < MIN_SAMPLES:
        c.reason = f"needs at least {MIN_SAMPLES} samples a side (have {len(base)} and {len(patched)})"
        return c
    c.delta = pm - bm
    c.delta_pct = (c.delta / bm * 100.0) if bm else None
    c.delta_p90 = c.patched_p90 - c.base_p90
    c.separated = max(base) < min(patched) or max(patched) < min(base)
    c.noise_floor, c.tail_floor, c.floor_source = floors(unit, base, min_effect, calibrated, min_effect_tail)
    c.p_value = centre_p(base, patched)
    if unit in TAIL_UNITS:
        c.p_tail = tail_p(base, patched)
    c.replicated = {"centre": _replicated(base_boots, patched_boots, statistics.median, bm, pm)}
    if c.p_tail is not None:
        c.replicated["tail"] = _replicated(base_boots, patched_boots, _p90, c.base_p90, c.patched_p90)
    c.verdict, c.reason = "pending", "awaiting the run-wide correction"
    return c


def adjust(ps: list[float]) -> list[float]:
    """Benjamini-Hochberg q-values (scipy.stats.false_discovery_control)."""
    if not ps:
        return []
    return [float(q) for q in sps.false_discovery_control(np.asarray(ps, float), method="bh")]


def judge(comps: list[Comparison], alpha: float = ALPHA) -> None:
    """Final verdicts for all pending comparisons of one run, in place."""
    pend = [c for c in comps if c.verdict == "pending"]
    ps: list[float] = []
    for c in pend:
        ps.append(c.p_value)
        if c.p_tail is not None:
            ps.append(c.p_tail)
    qs = iter(adjust(ps))
    for c in pend:
        c.q_value = next(qs)
        if c.p_tail is not None:
            c.q_tail = next(qs)
        _decide(c, alpha)


def _decide(c: Comparison, alpha: float) -> None:
    u = c.unit
    aspects = [("centre", c.q_value, c.delta, c.noise_floor, c.base_median, c.patched_median)]
    if c.q_tail is not None:
        aspects.append(("tail", c.q_tail, c.delta_p90, c.tail_floor, c.base_p90, c.patched_p90))
    moved, why_not = [], []
    for name, q, d, floor, b, p in aspects:
        if q >= alpha:
            why_not.append(f"{name} q={q:.3f}")
        elif abs(d) <= floor:
            why_not.append(f"{name} |{d:+.1f}| {u} within floor {floor:.1f} {u}")
        else:
            moved.append((name, q, d, floor, b, p))
    if not moved:
        hints = [(name, p) for (name, q, d, floor, b, pv), p in zip(aspects, (c.p_value, c.p_tail))
                 if p is not None and p < SUGGESTIVE and abs(d) > floor]
        if hints:
            c.verdict, c.needs_boots = "inconclusive", True
            c.reason = (f"suggestive but not significant ({hints[0][0]} p={hints[0][1]:.3f} before the run-wide "
                        f"correction; " + "; ".join(why_not) + "): more boots can settle it")
            return
        c.verdict, c.reason = "unchanged", "no change beyond noise (" + "; ".join(why_not) + ")"
        return
    worse = [m for m in moved if (m[2] > 0) == c.lower_is_better]
    name, q, d, floor, b, p = (worse or moved)[0]
    c.aspect = name
    label = "median" if name == "centre" else "p90"
    desc = f"{label} {b:.1f} -> {p:.1f} {u}, q={q:.3g}, floor {floor:.1f} {u} ({c.floor_source})"
    if not c.replicated.get(name, True):
        c.verdict, c.needs_boots = "inconclusive", True
        c.reason = f"{desc}, but the shift does not hold in every boot ({c.boots_base}+{c.boots_patched} boots)"
        return
    c.verdict = "regressed" if worse else "improved"
    c.reason = desc


def compare_v1(base: list[float], patched: list[float], unit: str) -> str:
    """The rule before ktest-rule/2, kept only so that `ktest calibrate` can measure how often it cried
    wolf: per metric, >= 3 samples a side, ranges separate or Mann-Whitney (normal approximation) p < 0.05,
    and a median shift above max(10 % of the base median, the base IQR, 5 ms | half a count)."""
    if len(base) < MIN_SAMPLES or len(patched) < MIN_SAMPLES:
        return "inconclusive"
    bm, pm = statistics.median(base), statistics.median(patched)
    sep = max(base) < min(patched) or max(patched) < min(base)
    p = 1.0 if len(set(base) | set(patched)) == 1 else float(
        sps.mannwhitneyu(base, patched, alternative="two-sided", method="asymptotic").pvalue)
    floor = max(REL_FLOOR * abs(bm), ABS_FLOOR.get(unit, 0.0), percentile(base, 0.75) - percentile(base, 0.25))
    if not (sep or p < 0.05) or abs(pm - bm) <= floor or math.isnan(p):
        return "unchanged"
    return "changed"
