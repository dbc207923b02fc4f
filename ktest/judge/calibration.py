"""`ktest calibrate`: how often does the A/B rule cry wolf on this machine, and how large is the noise?

Boot one kernel K times with a check area's checks.  Every split of those boots into two disjoint,
run-sized groups (`rounds` boots each) is a harmless "series": judged with exactly the rule `ktest run`
uses, any regression it reports is a false alarm.  From the same splits, each metric's noise: the largest
shift of its median (and p90) between two groups of boots of one kernel.  That is the smallest change
the rule can tell from noise here; stored per (kernel, guest, area, rule), `ktest run` uses it as the
metric's floor and the report shows it.

The splits share boots, so they are not independent runs: each rate carries a 95 % interval from the
jackknife over boots (the rate is an average over subsets of the boots, a U-statistic, and leaving one
boot out at a time measures how much the rate rests on single boots).  Where no split fired, the
jackknife has nothing to vary, and the bound is the one that k boots give as k // (2 * rounds)
independent runs.  Each metric also carries the smallest harmful change a run of n boots a side would
detect on this noise (t-test power POWER at ALPHA, before the run-wide correction), never below its floor.
"""

from __future__ import annotations

import itertools
import json
import math
import statistics
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

from ktest.base.cache import Cache, write_json_atomic
from ktest.base.records import Tree
from ktest.judge.stats import RULE, compare_v1, percentile
from ktest.judge.verdict import collect, compare_checks, overall

SCHEMA = "ktest.calibration/1"
MAX_SPLITS = 2000
DETECT_UP_TO = 6            # the smallest detectable change is given for rounds .. this many boots a side
# a split: two disjoint groups of boots (their indices); FloorsOf: the floors a split is judged by
Split = tuple[tuple[int, ...], tuple[int, ...]]
FloorsOf = Callable[[tuple[int, ...], tuple[int, ...]], dict[str, Any]]


def key(tree_base: str, guest: str, area: str, rule: str = RULE) -> str:
    """A calibration's name: the base kernel, the guests' accel and vCPUs (base.machine.guest_key), the area
    and the rule."""
    return f"{tree_base[:12]}-{guest}-{area}-{rule.replace('/', '_')}"


def path_for(cache: Cache, k: str) -> Path:
    return cache.root / "calibration" / f"{k}.json"


def splits(k: int, rounds: int) -> Iterator[tuple[tuple[int, ...], ...]]:
    """Every way to pick two disjoint groups of `rounds` boots from k, each unordered pair once."""
    seen = set()
    for a in itertools.combinations(range(k), rounds):
        rest = [i for i in range(k) if i not in a]
        for b in itertools.combinations(rest, rounds):
            pair = tuple(sorted((a, b)))
            if pair not in seen:
                seen.add(pair)
                yield pair


