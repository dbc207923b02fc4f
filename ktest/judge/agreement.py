"""The referee's table: each upstream selftest a run ran, next to the ktest checks that test the same
behaviour (declared in the area file as `covers`), with both verdicts on each side.  Computed from
result.json alone, so a stored run renders it again."""

from __future__ import annotations

from typing import Any

from ktest.areas import all_areas
from ktest.base.result import CheckResult, Result, Side
from ktest.guest.plugin import safe_part

FAILING = ("FAIL", "ERROR", "CRASH", "MISS")


def upstream_path(area: str, selftest_id: str) -> str:
    """The check path the guest gives testcases/<area>/test_upstream.py::test_kselftest[ID]."""
    return f"{area}.upstream.kselftest.{safe_part(selftest_id)}"


def _side_status(checks: list[CheckResult], side: Side) -> str | None:
    """One status for a group of checks on one side: any failure fails it; PASS when all that ran passed."""
    got = [c.side(side).status for c in checks if c.side(side).status]
    ran = [s for s in got if s != "SKIP"]
    if any(s in FAILING for s in ran):
        return "FAIL"
    if "FLAKY" in ran:
        return "FLAKY"        # failed once and not again: no side of a disagreement
    if ran and all(s == "PASS" for s in ran):
        return "PASS"
    return "SKIP" if got else None


def _agree(up: str | None, ours: str | None) -> bool | None:
    if up not in ("PASS", "FAIL") or ours not in ("PASS", "FAIL"):
        return None           # one of them did not run, or has no ktest counterpart
    return up == ours


def table(result: Result) -> list[dict[str, Any]]:
    """Rows in the area file's order: upstream id, behaviour, the covering ktest checks that ran, and per
    side the upstream status, ktest's, and whether they agree (None: nothing to compare)."""
    by_path = {c.path: c for c in result.checks}
    rows = []
    for name in result.settings.check_areas:
        area = all_areas().get(name)
        for st in area.selftests if area else ():
            up = by_path.get(upstream_path(name, st.id))
            if up is None:
                continue
            ours = [c for p, c in by_path.items() if any(p == k or p.startswith(k + ".") for k in st.covers)]
            row: dict[str, Any] = {"upstream": st.id, "path": up.path, "behaviour": st.behaviour, "ktest": [c.path for c in ours]}
            for side in Side:
                u, k = _side_status([up], side), _side_status(ours, side) if ours else None
                row[side.value] = {"upstream": u, "ktest": k, "agree": _agree(u, k)}
            rows.append(row)
    return rows
