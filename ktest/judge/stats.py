"""The A/B rule for metric samples.  Pure functions; no VM, no I/O.  The statistics are scipy's.

RULE (ktest-rule/3), per metric of a run.  The boot is the unit of replication: samples of one boot
share that boot's luck (its scheduling, its host load), so a side's evidence is its boots, not its
samples pooled.
1. Each boot gives one value per aspect: its median (centre) and, for latencies, its p90 (tail; users
   feel the tail).  Latencies are compared on a log scale (log(x + the unit's least step)), where a
   boot's luck multiplies; counts on their own scale.
2. The sides' boot values are compared by a two-sample t-test with the variance pooled over both
   sides: for a balanced nested design this is the test of the side effect in the mixed model
   value ~ side + (1 | boot).  A noise model of the metric (between-boot variance measured on this
   kernel and accel by `ktest calibrate`, or grown from the base boots of earlier runs) joins the
   run's own variance estimate, weighted by its degrees of freedom, unless the run's base boots
   disagree with it (an F-test: the machine drifted, and the run's own noise is used alone).
3. Every p-value of the run (each compared metric's centre, and tail for latencies) goes through
   Benjamini-Hochberg at ALPHA.
4. Each aspect is then DIFFERENT (q < ALPHA and the shift beyond the floor), SAME (the one-sided 95 %
   bound of the harmful shift stays under the floor: no harm as large as the floor), or UNKNOWN
   (neither).  The floor is the larger of the check's declared smallest change that matters
   (`min_effect`) and the metric's noise (calibrated, or grown from the base boots of earlier runs,
   else estimated from the base samples).
5. A metric is regressed if an aspect is DIFFERENT the harmful way, else improved if an aspect is
   DIFFERENT the good way and no aspect left UNKNOWN could be harmful (its harmful bound stays under
   the floor), else inconclusive (and `ktest run` boots more rounds) if an aspect is UNKNOWN, else
   unchanged.  An inconclusive metric whose harmful bound reaches the floor
   (`doubt` = "harm") keeps the run from being green: the run is "undecided".
Each comparison carries the smallest harmful change this run could have detected (MDE: t-test power
0.8 at ALPHA with this run's boots and noise), so that "unchanged" says how large a change it rules out.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, cast

import numpy as np
from scipy import stats as sps

RULE = "ktest-rule/3"
RULE_TEXT = ("The boot is the unit: each boot's median (and p90 for latencies, on a log scale) is compared "
             "by a t-test over boots (the mixed model's test of the side effect), with the metric's calibrated "
             "or historical between-boot noise when the run agrees with it; p-values are corrected by "
             "Benjamini-Hochberg across the run's metrics at 5 %.  A metric changed when the corrected test "
             "is significant and the shift exceeds its floor (the declared smallest change that matters, or "
             "the measured noise); it is unchanged when the 95 % bound on a harmful shift stays under the "
             "floor; otherwise it is in doubt, more rounds are booted, and a run still in doubt after "
             "--max-rounds is 'undecided' (exit 3), never green.  A check's failures are counted per boot "
             "and compared by Fisher's exact test in the same way.")
MIN_SAMPLES = 3
ALPHA = 0.05
MIN_BOOTS = 2                          # boots a side with values, the least a t-test over boots can use
POWER = 0.8                            # for the smallest detectable change (MDE)
DRIFT_ALPHA = 0.01                     # the run's base boots vs the noise models: F-tests, this level run-wide
#                                        (Bonferroni over the aspects a run tests against a model)
REL_FLOOR = 0.10                       # 10 % of the base median (uncalibrated fallback)
# per unit: the least shift that can count at all.  Counts move by whole events: a shift of one event
# is a change (2 -> 3 notifications), half an event is not.
ABS_FLOOR = {"ms": 5.0, "s": 0.005, "count": 0.5, "%": 1.0}
TAIL_UNITS = ("ms", "s")               # latencies: compare the tail too


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
    delta: float | None            # patched - base (medians of the samples)
    delta_pct: float | None
    delta_p90: float | None
    p_value: float | None          # centre, raw (t-test over boots)
    p_tail: float | None           # tail, raw (None: not tested)
    q_value: float | None = None   # centre, after Benjamini-Hochberg over the run
    q_tail: float | None = None
    separated: bool = False
    noise_floor: float = 0.0       # centre
    tail_floor: float | None = None
    floor_source: str = ""         # declared | calibrated | estimated
    lower_is_better: bool = True
    verdict: str = "inconclusive"  # improved | regressed | unchanged | inconclusive
    aspect: str | None = None      # centre | tail: what decided a change
    needs_boots: bool = False      # inconclusive in a way that more boots can settle
    doubt: str | None = None       # inconclusive: "harm" (a harmful shift as large as the floor is not ruled out) | "benefit"
    decisions: dict[str, str] = field(default_factory=dict)    # aspect -> DIFFERENT | SAME | UNKNOWN
    mde: float | None = None       # the smallest harmful centre shift this run could detect (unit)
    mde_tail: float | None = None
    noise: str = "run"             # whose between-boot variance: run | calibrated | history (+ "drifted")
    # aspect -> {"base": [...], "patched": [...]} (unit)
    boot_values: dict[str, dict[str, list[float]]] = field(default_factory=dict)
    # the measurement's own resolution: the median, over base boots, of the IQR of one boot's repetitions
    # (unit); shown next to the floor, it says whether the floor is within what the clock can see
    resolution: float | None = None
    reason: str = ""
    tests: dict[str, BootTest] = field(default_factory=dict, repr=False)   # aspect -> BootTest (not serialised)

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d.pop("tests", None)
        return d


MIN_REPS_IQR = 4                       # repetitions a boot needs for its interquartile range to mean much


def boot_iqr(samples: Sequence[float]) -> float | None:
    """The interquartile range of one boot's repetitions (None under MIN_REPS_IQR of them)."""
    if len(samples) < MIN_REPS_IQR:
        return None
    q1, q3 = np.percentile(samples, [25, 75])
    return float(q3 - q1)