def judge_splits(runs: list[dict[str, Any]], rounds: int,
                 floors: dict[str, Any] | FloorsOf | None = None) -> dict[str, Any]:
    """Judge every split with the run's rule (ktest-rule/2) and with the old rule; count false alarms.
    `floors` is one floor table for every split, or a function of the split giving its own."""
    groups = list(itertools.islice(splits(len(runs), rounds), MAX_SPLITS))
    n = len(groups)
    run_v2 = run_v1 = run_change = inconclusive = undecided = 0
    per_metric: dict[str, dict[str, Any]] = {}
    per_check: dict[str, dict[str, Any]] = {}
    shifts: dict[Split, dict[str, Any]] = {}
    fired: dict[Split, bool] = {}
    for a, b in groups:
        ra, rb = [runs[i] for i in a], [runs[i] for i in b]
        checks = compare_checks(ra, rb, floors(a, b) if callable(floors) else floors)
        v = overall(checks, {"new": []})
        run_v2 += v.exit_code == 1
        # a split is judged in one orientation: a false improvement here is a false regression the other way
        fired[(a, b)] = v.exit_code == 1 or bool(v.improvements)
        run_change += fired[(a, b)]
        inconclusive += bool(v.inconclusive)
        undecided += v.exit_code == 3
        old_fired = False
        for c in checks:
            pc = per_check.setdefault(c["path"], {"regression": 0, "flaky": 0})
            pc["regression"] += c["verdict"] in ("regression", "metric regression", "still failing, worse")
            pc["flaky"] += c["verdict"] == "flaky"
            old_fired |= c["transition"] == "regression"
            for m in c["metrics"]:
                if m["verdict"] == "context" or m["reason"].startswith("not compared"):
                    continue
                k = f"{c['path']}/{m['metric']}"
                pm = per_metric.setdefault(k, {"unit": m["unit"], "centre_shifts": [], "tail_shifts": [],
                                               "v2_changed": 0, "v1_changed": 0, "inconclusive": 0})
                if m["delta"] is not None:
                    pm["centre_shifts"].append(abs(m["delta"]))
                    shifts.setdefault((a, b), {}).setdefault(k, {})["centre"] = abs(m["delta"])
                if m["delta_p90"] is not None:
                    pm["tail_shifts"].append(abs(m["delta_p90"]))
                    shifts.setdefault((a, b), {}).setdefault(k, {})["tail"] = abs(m["delta_p90"])
                pm["v2_changed"] += m["verdict"] in ("regressed", "improved")
                pm["inconclusive"] += bool(m.get("needs_boots"))
                v1 = compare_v1(m["base_samples"], m["patched_samples"], m["unit"])
                pm["v1_changed"] += v1 == "changed"
                old_fired |= v1 == "changed"
        run_v1 += old_fired
    return {"splits": n, "run_false_regression_v2": run_v2 / n if n else None,
            "run_false_change_v2": run_change / n if n else None,
            "run_false_alarm_v1": run_v1 / n if n else None, "run_inconclusive_v2": inconclusive / n if n else None,
            "run_undecided": undecided / n if n else None,
            "metrics": per_metric, "checks": per_check, "shifts": shifts, "fired": fired}


