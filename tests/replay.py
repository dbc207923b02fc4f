"""run_checks stand-ins for orchestration tests: replay a recorded `ktest run`, or canned statuses.
Under --shard they keep only the shard's checks, chosen by ktest.base.shard as the guest plugin does."""

import re
from pathlib import Path

from ktest.base import shard
from ktest.boot.checks import PROJECT, GuestRun, slow_checks
from ktest.boot.vm import BootResult


def _parent(nodeid: str) -> str:
    file, _, rest = nodeid.partition("::")
    return f"{file}::{rest.partition('::')[0]}"


def _costs(results: list[dict]) -> dict[str, float]:
    """A check's cost: its recorded run time (in the guest it is the static @pytest.mark.cost)."""
    costs: dict[str, float] = {}
    for r in results:
        costs[_parent(r["id"])] = costs.get(_parent(r["id"]), 0.0) + (r.get("duration_s") or 0.0)
    return costs


def _guest_run(outdir: Path, label: str, results: list[dict], costs: dict, shard_spec) -> GuestRun:
    """What run_checks returns, with selection.json's content computed as the guest plugin does."""
    outdir.mkdir(parents=True, exist_ok=True)
    (outdir / "console.log").write_text("[    0.000000] Linux version replay\n")
    (outdir / "stdout.log").write_text("")
    keep = shard.select(costs, shard_spec)
    sel = {"shard": list(shard_spec) if shard_spec else None,
           "collected": [{"id": k, "cost": v} for k, v in costs.items()], "selected": keep}
    boot = BootResult(outcome="ok", exit_code=0, duration_s=1.0, started_after_s=0.5,
                      console_log=outdir / "console.log", stdout_log=outdir / "stdout.log")
    return GuestRun(label=label, boot=boot, started={}, finished={}, selection=sel, env={"accel": "tcg"},
                    results=[r for r in results if _parent(r["id"]) in keep], splats=[])


def replay(recorded: dict):
    """Each boot of a new run gets the recorded boot of the same side and round.  When the run gives
    round 1's slow checks a guest of their own, the recorded round-1 results are split between the two
    guests by the checks' own slow markers, as the guest plugin would split them."""
    boots = {f"{b['side']}-{b['round']}": b for b in recorded["boots"] if b.get("purpose", "round") == "round"}
    costs = _costs(recorded["boots"][0]["results"])
    slow_ids: list = []

    def fake_run_checks(cache, bzimage, outdir, *, label="kernel", shard=None, slow=True, **kw):
        results = boots[re.sub(r"-slow\d*$", "", label)]["results"]
        if isinstance(slow, list):                  # a part of the slow checks, by node id
            results = [r for r in results if _parent(r["id"]) in slow]
        elif slow in ("only", "none"):
            if not slow_ids:
                slow_ids.append(set(slow_checks([PROJECT / "testcases"])))
            results = [r for r in results if (_parent(r["id"]) in slow_ids[0]) == (slow == "only")]
        return _guest_run(outdir, label, results, costs, shard)
    return fake_run_checks


def canned(results_for):
    """results_for(label) -> [(id, status)], for runs that need retries and a culprit search."""
    def fake_run_checks(cache, bzimage, outdir, *, label="kernel", expr=None, shard=None, **kw):
        names = set(expr.split(" or ")) if expr else None
        res = [{"id": i, "path": i.split("::")[1], "status": st, "duration_s": 1.0, "message": None, "log": "",
                "metrics": [], "timelines": [], "notes": {}} for i, st in results_for(label)
               if names is None or i.split("::")[1] in names]
        return _guest_run(outdir, label, res, {i: 1.0 for i, _ in results_for("base-1")}, shard)
    return fake_run_checks
