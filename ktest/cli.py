"""The `ktest` command line.  Exit codes: 0 ok, 1 regressions found, 2 could not run, 130 interrupted."""

from __future__ import annotations

import argparse
import json
import re
import sys
import traceback
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ktest import __version__
from ktest.host import kconfig
from ktest.base.cache import Cache
from ktest.base.home import ROOT as DEFAULT_PROJECT     # the checks' root: a checkout, or share/ktest installed
from ktest.base.errors import EXIT_COULD_NOT_RUN, EXIT_INTERRUPTED, Interrupted, KtestError, ResultMissing, worst_exit
from ktest.base.result import Result
from ktest.base.safetext import inert

if TYPE_CHECKING:
    from ktest.base.progress import Progress
    from ktest.boot.pool import Runner

EPILOG = """\
start here:
  ktest doctor                       is this machine ready?
  ktest run patches/linkwatch        the main job on the default tree (Debian's 6.12)
  ktest run --tree ~/linux origin/net-next..my-branch
                                     your branch, each commit a patch, against its start

exit codes: 0 no regression, 1 regression found, 2 could not run (bad input or machine),
3 undecided (still in doubt after --max-rounds; not green), 130 interrupted.
`ktest COMMAND --help` shows each command's options and examples. Docs: docs/ in the ktest checkout.
Not the kernel's tools/testing/ktest/ktest.pl.
"""

DESCRIPTION = ("ktest: test a Linux kernel patch series for regressions in networking (linkwatch, bonding): "
               "build base and patched kernels, boot both under virtme-ng, run checks, compare, report.")

# the commands in the order a user meets them: is the machine ready, the main job, reading its
# results, then the tools for check authors, CI and the rule's calibration
ORDER = ["doctor", "run", "report", "history", "compare", "boot", "shell", "tree", "build", "merge", "kvm",
         "calibrate"]

EXAMPLES = {
    "doctor": ["ktest doctor                       # tools, KVM, cache, disk, memory, default tree",
               "ktest doctor --probe               # no KVM answer cached yet: boot a guest to find out",
               "KTEST_CACHE=/srv/ktest ktest doctor   # a cache on another disk"],
    "run": ["ktest run patches/linkwatch                  # a series dir on the default tree (6.12)",
            "ktest run --tree ~/linux origin/net-next..my-branch   # your commits, as they are",
            "ktest run --rerun RUN_ID                     # repeat a stored run (ids: ktest history)"],
    "report": ["ktest report reports/latest                  # re-render the newest run's outputs",
               "ktest report reports/RUN_ID/result.json"],
    "history": ["ktest history                                # the newest 20 runs",
                "ktest history --series linkwatch --json",
                "ktest history --html --out reports/history.html   # metric trends per series"],
    "compare": ["ktest compare RUN_A RUN_B                    # B's patched kernel judged against A's",
                "ktest compare --side base RUN_A RUN_B        # did the machine drift between them?"],
    "boot": ["ktest boot --testcases testcases/linkwatch -k dummy --reps 3",
             "ktest boot --build KEY --testcases testcases/linkwatch/test_operstate.py::test_rate_limit_interval",
             "ktest boot --bzimage ~/linux/arch/x86/boot/bzImage --testcases testcases/test_smoke.py"],
    "shell": ["ktest shell --topology bond                  # the bond checks' topology, Ctrl-D leaves",
              "ktest shell --build KEY --topology virtio"],
    "tree": ["ktest tree                                   # prepare Debian's 6.12 once",
             "ktest tree --kernel 6.1",
             "ktest tree --tree ~/linux --base v6.12 --json"],
    "build": ["ktest build                                  # the base kernel only",
              "ktest build patches/linkwatch                # base and each patch's commit",
              "ktest build --kconfig-add CONFIG_PROVE_LOCKING=y patches/bonding"],
    "merge": ["ktest merge ~/Downloads/ktest-* --out merged  # CI shards' artifacts, downloaded",
              "ktest merge reports/shard-1 reports/shard-2"],
    "kvm": ["ktest kvm                                    # the cached answer, or probe once",
            "ktest kvm --fresh --require                  # probe again; exit 2 if KVM does not run a guest"],
    "calibrate": ["ktest calibrate --area linkwatch             # 8 boots of the base: the rule's false alarms",
                  "ktest calibrate --area bonding --boots 8 -k peer_notification"],
}


def _teach(ap: argparse.ArgumentParser, sub) -> None:
    """What ktest is in one line, the commands in the order a user meets them, and every command's
    help ending with its examples."""
    ap.description = DESCRIPTION
    order = {c: i for i, c in enumerate(ORDER)}
    sub._choices_actions.sort(key=lambda a: order.get(a.dest, len(order)))
    for name, p in sub.choices.items():
        p.formatter_class = argparse.RawDescriptionHelpFormatter
        p.epilog = "examples:\n" + "\n".join(f"  {e}" for e in EXAMPLES.get(name, []))
        if p.description:
            import textwrap

            p.description = textwrap.fill(p.description, 100)


class KtestParser(argparse.ArgumentParser):
    """A command line argparse refuses (an unknown option, `--rounds abc`) is one line like every other
    bad input, `ktest: user error [usage]: ...`, exit 2; --help still prints the usage."""

    def error(self, message: str):
        from ktest.base.errors import UsageError

        raise UsageError(detail=f"{self.prog}: {message}", help=f"`{self.prog} --help` lists the options")


def _tree_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("kernel tree")
    g.add_argument("--kernel", metavar="VER",
                   help="Debian linux-source version for the default tree: 6.12 (default) or 6.1")
    g.add_argument("--tree", metavar="PATH", help="your own kernel git checkout instead (never modified)")
    g.add_argument("--base", metavar="REV", help="base revision in --tree (default HEAD; a range's start is its base)")


def _build_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--area", action="append", choices=kconfig.AREAS, metavar="AREA",
                   help=f"kconfig areas to enable (default: all of {', '.join(kconfig.AREAS)})")
    p.add_argument("-j", "--jobs", type=int, help="make -j (default: nproc)")
    p.add_argument("--kconfig-add", action="append", metavar="FILE|CONFIG_X=V", default=[],
                   help="add to the area fragments (repeatable): a CONFIG_X=VALUE or a fragment file; part of "
                        "the build key, and every symbol is verified in the built .config")


