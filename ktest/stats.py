"""Robust A/B statistics for metric samples: medians, a Mann-Whitney U test, range separation and a
noise floor.  Pure functions; no VM, no I/O.

A change is called only when (a) each side has at least MIN_SAMPLES samples, (b) the sample ranges
separate or the rank test gives p < ALPHA, and (c) the median moved by more than the noise floor:
max(REL_FLOOR x base median, ABS_FLOOR in the metric's unit, the base samples' interquartile range).
The IQR term keeps metrics that are noisy by nature (a failover waits for the next miimon tick, so its
latency is spread over a whole tick) from being called changed on a lucky draw.  This mirrors
0-day/LKP's practice of asking for a change larger than the noise.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import asdict, dataclass

MIN_SAMPLES = 3
ALPHA = 0.05
REL_FLOOR = 0.10                       # 10 % of the base median
# per unit; 0 for unknown units.  Counts move by whole events: a significant shift of one event is a
# change (2 -> 3 notifications), half an event of median shift is not.
ABS_FLOOR = {"ms": 5.0, "s": 0.005, "count": 0.5, "%": 1.0}


@dataclass
class Comparison:
    metric: str
    unit: str
    n_base: int
    n_patched: int
    base_median: float | None
    patched_median: float | None
    base_p90: float | None
    patched_p90: float | None
    delta: float | None            # patched - base (medians)
    delta_pct: float | None
    p_value: float | None
    separated: bool
    noise_floor: float
    verdict: str                   # improved | regressed | unchanged | inconclusive
    reason: str

    def to_json(self) -> dict:
        return asdict(self)


def percentile(xs: list[float], q: float) -> float | None:
    if not xs:
        return None
    s = sorted(xs)
    k = (len(s) - 1) * q
    lo, hi = math.floor(k), math.ceil(k)
    return s[lo] + (s[hi] - s[lo]) * (k - lo)


def mann_whitney_p(a: list[float], b: list[float]) -> float:
    """Two-sided p-value of the Mann-Whitney U test (normal approximation with tie correction and
    continuity correction).  Adequate for n >= 3 per side; conservative for tiny samples."""
    n1, n2 = len(a), len(b)
    allv = sorted([(v, 0) for v in a] + [(v, 1) for v in b])
    ranks = [0.0] * len(allv)
    i = 0
    tie_term = 0.0
    while i < len(allv):
        j = i
        while j + 1 < len(allv) and allv[j + 1][0] == allv[i][0]:
            j += 1
        r = (i + j) / 2 + 1
        for k in range(i, j + 1):
            ranks[k] = r
        t = j - i + 1
        tie_term += t ** 3 - t
        i = j + 1
    r1 = sum(r for r, (_, side) in zip(ranks, allv) if side == 0)
    u1 = r1 - n1 * (n1 + 1) / 2
    mu = n1 * n2 / 2
    n = n1 + n2
    var = n1 * n2 / 12 * ((n + 1) - tie_term / (n * (n - 1)))
    if var <= 0:
        return 1.0
    z = (abs(u1 - mu) - 0.5) / math.sqrt(var)
    return max(0.0, min(1.0, math.erfc(max(z, 0.0) / math.sqrt(2))))


def compare(metric: str, unit: str, base: list[float], patched: list[float],
            lower_is_better: bool = True) -> Comparison:
    floor_abs = ABS_FLOOR.get(unit, 0.0)
    bm = statistics.median(base) if base else None
    pm = statistics.median(patched) if patched else None
    iqr = (percentile(base, 0.75) - percentile(base, 0.25)) if len(base) >= 2 else 0.0
    floor = max(REL_FLOOR * abs(bm), floor_abs, iqr) if bm is not None else floor_abs
    c = Comparison(metric=metric, unit=unit, n_base=len(base), n_patched=len(patched), base_median=bm,
                   patched_median=pm, base_p90=percentile(base, 0.9), patched_p90=percentile(patched, 0.9),
                   delta=None, delta_pct=None, p_value=None, separated=False, noise_floor=floor,
                   verdict="inconclusive", reason="")
    if len(base) < MIN_SAMPLES or len(patched) < MIN_SAMPLES:
        c.reason = f"needs at least {MIN_SAMPLES} samples a side (have {len(base)} and {len(patched)})"
        return c
    c.delta = pm - bm
    c.delta_pct = (c.delta / bm * 100.0) if bm else None
    c.p_value = mann_whitney_p(base, patched)
    c.separated = max(base) < min(patched) or max(patched) < min(base)
    significant = c.separated or c.p_value < ALPHA
    if not significant:
        c.verdict, c.reason = "unchanged", f"no significant difference (p={c.p_value:.3f}, ranges overlap)"
    elif abs(c.delta) <= floor:
        c.verdict, c.reason = "unchanged", f"|change| {abs(c.delta):.1f} {unit} within noise floor {floor:.1f} {unit}"
    else:
        better = (c.delta < 0) == lower_is_better
        c.verdict = "improved" if better else "regressed"
        how = "ranges separate" if c.separated else f"p={c.p_value:.3f}"
        c.reason = f"median {bm:.1f} -> {pm:.1f} {unit} ({c.delta_pct:+.0f}%), {how}, above floor {floor:.1f} {unit}"
    return c
