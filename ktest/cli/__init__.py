"""The `ktest` command line: parse (cli.args) -> validate (cli.validate) -> settings and one Engine
operation (cli.commands) -> render.  Exit codes: 0 no regression, 1 regression found, 2 could not run,
3 undecided, 130 interrupted."""

from __future__ import annotations

import sys
import traceback
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, NoReturn

from ktest.base.cache import Cache
from ktest.base.errors import EXIT_COULD_NOT_RUN, EXIT_INTERRUPTED, KtestError
from ktest.base.safetext import inert

from ktest.cli.args import EXAMPLES, ORDER, parser
from ktest.cli.commands import COMMANDS, rerun_args, run_summary_lines
from ktest.cli.validate import validate_checks, validate_inputs

if TYPE_CHECKING:
    from ktest.boot.pool import Runner


__all__ = ["EXAMPLES", "ORDER", "main", "parser", "rerun_args", "run_summary_lines", "validate_checks",
           "validate_inputs"]


def _terminate(signum: int, frame: FrameType | None) -> NoReturn:
    """SIGTERM (timeout, CI cancellation) and SIGHUP end ktest like Ctrl-C: guests and builds are killed
    on the way out."""
    raise KeyboardInterrupt


def main(argv: list[str] | None = None, runner: Runner | None = None) -> int:
    """Ctrl-C at any point, even while the modules are still being imported, is one line and 130.
    `runner` (tests only) boots the kernels of the engine's operations in place of checks.run_checks."""
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
    from ktest.engine import Engine

    progress = Progress()
    try:
        validate_inputs(args)
        eng = Engine(Cache.open(Path(args.cache) if args.cache else None), progress, runner)
        rc = COMMANDS[args.cmd](args, eng)
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
