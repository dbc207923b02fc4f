"""One error hierarchy.  Every error renders as one line with a hint; the CLI maps it to an exit code.

User errors are bad inputs (a path, a patch, a revision); infrastructure errors are the machine's
(host tools, cache dir, a guest that hangs).  Both mean "could not run" (exit 2); exit 1 is kept for
"regressions found".
"""

from __future__ import annotations

from pathlib import PurePath
from typing import Any, Iterable

EXIT_OK = 0
EXIT_REGRESSION = 1
EXIT_COULD_NOT_RUN = 2
EXIT_UNDECIDED = 3             # a verdict: still in doubt after the last round (never green)
EXIT_INTERRUPTED = 130
# what several verdicts add up to: could not run, then a regression, then doubt, then green
_SEVERITY = [EXIT_COULD_NOT_RUN, EXIT_REGRESSION, EXIT_UNDECIDED, EXIT_OK]


def worst_exit(codes: Iterable[int]) -> int:
    """The exit code of several runs (series, shards): the most severe; an unknown code counts as
    could not run."""
    given = list(codes)
    if not given:
        return EXIT_OK
    return int(min(given, key=lambda c: _SEVERITY.index(c) if c in _SEVERITY else -1))


class KtestError(Exception):
    """Base: subclasses set `msg` (a format template over the keyword args), `hint` and `code`."""

    kind = "user"
    code = "error"
    msg = "{detail}"
    hint = ""
    exit_code = EXIT_COULD_NOT_RUN

    def __init__(self, **fields: Any) -> None:
        self.fields = fields
        super().__init__(self.render())

    def render(self) -> str:
        from ktest.base.safetext import inert

        # fields may carry outside text (a patch subject, git's or the console's words): one line, no
        # escape sequences reach the terminal or the report
        safe = {k: inert(str(v)) if isinstance(v, (str, PurePath)) else v for k, v in self.fields.items()}
        text = self.msg.format(**safe)
        hint = self.hint.format(**safe) if self.hint else ""
        return f"{text} (hint: {hint})" if hint else text

    def line(self) -> str:
        return f"ktest: {self.kind} error [{self.code}]: {self.render()}"


class UserError(KtestError):
    kind = "user"


class InfraError(KtestError):
    kind = "infra"


# --- inputs -----------------------------------------------------------------------------------

class SeriesNotFound(UserError):
    code = "series-not-found"
    msg = "series {path} does not exist"
    hint = "give a directory of *.patch files, a .patch file or an mbox"


class NotAPatch(UserError):
    code = "not-a-patch"
    msg = "{path} is not a patch: {why}"
    hint = "expected `git format-patch` output (a mail with a diff)"


class EmptySeries(UserError):
    code = "empty-series"
    msg = "series {path} holds no patches"
    hint = "put *.patch files in it, or list them in a `series` file"


class RangeNeedsTree(UserError):
    code = "range-needs-tree"
    msg = "{spec} looks like a revision range, but no --tree names the repository it is in (and no such path exists)"
    hint = "ktest run --tree ~/linux {spec}"


class BadRange(UserError):
    code = "bad-range"
    msg = "revision range {spec} in {path}: {why}"
    hint = "give A..B: two commits of --tree, A an ancestor of B, a line of commits without merges"


class RangeWithBase(UserError):
    code = "range-with-base"
    msg = "--base {rev} and the revision range {spec} both name the base"
    hint = "drop --base: a range's start is its base"


class BadSeriesFile(UserError):
    code = "bad-series-file"
    msg = "{path}: lists {name}, which {why}"
    hint = "list the patch files of the series folder by name, one a line (# comments)"

    def __init__(self, why: str = "does not exist", **fields: Any) -> None:
        super().__init__(why=why, **fields)


class PatchDoesNotApply(UserError):
    code = "patch-does-not-apply"
    msg = "patch {index} '{subject}' ({name}) does not apply to {base}: {why}"
    hint = "rebase the series onto {base}"


class NotAGitTree(UserError):
    code = "not-a-git-tree"
    msg = "--tree {path} {why}"
    hint = "give the top of a kernel git checkout, or omit --tree for the Debian 6.12 tree"


class BadBase(UserError):
    code = "bad-base"
    msg = "--base {rev} does not name a commit in {path}"
    hint = "use a commit, tag or branch that `git rev-parse` resolves there"


