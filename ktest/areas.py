"""Which checks a series needs: each check area lists the source paths whose change it covers.
A series touching none of them gets every area; the smoke checks always run."""

from __future__ import annotations

import re
from pathlib import Path

from .records import Series

TESTCASES = Path(__file__).resolve().parent.parent / "testcases"
SMOKE = TESTCASES / "test_smoke.py"

AREA_PATHS = {
    "linkwatch": ("net/core/link_watch.c", "net/core/rtnetlink.c", "net/core/dev.c", "net/sched/sch_generic.c",
                  "drivers/net/virtio_net.c", "include/linux/netdevice.h", "include/net/sch_generic.h"),
    "bonding": ("drivers/net/bonding/", "include/net/bonding.h", "include/net/bond_", "include/uapi/linux/if_bonding.h",
                "tools/testing/selftests/drivers/net/bonding/"),
}
DIFF_FILE = re.compile(r"^diff --git a/(\S+) b/(\S+)$", re.M)


def touched_files(series: Series) -> list[str]:
    out: list[str] = []
    for p in series.patches:
        for a, b in DIFF_FILE.findall(p.text):
            for f in (a, b):
                if f not in out:
                    out.append(f)
    return out


def select(series: Series) -> tuple[list[str], str]:
    files = touched_files(series)
    areas = [a for a, prefixes in AREA_PATHS.items() if any(f.startswith(prefixes) for f in files)]
    if not areas:
        return list(AREA_PATHS), "the series touches no area's files: all areas"
    return areas, "touched: " + ", ".join(files[:6]) + (" ..." if len(files) > 6 else "")


def testcases_for(areas: list[str]) -> list[Path]:
    return [SMOKE] + [TESTCASES / a for a in areas]