def within_boot_iqr(boots: list[list[float]]) -> float | None:
    """The median over boots of each boot's interquartile range (boot_iqr; None with no boot that has
    one): how far apart one kernel's samples lie within one boot."""
    iqrs = [x for b in boots if (x := boot_iqr(b)) is not None]
    return round(float(statistics.median(iqrs)), 3) if iqrs else None


def percentile(xs: Sequence[float], q: float) -> float | None:
    """Linear interpolation between order statistics (numpy's default)."""
    if len(xs) == 0:
        return None
    return float(np.percentile(np.asarray(xs, dtype=float), q * 100.0))


def p90(xs: Sequence[float]) -> float | None:
    return percentile(xs, 0.9)


HISTORY_FLOOR_LEVEL = 0.99   # a floor grown from the history: the A/A shift its noise leaves in 1 % of runs


def history_floor(model: dict[str, Any], nb: int, npt: int) -> float:
    """On the compared scale: the shift between `nb` and `npt` boots of one kernel that the between-boot
    noise `model` ({"var", "df"}) exceeds in 1 - HISTORY_FLOOR_LEVEL of runs (two-sided t)."""
    q = float(sps.t.ppf(1 - (1 - HISTORY_FLOOR_LEVEL) / 2, model["df"]))
    return q * math.sqrt(float(model["var"]) * (1.0 / max(1, nb) + 1.0 / max(1, npt)))


def floors(unit: str, base: list[float], min_effect: float | None, calibrated: dict[str, Any] | None,
           min_effect_tail: float | None = None, boots: tuple[int, int] = (MIN_BOOTS, MIN_BOOTS)
           ) -> tuple[float, float, str]:
    """(centre floor, tail floor, where they come from).  `calibrated`: the metric's measured noise,
    `ktest calibrate`'s largest A/A shift in its unit ({"centre", "tail"}), or the history's between-boot
    noise ({"history": {"centre": {"var", "df"}, "tail": ...}}, calibration.history_floors), whose floor
    is history_floor at the run's `boots` a side (base, patched), placed upwards from the base's median
    and p90: it shrinks as the run boots more, as the noise of a mean of more boots does."""
    unit_min = ABS_FLOOR.get(unit, 0.0)
    declared = float(min_effect or 0.0)
    declared_tail = float(min_effect_tail or declared)
    bm, bp90 = statistics.median(base), cast(float, p90(base))      # base: not empty
    if calibrated and calibrated.get("centre") is not None:
        c, t = float(calibrated["centre"]), float(calibrated.get("tail") or calibrated["centre"])
        src = "calibrated"
    elif calibrated and (h := calibrated.get("history")):
        fwd, inv = to_scale(unit)
        c = inv(fwd(bm) + history_floor(h["centre"], *boots)) - bm
        t = inv(fwd(bp90) + history_floor(h.get("tail") or h["centre"], *boots)) - bp90
        src = "history"
    else:
        iqr = cast(float, percentile(base, 0.75)) - cast(float, percentile(base, 0.25))
        c = max(REL_FLOOR * abs(bm), iqr)
        t = max(REL_FLOOR * abs(bp90), iqr)
        src = "estimated"
    centre, tail = max(declared, c, unit_min), max(declared_tail, t, unit_min)
    if declared >= max(c, unit_min):
        src = "declared"
    return centre, tail, src


