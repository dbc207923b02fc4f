#!/usr/bin/env python3
"""Simulated, not measured on a kernel: how often ktest-rule/3 calls a change per metric, with floors
estimated from the base and with floors grown from the history (calibration.history_floors), at 2, 4
and 6 boots a side.  Each boot: 5 repetitions, boot-to-boot noise of --boot-noise (log-normal, default
10 %) and 5 % within a boot; the history: the noise model that 8 earlier runs of 2 base boots leave
(History.noise_model's pooling).  A shift of x1.0 is a false change; x1.3, x1.5 and x2.0 are found or
missed.  The rule's own functions judge every draw.

    python ci/simulate_floors.py [--draws 1000] [--seed 2026] [--boot-noise 0.10] [--json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ci.bench_confusion import provenance  # noqa: E402
from ktest.judge.calibration import history_floors  # noqa: E402
from ktest.judge.stats import compare, judge, to_scale  # noqa: E402


def boot(rng: np.random.Generator, scale: float = 1.0, noise: float = 0.10) -> list[float]:
    """One boot's 5 repetitions: boot-to-boot noise `noise` (log-normal), 5 % within the boot."""
    return list(scale * 100 * np.exp(rng.normal(0, noise)) * np.exp(rng.normal(0, 0.05, 5)))


def history(rng: np.random.Generator, runs: int = 8, boots: int = 2, noise: float = 0.10) -> dict:
    """The noise model that `runs` earlier runs of `boots` base boots leave, pooled within runs as
    History.noise_model pools it (each boot's median on the compared scale)."""
    fwd, _ = to_scale("ms")
    got = [[fwd(statistics.median(boot(rng, noise=noise))) for _ in range(boots)] for _ in range(runs)]
    ss = sum(sum((x - statistics.fmean(r)) ** 2 for x in r) for r in got)
    df = runs * (boots - 1)
    return {"centre": {"var": ss / df, "df": df}, "source": f"history ({runs} earlier runs)"}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--draws", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=2026)
    ap.add_argument("--boot-noise", type=float, default=0.10)
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args(argv)
    at = provenance()           # the code that judges is the code loaded now
    rng = np.random.default_rng(a.seed)
    rows = []
    for boots in (2, 4, 6):
        for scale in (1.0, 1.3, 1.5, 2.0):
            row = {"boots": boots, "shift": scale}
            for mode in ("estimated", "history"):
                hits = 0
                for _ in range(a.draws):
                    noise = history(rng, noise=a.boot_noise)
                    floor = history_floors({"m": noise})["m"] if mode == "history" else None
                    c = compare("m", "ms", [boot(rng, noise=a.boot_noise) for _ in range(boots)],
                                [boot(rng, scale, a.boot_noise) for _ in range(boots)], calibrated=floor, noise=noise)
                    judge([c])
                    hits += c.verdict == "regressed" if scale > 1 else c.verdict in ("regressed", "improved")
                row[mode] = hits / a.draws
            rows.append(row)
    if a.json:
        print(json.dumps({"simulated": True, **at, "draws": a.draws, "seed": a.seed, "boot_noise": a.boot_noise,
                          "rows": rows}, indent=1))
        return 0
    for r in rows:
        what = "false changes" if r["shift"] == 1.0 else f"x{r['shift']} found"
        print(f"{r['boots']} boots a side, {what}: estimated floors {r['estimated']:.1%}, "
              f"history floors {r['history']:.1%}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
