"""Inputs and options checked before any work: one line and a distinct exit code for each bad input,
nothing prepared, built or booted yet (docs/errors.md lists the codes)."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

from ktest.base.errors import KtestError
from ktest.host import kconfig


def validate_inputs(args: argparse.Namespace) -> None:
    """Input files and option combinations checked before any work (no tree prepared, nothing built
    or booted): each refusal is one line, exit 2."""
    from ktest.base.errors import KernelWithTree
    from ktest.judge.console import KnownIssues

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
        bounded("--reps", args.reps, 1, 100)
    if args.cmd in ("run", "build"):
        bounded("--jobs", args.jobs, 1, 1024)
    if args.cmd == "history":
        bounded("--limit", args.limit, 1, 10000)
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
        from ktest.boot.checks import check_path  # only when checks are named: it imports the boot machinery
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


def bounded(option: str, value: int | None, lo: int, hi: int) -> None:
    from ktest.base.errors import BadOption

    if value is not None and not lo <= value <= hi:
        raise BadOption(option=option, value=value, why=f"must be between {lo} and {hi}")


def pool_size(args: argparse.Namespace) -> int:
    from ktest.boot.pool import MAX_VMS, default_vms

    bounded("--vms", args.vms, 1, MAX_VMS)
    if args.vms:
        return int(args.vms)
    return default_vms("kvm" if args.accel == "kvm" else "tcg")


def validate_run(args: argparse.Namespace) -> None:
    """Numbers checked before any work: one line, exit 2."""
    from ktest.base.errors import BadOption

    bounded("--rounds", args.rounds, 1, 50)
    bounded("--reps", args.reps, 1, 100)
    bounded("--jobs", args.jobs, 1, 1024)
    pool_size(args)                  # --vms within the pool's bound, the one place that knows it
    if getattr(args, "max_rounds", None) is not None:
        bounded("--max-rounds", args.max_rounds, 1, 50)
        if args.max_rounds < args.rounds:
            raise BadOption(option="--max-rounds", value=args.max_rounds, why=f"is less than --rounds {args.rounds}")
