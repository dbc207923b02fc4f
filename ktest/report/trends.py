"""The trends page (`ktest history --html`, and reports/history.html after each run): per series on a
base, one chart per metric across its runs, base and patched medians as two lines.  The geometry is
computed here as numbers; the template draws it, so every text on the page goes through autoescape."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ktest.base.cache import write_text_atomic
from ktest.report.history import SIDES, History, anchor

TRENDS_RUNS = 50          # runs per series and base on the page (the newest)
COLORS = {"base": "#5b7db1", "patched": "#d0663a"}
W, H = 520, 210
X0, X1, Y0, Y1 = 64, W - 14, 14, H - 44        # plot area: x from X0 to X1, y from Y0 (top) to Y1


def _num(v: float | None) -> str:
    return "–" if v is None else f"{v:.2f}"


def _short_time(created: str) -> str:
    """2026-11-21T23:01:37Z -> 11-21 23:01"""
    return f"{created[5:10]} {created[11:16]}" if len(created) >= 16 else created


def chart(metric: dict[str, Any], runs: list[dict[str, Any]]) -> dict[str, Any] | None:
    """Where to draw one metric of a series on a base: x is the run's place among the group's runs,
    y the value on an axis spanning every median and p90 shown.  None when no run has a number."""
    vals = [pt[s][k] for pt in metric["points"] for s in SIDES if pt[s] for k in ("median", "p90")
            if pt[s][k] is not None]
    if not vals:
        return None
    lo, hi = min(vals), max(vals)
    pad = (hi - lo) * 0.08 if hi > lo else max(abs(hi) * 0.05, 1.0)
    lo, hi = (max(lo - pad, 0.0) if lo >= 0 else lo - pad), hi + pad     # no negative ticks for a time or count
    n = max(len(runs), 1)
    step = (X1 - X0) / n
    sx: Callable[[int], float] = lambda i: X0 + (i + 0.5) * step
    sy: Callable[[float], float] = lambda v: Y1 - (v - lo) / (hi - lo) * (Y1 - Y0)
    sides = []
    for k, side in enumerate(SIDES):
        off = (-3 if k == 0 else 3) if n > 1 else (k * 6 - 3)    # base and patched whiskers side by side
        pts = []
        for pt in metric["points"]:
            d = pt[side]
            if not d or d["median"] is None:
                continue
            x = sx(pt["index"]) + off
            pts.append({"x": round(x, 1), "y": round(sy(d["median"]), 1),
                        "p90y": None if d["p90"] is None else round(sy(d["p90"]), 1),
                        "median": _num(d["median"]), "p90": _num(d["p90"]), "n": d["n"],
                        "run_id": pt["run_id"], "created": pt["created"]})
        sides.append({"name": side, "color": COLORS[side], "points": pts,
                      "line": " ".join(f"{p['x']},{p['y']}" for p in pts)})
    every = math.ceil(n / 6)
    xticks = [{"x": round(sx(i), 1), "label": _short_time(r["created"]), "run_id": r["run_id"]}
              for i, r in enumerate(runs) if i % every == 0 or i == n - 1]
    yticks = [{"y": round(sy(lo + (hi - lo) * t / 4), 1), "label": f"{lo + (hi - lo) * t / 4:.3g}"} for t in range(5)]
    return {"width": W, "height": H, "x0": X0, "x1": X1, "y0": Y0, "y1": Y1, "sides": sides,
            "xticks": xticks, "yticks": yticks}


def render(groups: list[dict[str, Any]], series: str | None = None) -> str:
    from ktest.report.outputs import template_env

    env = template_env()
    env.filters["num"] = _num
    for g in groups:
        g["anchor"] = anchor(g["series"], g["tree"], g["base"])
        for m in g["metrics"]:
            m["chart"] = chart(m, g["runs"])
    return env.get_template("trends.html.j2").render(
        groups=groups, series=series, colors=COLORS,
        written=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))


def write(hist: History, out: Path, series: str | None = None, limit: int = TRENDS_RUNS) -> list[dict[str, Any]]:
    """Write the trends page of every series (or one) in the history to `out`; returns its groups."""
    groups = hist.trends(series=series, limit=limit)
    write_text_atomic(out, render(groups, series))
    return groups