class NotAKernelTree(UserError):
    code = "not-a-kernel-tree"
    msg = "{path} at {rev} has no top-level Makefile with VERSION/PATCHLEVEL"
    hint = "give the top of a Linux kernel checkout (where `make kernelversion` works)"


class UnknownKernel(UserError):
    code = "unknown-kernel"
    msg = "--kernel {version}: Debian has no linux-source-{version} here"
    hint = "use 6.12 or 6.1, or --tree PATH"


class UnknownArea(UserError):
    code = "unknown-area"
    msg = "unknown check area {name!r}"
    hint = "known areas: {known}"


class BuildFailed(UserError):
    partial: object = None      # the SeriesBuild so far, when a patch of a series failed (pipeline)
    patch: object = None        # that patch
    code = "build-failed"
    msg = "build of {what} failed at {where}: {first_error}"
    hint = "full log: {log}"


class KconfigMissing(UserError):
    code = "kconfig-missing"
    msg = "after olddefconfig these requested symbols are not as asked: {missing}"
    hint = "their dependencies are unmet in this tree; see {config}"


class BootImageMissing(UserError):
    code = "no-bzimage"
    msg = "no kernel image at {path}"
    hint = "give --bzimage PATH, or --build KEY from `ktest build --json`"


class ResultMissing(UserError):
    code = "no-result"
    msg = "no readable result.json at {path}"
    hint = "give reports/<run-id>/result.json or the run directory"


class BadKconfigAdd(UserError):
    code = "bad-kconfig-add"
    msg = "--kconfig-add {value}: {why}"
    hint = "give CONFIG_X=VALUE, or a file of such lines (`# CONFIG_X is not set` too)"


class NotATerminal(UserError):
    code = "not-a-terminal"
    msg = "ktest shell is interactive and needs a terminal on stdin and stdout"
    hint = "run it from a terminal; for scripted checks use `ktest boot -k NODEID`"


class RunNotFound(UserError):
    code = "run-not-found"
    msg = "{role} {run}: no such stored run ({why})"

    def __init__(self, role: str = "--rerun", **fields: Any) -> None:
        super().__init__(role=role, **fields)
    hint = "`ktest history` lists the recorded runs; a run directory or its result.json works too"


class RerunDiffers(UserError):
    code = "rerun-differs"
    msg = "--rerun {run}: {what} is not the stored run's: {why}"
    hint = "a rerun repeats a run on the same builds; start a new run instead"


class RerunWithOption(UserError):
    code = "rerun-with-option"
    msg = "--rerun repeats the stored run's settings and series: {option} cannot change them"
    hint = "only --vms, --accel, --jobs, --reports, --db and --no-bisect may be given with --rerun"


class NothingToCompare(UserError):
    code = "nothing-to-compare"
    msg = "run {which} ({run}) has no {side} boots to compare"
    hint = "compare runs that booted that side (a run that stopped at apply or build booted nothing)"


class SameRun(UserError):
    code = "same-run"
    msg = "RUN_A and RUN_B are the same run ({run}): a run compared with itself shows no change by construction"
    hint = "compare two different runs, e.g. `ktest history` lists them"


class UsageError(UserError):
    code = "usage"
    msg = "{detail}"
    hint = "{help}"


class BadTestcases(UserError):
    code = "bad-testcases"
    msg = "--testcases {path} {why}"
    hint = "give check files (test_*.py) or folders of them, e.g. testcases/linkwatch"


class BadExpr(UserError):
    code = "bad-expr"
    msg = "-k {expr!r} is not a pytest -k expression: {why}"
    hint = "e.g. -k 'flap and not slow'"


class BadOut(UserError):
    code = "bad-out"
    msg = "{option} {path} {why}"
    hint = "give a writable directory (it is created if missing)"


class ReportsInTree(UserError):
    code = "reports-in-tree"
    msg = "{option} {path} lies inside the kernel tree {tree}, which ktest never modifies"
    hint = "give a directory outside the tree (without --reports, a run started in the tree writes to {default})"


class BadOption(UserError):
    code = "bad-option"
    msg = "{option} {value}: {why}"
    hint = "`ktest COMMAND --help` says what each option takes"


class KernelWithTree(UserError):
    code = "kernel-with-tree"
    msg = "--kernel {version} with --tree {path}: --kernel picks the Debian tree, which --tree replaces"
    hint = "drop --kernel (the kernel is whatever --tree/--base hold), or drop --tree"


