"""`ktest run`: apply -> build (base + each patch) -> boot base and patched, interleaved -> verdicts ->
culprit -> outputs.  Writes reports/<run-id>/result.json (schema ktest.result/1) and renders from it."""

from __future__ import annotations

import os
import shlex
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, cast

from ktest import __version__
from ktest.host import kconfig
from ktest.host.build import Builder, check_host_tools
from ktest.base.cache import Cache
from ktest.judge import calibration
from ktest.base.home import TESTCASES as DEFAULT_TESTCASES
from ktest.boot.checks import collect_checks, run_checks
from ktest.base.errors import BuildFailed, Interrupted, KtestError, PatchDoesNotApply
from ktest.judge.console import KnownIssues
from ktest.host.gitutil import ktest_version
from ktest.host.pipeline import SeriesBuild, build_commits, new_run_id
from ktest.boot.pool import BootJob, Runner, run_jobs
from ktest.base.progress import Progress
from ktest.base.records import Build, Patch, Series, Tree, relative_path
from ktest.base.result import (BootRecord, BuildRecord, Culprit, Outcome, Result, Rounds, SeriesRef, Settings, Shard,
                               TreeRef, Verdict)
from ktest.host.series import apply_series, load
from ktest.judge.stats import RULE
from ktest.judge.verdict import (CRASH_VERDICTS, REGRESSIONS, compare_checks, conclude, crash_diff, once_paths, overall, splat_diff,
                      unconfirmed_stall)

FAIL_MAX_BOOTS = 8          # boots a side at most while a check's failure counts are in doubt
RETRY_OWN_GUEST_S = 120.0   # a check that took this long in a boot is booted again in a guest of its own
NAMING_BOOTS = 4            # boots a side at most, after a decided regression, to name a check the patch broke


@dataclass
class RunOptions:
    rounds: int = 2                 # boots per side, interleaved base/patched
    reps: int = 5                   # repetitions per measurement inside each boot
    accel: str = "auto"
    areas: tuple[str, ...] = ("linkwatch", "bonding")
    testcases: list[Path] | None = None   # None: chosen from the files the series touches
    expr: str | None = None
    known_issues: Path | None = None
    reports: Path = Path("reports")
    jobs: int | None = None
    bisect: bool = True
    db: Path | None = None          # history database (default cache/history.sqlite)
    shard: tuple[int, int] | None = None   # (i, n): run only part i of n of the checks (ktest.base.shard)
    vms: int = 2                    # guests at once (ktest.boot.pool)
    max_rounds: int | None = None   # boot more rounds while in doubt, up to this (None: the areas' max_rounds)
    kconfig_add: tuple[str, ...] = ()   # --kconfig-add items (CONFIG_X=v or files), the "user" fragment
    # --rerun: the stored run repeated: {"run_id", "patchset_hash", "base", "builds": {label: artifact key}},
    # which this run must match (same patches on the same base, built into the same artifacts)
    rerun: dict[str, Any] | None = None


def run_series(cache: Cache, tree: Tree, series_path: str, opts: RunOptions, progress: Progress,
               argv: list[str] | None = None, runner: Runner = run_checks) -> tuple[Result, Path]:
    """`runner` boots one kernel and runs checks in it (checks.run_checks; tests pass a replay)."""
    from ktest.host.tree import series_tree

    series = load(series_path, tree.repo if tree.kind == "user" else None)
    tree = series_tree(cache, tree, series)
    if opts.rerun:
        _same_series(opts.rerun, series, tree)
    check_host_tools()
    from ktest import areas as areas_mod

    if opts.testcases is None:
        chosen, why = areas_mod.select(series)
        opts = replace(opts, testcases=areas_mod.testcases_for(chosen))
    else:
        chosen, why = areas_mod.of_testcases(opts.testcases), "given with --testcases"
    run_id = new_run_id()
    outdir = (opts.reports / run_id).resolve()
    outdir.mkdir(parents=True)
    try:
        return _run(cache, tree, series, series_path, opts, progress, argv, chosen, why, run_id, outdir, runner)
    except (KeyboardInterrupt, Interrupted) as e:
        # Ctrl-C or SIGTERM: an empty run dir goes; one with a result.json stays, and the line says so
        _remove_if_empty(outdir)
        stage = e.fields["stage"] if isinstance(e, Interrupted) else f"the run of {series.name}"
        if (outdir / "index.html").exists():
            raise Interrupted(stage=stage, kept=f"{outdir} (its report says what was booted; "
                                                f"`ktest report {outdir}` renders it again)") from None
        if (outdir / "result.json").exists():
            raise Interrupted(stage=stage, kept=f"{outdir} (`ktest report {outdir}` renders it)") from None
        if isinstance(e, Interrupted):
            raise
        raise Interrupted(stage=stage) from None
    except BaseException:       # a failure before anything was written: no empty run dir
        _remove_if_empty(outdir)
        raise