LOG_UNITS = ("ms", "s")                # latencies: a boot's luck multiplies them


def to_scale(unit: str) -> tuple[Callable[[float], float], Callable[[float], float]]:
    """(forward, inverse) transforms of a unit's values to the scale the boots are compared on."""
    if unit in LOG_UNITS:
        eps = ABS_FLOOR[unit]
        return (lambda x: math.log(max(float(x), 0.0) + eps)), (lambda y: math.exp(y) - eps)
    return (lambda x: float(x)), (lambda y: y)


@dataclass
class BootTest:
    """One aspect (centre or tail) of one metric, boots as the unit, on the compared scale."""
    aspect: str
    base: list[float]
    patched: list[float]
    diff: float                    # mean(patched) - mean(base)
    se: float
    df: float
    p: float
    f_up: float                    # the floor, on the scale, upwards and downwards from the base
    f_down: float
    noise: str = "run"

    def bound(self, level: float = 0.95) -> tuple[float, float]:
        """One-sided `level` bounds of the shift, (lower, upper)."""
        if self.se == 0:
            return self.diff, self.diff
        t = float(sps.t.ppf(level, self.df))
        return self.diff - t * self.se, self.diff + t * self.se


def boot_test(aspect: str, base: list[float], patched: list[float], f_up: float, f_down: float,
              prior: dict[str, Any] | None = None, drift_alpha: float = DRIFT_ALPHA) -> BootTest | None:
    """Two-sample t-test on boot values with the variance pooled over both sides (and the noise
    model's, `prior` = {"var", "df", "source"}, unless the run's base boots reject it at `drift_alpha`:
    drift)."""
    nb, npt = len(base), len(patched)
    if nb < MIN_BOOTS or npt < MIN_BOOTS:
        return None
    mb, mp = statistics.fmean(base), statistics.fmean(patched)
    ss = sum((x - mb) ** 2 for x in base) + sum((x - mp) ** 2 for x in patched)
    df = float(nb + npt - 2)
    var, noise = ss / df, "run"
    if prior and (prior.get("df") or 0) > 0 and prior.get("var") is not None:
        pv, pdf = float(prior["var"]), float(prior["df"])
        sb2 = statistics.variance(base)
        drifted = sb2 > 0 and (pv == 0 or float(sps.f.sf(sb2 / pv, nb - 1, pdf)) < drift_alpha)
        if drifted:
            noise = f"run (its base boots disagree with the {prior.get('source', 'noise model')}: drifted)"
        else:
            var, df, noise = (ss + pdf * pv) / (df + pdf), df + pdf, prior.get("source", "noise model")
    se = math.sqrt(var * (1.0 / nb + 1.0 / npt))
    diff = mp - mb
    if se == 0:
        p = 1.0 if diff == 0 else 0.0
    else:
        p = float(2.0 * sps.t.sf(abs(diff) / se, df))
    return BootTest(aspect, base, patched, diff, se, df, p, f_up, f_down, noise)


def boot_values(boots: list[list[float]], agg: Callable[[list[float]], float | None]) -> list[float]:
    return [float(cast(float, agg(b))) for b in boots if b]    # agg of a boot with samples: a number


def mde(t: BootTest, centre: float, unit: str, lower_is_better: bool, alpha: float = ALPHA) -> float | None:
    """The smallest harmful shift (unit) a t-test at `alpha` detects with POWER, at this run's boots."""
    return detectable_shift(t.se, t.df, centre, unit, lower_is_better, alpha)


def detectable_shift(se: float, df: float, centre: float, unit: str, lower_is_better: bool,
                     alpha: float = ALPHA) -> float:
    """The smallest harmful shift (unit) from `centre` that a two-sided t-test at `alpha` with this
    standard error (on the compared scale) and `df` detects with POWER."""
    if se == 0:
        return 0.0
    fwd, inv = to_scale(unit)
    m = (float(sps.t.ppf(1 - alpha / 2, df)) + float(sps.t.ppf(POWER, df))) * se
    return inv(fwd(centre) + m) - centre if lower_is_better else centre - inv(fwd(centre) - m)


