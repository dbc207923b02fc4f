"""The engine: the one object ktest's commands drive.

It holds what every operation needs (the cache, the progress printer and the guest runner) and offers
the operations, each returning the typed model:

    tree / build / base_image          -> Tree, SeriesBuild, Path   (host: prepare and build)
    boot                                -> GuestRun                  (one kernel, its checks)
    run                                 -> Result, run dir           (series -> builds -> boots -> verdicts)
    compare                             -> Result                    (two stored runs judged by the same rule)
    merge                               -> merge.json's content      (CI shards)
    report                              -> run dir                   (a stored result rendered again)
    calibrate                           -> calibration data          (A/A boots of one base kernel)

Every verdict comes from verdict.conclude, whichever operation made the boots.  The command line
(ktest.cli) is parse -> settings -> engine -> render: it validates the arguments, turns them into the
settings below (TreeSpec, run.RunOptions), calls one operation and prints what it returned.  Tests
build an Engine with a stand-in `runner` (a replay of recorded guest runs) instead of rebinding
module globals.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ktest.base.cache import Cache
    from ktest.base.progress import Progress
    from ktest.base.records import Tree
    from ktest.base.result import Result
    from ktest.boot.pool import Runner
    from ktest.boot.checks import GuestRun
    from ktest.host.pipeline import SeriesBuild
    from ktest.run import RunOptions


@dataclass(frozen=True)
class TreeSpec:
    """Which kernel tree: Debian's linux-source `kernel` (the default tree), or the user's git checkout
    `repo` at `base` (never modified)."""
    kernel: str | None = None
    repo: str | None = None
    base: str | None = None


@dataclass
class Engine:
    cache: Cache
    progress: Progress
    runner: Runner | None = None    # boots one kernel and runs its checks; None: checks.run_checks

    def _runner(self) -> Runner:
        if self.runner is not None:
            return self.runner
        from ktest.boot.checks import run_checks
        return run_checks

    # -- host ------------------------------------------------------------------------------------------

    def tree(self, spec: TreeSpec) -> Tree:
        from ktest.host.tree import DEFAULT_KERNEL, debian_tree, user_tree

        if spec.repo:
            return user_tree(self.cache, spec.repo, spec.base or "HEAD")
        return debian_tree(self.cache, spec.kernel or DEFAULT_KERNEL, progress=self.progress.info)

    def build(self, spec: TreeSpec, series: str | None, areas: Sequence[str], jobs: int | None,
              kconfig_add: Sequence[str]) -> SeriesBuild:
        from ktest.host import kconfig
        from ktest.host.pipeline import build_series

        return build_series(self.cache, self.tree(spec), series, areas=areas, jobs=jobs, progress=self.progress,
                            kconfig_add=kconfig.user_fragment(tuple(kconfig_add)))

    def base_image(self, spec: TreeSpec) -> Path:
        """The bzImage of the tree's base (built, or taken from the cache)."""
        from ktest.host.build import Builder

        tree = self.tree(spec)
        return Builder(self.cache, tree, progress=self.progress).build(tree.base, "base").bzimage

    def kvm(self, spec: TreeSpec, fresh: bool) -> tuple[bool, str]:
        """Does KVM really run a guest here?  The cached answer, or a probe boot of the base kernel."""
        from ktest.boot.vm import forget_kvm_probe, probe_kvm

        bz = self.base_image(spec)
        if fresh:
            forget_kvm_probe(self.cache)
        return probe_kvm(self.cache, bz, self.progress)

    # -- guest -----------------------------------------------------------------------------------------

    def boot(self, bzimage: Path, out: Path, *, testcases: list[str] | None, expr: str | None, reps: int,
             accel: str, known_issues: Path | None) -> GuestRun:
        """Boot one kernel and run checks in it, logs in `out` (no comparison, no verdict).  The guest takes
        one of the host's guest slots, as a run's do: beside a run it waits rather than starve its guests."""
        from ktest.boot.pool import host_slot, host_slots

        with host_slot(self.cache, host_slots(1), self.progress):
            return self._runner()(self.cache, bzimage, out, label=bzimage.parent.name, paths=testcases, expr=expr,
                                  reps=reps, accel=accel, known_issues=known_issues, progress=self.progress)

    # -- runs and their verdicts -----------------------------------------------------------------------

    def run(self, spec: TreeSpec, series: str, opts: RunOptions, argv: list[str] | None = None) -> tuple[Result, Path]:
        """`ktest run` of one series: apply, build, boot both sides, judge, find the culprit, write the
        outputs into the run's directory."""
        from ktest.run import run_series

        return run_series(self.cache, self.tree(spec), series, opts, self.progress, argv=argv, runner=self._runner())

    def stored(self, run: str, db: Path | None = None, role: str = "--rerun") -> tuple[Result, Path]:
        """A stored run (a history id, a run dir or a result.json): its result, read and validated, and its dir."""
        from ktest import compare

        return compare.load(run, self.cache, db, role)

    def compare(self, run_a: str, run_b: str, out: Path, side: str, db: Path | None = None,
                argv: list[str] | None = None) -> Result:
        """Run B's `side` judged against run A's by the run's own rule; result and outputs into `out`."""
        from ktest import compare
        from ktest.report.outputs import write_all

        a, b = self.stored(run_a, db, "RUN_A"), self.stored(run_b, db, "RUN_B")
        compare.same_run(a, b)
        m = compare.compare(a, b, out, side, self.cache, argv=argv, history=db)
        m.write(out / "result.json")
        write_all(m, out)
        return m

    def merge(self, dirs: list[Path], out: Path, db: Path | None = None) -> dict[str, Any]:
        from ktest.merge import merge

        return merge(dirs, out, self.cache, db)

    def report(self, path: Path) -> Path:
        """Render a stored result (a run dir or its result.json) again; returns the run dir."""
        from ktest.base.errors import ResultMissing
        from ktest.base.result import Result
        from ktest.report.outputs import write_all

        if path.is_dir():
            path = path / "result.json"
        if not path.exists() and not path.is_symlink():
            raise ResultMissing(path=path)
        write_all(Result.read(path, path.parent), path.parent)  # safeio: a regular file in its run dir; validated
        return path.parent

    def calibrate(self, spec: TreeSpec, area: str, out: Path, *, boots: int, rounds: int, reps: int,
                  expr: str | None, accel: str, known_issues: Path | None, vms: int) -> tuple[Tree, dict[str, Any]]:
        """A/A boots of the tree's base kernel: the rule's false-alarm rates and each metric's noise."""
        from ktest import calibrate

        tree = self.tree(spec)
        return tree, calibrate.calibrate_base(self.cache, tree, area, out, boots=boots, rounds=rounds, reps=reps,
                                              expr=expr, accel=accel, known_issues=known_issues, vms=vms,
                                              progress=self.progress, runner=self.runner)
