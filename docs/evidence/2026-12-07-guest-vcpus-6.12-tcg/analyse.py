"""The tables of README.md from this folder's boots: per condition (quiet, loaded, bond, slow) and guest shape,
each boot's time, its boot to the harness, its host wait share and its failing checks (boots.json), and
every verdict metric's base IQR / p90 - median side by side (table.md, ci/bench_spread.py's table).

Run from the repository root: python docs/evidence/2026-12-07-guest-vcpus-6.12-tcg/analyse.py"""

import gzip
import json
import subprocess
import sys
from pathlib import Path

here = Path(__file__).parent
boots = {}
for cond in ("quiet", "loaded", "bond", "slow"):
    for n in (1, 2):
        runs = json.loads(gzip.decompress((here / f"{cond}-runs-cpus{n}.json.gz").read_bytes()))
        boots[f"{cond} {n} vCPU"] = [{
            "cpus": r["env"].get("cpus"), "boot_s": round(r["boot"]["duration_s"], 1),
            "to_harness_s": r["env"].get("launch_to_harness_s"), "host_wait_share": r["env"].get("host_wait_share"),
            "failed": [x["path"] for x in r["results"] if x["status"] in ("FAIL", "ERROR")]} for r in runs]
(here / "boots.json").write_text(json.dumps(boots, indent=1) + "\n")
spreads = [str(here / f"{c}-spread.json") for c in ("quiet", "loaded", "bond")]
table = subprocess.run([sys.executable, "ci/bench_spread.py", "--table", *spreads], check=True,
                       capture_output=True, text=True).stdout
(here / "table.md").write_text("IQR / p90 - median (ms) of the base samples, pooled over each shape's boots\n\n" + table)