def compare(metric: str, unit: str, base_boots: list[list[float]], patched_boots: list[list[float]],
            lower_is_better: bool = True, min_effect: float | None = None,
            calibrated: dict[str, Any] | None = None, min_effect_tail: float | None = None,
            noise: dict[str, Any] | None = None, once: bool = False, drift_alpha: float = DRIFT_ALPHA) -> Comparison:
    """Raw statistics of one metric (samples grouped by boot).  The verdict is final only after
    `judge()` has seen every comparison of the run (the multiple-testing correction is run-wide).
    `noise`: the metric's between-boot noise model {"centre": {"var", "df"}, "tail": ..., "source"}.
    `once`: the check runs in one boot a side by design (a slow check): more boots cannot help.
    `drift_alpha`: the level of the test of the run's base boots against the noise model (the caller
    divides DRIFT_ALPHA among the run's tests of it)."""
    base = [float(v) for b in base_boots for v in b]
    patched = [float(v) for b in patched_boots for v in b]
    bm = statistics.median(base) if base else None
    pm = statistics.median(patched) if patched else None
    c = Comparison(metric=metric, unit=unit, n_base=len(base), n_patched=len(patched),
                   boots_base=sum(1 for b in base_boots if b), boots_patched=sum(1 for b in patched_boots if b),
                   base_median=bm, patched_median=pm, base_p90=p90(base), patched_p90=p90(patched),
                   delta=None, delta_pct=None, delta_p90=None, p_value=None, p_tail=None,
                   lower_is_better=lower_is_better)
    if not base or not patched:
        c.reason = f"not measured on {'both sides' if not base and not patched else 'base' if not base else 'patched'}"
        return c
    # both sides measured: the medians and p90s are numbers
    c.delta = cast(float, pm) - cast(float, bm)
    c.delta_pct = (c.delta / bm * 100.0) if bm else None
    c.delta_p90 = cast(float, c.patched_p90) - cast(float, c.base_p90)
    c.separated = max(base) < min(patched) or max(patched) < min(base)
    c.noise_floor, c.tail_floor, c.floor_source = floors(unit, base, min_effect, calibrated, min_effect_tail,
                                                         (c.boots_base, c.boots_patched))
    c.resolution = within_boot_iqr(base_boots)
    if min(c.boots_base, c.boots_patched) < MIN_BOOTS:
        if once:
            c.reason = (f"not compared: the check runs in one boot a side by design ({c.boots_base}+"
                        f"{c.boots_patched} boots); a test over boots needs {MIN_BOOTS} a side")
        else:
            c.needs_boots, c.doubt = True, "harm"
            c.reason = f"needs at least {MIN_BOOTS} boots a side (have {c.boots_base} and {c.boots_patched})"
        return c
    fwd, _ = to_scale(unit)
    aspects: list[tuple[str, Callable[[list[float]], float | None], float, float]] = [
        ("centre", statistics.median, cast(float, bm), c.noise_floor)]
    if unit in TAIL_UNITS and min(len(b) for b in base_boots + patched_boots if b) >= MIN_SAMPLES:
        aspects.append(("tail", p90, cast(float, c.base_p90), c.tail_floor))
    for name, agg, centre, floor in aspects:
        bv, pv = boot_values(base_boots, agg), boot_values(patched_boots, agg)
        c.boot_values[name] = {"base": [round(v, 3) for v in bv], "patched": [round(v, 3) for v in pv]}
        f_up = fwd(centre + floor) - fwd(centre)
        f_down = fwd(centre) - fwd(max(centre - floor, 0.0))
        # MIN_BOOTS boots a side with values (checked above): the test is made
        t = cast(BootTest, boot_test(name, [fwd(v) for v in bv], [fwd(v) for v in pv], f_up, f_down,
                                     (noise or {}).get(name) and
                                     {**cast(dict[str, Any], noise)[name],
                                      "source": cast(dict[str, Any], noise).get("source", "noise model")},
                                     drift_alpha))
        c.tests[name] = t
        m = mde(t, centre, unit, lower_is_better)
        if name == "centre":
            c.p_value, c.mde, c.noise = t.p, m, t.noise
        else:
            c.p_tail, c.mde_tail = t.p, m
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
        ps.append(cast(float, c.p_value))      # a pending comparison was tested
        if c.p_tail is not None:
            ps.append(c.p_tail)
    qs = iter(adjust(ps))
    for c in pend:
        c.q_value = next(qs)
        if c.p_tail is not None:
            c.q_tail = next(qs)
        _decide(c, alpha)