def _same_series(rerun: dict[str, Any], series: Series, tree: Tree) -> None:
    """--rerun: the same patches on the same base as the stored run, before any work."""
    from ktest.base.errors import RerunDiffers

    if series.patchset_hash != rerun["patchset_hash"]:
        raise RerunDiffers(run=rerun["run_id"], what=f"series {series.name}",
                           why="its patches changed since (another patchset hash)")
    if tree.base != rerun["base"]:
        raise RerunDiffers(run=rerun["run_id"], what=f"the base of {tree.name}",
                           why=f"it is {tree.base[:12]} now, {rerun['base'][:12]} then")


def _remove_if_empty(d: Path) -> None:
    try:
        d.rmdir()               # only an empty directory goes
    except OSError:
        pass


def _run(cache: Cache, tree: Tree, series: Series, series_path: str, opts: RunOptions, progress: Progress,
         argv: list[str] | None, chosen: list[str], why: str, run_id: str, outdir: Path,
         runner: Runner) -> tuple[Result, Path]:
    r = _Run(cache, tree, series, opts, progress, outdir,
             _new_result(tree, series, series_path, opts, argv, chosen, why, run_id), runner)
    try:
        r.at("apply").apply()
        if r.at("build").build():
            r.at("planned rounds").boot_planned_rounds()
            r.at("extra rounds").boot_extra_rounds()
            r.at("retries").retry()
            r.at("verdicts").conclude()
            r.at("culprit").find_culprit()
    except (KeyboardInterrupt, Interrupted):
        r.interrupted()
        raise
    r.finish()
    return r.result, outdir


def _new_result(tree: Tree, series: Series, series_path: str, opts: RunOptions, argv: list[str] | None,
                chosen: list[str], why: str, run_id: str) -> Result:
    settings = Settings(
        rounds=opts.rounds, max_rounds=opts.max_rounds, vms=opts.vms, reps=opts.reps,
        kconfig_areas=list(opts.areas), expr=opts.expr, kconfig_add=_kconfig_add_json(opts.kconfig_add),
        known_issues=str(Path(opts.known_issues).resolve()) if opts.known_issues else None,
        accel=opts.accel, bisect=opts.bisect, rerun_of=opts.rerun["run_id"] if opts.rerun else None,
        check_areas=chosen, check_areas_why=why,
        testcases=[relative_path(p, DEFAULT_TESTCASES.parent) for p in opts.testcases or []],
        shard=Shard(*opts.shard) if opts.shard else None)
    return Result(
        run_id=run_id, created=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        command=shlex.join(argv or ["ktest", "run", series_path]), ktest_version=ktest_version(__version__),
        tree=TreeRef.from_json(tree.to_json()), series=SeriesRef.from_json(series.to_json()), settings=settings,
        checkout={"valid": None, "patchset_hash": series.patchset_hash,
                  "patchset_files": [{"name": p.name, "hash": p.sha256} for p in series.patches]},
        known_checks=[e for e in KnownIssues.for_tree(tree.name, opts.known_issues).entries if "check" in e])


def _kconfig_add_json(items: tuple[str, ...]) -> dict[str, Any] | None:
    """--kconfig-add as given and the fragment it made (its symbols are verified in every build)."""
    frag = kconfig.user_fragment(items)
    return {"items": list(items), "fragment": frag.text} if frag else None