def _common(defaults: bool) -> KtestParser:
    """--cache/--debug, accepted before or after the subcommand."""
    p = KtestParser(add_help=False)
    sup: dict[str, Any] = {} if defaults else {"default": argparse.SUPPRESS}
    p.add_argument("--cache", metavar="DIR", help="cache dir (default $KTEST_CACHE or ~/.cache/ktest)",
                   **({"default": None} if defaults else sup))
    p.add_argument("--debug", action="store_true", help="show tracebacks", **sup)
    return p


def parser() -> argparse.ArgumentParser:
    ap = KtestParser(prog="ktest", description=__doc__, epilog=EPILOG, parents=[_common(True)],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--version", action="version", version=f"ktest {__version__}")
    sub = ap.add_subparsers(dest="cmd", required=True, metavar="COMMAND")
    common = [_common(False)]

    p = sub.add_parser("tree", parents=common, help="prepare (once) and show the kernel tree",
                       description="Prepare the default Debian tree (extract + git) or check --tree/--base.")
    _tree_args(p)
    p.add_argument("--json", action="store_true", help="print the tree record as JSON")

    p = sub.add_parser("build", parents=common, help="build base (and each patch of a series) with the lean config",
                       description="Build the base kernel and, given a series, each patch's commit. "
                                   "Cached by (commit, kconfig, toolchain): a repeat build runs no make.")
    p.add_argument("series", nargs="?", help="patch series: a dir of *.patch, a .patch, an mbox, or a revision "
                                            "range A..B of --tree (each commit a patch, A the base)")
    _tree_args(p)
    _build_args(p)
    p.add_argument("--json", action="store_true", help="print the build records as JSON")

    p = sub.add_parser("run", parents=common, help="apply, build, boot and check base vs patched; write a report",
                       description="The main job: for each series, build base and patched kernels (and each "
                                   "patch), boot both sides interleaved, compare, and write reports/<run-id>/.")
    p.add_argument("series", nargs="*", help="patch series (dirs, .patch files or mboxes), or revision ranges "
                                             "A..B of --tree (each commit a patch, A the base)")
    p.add_argument("--rerun", metavar="RUN_ID", help="repeat a stored run (`ktest history`; or its directory): "
                                                     "its series, tree and settings, on the same builds")
    _tree_args(p)
    _build_args(p)
    _boot_args(p)
    p.add_argument("--rounds", type=int, default=2, help="boots per side, interleaved (default 2)")
    p.add_argument("--max-rounds", type=int, metavar="N",
                   help="while a metric is in doubt (more boots can settle it), boot more rounds, up to N per "
                        "side (default 6, or --rounds if larger); still in doubt then: 'undecided', exit 3")
    p.add_argument("--testcases", nargs="+", metavar="PATH",
                   help="check files/dirs (default: the areas whose files the series touches, plus smoke)")
    p.add_argument("--reports", metavar="DIR",
                   help="output root (default reports/ here; in the cache's reports/ when here is inside --tree, "
                        "which ktest never writes to)")
    p.add_argument("--no-bisect", action="store_true", help="do not search the culprit patch")
    p.add_argument("--db", help="history database (default $KTEST_DB or cache/history.sqlite)")
    p.add_argument("--shard", metavar="I/N",
                   help="run only part I of N of the checks (same builds and boots); combine with `ktest merge`")

    p = sub.add_parser("calibrate", parents=common, help="measure the A/B rule's false-alarm rate and each metric's noise",
                       description="Boot one kernel (the tree's base) K times with an area's checks, judge every "
                                   "split of those boots into two run-sized groups with the rule `ktest run` uses, and "
                                   "report the false-alarm rate per metric, per check and per run, and the smallest "
                                   "change the rule tells from noise. Stored per (kernel, accel, area, rule) in the "
                                   "cache; `ktest run` then uses each metric's measured noise as its floor.")
    _tree_args(p)
    _boot_args(p)
    p.add_argument("--area", required=True, choices=kconfig.AREAS, help="check area to calibrate")
    p.add_argument("--boots", type=int, default=8, metavar="K", help="boots of the kernel (default 8)")
    p.add_argument("--rounds", type=int, default=2, help="boots per side in a run (default 2, as `ktest run`)")
    p.add_argument("--out", metavar="DIR", help="boot logs and calibration.json (default reports/calibrate-<time>)")

    p = sub.add_parser("merge", parents=common, help="combine the reports of sharded runs into whole-run reports",
                       description="Pool the shards of each run found under DIR... (run dirs, or folders holding "
                                   "them, e.g. downloaded CI artifacts) and write one report per run plus an "
                                   "overview index.html, junit.xml, summary.md and merge.json into --out. Exit 1 "
                                   "if any run regressed, 2 if any could not run.")
    p.add_argument("dirs", nargs="+", metavar="DIR")
    p.add_argument("--out", metavar="DIR", help="output dir (default reports/merged-<time>)")
    p.add_argument("--db", help="history database (default $KTEST_DB or cache/history.sqlite)")

    p = sub.add_parser("kvm", parents=common, help="probe whether KVM really runs a guest here",
                       description="Boot the base kernel with KVM and `true` under a 25 s cap (/dev/kvm opening is "
                                   "not enough: a PVM host opens it and hangs the guest). The answer is cached per "
                                   "host; --fresh probes again. Exit 0 either way, unless --require and KVM is not "
                                   "usable (exit 2).")
    _tree_args(p)
    p.add_argument("--fresh", action="store_true", help="ignore the cached answer")
    p.add_argument("--require", action="store_true", help="fail (exit 2) if KVM is not usable")

    p = sub.add_parser("report", parents=common, help="re-render a stored run from its result.json",
                       description="Re-render index.html, junit.xml, kcidb.json and summary.md from result.json.")
    p.add_argument("result", help="a result.json or a run directory")

    p = sub.add_parser("history", parents=common, help="list recorded runs, or chart their metrics (--html)",
                       description="Runs recorded in the history database ($KTEST_DB or cache/history.sqlite). With --html: "
                                   "a page with one chart per metric across the runs of each series and base, "
                                   "base and patched medians as two lines (a drifting base is the machine).")
    p.add_argument("--series", help="only this series name")
    p.add_argument("--db", help="history database (default $KTEST_DB or cache/history.sqlite)")
    p.add_argument("--limit", type=int, metavar="N",
                   help="runs to list (default 20); with --html, the newest runs per series and base (default 50)")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--json", action="store_true")
    g.add_argument("--html", action="store_true", help="write the trends page instead of listing runs")
    p.add_argument("--out", metavar="FILE", help="with --html: the page to write (default reports/history.html)")

    p = sub.add_parser("boot", parents=common, help="boot one kernel and run selected checks (for check authors)",
                       description="Boot one kernel under virtme-ng and run checks from testcases/ in it. "
                                   "Without --build/--bzimage, the default tree's base kernel is built (or "
                                   "taken from the cache) first.")
    _kernel_args(p)
    _boot_args(p)
    p.add_argument("--testcases", nargs="+", metavar="PATH", help="check files/dirs (default: testcases/)")
    p.add_argument("--out", metavar="DIR", help="where logs and results go (default: reports/boot-<time>)")
    p.add_argument("--json", action="store_true", help="print the guest run as JSON")
    p = sub.add_parser("compare", parents=common, help="the A/B rule on two stored runs (B's kernel against A's)",
                       description="Judge stored run B against stored run A with the rule `ktest run` uses: A's "
                                   "boots of one side (patched by default) stand as base, B's as patched. For "
                                   "example yesterday's branch against today's. Nothing is booted. Writes the "
                                   "same report formats. Exit 1 if B regressed against A.")
    p.add_argument("run_a", metavar="RUN_A", help="a run id (`ktest history`), a run directory or a result.json")
    p.add_argument("run_b", metavar="RUN_B")
    p.add_argument("--side", choices=("patched", "base"), default="patched",
                   help="which side of each run to compare (default patched; base shows machine drift)")
    p.add_argument("--out", metavar="DIR", help="output dir (default reports/compare-<time>)")
    p.add_argument("--db", help="history database (default $KTEST_DB or cache/history.sqlite)")

    p = sub.add_parser("shell", parents=common, help="an interactive guest with a check topology set up",
                       description="Boot a kernel under virtme-ng on this terminal with a check area's topology "
                                   "already built by the checks' own code, to poke at a failing check by hand. "
                                   "Ctrl-D (or exit) leaves; the guest powers off and nothing is left running. "
                                   "Without --build/--bzimage, the default tree's base kernel (built or cached).")
    _kernel_args(p)
    from ktest.boot.shell import TOPOLOGIES
    p.add_argument("--topology", default="none", choices=list(TOPOLOGIES), metavar="NAME",
                   help="; ".join(f"{t.name}: {t.what}" for t in TOPOLOGIES.values()) + " (default none)")
    p.add_argument("--accel", choices=("auto", "kvm", "tcg"), default="auto")

    p = sub.add_parser("doctor", parents=common, help="is this machine ready? tools, KVM, cache, disk, memory, tree",
                       description="Check the host before a first run, one line per item with a fix: vng, QEMU, "
                                   "iproute2, tcpdump, the kernel build tools and udev with their versions; whether "
                                   "KVM runs a guest (the cached probe of `ktest kvm`); the cache dir, free disk and "
                                   "memory; the default tree. Nothing is built or booted, unless --probe and no KVM "
                                   "answer is cached. Exit 0 when ready, 2 when not.")
    p.add_argument("--kernel", metavar="VER", help="the default tree to check: 6.12 (default) or 6.1")
    p.add_argument("--probe", action="store_true",
                   help="with no cached KVM answer, probe now (as `ktest kvm`: builds the base kernel if the "
                        "cache has none, then boots it under a 25 s cap)")
    _teach(ap, sub)
    return ap


def _kernel_args(p: argparse.ArgumentParser) -> None:
    """Which kernel to boot (boot, shell): a built artifact, any bzImage, or the tree's base."""
    g = p.add_mutually_exclusive_group()
    g.add_argument("--build", metavar="KEY|DIR", help="an artifact key (cache/artifacts/KEY) or directory")
    g.add_argument("--bzimage", metavar="PATH", help="any bzImage")
    _tree_args(p)


def _boot_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("boot")
    g.add_argument("-k", dest="expr", metavar="EXPR", help="pytest -k expression selecting checks")
    g.add_argument("--reps", type=int, default=5, help="repetitions per measurement (default 5)")
    g.add_argument("--vms", type=int, metavar="N",
                   help="guests to run at once (default: from cores, memory and accel; 2 on a 2-core TCG host)")
    g.add_argument("--accel", choices=("auto", "kvm", "tcg"), default="auto",
                   help="auto probes once per host whether KVM really runs a guest (default)")
    g.add_argument("--known-issues", metavar="FILE", type=Path,
                   help="JSON list of {fingerprint, reason}: splats that are expected")


def _tree(args: argparse.Namespace, cache: Cache, progress: Progress):
    from ktest.host.tree import DEFAULT_KERNEL, debian_tree, user_tree

    if args.tree:
        return user_tree(cache, args.tree, args.base or "HEAD")
    return debian_tree(cache, args.kernel or DEFAULT_KERNEL, progress=progress.info)


def validate_inputs(args: argparse.Namespace) -> None:
    """Input files and option combinations checked before any work (no tree prepared, nothing built
    or booted): each refusal is one line, exit 2."""
    from ktest.judge.console import KnownIssues
    from ktest.base.errors import KernelWithTree

    if getattr(args, "tree", None) and getattr(args, "kernel", None) is not None:
        raise KernelWithTree(version=args.kernel, path=args.tree)
    validate_numbers(args)
    validate_outputs(args)
    validate_checks(args)
    if getattr(args, "known_issues", None) is not None:
        KnownIssues.load(args.known_issues)
    if getattr(args, "db", None):
        check_db(Path(args.db))
    check_history_db(args)
    if getattr(args, "reports", None):
        check_reports(Path(args.reports))
    if getattr(args, "bzimage", None):
        from ktest.base.errors import BootImageMissing
        from ktest.boot.vm import check_bzimage

        if not Path(args.bzimage).is_file():
            raise BootImageMissing(path=args.bzimage)
        check_bzimage(Path(args.bzimage))
    if getattr(args, "kconfig_add", None):
        kconfig.user_fragment(args.kconfig_add)
    if args.cmd in ("run", "build"):
        from ktest.base.errors import RangeWithBase
        from ktest.host.series import load

        for s in args.series if isinstance(args.series, list) else [args.series] if args.series else []:
            # the patches parse, a `series` file names files that exist, expected.json; a revision
            # range names commits of --tree, in a line on its start
            series = load(s, Path(args.tree) if args.tree else None)
            if series.range and args.base:
                raise RangeWithBase(rev=args.base, spec=s)


SQLITE_MAGIC = b"SQLite format 3\0"


def check_db(path: Path, option: str = "--db") -> None:
    """--db: absent (it is created) or an SQLite database ktest can read."""
    import sqlite3

    from ktest.base.errors import BadDatabase

    if not path.exists():
        return
    if not path.is_file():
        raise BadDatabase(option=option, path=path, why="not a regular file")
    try:
        with open(path, "rb") as f:
            head = f.read(len(SQLITE_MAGIC))
    except OSError as e:
        raise BadDatabase(option=option, path=path, why=e.strerror or str(e)) from None
    if head and head != SQLITE_MAGIC:           # an empty file is a new database to SQLite
        raise BadDatabase(option=option, path=path, why="not an SQLite file (no 'SQLite format 3' header)")
    try:
        db = sqlite3.connect(f"{path.absolute().as_uri()}?mode=ro", uri=True, timeout=30)
        try:
            cols = {r[1] for r in db.execute("PRAGMA table_info(runs)")}
        finally:
            db.close()
    except sqlite3.Error as e:
        raise BadDatabase(option=option, path=path, why=str(e)) from None
    if cols and not {"run_id", "series", "checks_json"} <= cols:
        raise BadDatabase(option=option, path=path, why="its 'runs' table is not ktest's")


def check_reports(path: Path) -> None:
    from ktest.base.errors import ReportsNotADir

    if path.exists() and not path.is_dir():
        raise ReportsNotADir(path=path, why="exists and is not a directory")


def validate_numbers(args: argparse.Namespace) -> None:
    """Numbers every command that takes them checks before any work (run's in validate_run too)."""
    from ktest.base.errors import BadOption

    if args.cmd in ("run", "boot", "calibrate"):
        _bounded("--reps", args.reps, 1, 100)
    if args.cmd in ("run", "build"):
        _bounded("--jobs", args.jobs, 1, 1024)
    if args.cmd == "history":
        _bounded("--limit", args.limit, 1, 10000)
    if args.cmd == "run" and args.shard is not None:
        from ktest.base import shard

        shard.parse(args.shard)
    if args.cmd == "run" and args.rounds is not None and args.max_rounds is not None and args.max_rounds < 1:
        raise BadOption(option="--max-rounds", value=args.max_rounds, why="must be at least 1")


def reports_root(args: argparse.Namespace) -> Path:
    """Where outputs go when no --reports/--out names a place: reports/ in the current directory, unless
    that lies inside the --tree (the user's kernel tree is never modified, not even by an untracked
    reports/): then reports/ in the cache ($KTEST_CACHE or ~/.cache/ktest)."""
    from ktest.base.cache import default_cache_dir

    tree = getattr(args, "tree", None)
    if tree and Path.cwd().resolve().is_relative_to(Path(tree).resolve()):
        return Path(args.cache or default_cache_dir()).expanduser().absolute() / "reports"
    return Path("reports")


DEFAULT_OUT = {"merge": "merged-%Y%m%d-%H%M%S", "compare": "compare-%Y%m%d-%H%M%S", "boot": "boot-%Y%m%d-%H%M%S",
               "calibrate": "calibrate-%Y%m%d-%H%M%S"}


def validate_outputs(args: argparse.Namespace) -> None:
    """--reports and --out (given, or their defaults) must be directories ktest can write, outside the
    kernel tree: checked before any work, so that a finished run's verdict is never lost to them."""
    import time

    from ktest.base.errors import BadOut, ReportsInTree, ReportsNotADir

    error: type[KtestError]
    if args.cmd == "run":
        if args.reports is None:
            args.reports = str(reports_root(args))
        option, path, error = "--reports", Path(args.reports), ReportsNotADir
    elif args.cmd in DEFAULT_OUT:
        if args.out is None:
            args.out = str(reports_root(args) / time.strftime(DEFAULT_OUT[args.cmd]))
        option, path, error = "--out", Path(args.out), BadOut
    else:
        return
    tree = getattr(args, "tree", None)
    if tree and path.resolve().is_relative_to(Path(tree).resolve()):
        raise ReportsInTree(option=option, path=path, tree=tree, default=reports_root(args))
    why = writable_dir(path)
    if why:
        raise (error(path=path, why=why) if error is ReportsNotADir else error(option=option, path=path, why=why))


def writable_dir(path: Path) -> str | None:
    """Why `path` cannot be (or be made) a directory ktest writes into, or None."""
    import os

    if path.exists() or path.is_symlink():
        if not path.is_dir():
            return "exists and is not a directory"
        if not os.access(path, os.W_OK | os.X_OK):
            return "is not writable"
        return None
    anc = path.absolute().parent
    while not anc.exists():
        anc = anc.parent
    if not anc.is_dir():
        return f"cannot be created: {anc} is not a directory"
    if not os.access(anc, os.W_OK | os.X_OK):
        return f"cannot be created: {anc} is not writable"
    return None


def validate_checks(args: argparse.Namespace) -> None:
    """--testcases (files or folders of checks that exist) and -k (an expression pytest parses), before
    any build: a typo here would otherwise surface in the guest, after the builds."""
    from ktest.base.errors import BadExpr, BadTestcases

    for t in getattr(args, "testcases", None) or []:
        from ktest.boot.checks import check_path      # only when checks are named: it imports the boot machinery
        # a pytest node id (file.py::test_name[param]) names one check of a file that must exist
        # resolved as reports print node ids: from the working directory, else the checks' root
        file, sep, node = str(check_path(t)).partition("::")
        if sep and not re.fullmatch(r"[A-Za-z_]\w*(::[A-Za-z_]\w*)*(\[[^\x00-\x1f\x7f]*\])?", node):
            raise BadTestcases(path=t, why="is not a check's node id (file.py::test_name or file.py::test_name[param])")
        p = Path(file)
        if sep and p.is_dir():
            raise BadTestcases(path=t, why="names a check in a folder; give the file (test_*.py::test_name)")
        if not p.exists():
            raise BadTestcases(path=t, why="does not exist")
        if p.is_dir():
            continue
        if not p.is_file():
            raise BadTestcases(path=t, why="is not a regular file or a folder")
        if p.suffix != ".py":
            raise BadTestcases(path=t, why="is not a Python check file (*.py)")
    expr = getattr(args, "expr", None)
    if expr is not None:
        try:        # pytest's own -k parser (private: its error class moved between versions)
            from _pytest.mark import expression as kexpr
        except ImportError:
            return
        refusals = tuple(e for e in (getattr(kexpr, "ParseError", None), SyntaxError) if e)
        try:
            kexpr.Expression.compile(expr)
        except refusals as e:
            raise BadExpr(expr=expr, why=getattr(e, "msg", None) or str(e)) from None


def check_history_db(args: argparse.Namespace) -> None:
    """The history database run and merge record into (--db, $KTEST_DB, or the cache's) must be one
    ktest can write: found before the work, not when the finished run is recorded."""
    import os

    from ktest.base.cache import default_cache_dir
    from ktest.base.errors import BadDatabase

    if args.cmd not in ("run", "merge", "history", "compare"):
        return
    if args.db:
        path, option = Path(args.db), "--db"
    elif os.environ.get("KTEST_DB"):
        path, option = Path(os.environ["KTEST_DB"]).expanduser(), "KTEST_DB"
    else:
        path, option = Path(args.cache or default_cache_dir()).expanduser() / "history.sqlite", "the history"
    check_db(path, option)
    if args.cmd not in ("run", "merge"):        # history and compare only read it
        return
    where = path.absolute().parent
    while not where.exists():
        where = where.parent
    if not where.is_dir():
        raise BadDatabase(option=option, path=path, why=f"cannot be created: {where} is not a directory")
    if path.exists() and not os.access(path, os.R_OK | os.W_OK):
        raise BadDatabase(option=option, path=path, why="is not writable")
    if not os.access(where, os.W_OK | os.X_OK):
        raise BadDatabase(option=option, path=path, why=f"cannot be written: {where} is not writable (SQLite "
                                                        f"writes a journal beside the database)")


def cmd_tree(args: argparse.Namespace, cache: Cache, progress: Progress) -> int:
    t = _tree(args, cache, progress)
    if args.json:
        print(json.dumps(t.to_json(), indent=2))
    else:
        print(inert(f"{t.name}: {t.kind} tree at {t.repo}, base {t.base_rev} = {t.base[:12]}, shadow {t.shadow}"))
    return 0


def cmd_build(args: argparse.Namespace, cache: Cache, progress: Progress) -> int:
    from ktest.host.pipeline import build_series

    tree = _tree(args, cache, progress)
    res = build_series(cache, tree, args.series, areas=args.area or kconfig.AREAS, jobs=args.jobs,
                       progress=progress, kconfig_add=kconfig.user_fragment(args.kconfig_add))
    if args.json:
        print(json.dumps(res.to_json(), indent=2))
    else:
        for label, b in res.builds():
            print(f"{label:>10}  {b.commit[:12]}  {'cached' if b.cached else f'{b.duration_s:.0f}s'}  {b.bzimage}")
        for p, ws in res.new_warnings.items():
            for w in ws:
                print(inert(f"new warning in patch {p}: {w.file}:{w.line}: {w.message}"))
    return 0


def _bounded(option: str, value, lo: int, hi: int) -> None:
    from ktest.base.errors import BadOption

    if value is not None and not lo <= value <= hi:
        raise BadOption(option=option, value=value, why=f"must be between {lo} and {hi}")


def _vms(args: argparse.Namespace) -> int:
    from ktest.boot.pool import MAX_VMS, default_vms

    _bounded("--vms", args.vms, 1, MAX_VMS)
    if args.vms:
        return args.vms
    return default_vms("kvm" if args.accel == "kvm" else "tcg")


def validate_run(args: argparse.Namespace) -> None:
    """Numbers checked before any work: one line, exit 2."""
    from ktest.base.errors import BadOption

    _bounded("--rounds", args.rounds, 1, 50)
    _bounded("--reps", args.reps, 1, 100)
    _bounded("--jobs", args.jobs, 1, 1024)
    _vms(args)                  # --vms within the pool's bound, the one place that knows it
    if getattr(args, "max_rounds", None) is not None:
        _bounded("--max-rounds", args.max_rounds, 1, 50)
        if args.max_rounds < args.rounds:
            raise BadOption(option="--max-rounds", value=args.max_rounds, why=f"is less than --rounds {args.rounds}")


def cmd_calibrate(args: argparse.Namespace, cache: Cache, progress: Progress, runner: Runner | None = None) -> int:
    import time

    from ktest import calibrate
    from ktest.judge import calibration

    _bounded("--boots", args.boots, 2, 64)
    _bounded("--rounds", args.rounds, 1, 16)
    _bounded("--reps", args.reps, 1, 100)
    if args.boots < 2 * args.rounds:
        from ktest.base.errors import BadOption
        raise BadOption(option="--boots", value=args.boots, why=f"needs at least 2 x --rounds ({2 * args.rounds})")
    vms = _vms(args)
    tree = _tree(args, cache, progress)
    out = (Path(args.out) if args.out else Path("reports") / time.strftime("calibrate-%Y%m%d-%H%M%S")).resolve()
    data = calibrate.calibrate_base(cache, tree, args.area, out, boots=args.boots, rounds=args.rounds,
                                    reps=args.reps, expr=args.expr, accel=args.accel,
                                    known_issues=args.known_issues, vms=vms, progress=progress, runner=runner)
    accel = data["accel"]
    print(f"calibration {data['key']}: {data['boots']} boots of {tree.name} {tree.base_rev} ({accel}), {args.area}, "
          f"{data['splits']} splits into 2 x {args.rounds} boots, {data['wall_s']:.0f}s with {vms} guest(s) at once")
    for name, rate in data["rates"].items():
        if rate is not None:
            print(f"  run-level rate, {name}: {rate * 100:.1f}%")
    for k, m in sorted(data["metrics"].items()):
        print(f"  {k}: noise {m.get('centre', float('nan')):.1f} {m['unit']} (median), "
              f"{(m.get('tail') or float('nan')):.1f} (p90); false change old {m['false_change_v1'] * 100:.0f}%, "
              f"new {m['false_change_v2'] * 100:.0f}%")
    for p, c in sorted(data["checks"].items()):
        if c["regression"] or c["flaky"]:
            print(f"  check {p}: false regression {c['regression'] * 100:.1f}%, flaky {c['flaky'] * 100:.1f}%")
    print(f"stored {calibration.path_for(cache, data['key'])}; details {out / 'calibration.json'}")
    return 0


# options a rerun may set: they choose where and how fast, not what is measured
RERUN_FREE = {"rerun", "vms", "accel", "reports", "db", "no_bisect", "jobs", "cache", "debug", "cmd"}


def rerun_args(args: argparse.Namespace, cache: Cache) -> dict[str, Any]:
    """--rerun RUN_ID: fill args from the stored run (its series, tree and settings) and return what the
    new run must match.  Any other run option given is refused: the stored settings are the point."""
    from ktest.base.errors import RerunWithOption

    defaults = parser().parse_args(["run", "x"])
    for k, v in vars(args).items():
        if k not in RERUN_FREE and k != "series" and v != getattr(defaults, k, v):
            raise RerunWithOption(option="--" + k.replace("_", "-"))
    if args.series:
        raise RerunWithOption(option=f"the series {args.series[0]}")
    from ktest import compare

    old, _ = compare.load(args.rerun, cache, Path(args.db) if args.db else None)   # validated, as compare's
    st, tree, series = old.settings, old.tree, old.series
    if st.shard:
        args.shard = f"{st.shard.index}/{st.shard.count}"
    rng = series.range
    args.series = [rng["spec"] if rng else series.path]
    if tree.kind == "user":
        args.tree, args.base = tree.repo, (None if rng else tree.base_rev)
    else:
        args.kernel = ".".join((tree.version or "").split(".")[:2])
    args.rounds, args.max_rounds, args.reps = st.rounds, st.max_rounds, st.reps
    args.area, args.expr = st.kconfig_areas or None, st.expr
    args.testcases = [str(DEFAULT_PROJECT / t) for t in st.testcases] or None   # relative to home.ROOT
    args.kconfig_add = list((st.kconfig_add or {}).get("items") or [])
    args.known_issues = Path(st.known_issues) if st.known_issues else None
    return {"run_id": old.run_id, "patchset_hash": old.checkout.get("patchset_hash"), "base": tree.base,
            "builds": {b.label: b.key for b in old.builds if b.key}}




def rerun_matches(args: argparse.Namespace, rerun: dict[str, Any]) -> None:
    """--rerun: the series' patches and, in a tree of the user's, the base are the stored run's, checked
    before any tree is prepared (run.py checks them again on the prepared tree)."""
    from ktest.base.errors import RerunDiffers
    from ktest.host.gitutil import git
    from ktest.host.series import load

    series = load(args.series[0], Path(args.tree) if args.tree else None)
    if series.patchset_hash != rerun["patchset_hash"]:
        raise RerunDiffers(run=rerun["run_id"], what=f"series {series.name}",
                           why="its patches changed since (another patchset hash)")
    if args.tree:
        base = series.range["start"] if series.range else git(
            "rev-parse", "--verify", "-q", f"{args.base or 'HEAD'}^{{commit}}", cwd=Path(args.tree),
            check=False).stdout.strip()
        if base and base != rerun["base"]:
            raise RerunDiffers(run=rerun["run_id"], what=f"the base of {args.tree}",
                               why=f"it is {base[:12]} now, {rerun['base'][:12]} then")


def cmd_run(args: argparse.Namespace, cache: Cache, progress: Progress, runner: Runner | None = None) -> int:
    from ktest.base import shard
    from ktest.run import RunOptions, run_series

    rerun = None
    if args.rerun:
        rerun = rerun_args(args, cache)
        validate_inputs(args)       # the stored series, tree and files, as for a new run
        rerun_matches(args, rerun)  # before the tree is prepared (the Debian tree is a 2 GB extraction)
    elif not args.series:
        from ktest.base.errors import BadOption
        raise BadOption(option="ktest run", value="without a series", why="give one (or --rerun RUN_ID)")
    validate_run(args)
    shard_spec = shard.parse(args.shard)
    tree = _tree(args, cache, progress)
    opts = RunOptions(rounds=args.rounds, max_rounds=args.max_rounds, vms=_vms(args), reps=args.reps, accel=args.accel, areas=tuple(args.area or kconfig.AREAS),
                      testcases=[Path(p) for p in args.testcases] if args.testcases else None,
                      expr=args.expr, known_issues=args.known_issues, reports=Path(args.reports), jobs=args.jobs,
                      bisect=not args.no_bisect, db=Path(args.db) if args.db else None, shard=shard_spec,
                      kconfig_add=tuple(args.kconfig_add), rerun=rerun)
    worst = 0
    for s in args.series:
        try:
            result, outdir = run_series(cache, tree, s, opts, progress, argv=["ktest", *sys.argv[1:]],
                                        **({"runner": runner} if runner else {}))
        except Interrupted:
            raise                   # Ctrl-C or SIGTERM ends the whole command, not just this series
        except KtestError as e:
            progress.end_group()
            print(e.line(), file=sys.stderr)
            worst = worst_exit([worst, e.exit_code])
            continue
        progress.end_group()        # the verdict is not folded into the last log group
        print("\n".join(run_summary_lines(result, outdir)))
        worst = worst_exit([worst, result.outcome.exit_code])
    return worst


def run_summary_lines(result: Result, outdir: Path) -> list[str]:
    """What `ktest run` prints for a series; series names and check paths come from outside, so
    they are shown inert."""
    from ktest.report.outputs import crash_lead, reproduce

    v = result.outcome
    lead = crash_lead(result)
    regs = [r for r in v.regressions if not lead or r != lead["entry"]]
    lines = [inert(f"{result.series.name}: {v.status}"
                   + (f": {lead['sentence']}" if lead else "")
                   + (f" ({'other regressions: ' if lead else ''}{', '.join(regs)})" if regs else "")
                   + f"; report {outdir / 'index.html'}")]
    if lead:
        lines += [inert(f"    {l}") for l in (lead.get("trace") or [])[:6]]
        if lead["culprit"]:
            lines.append(inert(f"  culprit: {lead['culprit']}"))
        if lead.get("ended_because"):
            lines.append(inert(f"  ktest ended the boot: {lead['ended_because']}"))
    for u in v.undecided:
        lines.append(inert(f"  in doubt: {u}"))
    for chk in result.checks:
        if chk.path in v.regressions:
            for side, cmd in reproduce(result, chk).items():
                lines.append(inert(f"  reproduce {chk.path} on {side}: {cmd}"))
    if v.stage == "build" and (c := result.culprit):
        lines.append(inert(f"  culprit: patch {c.patch} ({c.subject}) does not build: {v.error or ''}"))
    for e in result.expected:
        held = {True: "held", False: "did NOT hold", None: "not measured"}[e.held]
        lines.append(inert(f"  expected {e.change or '':8} {e.check} {e.metric}: {held}"))
    return lines


def _base_image(args: argparse.Namespace, cache: Cache, progress: Progress) -> Path:
    """The bzImage of the chosen tree's base (built, or taken from the cache)."""
    from ktest.host.build import Builder

    tree = _tree(args, cache, progress)
    return Builder(cache, tree, progress=progress).build(tree.base, "base").bzimage


def cmd_kvm(args: argparse.Namespace, cache: Cache, progress: Progress) -> int:
    from ktest.base.errors import KvmUnusable
    from ktest.boot.vm import forget_kvm_probe, probe_kvm

    bz = _base_image(args, cache, progress)
    if args.fresh:
        forget_kvm_probe(cache)
    ok, reason = probe_kvm(cache, bz, progress)
    if not ok and args.require:
        raise KvmUnusable(reason=reason)
    print(f"kvm: {'usable' if ok else 'NOT usable, ktest will use TCG'} ({reason})")
    return 0


def cmd_merge(args: argparse.Namespace, cache: Cache, progress: Progress) -> int:
    import time

    from ktest.merge import merge

    out = Path(args.out) if args.out else Path("reports") / time.strftime("merged-%Y%m%d-%H%M%S")
    m = merge([Path(d) for d in args.dirs], out, cache, Path(args.db) if args.db else None)
    for r in m["runs"]:
        print(inert(f"{r['series']} on {r['kernel']} ({r['shards']} shard(s)): {r['status']}"
                    + (f" ({', '.join(r['regressions'])})" if r["regressions"] else "")
                    + (f": {r['error']}" if r["error"] else "")))
    print(inert(f"merged report {out / 'index.html'}"))
    return m["exit_code"]


def cmd_report(args: argparse.Namespace, cache: Cache, progress: Progress) -> int:
    from ktest.report.outputs import write_all

    path = Path(args.result)
    if path.is_dir():
        path = path / "result.json"
    if not path.exists() and not path.is_symlink():
        raise ResultMissing(path=path)
    write_all(Result.read(path, path.parent), path.parent)   # safeio: a regular file in its run dir, bounded; validated
    print(f"rendered {path.parent / 'index.html'}")
    return 0


def cmd_history(args: argparse.Namespace, cache: Cache, progress: Progress) -> int:
    from ktest.report.history import History

    if args.out and not args.html:
        from ktest.base.errors import BadOption
        raise BadOption(option="--out", value=args.out, why="goes with --html")
    if args.html:
        _bounded("--limit", args.limit, 1, 10000)
    h = History.open(Path(args.db) if args.db else cache.history_db)
    if args.html:
        from ktest.report import trends

        out = Path(args.out) if args.out else Path("reports") / "history.html"
        if out.is_dir():
            out = out / "history.html"
        try:
            groups = trends.write(h, out, args.series, trends.TRENDS_RUNS if args.limit is None else args.limit)
        except OSError as e:
            from ktest.base.errors import BadOption
            raise BadOption(option="--out", value=out, why=e.strerror or str(e)) from None
        n_runs = sum(len(g["runs"]) for g in groups)
        print(inert(f"wrote {out} ({len(groups)} series and base(s), {n_runs} run(s))" if groups
                    else f"wrote {out} (no runs recorded yet)"))
        return 0
    rows = h.runs(args.series, 20 if args.limit is None else args.limit)
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    for r in rows:
        print(inert(f"{r['created']}  {r['run_id']:34}  {r['series']:20} {r['status']:14} "
                    f"regressions={r['n_regressions']}  {r['result_path']}"))
    if not rows:
        print("no runs recorded yet")
    return 0


def _kernel_image(args: argparse.Namespace, cache: Cache, progress: Progress) -> Path:
    """--bzimage, --build KEY|DIR, or the chosen tree's base kernel: a checked bzImage."""
    from ktest.base.errors import BootImageMissing
    from ktest.boot.vm import check_bzimage

    if args.bzimage:
        bz = Path(args.bzimage)
    elif args.build:
        d = Path(args.build) if "/" in args.build else cache.root / "artifacts" / args.build
        bz = d / "bzImage"
    else:
        bz = _base_image(args, cache, progress)
    if not bz.is_file():
        raise BootImageMissing(path=bz)
    check_bzimage(bz)
    return bz


def cmd_compare(args: argparse.Namespace, cache: Cache, progress: Progress) -> int:
    import time

    from ktest import compare
    from ktest.report.outputs import write_all

    db = Path(args.db) if args.db else None
    a, b = compare.load(args.run_a, cache, db, "RUN_A"), compare.load(args.run_b, cache, db, "RUN_B")
    compare.same_run(a, b)
    out = (Path(args.out) if args.out else Path("reports") / time.strftime("compare-%Y%m%d-%H%M%S")).resolve()
    m = compare.compare(a, b, out, args.side, cache, argv=["ktest", *sys.argv[1:]])
    m.write(out / "result.json")
    write_all(m, out)
    c = m.compare or {}
    print(inert(f"compare {args.side} sides: A = {c['a']['run_id']} ({c['a']['series']}, {c['a']['boots']} boots) "
                f"vs B = {c['b']['run_id']} ({c['b']['series']}, {c['b']['boots']} boots)"))
    print("\n".join(run_summary_lines(m, out)))
    return m.outcome.exit_code


def cmd_shell(args: argparse.Namespace, cache: Cache, progress: Progress) -> int:
    import tempfile

    from ktest.boot import shell
    from ktest.base.errors import NotATerminal
    from ktest.boot.vm import choose_accel

    if not (sys.stdin.isatty() and sys.stdout.isatty()):
        raise NotATerminal()
    bz = _kernel_image(args, cache, progress)
    accel = choose_accel(cache, bz, args.accel, progress)
    topo = shell.TOPOLOGIES[args.topology]
    progress.stage(f"booting {bz} ({accel}) with the {topo.name} topology: Ctrl-D leaves")
    progress.clear()
    with tempfile.TemporaryDirectory(prefix="ktest-shell-") as rw:
        rc = shell.run(bz.resolve(), Path(rw), topo, accel)
    print(f"ktest shell: the guest is gone (vng exit {rc})")
    return 0 if rc == 0 else EXIT_COULD_NOT_RUN


def cmd_boot(args: argparse.Namespace, cache: Cache, progress: Progress) -> int:
    import time

    from ktest.boot.checks import run_checks

    bz = _kernel_image(args, cache, progress)
    out = Path(args.out) if args.out else Path("reports") / time.strftime("boot-%Y%m%d-%H%M%S")
    try:
        run = run_checks(cache, bz.resolve(), out.resolve(), label=bz.parent.name, paths=args.testcases,
                         expr=args.expr, reps=args.reps, accel=args.accel, known_issues=args.known_issues,
                         progress=progress)
    except (KeyboardInterrupt, Interrupted) as e:
        # the logs of the interrupted boot stay (they show how far it got); the line says where
        stage = e.fields["stage"] if isinstance(e, Interrupted) else f"the boot of {bz}"
        raise Interrupted(stage=stage, kept=out if out.is_dir() and any(out.iterdir()) else None) from None
    if args.json:
        print(json.dumps(run.to_json(), indent=2))
    else:
        print(f"boot: {run.boot.outcome} (exit {run.boot.exit_code}) in {run.boot.duration_s:.1f}s, "
              f"accel {run.env.get('accel')}, harness after {run.boot.started_after_s or float('nan'):.1f}s; "
              f"logs in {out}")
        if run.crash:
            from ktest.judge.crash import sentence

            print(inert(f"  CRASH: {sentence(run.crash.to_json(), 'booted')}"
                        + (f"; {run.boot.ended_because}" if run.boot.ended_because else "")))
            for l in run.crash.trace[:6]:
                print(inert(f"    {l}"))
        for r in run.results:
            m = "; ".join(f"{x['name']} p50={x.get('value', float('nan')):.1f}{x['unit']} n={x['n']}"
                          for x in r["metrics"])
            print(inert(f"  {r['status']:5} {r['path']}  ({r['duration_s']:.2f}s){'  ' + m if m else ''}"
                        f"{'  ' + r['message'] if r['message'] and r['status'] != 'PASS' else ''}"))
        for s in run.splats:
            print(inert(f"  SPLAT {s.kind} {s.fingerprint}{' (known: ' + s.known + ')' if s.known else ''}: {s.title}"))

    bad = run.crashed or run.boot.outcome != "ok" or any(r["status"] in ("FAIL", "ERROR") for r in run.results) \
        or any(not s.known for s in run.splats)
    return 1 if bad else 0


def cmd_doctor(args: argparse.Namespace, cache: Cache, progress: Progress) -> int:
    from ktest import doctor
    from ktest.host.tree import DEFAULT_KERNEL

    probe = None
    if args.probe:
        def probe():
            from ktest.boot.vm import probe_kvm
            return probe_kvm(cache, _base_image(args, cache, progress), progress)
        args.tree = args.base = None       # _tree: the default tree
    text, rc = doctor.report(doctor.diagnose(cache, args.kernel or DEFAULT_KERNEL, probe))
    progress.end_group()
    print(text)
    return rc


COMMANDS = {"doctor": cmd_doctor, "tree": cmd_tree, "shell": cmd_shell, "compare": cmd_compare, "build": cmd_build, "run": cmd_run, "calibrate": cmd_calibrate, "boot": cmd_boot, "merge": cmd_merge, "kvm": cmd_kvm,
            "report": cmd_report, "history": cmd_history}


def _terminate(signum, frame):
    """SIGTERM (timeout, CI cancellation) and SIGHUP end ktest like Ctrl-C: guests and builds are killed
    on the way out."""
    raise KeyboardInterrupt


def main(argv: list[str] | None = None, runner: Runner | None = None) -> int:
    """Ctrl-C at any point, even while the modules are still being imported, is one line and 130.
    `runner` (tests only) boots the kernels of `ktest run` in place of checks.run_checks."""
    try:
        return _main(argv, runner)
    except KeyboardInterrupt:
        print("ktest: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


def _main(argv: list[str] | None, runner: Runner | None = None) -> int:
    import signal

    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _terminate)
    try:
        args = parser().parse_args(argv)
    except KtestError as e:     # the usage error: nothing has started yet
        print(e.line(), file=sys.stderr)
        return e.exit_code
    from ktest.base.progress import Progress

    progress = Progress()
    try:
        validate_inputs(args)
        cache = Cache.open(Path(args.cache) if args.cache else None)
        rc = COMMANDS[args.cmd](args, cache, progress, **({"runner": runner} if runner else {}))
        progress.end_group()
        return rc
    except KtestError as e:
        progress.clear()
        progress.end_group()
        if args.debug:
            traceback.print_exc()
        print(e.line(), file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        progress.clear()
        progress.end_group()
        print("ktest: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except OSError as e:    # a path the checks up front could not foresee (a full disk, /proc): one line
        from ktest.base.errors import PathUnusable

        progress.clear()
        progress.end_group()
        if args.debug:
            traceback.print_exc()
        if e.filename is None:
            print(f"ktest: internal error: {type(e).__name__}: {inert(e)} (rerun with --debug for a traceback)",
                  file=sys.stderr)
            return EXIT_COULD_NOT_RUN
        err = PathUnusable(path=e.filename, why=e.strerror or str(e))
        print(err.line(), file=sys.stderr)
        return err.exit_code
    except Exception as e:  # a bug in ktest: still one line unless --debug
        progress.clear()
        progress.end_group()
        if args.debug:
            traceback.print_exc()
        print(f"ktest: internal error: {type(e).__name__}: {inert(e)} (rerun with --debug for a traceback)",
              file=sys.stderr)
        return EXIT_COULD_NOT_RUN


if __name__ == "__main__":
    sys.exit(main())