def decide_aspect(t: BootTest, q: float, lower_is_better: bool, beyond: bool,
                  alpha: float = ALPHA) -> tuple[str, str | None]:
    """DIFFERENT, SAME or UNKNOWN, and for UNKNOWN which way the doubt lies ("harm" or "benefit").
    `beyond`: the shift as a reader sees it (the medians', or p90s', difference) exceeds the floor, the
    same way as the test's."""
    if q < alpha and beyond:
        return "DIFFERENT", None
    lo, hi = t.bound(0.95)
    # non-strict: where the harmful direction has no room (a count of 0 that must not fall, so a floor
    # of 0 below it) and the boots agree exactly, no harm is possible, and none is left in doubt
    harm_ruled_out = hi <= t.f_up if lower_is_better else lo >= -t.f_down
    if not harm_ruled_out:
        return "UNKNOWN", "harm"
    good_beyond = t.diff < -t.f_down if lower_is_better else t.diff > t.f_up
    if good_beyond:                    # a good shift beyond the floor, not yet significant
        return "UNKNOWN", "benefit"
    return "SAME", None


def _fmt(v: float | None, u: str) -> str:
    return "?" if v is None else f"{v:.1f} {u}"


# an aspect of a comparison as _decide weighs it: (name, q, delta, floor, base, patched, mde)
_Row = tuple[str, float, float | None, float, float | None, float | None, float | None]


def _decide(c: Comparison, alpha: float) -> None:
    u = c.unit
    # judge() gave the pending comparison its q-value, and floors() its tail floor
    rows: list[_Row] = [("centre", cast(float, c.q_value), c.delta, c.noise_floor, c.base_median,
                         c.patched_median, c.mde)]
    if c.q_tail is not None:
        rows.append(("tail", c.q_tail, c.delta_p90, cast(float, c.tail_floor), c.base_p90, c.patched_p90,
                     c.mde_tail))
    got: dict[str, tuple[str, str | None]] = {}
    for name, q, d, floor, _b, _p, _m in rows:
        t = c.tests[name]
        beyond = d is not None and abs(d) > floor and (d > 0) == (t.diff > 0)
        got[name] = decide_aspect(t, q, c.lower_is_better, beyond, alpha)
        c.decisions[name] = got[name][0]
    worse = [r for r in rows if got[r[0]][0] == "DIFFERENT" and (c.tests[r[0]].diff > 0) == c.lower_is_better]
    better = [r for r in rows if got[r[0]][0] == "DIFFERENT" and r not in worse]
    unknown = [r for r in rows if got[r[0]][0] == "UNKNOWN"]
    nb = f"{c.boots_base}+{c.boots_patched} boots"

    def desc(r: _Row) -> str:
        name, q, d, floor, b, p, m = r
        label = "median" if name == "centre" else "p90"
        return f"{label} {b:.1f} -> {p:.1f} {u}, q={q:.3g}, floor {floor:.1f} {u} ({c.floor_source})"

    if worse:
        c.verdict, c.aspect, c.reason = "regressed", worse[0][0], f"{desc(worse[0])}, {nb}"
        return
    if better and all(got[r[0]][1] == "benefit" for r in unknown):
        # one aspect decided the improvement, and every aspect still open has its harm ruled out: more
        # boots could only say "better still", so they are not booted for it
        c.verdict, c.aspect, c.reason = "improved", better[0][0], f"{desc(better[0])}, {nb}"
        if unknown:
            c.reason += f"; {', '.join(r[0] for r in unknown)} not decided, its harm ruled out"
        return
    if unknown:
        harm = [r for r in unknown if got[r[0]][1] == "harm"]
        r = (harm or unknown)[0]
        c.verdict, c.needs_boots, c.doubt = "inconclusive", True, "harm" if harm else "benefit"
        name, q, d, floor, b, p, m = r
        way = "a harmful" if harm else "an improving"
        c.reason = (f"{desc(r)}: not decided at {nb}: {way} shift as large as the floor is not ruled out "
                    f"(this run detects {_fmt(m, u)}); more boots can settle it")
        return
    c.verdict = "unchanged"
    c.reason = (f"no harmful change as large as the floor ({_fmt(c.noise_floor, u)}; 95 % bound, {nb}); "
                f"smallest detectable {_fmt(c.mde, u)}")

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
    floor = max(REL_FLOOR * abs(bm), ABS_FLOOR.get(unit, 0.0),
                cast(float, percentile(base, 0.75)) - cast(float, percentile(base, 0.25)))
    if not (sep or p < 0.05) or abs(pm - bm) <= floor or math.isnan(p):
        return "unchanged"
    return "changed"
