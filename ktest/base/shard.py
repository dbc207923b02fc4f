"""Sharding: split one run's checks over n machines (`ktest run --shard i/n`).

Every shard builds the same kernels and boots both sides the same number of times, but runs only its
part of the checks.  The partition is computed in the guest from the full pytest collection (before any
-k filter), so it depends only on the checks' source: shards on different machines, with different
caches and histories, agree on it without talking to each other.  `ktest merge` checks that the parts
are disjoint and cover the collection before it pools the results.

Balance: a check may declare its cost with @pytest.mark.cost(seconds), its run time under TCG; others
count DEFAULT_COST.  Largest cost first, each to the least loaded shard (ties: lowest shard number).
"""

from __future__ import annotations

import re

from ktest.base.errors import BadShard

DEFAULT_COST = 10.0
MAX_SHARDS = 1000           # N of --shard I/N (and of a result's settings.shard.count)


def parse(spec: str | None) -> tuple[int, int] | None:
    """'2/3' -> (2, 3); None -> None."""
    if spec is None:
        return None
    m = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", spec)
    if not m:
        raise BadShard(spec=spec, why="expected I/N, for example 1/2")
    i, n = int(m.group(1)), int(m.group(2))
    if not 1 <= n <= MAX_SHARDS:
        raise BadShard(spec=spec, why=f"N must be between 1 and {MAX_SHARDS} (got {n})")
    if not 1 <= i <= n:
        raise BadShard(spec=spec, why=f"I must be between 1 and N (got {i} of {n})")
    return i, n


def partition(costs: dict[str, float], n: int) -> list[list[str]]:
    """Split check ids into n lists, deterministically (see the module doc).  Each list keeps the
    collection order of its ids, so a shard runs its checks in the order an unsharded run would."""
    order = {nid: k for k, nid in enumerate(costs)}
    loads = [0.0] * n
    parts: list[list[str]] = [[] for _ in range(n)]
    for nid in sorted(costs, key=lambda x: (-costs[x], x)):
        k = min(range(n), key=lambda j: (loads[j], j))
        parts[k].append(nid)
        loads[k] += costs[nid]
    return [sorted(p, key=order.__getitem__) for p in parts]


def select(costs: dict[str, float], shard: tuple[int, int] | None) -> list[str]:
    if shard is None:
        return list(costs)
    i, n = shard
    return partition(costs, n)[i - 1]
