"""Guests of 1 and of 2 vCPUs side by side in one pool: the same base kernel, an AREA's checks (not the
slow ones; "AREA:slow" runs only the slow ones, the upstream selftests), 5 repetitions, BOOTS boots of each, alternating in the queue so that both kinds share
the host's conditions at every moment.  Writes OUT/runs-cpusN.json.gz (the boots, as a calibration's
runs.json) for ci/bench_spread.py.

Usage (from the repository root): python vcpus.py OUT BUILD_KEY [BOOTS [AREA]]   (AREA: linkwatch)"""

import functools
import gzip
import json
import sys
import time
from pathlib import Path

from ktest import areas
from ktest.base.cache import Cache
from ktest.base.progress import Progress
from ktest.boot.checks import run_checks
from ktest.boot.pool import BootJob, run_jobs

out, key = Path(sys.argv[1]), sys.argv[2]
boots = int(sys.argv[3]) if len(sys.argv) > 3 else 4
cache = Cache.open()
bz = cache.root / "artifacts" / key / "bzImage"
area, _, only = (sys.argv[4] if len(sys.argv) > 4 else "linkwatch").partition(":")
paths = areas.testcases_for([area])
jobs = [BootJob(f"c{n}-{i}", bz, out / f"c{n}-{i}", f"cpus{n}-{i}",
                dict(paths=paths, expr=None, reps=5, accel="tcg", known_issues=None, slow="only" if only == "slow" else False,
                     cpus=n))
        for i in range(1, boots + 1) for n in (1, 2)]
t0 = time.monotonic()
got = run_jobs(cache, jobs, 4, Progress(), run_checks)
for n in (1, 2):
    runs = [got[j.key].to_json() for j in jobs if j.key.startswith(f"c{n}-")]
    (out / f"runs-cpus{n}.json.gz").write_bytes(gzip.compress(json.dumps(runs).encode()))
print(json.dumps({"wall_s": round(time.monotonic() - t0, 1),
                  "boots": {j.key: got[j.key].to_json().get("started") is not None for j in jobs}}))