def rate_interval(fired: dict[Split, bool], k: int, rounds: int, level: float = 0.95) -> dict[str, Any]:
    """A `level` interval for the share of splits that fired, the boot as the unit (see the module's
    docstring): the jackknife over boots, or, with no split fired, the bound of k // (2 * rounds)
    independent runs that all stayed quiet."""
    from scipy.stats import t as t_dist

    n = len(fired)
    if not n:
        return {"low": None, "high": None, "method": "no splits"}
    rate = sum(fired.values()) / n
    if rate == 0:
        runs = max(1, k // (2 * rounds))
        return {"low": 0.0, "high": 1.0 - (1.0 - level) ** (1.0 / runs),
                "method": f"no split fired: the bound of {runs} independent run(s)"}
    loo = []
    for i in range(k):
        kept = [f for (a, b), f in fired.items() if i not in a and i not in b]
        if kept:
            loo.append(sum(kept) / len(kept))
    m = len(loo)
    if m < 2:
        return {"low": None, "high": None, "method": "too few boots for the jackknife"}
    mean = sum(loo) / m
    se = math.sqrt((m - 1) / m * sum((x - mean) ** 2 for x in loo))
    half = float(t_dist.ppf(0.5 + level / 2, m - 1)) * se
    return {"low": max(0.0, rate - half), "high": min(1.0, rate + half),
            "method": f"jackknife over {m} boots"}


def detectable(runs: list[dict[str, Any]], floors: dict[str, Any], boots: Iterable[int],
               pooled: bool = True) -> dict[str, Any]:
    """Per metric, the smallest harmful shift of its centre that a run of n boots a side would call
    (t-test power POWER at ALPHA on the between-boot noise of these boots; never below the centre floor a
    run would use with these floors, which a change must also exceed): {"path/metric": {"unit", "centre",
    "floor", "by_boots_a_side": {n: shift}}}.  `pooled`: the run pools its boots with this noise model
    (its degrees of freedom add to the run's); else the run has only its own 2n - 2 (no noise model: a
    first run on a machine)."""
    from ktest.judge.stats import detectable_shift
    from ktest.judge.stats import floors as run_floors

    noise = noise_model(runs)
    out: dict[str, Any] = {}
    for path, c in collect(runs).items():
        for name, m in c["metrics"].items():
            k = f"{path}/{name}"
            if k not in noise or m.get("context"):
                continue
            centre = statistics.median(statistics.median(b) for b in m["boots"].values() if b)
            var, pdf = noise[k]["centre"]["var"], noise[k]["centre"]["df"]
            floor, _, _ = run_floors(m["unit"], m["samples"], m.get("min_effect"), floors.get(k),
                                     m.get("min_effect_tail"))
            by_n = {}
            for n in boots:
                # a run pools its own boots with this noise model
                d = detectable_shift(math.sqrt(var * 2.0 / n), 2 * n - 2 + (pdf if pooled else 0), centre, m["unit"],
                                     m["lower_is_better"])
                by_n[str(n)] = round(max(d, floor), 3)
            out[k] = {"unit": m["unit"], "centre": round(centre, 3), "floor": round(floor, 3),
                      "by_boots_a_side": by_n}
    return out


def _max_floors(shifts: dict[Split, dict[str, Any]], pairs: Iterable[Split]) -> dict[str, Any]:
    """Each metric's floor: the largest centre and tail shift over the given splits."""
    floors: dict[str, dict[str, Any]] = {}
    for pair in pairs:
        for k, sh in shifts.get(pair, {}).items():
            f = floors.setdefault(k, {"centre": None, "tail": None})
            for side in ("centre", "tail"):
                if sh.get(side) is not None:
                    f[side] = max(f[side] or 0.0, sh[side])
    return {k: f for k, f in floors.items() if f["centre"] is not None}


def held_out_floors(shifts: dict[Split, dict[str, Any]], k: int) -> FloorsOf:
    """Out-of-sample floors for a split: calibrated only on the boots the split does not use, so the
    split's own noise never sets the floor it is judged by (None when too few boots are left)."""
    def floors_for(a: tuple[int, ...], b: tuple[int, ...]) -> dict[str, Any]:
        used = set(a) | set(b)
        return _max_floors(shifts, [p for p in shifts if not used & (set(p[0]) | set(p[1]))])
    return floors_for


def calibrate(runs: list[dict[str, Any]], rounds: int) -> dict[str, Any]:
    """Floors from the spread of shifts between groups, then the rates with and without them."""
    raw = judge_splits(runs, rounds)
    floors = {}
    for k, m in raw["metrics"].items():
        if m["centre_shifts"]:
            floors[k] = {"centre": max(m["centre_shifts"]),
                         "tail": max(m["tail_shifts"]) if m["tail_shifts"] else None}
    cal = judge_splits(runs, rounds, floors)
    held = judge_splits(runs, rounds, held_out_floors(raw["shifts"], len(runs))) \
        if len(runs) >= 4 * rounds else None
    per_boot = _per_boot_medians(runs)
    names = {"estimated": f"{RULE}, estimated floors",
             "in_sample": f"{RULE}, calibrated floors (in-sample)",
             "held_out": f"{RULE}, calibrated floors (held-out boots)"}
    intervals = {names[w]: rate_interval(r["fired"], len(runs), rounds)
                 for w, r in (("estimated", raw), ("in_sample", cal), ("held_out", held)) if r}
    metrics = {}
    for k, m in raw["metrics"].items():
        metrics[k] = {"unit": m["unit"], **floors.get(k, {}),
                      "p95_centre_shift": percentile(m["centre_shifts"], 0.95),
                      "false_change_v1": m["v1_changed"] / raw["splits"],
                      "false_change_v2": m["v2_changed"] / raw["splits"],
                      "false_change_v2_calibrated": cal["metrics"].get(k, {}).get("v2_changed", 0) / raw["splits"],
                      "false_change_v2_held_out": (held["metrics"].get(k, {}).get("v2_changed", 0) / raw["splits"]
                                                   if held else None),
                      "boot_medians": per_boot.get(k)}
    # rates of a false change in either direction: every split, read the other way round, is a run too
    return {"splits": raw["splits"], "rates": {
                "old rule (ktest-rule/1)": raw["run_false_alarm_v1"],
                f"{RULE}, estimated floors": raw["run_false_change_v2"],
                f"{RULE}, calibrated floors (in-sample)": cal["run_false_change_v2"],
                f"{RULE}, calibrated floors (held-out boots)": held["run_false_change_v2"] if held else None,
                f"{RULE}: runs that would boot more rounds": raw["run_inconclusive_v2"],
                f"{RULE}: runs undecided at this many boots": raw["run_undecided"]},
            "intervals": intervals,
            "detectable": detectable(runs, floors, range(rounds, max(rounds, DETECT_UP_TO) + 1)),
            "floors": floors, "metrics": metrics,
            "checks": {p: {k: v / raw["splits"] for k, v in c.items()} for p, c in raw["checks"].items()}}


def noise_model(runs: list[dict[str, Any]], source: str = "calibration") -> dict[str, Any]:
    """Each metric's between-boot variance on the compared scale (stats.to_scale) over boots of one
    kernel, the noise model ktest-rule/3 joins to a run's own: {"path/metric": {"centre": {"var", "df"},
    "tail": ..., "source"}}."""
    from ktest.judge.stats import MIN_SAMPLES, p90, to_scale

    vals: dict[str, dict[str, Any]] = {}
    for r in runs:
        for path, c in collect([r]).items():
            for name, m in c["metrics"].items():
                if m["samples"] and not m.get("context"):
                    fwd, _ = to_scale(m["unit"])
                    d = vals.setdefault(f"{path}/{name}", {"centre": [], "tail": []})
                    d["centre"].append(fwd(statistics.median(m["samples"])))
                    if len(m["samples"]) >= MIN_SAMPLES:
                        d["tail"].append(fwd(cast(float, p90(m["samples"]))))    # samples: not empty
    out = {}
    for k, d in vals.items():
        model = {a: {"var": statistics.variance(xs), "df": len(xs) - 1} for a, xs in d.items() if len(xs) >= 3}
        if "centre" in model:
            out[k] = {**model, "source": source}
    return out


HISTORY_FLOOR_DF = 8        # between-boot degrees of freedom a metric's history needs before it sets the floor


def history_floors(history: dict[str, Any], calibrated: dict[str, Any] | None = None) -> dict[str, Any]:
    """Floors that grow from the history (History.noise_model: the base boots of earlier runs of this
    kernel and accel, A/A data), per metric whose history has HISTORY_FLOOR_DF degrees of freedom or
    more, and more than `calibrated` (ktest calibrate's noise models) has of it: {"path/metric":
    {"history": {"centre": {"var", "df"}, "tail": ...}, "df", "source"}}.  The floor itself is
    stats.history_floor at the run's boots: the shift between the two sides that this noise exceeds in
    1 % of runs of as many boots.  `ktest calibrate`'s floor is the largest shift among its splits at the
    planned rounds, which grows with the splits; this one is a quantile, which more runs make steadier,
    and which shrinks as a run boots more."""
    out: dict[str, Any] = {}
    for k, m in history.items():
        c = m.get("centre")
        have = ((calibrated or {}).get(k) or {}).get("centre") or {}
        if not c or c["df"] < HISTORY_FLOOR_DF or c["df"] <= have.get("df", 0):
            continue
        out[k] = {"history": {a: m[a] for a in ("centre", "tail") if m.get(a)}, "df": c["df"],
                  "source": m.get("source", "history")}
    return out


def pool_noise(*models: dict[str, Any]) -> dict[str, Any]:
    """Noise models of one metric from several sources (calibration, history), pooled by their degrees
    of freedom."""
    out: dict[str, dict[str, Any]] = {}
    for m in models:
        for k, v in (m or {}).items():
            if k not in out:
                out[k] = v
                continue
            o = out[k]
            merged: dict[str, Any] = {"source": f"{out[k]['source']} + {v['source']}"}
            for a in ("centre", "tail"):
                xs = [x[a] for x in (o, v) if x.get(a)]
                if xs:
                    df = sum(x["df"] for x in xs)
                    merged[a] = {"var": sum(x["var"] * x["df"] for x in xs) / df, "df": df}
            out[k] = merged
    return out


def _per_boot_medians(runs: list[dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, list[Any]] = {}
    for r in runs:
        for path, c in collect([r]).items():
            for name, m in c["metrics"].items():
                if m["samples"]:
                    out.setdefault(f"{path}/{name}", []).append(round(statistics.median(m["samples"]), 2))
    return out


@dataclass
class Calibration:
    data: dict[str, Any]

    @property
    def floors(self) -> dict[str, Any]:
        return cast(dict[str, Any], self.data.get("floors", {}))

    @property
    def noise(self) -> dict[str, Any]:
        return cast(dict[str, Any], self.data.get("noise", {}))

    def summary(self) -> dict[str, Any]:
        d = self.data
        return {k: d.get(k) for k in ("key", "created", "kernel_release", "accel", "guest", "area", "rule", "boots",
                                      "rounds", "reps", "splits", "rates", "intervals")}


def store(cache: Cache, data: dict[str, Any]) -> Path:
    p = path_for(cache, data["key"])
    p.parent.mkdir(parents=True, exist_ok=True)
    write_json_atomic(p, data)
    return p


def load(cache: Cache, k: str) -> dict[str, Any] | None:
    p = path_for(cache, k)
    try:
        d = json.loads(p.read_text())
    except (OSError, ValueError):
        return None
    return d if isinstance(d, dict) and d.get("schema") == SCHEMA else None


def for_run(cache: Cache, tree: Tree, areas: list[str], guest: str | None = None) -> Calibration | None:
    """The stored calibrations of this tree's base for the run's check areas, merged (None if there is
    none).  `guest`: the guests' base.machine.guest_key; without it, the host's KVM answer and this
    ktest's guests decide which calibration applies."""
    if guest is None:
        from ktest.base.machine import guest_key, kvm_answer

        guest = guest_key("kvm" if (kvm_answer(cache) or {}).get("ok") else "tcg")
    found = [d for a in areas if (d := load(cache, key(tree.base, guest, a)))]
    if not found:
        return None
    merged = dict(found[0])
    merged["floors"] = {k: v for d in found for k, v in d.get("floors", {}).items()}
    merged["noise"] = {k: v for d in found for k, v in d.get("noise", {}).items()}
    merged["area"] = ",".join(d["area"] for d in found)
    return Calibration(merged)


def record(cache: Cache, tree: Tree, area: str, accel: str, runs: list[dict[str, Any]], rounds: int,
           reps: int) -> dict[str, Any]:
    res = calibrate(runs, rounds)
    from ktest.base.machine import env_guest_key, guest_key

    env: dict[str, Any] = next((r["env"] for r in runs if r.get("env")), {})
    guest = env_guest_key(env) or guest_key(accel)
    data = {"schema": SCHEMA, "key": key(tree.base, guest, area), "created": time.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "tree": tree.name, "base": tree.base, "kernel_release": env.get("kernel_release"), "accel": accel,
            "guest": guest, "area": area, "rule": RULE,
            "boots": len(runs), "rounds": rounds, "reps": reps, **res,
            "noise": noise_model(runs, f"calibration ({len(runs)} boots)")}
    store(cache, data)
    return data