def slow_parts(slow: dict[str, float], vms: int) -> list[list[str]]:
    """Round 1's slow checks (id -> declared cost) split by cost over guests of their own: one guest a
    side when the pool has room for two, half the pool a side when it is larger, never more guests
    than checks.  The split balances declared costs (ktest.base.shard.partition)."""
    from ktest.base.shard import partition

    if not slow:
        return []
    n = max(1, min(len(slow), vms // 2))
    parts = [p for p in partition(slow, n) if p]
    return sorted(parts, key=lambda p: -sum(slow[i] for i in p))


def check_parts(costs: dict[str, float], vms: int, rounds: int, slow_guests: int = 0) -> list[list[str]]:
    """A side's ordinary checks (id -> declared cost) split by cost over the guests the pool has left
    for each side of each round booted together: half the pool a side, less the slow checks' guests,
    shared by the rounds.  [] when that is one guest (the side's checks run whole, as before) or the
    checks are unknown.  Each guest is a kernel of its own, so scenarios that share the kernel's state
    (linkwatch's one global rate limit) stay serial within a guest and independent between guests."""
    from ktest.base.shard import partition

    n = min(len(costs), (vms // 2 - slow_guests) // max(1, rounds))
    if n < 2:
        return []
    return [p for p in partition(costs, n) if p]


class _Run:
    """One `ktest run` of a series, stage by stage: apply -> build -> planned rounds -> extra rounds ->
    retries -> conclude -> culprit -> finish (outputs).  Each stage reads and extends `result` (the
    ktest.result/1 document) and saves it, so an interrupted run leaves what it had."""

    def __init__(self, cache: Cache, tree: Tree, series: Series, opts: RunOptions, progress: Progress,
                 outdir: Path, result: Result, runner: Runner = run_checks):
        self.cache, self.tree, self.series, self.opts, self.progress = cache, tree, series, opts, progress
        self.runner = runner
        self.outdir, self.result, self.t0 = outdir, result, time.time()
        self.runs: dict[str, list[dict[str, Any]]] = {"base": [], "patched": []}
        self.built: SeriesBuild | None = None
        self.cal: calibration.Calibration | None = None
        self.stage = "apply"

    def at(self, stage: str) -> "_Run":
        """Names the stage about to run (an interruption says where it came)."""
        self.stage = stage
        return self

    def save(self) -> None:
        self.result.duration_s = round(time.time() - self.t0, 1)
        self.result.write(self.outdir / "result.json")

    def interrupted(self) -> None:
        """Ctrl-C or SIGTERM: a run that booted something keeps its boots with the verdict "interrupted"
        (no claim, exit 130) and its outputs say so; it is not recorded in the history, whose runs are
        judged ones.  A second interrupt while writing leaves result.json as the last stage saved it."""
        if not self.result.boots:
            return
        self.result.verdict = Verdict.interrupted(
            self.stage, f"interrupted during the {self.stage} stage after {self.result.boots_told()}; "
                        "nothing was judged")
        self.save()
        from ktest.report.outputs import write_all

        write_all(self.result, self.outdir)

    def could_not_run(self, e: KtestError, stage: str) -> None:
        self.result.verdict = Verdict.could_not_run(stage, e.line(), e.exit_code)
        self.finish()

    def finish(self) -> None:
        self.save()
        _outputs(self.result, self.outdir, self.cache, self.opts)

    # 1. apply
    def apply(self) -> None:
        series, result = self.series, self.result
        work = self.cache.dir("work", result.run_id)
        try:
            # a range, the user's own commits, is built as it is: nothing is applied
            self.progress.stage(series.applying(self.tree.name, self.tree.base_rev))
            apply_series(self.tree, series, work)
            result.checkout["valid"] = True
            result.series = SeriesRef.from_json(series.to_json())
        except PatchDoesNotApply as e:
            result.checkout["valid"] = False
            result.culprit = Culprit(e.fields["index"], e.fields["subject"], "does not apply", e.render())
            self.could_not_run(e, "apply")
            raise
        finally:
            shutil.rmtree(work, ignore_errors=True)

    # 2. build the base and each patch (the build path of `ktest build` too)
    def build(self) -> bool:
        """False when a patch breaks the build: that is the run's verdict (a regression, its patch the
        culprit), and nothing is booted.  A base that does not build: the run could not run."""
        opts, result = self.opts, self.result
        builder = Builder(self.cache, self.tree, areas=opts.areas, jobs=opts.jobs, progress=self.progress,
                          extra=kconfig.user_fragment(opts.kconfig_add))
        try:
            self.built = build_commits(builder, self.tree, self.series)
        except BuildFailed as e:
            partial = getattr(e, "partial", None)
            if partial is None:
                result.builds.append(BuildRecord.failed("base", self.tree.base, e.render()))
                self.could_not_run(e, "build")
                raise
            self._record_builds(cast(SeriesBuild, partial))
            p, n = cast(Patch, e.patch), len(self.series.patches)
            result.builds.append(BuildRecord.failed(f"patch {p.index}/{n}", p.commit, e.render()))
            result.culprit = Culprit(p.index, p.subject, "does not build", e.render())
            result.verdict = Verdict(Outcome.REGRESSION, Outcome.REGRESSION.exit_code,
                                     regressions=[f"build of patch {p.index}/{n}"], rule=RULE,
                                     stage="build", error=e.render())
            self.progress.warn(f"[{self.series.name}] patch {p.index}/{n} does not build: nothing to boot")
            return False
        self._record_builds(self.built)
        self.save()
        if opts.rerun:
            self._same_builds(opts.rerun["run_id"], opts.rerun["builds"])
        return True

    def _same_builds(self, run: str, want: dict[str, Any]) -> None:
        """--rerun: the builds must be the stored run's (same commit, kconfig and toolchain = same key)."""
        from ktest.base.errors import RerunDiffers

        have = {b.label: b.key for b in self.result.builds}
        for label, key in want.items():
            if have.get(label) != key:
                e = RerunDiffers(run=run, what=f"build '{label}'",
                                 why=f"its key is {have.get(label)}, the stored run's {key} (a different "
                                     f"commit, kconfig or toolchain)")
                self.could_not_run(e, "build")
                raise e

    def _record_builds(self, built: SeriesBuild) -> None:
        n = len(self.series.patches)
        self.result.builds.append(BuildRecord.of("base", built.base))
        for p, b in zip(self.series.patches, built.patches):
            self.result.builds.append(BuildRecord.of(f"patch {p.index}/{n}", b, built.new_warnings.get(p.index)))

    # 3. boots: rounds x sides on the guest pool; base and patched of a round start side by side
    def boot_planned_rounds(self) -> None:
        opts, result = self.opts, self.result
        built = self._built()
        self.kernels = {"base": built.base, "patched": built.patched}
        self.common = dict(paths=opts.testcases, reps=opts.reps, accel=opts.accel, known_issues=opts.known_issues,
                           shard=opts.shard)
        self.cal = calibration.for_run(self.cache, self.tree, result.settings.check_areas)
        result.calibration = self.cal.summary() if self.cal else None
        # round 1 runs the slow checks (upstream selftests); on a pool they get a guest of their own,
        # started first, so the round takes as long as the longer half instead of the sum; a pool with
        # guests left over splits the other checks of a side by cost too
        # run() chose the testcases (opts.testcases is set)
        coll = collect_checks(cast(list[Path], opts.testcases), opts.expr, opts.shard) if opts.vms > 1 else {}
        slow = {i: c["cost"] for i, c in coll.items() if c["slow"]}
        self.ordinary = {i: c["cost"] for i, c in coll.items() if not c["slow"]}
        self.slow_parts = slow_parts(slow, opts.vms)
        result.settings.slow_checks = {"checks": list(slow), "own_guest": bool(slow),
                                       "guests_per_side": len(self.slow_parts)}
        result.settings.check_guests = []
        self._boot_rounds(list(range(1, opts.rounds + 1)))

    def _built(self) -> SeriesBuild:
        """The builds, once the build stage has made them (the stages after it run only then)."""
        if self.built is None:
            raise RuntimeError("a stage that boots ran before the build stage")
        return self.built

    def _round_jobs(self, r: int, side: str, parts: list[list[str]]) -> list[tuple[str, dict[str, Any]]]:
        slow: list[tuple[str, dict[str, Any]]] = []
        if r == 1 and len(self.slow_parts) == 1:
            slow = [(f"{side}-1-slow", {"slow": "only"})]
        elif r == 1 and self.slow_parts:
            slow = [(f"{side}-1-slow{k}", {"slow": part}) for k, part in enumerate(self.slow_parts, 1)]
        mode = ("none" if slow else True) if r == 1 else False
        if parts:
            return slow + [(f"{side}-{r}-p{k}", {"slow": mode, "ids": part}) for k, part in enumerate(parts, 1)]
        return slow + [(f"{side}-{r}", {"slow": mode})]

    def _boot_rounds(self, rnds: list[int]) -> None:
        opts, result = self.opts, self.result
        # shards keep one guest per side and round: each shard is already a part of the checks
        parts = [] if opts.shard else check_parts(self.ordinary, opts.vms, len(rnds),
                                                  len(self.slow_parts) if 1 in rnds else 0)
        if result.settings.check_guests is None:
            result.settings.check_guests = []
        result.settings.check_guests.append({"rounds": rnds, "guests_per_side": max(1, len(parts))})
        jobs_of = {(r, side): self._round_jobs(r, side, parts) for r in rnds for side in ("base", "patched")}
        keys = [(r, side, key, kw) for r in rnds for side in ("base", "patched") for key, kw in jobs_of[r, side]]
        keys.sort(key=lambda k: not (k[3].get("slow") == "only" or isinstance(k[3].get("slow"), list)))
        # slowest first; stable otherwise
        jobs = [BootJob(key, self.kernels[side].bzimage, self.outdir / "boots" / key, key,
                        {**self.common, "expr": opts.expr, **kw}) for r, side, key, kw in keys]
        got = run_jobs(self.cache, jobs, opts.vms, self.progress, runner=self.runner)
        for r in rnds:
            for side in ("base", "patched"):
                for key, _ in jobs_of[r, side]:
                    gr = got[key]
                    self.runs[side].append(gr.to_json())
                    result.boots.append(BootRecord(gr.to_json(), side, r).to_json(self.outdir))
                    result.env = {**gr.env, "vms": opts.vms}
        self.save()

    # 3b. adaptive rounds: while a metric is inconclusive in a way more boots can settle, boot more
    def boot_extra_rounds(self) -> None:
        opts, result, runs = self.opts, self.result, self.runs
        # shards boot the planned rounds only: they must agree without talking to each other
        max_rounds = self.max_rounds
        result.rounds = rounds = Rounds(planned=opts.rounds, booted=opts.rounds, max=max_rounds)
        done = opts.rounds
        while done < max_rounds and runs["base"]:
            checks = self.compare()
            pending = overall(checks, {"new": []}).inconclusive
            if not pending:
                break
            if decided := _decided(checks):
                # a decided regression: more rounds could only add to the list, never make the run green
                # (judged at the boots it has, whose false-alarm rate is the calibrated one); shards boot
                # no extra rounds, so a sharded run is not judged on other boots for it
                rounds.stopped = (f"no more rounds: a regression is decided ({_some(decided)}); "
                                  "more boots could only add to it")
                self.progress.stage(f"[{self.series.name}] {rounds.stopped}")
                break
            batch = list(range(done + 1, min(max_rounds, done + max(1, opts.vms // 2)) + 1))
            self.progress.stage(f"[{self.series.name}] {len(pending)} metric(s) inconclusive ({_some(pending)}): "
                                f"booting round(s) {batch[0]}-{batch[-1]} "
                                f"of at most {max_rounds}")
            self._boot_rounds(batch)
            done = batch[-1]
            rounds.booted = done
            rounds.extra_rounds.append({"rounds": batch, "because": pending})
            self.save()

    @property
    def floors(self) -> dict[str, Any] | None:
        return self.cal.floors if self.cal else None

    def judged_with(self) -> dict[str, Any]:
        """The calibrated floors and, from the history, the base kernel's noise model, failure rates and
        the floors grown from them where the history knows a metric better than the calibration (every
        earlier run's base boots of this build and guest shape are A/A data); kept in the result."""
        from ktest.base.machine import env_guest_key
        from ktest.report.history import base_build, judged_with

        if self.result.judged_with is None:
            self.result.judged_with = judged_with(self.opts.db or self.cache.history_db, base_build(self.result),
                                                  env_guest_key(self.result.env), self.cal,
                                                  exclude=self.result.run_id)
        return self.result.judged_with

    def compare(self) -> list[dict[str, Any]]:
        jw = self.judged_with()
        return compare_checks(self.runs["base"], self.runs["patched"], jw["floors"], once=self.once,
                              noise=jw["noise"], fail_history=jw["fail_history"])

    @property
    def max_rounds(self) -> int:
        """Shards boot the planned rounds only: they must agree without talking to each other."""
        o = self.opts
        if o.shard:
            return o.rounds
        if o.max_rounds is not None:
            return o.max_rounds
        from ktest import areas as areas_mod
        return max(areas_mod.default_max_rounds(self.result.settings.check_areas or []), o.rounds)

    @property
    def once(self) -> frozenset[str]:
        """Checks that run in one boot a side by design (the slow checks of round 1)."""
        return once_paths(self.result, self.runs["base"] + self.runs["patched"])

    # 4. failures on the patched side that the counts cannot call yet: boot those checks again, on
    # both sides, until Fisher's test decides or FAIL_MAX_BOOTS a side (a stall: the whole run again)
    def retry(self) -> None:
        runs = self.runs
        stalls = [f"{sp['kind']} {sp['fingerprint']}" for sp in splat_diff(runs["base"], runs["patched"])["new"]
                  if unconfirmed_stall(sp)]
        if stalls:
            self.progress.stage(f"[{self.series.name}] retrying on patched: a stall seen in one boot: "
                                f"{', '.join(stalls)}")
            self._retry_boots("retry", [{"expr": self.opts.expr}], 1)
        batch, retried, limit = 0, 0, max(FAIL_MAX_BOOTS, self.max_rounds)
        naming: int | None = None       # naming boots a side left, once a regression is decided
        while True:
            checks = self.compare()
            undecided = [c for c in checks if (c.get("failures") or {}).get("decision") == "UNKNOWN"
                         and c["verdict"] not in CRASH_VERDICTS]
            if not undecided:
                return
            per_side = max(1, self.opts.vms // 2)
            if not self.opts.shard and (decided := _decided(checks)):
                # as for rounds: the run is red whatever these counts come to, and a retry of a slow check
                # costs up to half an hour a guest (seen: 80 min of retries after a regression decided at
                # round 2).  Booted still, to name what the patch broke: the checks that failed in every
                # patched boot and in no base boot and that NAMING_BOOTS boots a side could decide under
                # the run-wide correction, a slow one (an upstream program) only if one boot can, once
                # (seen: bond-xmit-any-slave's own check at 2 of 2 against 0 of 2 among 16 tested, left
                # at q = 0.4 by one boot; not upstream cases at 1 of 1 against 0 of 1, which took 20
                # minutes a guest to stay undecided).  A shard, which cannot know of a regression in
                # another shard, retries on
                first = naming is None
                naming = NAMING_BOOTS if naming is None else naming
                slow = _slow(runs, [c["path"] for c in undecided])
                need = {p: k for p, k in _boots_to_name(checks, naming).items() if p not in slow or (first and k == 1)}
                one_sided = [c for c in undecided if c["path"] in need]
                if naming <= 0 or not one_sided:
                    why = (f"no failure-count retries: a regression is decided ({_some(decided)}); "
                           f"{len(undecided)} check(s) left undecided")
                    if (rounds := self.result.rounds) is not None:
                        rounds.stopped = f"{rounds.stopped}; {why}" if rounds.stopped else why
                    self.progress.stage(f"[{self.series.name}] {why}")
                    return
                undecided = one_sided
                per_side = min(per_side, max(need[c["path"]] for c in one_sided),
                               1 if any(c["path"] in slow for c in one_sided) else naming)
            booted = min(min(c["failures"]["patched"][1], c["failures"]["base"][1]) for c in undecided)
            # bounded by the boots the counts have and by the retry boots booted: a boot that could not
            # set a check up adds nothing to its counts
            per_side = min(per_side, limit - booted, limit - retried)
            if per_side <= 0:
                return
            if naming is not None:
                naming -= per_side
            batch += 1
            retried += per_side
            paths = [c["path"] for c in undecided]
            self.progress.stage(f"[{self.series.name}] failure counts undecided"
                                + (", naming what the patch broke" if naming is not None else "") + " ("
                                + "; ".join(f"{c['path']}: {c['failures']['patched'][0]} of "
                                            f"{c['failures']['patched'][1]} patched boots, "
                                            f"{c['failures']['base'][0]} of {c['failures']['base'][1]} base"
                                            for c in undecided[:3])
                                + (" ..." if len(undecided) > 3 else "") + "): booting them again on both sides")
            self._retry_boots(f"retry{batch}", _retry_parts(runs, paths, self.opts), per_side)

    def _retry_boots(self, tag: str, parts: list[dict[str, Any]], per_side: int) -> None:
        """Boot `per_side` retries a side, each as len(parts) guests (one per part of the checks)."""
        keys = {f"{side}-{tag}" + (f"-{k}" if per_side > 1 else "") + (f"-p{j}" if len(parts) > 1 else ""): what
                for k in range(1, per_side + 1) for side in ("base", "patched") for j, what in enumerate(parts, 1)}
        jobs = [BootJob(key, self.kernels[key.split("-")[0]].bzimage, self.outdir / "boots" / key, key,
                        {**self.common, **what}) for key, what in keys.items()]
        got = run_jobs(self.cache, jobs, self.opts.vms, self.progress, runner=self.runner)
        for key in keys:
            side = key.split("-")[0]
            gr = got[key]
            self.runs[side].append(gr.to_json())
            self.result.boots.append(BootRecord(gr.to_json(), side, 0, "retry").to_json(self.outdir))
        self.save()

    # 5. verdicts
    def conclude(self) -> None:
        floors = self.judged_with()["floors"] if self.runs["base"] else self.floors
        conclude(self.result, self.runs["base"], self.runs["patched"], calibration=floors)
        if drifted := (self.result.judged_with or {}).get("drifted"):
            self.progress.warn(f"[{self.series.name}] this run's base boots disagree with the history's noise for "
                               f"{len(drifted)} metric(s) ({_some(drifted)}): "
                               f"the machine drifted; judged on this run's own noise")

    # 6. culprit: which patch of a multi-patch series first shows the regression
    def find_culprit(self) -> None:
        result, series, builds = self.result, self.series, self._built().patches
        if result.outcome.exit_code != 1:
            return
        if len(builds) > 1 and self.opts.bisect:
            result.culprit = _bisect(self.cache, series, builds, self.runs["base"], result.outcome.regressions,
                                        self.opts, self.outdir, self.progress, result,
                                        (result.judged_with or {}).get("floors", self.floors), self.runner)
        else:
            p = series.patches[-1]
            result.culprit = Culprit(p.index, p.subject, "only patch of the series" if len(builds) == 1
                                     else "bisect disabled")


def _decided(checks: list[dict[str, Any]]) -> list[str]:
    """The checks a comparison already calls regressions: once there is one, more boots cannot make the
    run green (the extra rounds and the retries stop)."""
    return [c["path"] for c in checks if c["verdict"] in REGRESSIONS]


def _boots_to_name(checks: list[dict[str, Any]], up_to: int) -> dict[str, int]:
    """The checks still undecided that failed in every patched boot and in no base boot (nor the
    history's), each with the fewest more boots a side (at most `up_to`) that could decide it under the
    run-wide correction: with its counts as those boots would leave them (failing again on patched,
    passing on base) and every other tested check's as they are, Benjamini-Hochberg gives q <= ALPHA.
    2 of 2 against 0 of 10 alone: 1 (3 of 3 against 0 of 11, p = 0.003); 2 of 2 against 0 of 2 beside
    15 other tested checks at 1 of 1 against 0 of 1: 4 (6 of 6 against 0 of 6, p = 0.001, q = 0.017;
    one boot leaves q = 0.8); 1 of 1 against 0 of 1 alone: 2."""
    from ktest.judge.stats import adjust
    from ktest.judge.verdict import exact_significant, failure_test

    def can_name(c: dict[str, Any]) -> bool:
        f = c["failures"]
        (kp, n_p), kb = f["patched"], f["base"][0]
        return f["decision"] == "UNKNOWN" and c["verdict"] not in CRASH_VERDICTS and 0 < kp == n_p \
            and kb == 0 and not (f.get("history") or [0])[0]

    def p_after(f: dict[str, Any], k: int) -> float:
        (kp, n_p), n_b = f["patched"], f["base"][1]
        return failure_test(0, n_b + (f.get("history") or [0, 0])[1] + k, kp + k, n_p + k)[1]

    tested = [c for c in checks if "q" in (c.get("failures") or {})]
    ps = [c["failures"]["p"] for c in tested]
    out: dict[str, int] = {}
    for i, c in enumerate(tested):
        if not can_name(c):
            continue
        for k in range(1, up_to + 1):
            if exact_significant(adjust(ps[:i] + [p_after(c["failures"], k)] + ps[i + 1:])[i]):
                out[c["path"]] = k
                break
    return out


def _took(runs: dict[str, Any]) -> tuple[dict[str, float], dict[str, str]]:
    """(the longest any boot took per pytest node, in seconds; the node of each check path): a
    sub-result is its own check's node, a result without a node id its own."""
    took: dict[str, float] = {}
    node_of: dict[str, str] = {}
    for side in ("base", "patched"):
        for run in runs[side]:
            for r in run.get("results", []):
                node = "::".join((r.get("id") or r.get("path") or "").split("::")[:2])
                took[node] = max(took.get(node, 0.0), float(r.get("duration_s") or 0.0))
                if r.get("path"):
                    node_of.setdefault(r["path"], node)
    return took, node_of


def _slow(runs: dict[str, Any], paths: list[str]) -> set[str]:
    """The check paths that took RETRY_OWN_GUEST_S or more in some earlier boot: an upstream program,
    minutes long under TCG."""
    took, node_of = _took(runs)
    return {p for p in paths if took.get(node_of.get(p, ""), 0.0) >= RETRY_OWN_GUEST_S}


def _some(paths: list[str]) -> str:
    """The first three of a list of check or metric paths for a progress line, '...' if there are more."""
    return ", ".join(paths[:3]) + (" ..." if len(paths) > 3 else "")


def _by_node(runs: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """(pytest node id, result) of every result of both sides' boots that names one (a sub-result: its
    own check's node)."""
    for side in ("base", "patched"):
        for run in runs[side]:
            for r in run.get("results", []):
                if "::" in (r.get("id") or ""):
                    yield "::".join(r["id"].split("::")[:2]), r


def _node_ids(runs: dict[str, Any], paths: list[str]) -> list[str]:
    """The pytest node ids that ran these check paths (a sub-result's: its own check's), from the boots'
    results; [] when one is not found (the caller falls back to a -k expression)."""
    ids: dict[str, str] = {}
    for node, r in _by_node(runs):
        if r.get("path"):
            ids.setdefault(r["path"], node)
    if not all(p in ids for p in paths):
        return []
    return sorted({ids[p] for p in paths})


def _just(runs: dict[str, Any], paths: list[str], opts: RunOptions) -> dict[str, Any]:
    """run_checks arguments that select just these check paths: their node ids (no -k, and no shard split
    of so small a collection), else a -k of their function names over the run's testcases and shard."""
    if nodes := _node_ids(runs, paths):
        return {"paths": nodes, "expr": None, "shard": None}
    return {"paths": opts.testcases, "expr": _expr_for(paths), "shard": opts.shard}


def _retry_parts(runs: dict[str, Any], paths: list[str], opts: RunOptions) -> list[dict[str, Any]]:
    """The guests a retry of these check paths boots on each side: a check that took RETRY_OWN_GUEST_S
    or more in any earlier boot (an upstream program, minutes long under TCG) in a guest of its own,
    longest first, and the others together.  One guest running them all could outlast its hard timeout
    and report none of them (seen: xmit, the loss window, bond_options.sh arp_validate and prio in one
    patched guest, 1800 s, and the failure counts never grew)."""
    what = _just(runs, paths, opts)
    if what["expr"] is not None:
        return [what]
    took = _took(runs)[0]
    own = sorted((n for n in what["paths"] if took.get(n, 0.0) >= RETRY_OWN_GUEST_S), key=lambda n: -took[n])
    rest = [n for n in what["paths"] if n not in own]
    return [{**what, "paths": [n]} for n in own] + ([{**what, "paths": rest}] if rest else [])


def _expr_for(paths: list[str]) -> str:
    """A pytest -k expression that selects (at least) these checks: their test function names, which
    are the dotted path's components after the module (parameter ids and sub-results are dropped)."""
    import re

    names = set()
    for p in paths:
        parts = p.split(".")
        for part in parts[2:3] or parts[-1:]:
            if re.fullmatch(r"[A-Za-z_]\w*", part):
                names.add(part)
    return " or ".join(sorted(names)) or "not_a_test_name"


def _bisect(cache: Cache, series: Series, builds: list[Build], base_runs: list[dict[str, Any]],
            regressions: list[str], opts: RunOptions, outdir: Path, progress: Progress,
            result: Result, cal_floors: dict[str, Any] | None = None, runner: Runner = run_checks) -> Culprit:
    """Boot every earlier patch's kernel (at once, on the pool) with the regressed checks; the culprit is
    the first that shows one of the run's regressions."""
    paths = [r for r in regressions if not r.startswith("new ")]
    what = _just({"base": base_runs, "patched": []}, paths, opts) if paths else \
        {"paths": opts.testcases, "expr": None, "shard": opts.shard}
    progress.stage(f"[{series.name}] culprit search: patches 1-{len(builds) - 1} of {len(builds)}")
    jobs = [BootJob(f"patch-{i}", b.bzimage, outdir / "boots" / f"bisect-{i}", f"patch-{i}",
                    dict(reps=opts.reps, accel=opts.accel, known_issues=opts.known_issues, **what))
            for i, b in enumerate(builds[:-1], 1)]
    got = run_jobs(cache, jobs, opts.vms, progress, runner=runner)
    for i in range(1, len(builds)):
        gr = got[f"patch-{i}"]
        result.boots.append(BootRecord(gr.to_json(), f"patch {i}", 0, "bisect").to_json(outdir))
        checks = compare_checks(base_runs, [gr.to_json()], cal_floors)
        v = overall(checks, splat_diff(base_runs, [gr.to_json()]), crashes=crash_diff(base_runs, [gr.to_json()]))
        mine = [r for r in v.regressions if r in regressions or r.startswith("new ")]
        mine += [c["path"] for c in checks if c["path"] in regressions and c["path"] not in mine and _shows(c)]
        if mine:
            p = series.patches[i - 1]
            return Culprit(i, p.subject, "first patch that shows: " + ", ".join(mine))
    p = series.patches[-1]
    return Culprit(len(builds), p.subject, "earlier patches do not show the regression")


def _shows(c: dict[str, Any]) -> bool:
    """Does one boot of an earlier patch show a check's regression?  The culprit search asks whether the
    symptom is there, not for a claim of its own: one boot cannot decide a claim (failure counts and the
    test over boots need more), but a failure where the base passes, or a shift beyond the floor the
    harmful way, is the symptom."""
    if c["verdict"] in REGRESSIONS or (c.get("failures") or {}).get("patched", [0])[0] > 0:
        return True
    return any(m.get("delta") is not None and m["verdict"] != "context" and abs(m["delta"]) > (m.get("noise_floor") or 0)
               and (m["delta"] > 0) == m["lower_is_better"] for m in c["metrics"])


def _outputs(result: Result, outdir: Path, cache: Cache, opts: RunOptions) -> None:
    from ktest.report.history import History
    from ktest.report.outputs import write_all

    hist = History.open(opts.db or cache.history_db)
    partial = result.settings.shard is not None
    # a shard holds part of the checks: comparing it with whole runs would report the rest as changed;
    # `ktest merge` records the merged run instead
    result.history = hist.context(result) if not partial else {"previous": None, "last_good": None,
                                                                 "changes": [], "skipped": "shard run"}
    if not partial:
        result.history["trends"] = True     # the report links ../history.html, (re)written below
    result.write(outdir / "result.json")
    write_all(result, outdir)
    if not partial:
        from ktest.report import trends

        hist.record(result, outdir / "result.json")
        trends.write(hist, outdir.parent / "history.html")
    latest = opts.reports / "latest"
    tmp = opts.reports / f".latest-{os.getpid()}"
    tmp.unlink(missing_ok=True)
    tmp.symlink_to(outdir.name)
    os.replace(tmp, latest)
