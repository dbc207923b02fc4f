"""`ktest build`: tree -> series -> apply -> builds of the base and of each patch."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast

import os
import shutil
import time
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from ktest.host.build import Builder, check_host_tools, new_warnings
from ktest.base.errors import BuildFailed
from ktest.base.cache import Cache
from ktest.base.progress import Progress
from ktest.base.records import Build, Series, Tree, Warning_
from ktest.host.series import apply_series, load

if TYPE_CHECKING:
    from ktest.host.kconfig import Fragment


def new_run_id() -> str:
    return time.strftime("%Y%m%d-%H%M%S") + f"-{os.getpid()}-{uuid.uuid4().hex[:4]}"


@dataclass
class SeriesBuild:
    tree: Tree
    series: Series | None
    base: Build
    patches: list[Build] = field(default_factory=list)   # one per patch, in order
    new_warnings: dict[int, list[Warning_]] = field(default_factory=dict)

    @property
    def patched(self) -> Build:
        return self.patches[-1] if self.patches else self.base

    def builds(self) -> Iterator[tuple[str, Build]]:
        yield "base", self.base
        for i, b in enumerate(self.patches, 1):
            yield f"patch {i}", b

    def to_json(self) -> dict[str, Any]:
        return {
            "tree": self.tree.to_json(),
            "series": self.series.to_json() if self.series else None,
            "base": self.base.to_json(),
            "patches": [b.to_json() for b in self.patches],
            "new_warnings": {str(k): [w.__dict__ for w in v] for k, v in self.new_warnings.items()},
        }


def build_commits(builder: Builder, tree: Tree, series: Series | None) -> SeriesBuild:
    """The one build path of `ktest build` and `ktest run`: the base, then each applied patch's commit
    (each on top of the ones before it), so that a build break or a new warning is pinned to its patch.
    A patch that does not build raises BuildFailed with .partial (what built before it) and .patch."""
    base = builder.build(tree.base, "base")
    res = SeriesBuild(tree=tree, series=series, base=base)
    patches = series.patches if series else []
    prev = base
    for p in patches:
        try:
            b = builder.build(cast(str, p.commit), f"patch {p.index}/{len(patches)}")    # applied: has one
        except BuildFailed as e:
            e.partial, e.patch = res, p
            raise
        res.patches.append(b)
        if nw := new_warnings(prev.warnings, b.warnings):
            res.new_warnings[p.index] = nw
        prev = b
    return res


def build_series(cache: Cache, tree: Tree, series_path: str | None, areas: Iterable[str], jobs: int | None = None,
                 progress: Progress | None = None, kconfig_add: Fragment | None = None) -> SeriesBuild:
    """`ktest build`: load and apply the series (if any), then build_commits."""
    progress = progress or Progress()
    from ktest.host.tree import series_tree

    series = load(series_path, tree.repo if tree.kind == "user" else None) if series_path else None
    tree = series_tree(cache, tree, series)
    check_host_tools()
    builder = Builder(cache, tree, areas=areas, jobs=jobs, progress=progress, extra=kconfig_add)
    if series:
        work = cache.dir("work", new_run_id())
        try:
            progress.stage(series.applying(tree.name, tree.base_rev))
            apply_series(tree, series, work)
        finally:
            shutil.rmtree(work, ignore_errors=True)
    return build_commits(builder, tree, series)