class NotABzImage(UserError):
    code = "not-a-bzimage"
    msg = "{path} is not an x86 bzImage: {why}"
    hint = "give arch/x86/boot/bzImage of a kernel build, or --build KEY from `ktest build --json`"


class KnownIssuesMissing(UserError):
    code = "known-issues-missing"
    msg = "--known-issues {path} does not exist"
    hint = "give a JSON list of {{\"fingerprint\"|\"check\": PATTERN, \"reason\": TEXT}}, or omit the option"


class BadKnownIssues(UserError):
    code = "bad-known-issues"
    msg = "--known-issues {path} is not usable: {why}"
    hint = "a JSON list of {{\"fingerprint\"|\"check\": PATTERN, \"reason\": TEXT}}"


class BadDatabase(UserError):
    code = "bad-db"
    msg = "{option} {path} is not a usable ktest history database: {why}"
    hint = "give a new path (it is created) or an SQLite file from an earlier run"

    def __init__(self, option: str = "--db", **fields: Any) -> None:
        super().__init__(option=option, **fields)


class ReportsNotADir(UserError):
    code = "reports-not-a-dir"
    msg = "--reports {path} {why}"
    hint = "give a directory (it is created if missing)"


class BadExpected(UserError):
    code = "bad-expected"
    msg = "{path} is not a usable expected.json: {why}"
    hint = 'see README: {{"checks": [{{"check", "transition"}}], "metrics": [{{"check", "metric", "change"}}]}}'


class NoCalibrationBoots(UserError):
    code = "calibration-failed"
    msg = "only {ok} of {k} calibration boots ran the checks; need at least {need}"
    hint = "see the console logs under {out}"


class BadResult(UserError):
    code = "bad-result"
    msg = "{path} is not a usable ktest result: {why}"
    hint = "give the result.json (or the run directory) `ktest run` wrote: schema ktest.result/1, a regular file"


class BadShard(UserError):
    code = "bad-shard"
    msg = "--shard {spec}: {why}"
    hint = "give I/N with 1 <= I <= N <= 1000, e.g. --shard 1/2 on one machine and --shard 2/2 on another"


class NoResults(UserError):
    code = "no-results"
    msg = "no result.json under {paths}"
    hint = "give the report directories of `ktest run --shard I/N` (or their parent)"


class ShardsIncomplete(UserError):
    code = "shards-incomplete"
    msg = "cannot merge {what}: {why}"
    hint = "merge every shard 1..N of the same run, each once"


class ShardsDisagree(UserError):
    code = "shards-disagree"
    msg = "cannot merge {what}: shards differ in {field} ({a} vs {b})"
    hint = "shards must run the same series on the same tree with the same settings"


# --- machine ----------------------------------------------------------------------------------

class MissingHostTools(InfraError):
    code = "missing-host-tools"
    msg = "missing host tools: {missing}"
    hint = "run ci/setup.sh, or apt-get install {packages}"


class CacheNotWritable(InfraError):
    code = "cache-not-writable"
    msg = "cache dir {path} is not writable: {why}"
    hint = "set KTEST_CACHE or --cache to a writable directory"


class TreeSetupFailed(InfraError):
    code = "tree-setup-failed"
    msg = "could not prepare the {name} tree: {why}"


class KvmUnusable(InfraError):
    code = "kvm-unusable"
    msg = "KVM does not run a guest here: {reason}"
    hint = "check /dev/kvm permissions (udev rule) and that the host is not a nested PVM host"


class PathUnusable(InfraError):
    code = "path-unusable"
    msg = "{path}: {why}"
    hint = "check that the path is writable and its disk not full; --out/--reports/--cache choose other places"


class GitFailed(InfraError):
    code = "git-failed"
    msg = "git {args} failed in {cwd}: {why}"


class Interrupted(KtestError):
    """Ctrl-C, SIGTERM or SIGHUP.  Not an error of the input: its line is `ktest: interrupted ...`, as
    for an interrupt anywhere else, and says where what was done is kept (if anywhere)."""

    kind = "user"
    code = "interrupted"
    msg = "interrupted during {stage}"
    exit_code = EXIT_INTERRUPTED

    def __init__(self, stage: str, kept: str | PurePath | None = None, **fields: Any) -> None:
        super().__init__(stage=stage, kept=kept, **fields)

    def render(self) -> str:
        text = super().render()
        kept = self.fields.get("kept")
        return f"{text}; what was done is kept in {kept}" if kept else text

    def line(self) -> str:
        return f"ktest: {self.render()}"
