"""The command line's grammar: every command, its options, help and examples (argparse)."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn

from ktest import __version__
from ktest.host import kconfig


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


def _teach(ap: argparse.ArgumentParser, sub: Any) -> None:
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

    def error(self, message: str) -> NoReturn:
        from ktest.base.errors import UsageError

        raise UsageError(detail=f"{self.prog}: {message}", help=f"`{self.prog} --help` lists the options")


def _tree_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("kernel tree")
    g.add_argument("--kernel", metavar="VER",
                   help="Debian linux-source version for the default tree: 6.12 (default) or 6.1")
    g.add_argument("--tree", metavar="PATH", help="your own kernel git checkout instead (never modified)")
    g.add_argument("--base", metavar="REV", help="base revision in --tree (default HEAD; a range's start is its base)")


def _db_arg(p: argparse.ArgumentParser) -> None:
    """--db: the history database of run, merge, history and compare."""
    p.add_argument("--db", help="history database (default $KTEST_DB or cache/history.sqlite)")


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
    ap = KtestParser(prog="ktest", description=DESCRIPTION, epilog=EPILOG, parents=[_common(True)],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--version", action="version", version=f"ktest {__version__}")
    sub = ap.add_subparsers(dest="cmd", required=True, metavar="COMMAND")
    common = [_common(False)]
    for add in (_add_tree, _add_build, _add_run, _add_calibrate, _add_merge, _add_kvm, _add_report, _add_history,
                _add_boot, _add_compare, _add_shell, _add_doctor):     # one function a command, below
        add(sub, common)
    _teach(ap, sub)
    return ap


def _add_tree(sub: Any, common: Sequence[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("tree", parents=common, help="prepare (once) and show the kernel tree",
                       description="Prepare the default Debian tree (extract + git) or check --tree/--base.")
    _tree_args(p)
    p.add_argument("--json", action="store_true", help="print the tree record as JSON")


def _add_build(sub: Any, common: Sequence[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("build", parents=common, help="build base (and each patch of a series) with the lean config",
                       description="Build the base kernel and, given a series, each patch's commit. "
                                   "Cached by (commit, kconfig, toolchain): a repeat build runs no make.")
    p.add_argument("series", nargs="?", help="patch series: a dir of *.patch, a .patch, an mbox, or a revision "
                                            "range A..B of --tree (each commit a patch, A the base)")
    _tree_args(p)
    _build_args(p)
    p.add_argument("--json", action="store_true", help="print the build records as JSON")


def _add_run(sub: Any, common: Sequence[argparse.ArgumentParser]) -> None:
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
                        f"side (default: the largest of the run's areas' max_rounds, {_area_max_rounds()}; or "
                        "--rounds if larger); still in doubt then: 'undecided', exit 3")
    p.add_argument("--testcases", nargs="+", metavar="PATH",
                   help="check files/dirs (default: the areas whose files the series touches, plus smoke)")
    p.add_argument("--reports", metavar="DIR",
                   help="output root (default reports/ here; in the cache's reports/ when here is inside --tree, "
                        "which ktest never writes to)")
    p.add_argument("--no-bisect", action="store_true", help="do not search the culprit patch")
    _db_arg(p)
    p.add_argument("--shard", metavar="I/N",
                   help="run only part I of N of the checks (same builds and boots); combine with `ktest merge`")


def _add_calibrate(sub: Any, common: Sequence[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("calibrate", parents=common, help="measure the A/B rule's false-alarm rate and each metric's noise",
                       description="Boot one kernel (the tree's base) K times with an area's checks, judge every "
                                   "split of those boots into two run-sized groups with the rule `ktest run` uses, and "
                                   "report the false-alarm rate per metric, per check and per run, and the smallest "
                                   "change the rule tells from noise. Stored per (kernel, guest shape: accel and vCPUs, area, rule) in the "
                                   "cache; `ktest run` then uses each metric's measured noise as its floor.")
    _tree_args(p)
    _boot_args(p)
    p.add_argument("--area", required=True, choices=kconfig.AREAS, help="check area to calibrate")
    p.add_argument("--boots", type=int, default=8, metavar="K", help="boots of the kernel (default 8)")
    p.add_argument("--rounds", type=int, default=2, help="boots per side in a run (default 2, as `ktest run`)")
    p.add_argument("--out", metavar="DIR", help="boot logs and calibration.json (default reports/calibrate-<time>)")


def _add_merge(sub: Any, common: Sequence[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("merge", parents=common, help="combine the reports of sharded runs into whole-run reports",
                       description="Pool the shards of each run found under DIR... (run dirs, or folders holding "
                                   "them, e.g. downloaded CI artifacts) and write one report per run plus an "
                                   "overview index.html, junit.xml, summary.md and merge.json into --out. Exit 1 "
                                   "if any run regressed, 2 if any could not run.")
    p.add_argument("dirs", nargs="+", metavar="DIR")
    p.add_argument("--out", metavar="DIR", help="output dir (default reports/merged-<time>)")
    _db_arg(p)


def _add_kvm(sub: Any, common: Sequence[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("kvm", parents=common, help="probe whether KVM really runs a guest here",
                       description="Boot the base kernel with KVM and `true` under a 25 s cap (/dev/kvm opening is "
                                   "not enough: a PVM host opens it and hangs the guest). The answer is cached per "
                                   "host; --fresh probes again. Exit 0 either way, unless --require and KVM is not "
                                   "usable (exit 2).")
    _tree_args(p)
    p.add_argument("--fresh", action="store_true", help="ignore the cached answer")
    p.add_argument("--require", action="store_true", help="fail (exit 2) if KVM is not usable")


def _add_report(sub: Any, common: Sequence[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("report", parents=common, help="re-render a stored run from its result.json",
                       description="Re-render index.html, junit.xml, kcidb.json and summary.md from result.json.")
    p.add_argument("result", help="a result.json or a run directory")


def _add_history(sub: Any, common: Sequence[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("history", parents=common, help="list recorded runs, or chart their metrics (--html)",
                       description="Runs recorded in the history database ($KTEST_DB or cache/history.sqlite). With --html: "
                                   "a page with one chart per metric across the runs of each series and base, "
                                   "base and patched medians as two lines (a drifting base is the machine).")
    p.add_argument("--series", help="only this series name")
    _db_arg(p)
    p.add_argument("--limit", type=int, metavar="N",
                   help="runs to list (default 20); with --html, the newest runs per series and base (default 50)")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--json", action="store_true")
    g.add_argument("--html", action="store_true", help="write the trends page instead of listing runs")
    p.add_argument("--out", metavar="FILE", help="with --html: the page to write (default reports/history.html)")


def _add_boot(sub: Any, common: Sequence[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("boot", parents=common, help="boot one kernel and run selected checks (for check authors)",
                       description="Boot one kernel under virtme-ng and run checks from testcases/ in it. "
                                   "Without --build/--bzimage, the default tree's base kernel is built (or "
                                   "taken from the cache) first.")
    _kernel_args(p)
    _boot_args(p)
    p.add_argument("--testcases", nargs="+", metavar="PATH", help="check files/dirs (default: testcases/)")
    p.add_argument("--out", metavar="DIR", help="where logs and results go (default: reports/boot-<time>)")
    p.add_argument("--json", action="store_true", help="print the guest run as JSON")


def _add_compare(sub: Any, common: Sequence[argparse.ArgumentParser]) -> None:
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
    _db_arg(p)


def _add_shell(sub: Any, common: Sequence[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("shell", parents=common, help="an interactive guest with a check topology set up",
                       description="Boot a kernel under virtme-ng on this terminal with a check area's topology "
                                   "already built by the checks' own code, to poke at a failing check by hand. "
                                   "Ctrl-D (or exit) leaves; the guest powers off and nothing is left running. "
                                   "Without --build/--bzimage, the default tree's base kernel (built or cached).")
    _kernel_args(p)
    from ktest.boot.shell import TOPOLOGIES
    p.add_argument("--topology", default="none", choices=list(TOPOLOGIES), metavar="NAME",
                   help="; ".join(f"{t.name}: {t.what}" for t in TOPOLOGIES.values()) + " (default none)")
    _accel_arg(p)


def _add_doctor(sub: Any, common: Sequence[argparse.ArgumentParser]) -> None:
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


def _kernel_args(p: argparse.ArgumentParser) -> None:
    """Which kernel to boot (boot, shell): a built artifact, any bzImage, or the tree's base."""
    g = p.add_mutually_exclusive_group()
    g.add_argument("--build", metavar="KEY|DIR", help="an artifact key (cache/artifacts/KEY) or directory")
    g.add_argument("--bzimage", metavar="PATH", help="any bzImage")
    _tree_args(p)


def _accel_arg(p: argparse.ArgumentParser | argparse._ArgumentGroup) -> None:
    p.add_argument("--accel", choices=("auto", "kvm", "tcg"), default="auto",
                   help="auto probes once per host whether KVM really runs a guest (default)")


def _boot_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("boot")
    g.add_argument("-k", dest="expr", metavar="EXPR", help="pytest -k expression selecting checks")
    g.add_argument("--reps", type=int, default=5, help="repetitions per measurement (default 5)")
    g.add_argument("--vms", type=int, metavar="N",
                   help="guests to run at once (default: from cores, memory and accel; 2 on a 2-core TCG host)")
    _accel_arg(g)
    g.add_argument("--known-issues", metavar="FILE", type=Path,
                   help="JSON list of {fingerprint, reason}: splats that are expected")


def _area_max_rounds() -> str:
    from ktest import areas

    got = ", ".join(f"{n} {a.max_rounds or areas.DEFAULT_MAX_ROUNDS}" for n, a in areas.all_areas().items())
    return got.replace("%", "%%")
