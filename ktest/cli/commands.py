"""One function per command: arguments -> settings (TreeSpec, RunOptions) -> one Engine operation ->
what the terminal shows.  Nothing here builds, boots or judges itself."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ktest.base.errors import EXIT_COULD_NOT_RUN, Interrupted, KtestError, worst_exit
from ktest.base.home import ROOT as DEFAULT_PROJECT  # the checks' root: a checkout, or share/ktest installed
from ktest.base.result import Result
from ktest.base.safetext import inert
from ktest.host import kconfig

from ktest.cli.args import parser
from ktest.cli.validate import bounded, pool_size, validate_inputs, validate_run

if TYPE_CHECKING:
    from ktest.engine import Engine, TreeSpec
    from ktest.run import RunOptions


def tree_spec(args: argparse.Namespace) -> TreeSpec:
    """--kernel, or --tree and --base: which tree the engine prepares."""
    from ktest.engine import TreeSpec

    return TreeSpec(kernel=getattr(args, "kernel", None), repo=getattr(args, "tree", None),
                    base=getattr(args, "base", None))


def cmd_tree(args: argparse.Namespace, eng: Engine) -> int:
    t = eng.tree(tree_spec(args))
    if args.json:
        print(json.dumps(t.to_json(), indent=2))
    else:
        print(inert(f"{t.name}: {t.kind} tree at {t.repo}, base {t.base_rev} = {t.base[:12]}, shadow {t.shadow}"))
    return 0


def cmd_build(args: argparse.Namespace, eng: Engine) -> int:
    res = eng.build(tree_spec(args), args.series, args.area or kconfig.AREAS, args.jobs, args.kconfig_add)
    if args.json:
        print(json.dumps(res.to_json(), indent=2))
    else:
        for label, b in res.builds():
            print(f"{label:>10}  {b.commit[:12]}  {'cached' if b.cached else f'{b.duration_s:.0f}s'}  {b.bzimage}")
        for p, ws in res.new_warnings.items():
            for w in ws:
                print(inert(f"new warning in patch {p}: {w.file}:{w.line}: {w.message}"))
    return 0


def cmd_calibrate(args: argparse.Namespace, eng: Engine) -> int:
    import time

    from ktest.judge import calibration

    bounded("--boots", args.boots, 2, 64)
    bounded("--rounds", args.rounds, 1, 16)
    bounded("--reps", args.reps, 1, 100)
    if args.boots < 2 * args.rounds:
        from ktest.base.errors import BadOption
        raise BadOption(option="--boots", value=args.boots, why=f"needs at least 2 x --rounds ({2 * args.rounds})")
    vms = pool_size(args)
    out = (Path(args.out) if args.out else Path("reports") / time.strftime("calibrate-%Y%m%d-%H%M%S")).resolve()
    tree, data = eng.calibrate(tree_spec(args), args.area, out, boots=args.boots, rounds=args.rounds, reps=args.reps,
                               expr=args.expr, accel=args.accel, known_issues=args.known_issues, vms=vms)
    accel = data["accel"]
    print(f"calibration {data['key']}: {data['boots']} boots of {tree.name} {tree.base_rev} ({accel}), {args.area}, "
          f"{data['splits']} splits into 2 x {args.rounds} boots, {data['wall_s']:.0f}s with {vms} guest(s) at once")
    for name, rate in data["rates"].items():
        if rate is not None:
            ci = (data.get("intervals") or {}).get(name) or {}
            told = f" (95 % interval {ci['low'] * 100:.1f}-{ci['high'] * 100:.1f}%, {ci['method']})" \
                if ci.get("high") is not None else ""
            print(f"  run-level rate, {name}: {rate * 100:.1f}%{told}")
    detect = data.get("detectable") or {}
    for k, m in sorted(data["metrics"].items()):
        d = (detect.get(k) or {}).get("by_boots_a_side", {}).get(str(args.rounds))
        print(f"  {k}: noise {m.get('centre', float('nan')):.1f} {m['unit']} (median), "
              f"{(m.get('tail') or float('nan')):.1f} (p90); false change old {m['false_change_v1'] * 100:.0f}%, "
              f"new {m['false_change_v2'] * 100:.0f}%"
              + (f"; a run of {args.rounds} boots a side detects {d:g} {m['unit']}" if d is not None else ""))
    for p, c in sorted(data["checks"].items()):
        if c["regression"] or c["flaky"]:
            print(f"  check {p}: false regression {c['regression'] * 100:.1f}%, flaky {c['flaky'] * 100:.1f}%")
    print(f"stored {calibration.path_for(eng.cache, data['key'])}; details {out / 'calibration.json'}")
    return 0


# options a rerun may set: they choose where and how fast, not what is measured
RERUN_FREE = {"rerun", "vms", "accel", "reports", "db", "no_bisect", "jobs", "cache", "debug", "cmd"}


def rerun_args(args: argparse.Namespace, eng: Engine) -> tuple[argparse.Namespace, dict[str, Any]]:
    """--rerun RUN_ID: the arguments of the stored run (its series, tree and settings, with the options
    that choose only where and how fast taken from `args`), as a new Namespace that goes through the same
    validation as a new run's, and what the new run must match.  Any other run option given is refused:
    the stored settings are the point."""
    from ktest.base.errors import RerunWithOption

    defaults = parser().parse_args(["run", "x"])
    for k, v in vars(args).items():
        if k not in RERUN_FREE and k != "series" and v != getattr(defaults, k, v):
            raise RerunWithOption(option="--" + k.replace("_", "-"))
    if args.series:
        raise RerunWithOption(option=f"the series {args.series[0]}")
    old, _ = eng.stored(args.rerun, Path(args.db) if args.db else None)   # validated, as compare's
    st, tree, series = old.settings, old.tree, old.series
    rng = series.range
    stored: dict[str, Any] = {
        "series": [rng["spec"] if rng else series.path],
        "shard": f"{st.shard.index}/{st.shard.count}" if st.shard else None,
        "rounds": st.rounds, "max_rounds": st.max_rounds, "reps": st.reps,
        "area": st.kconfig_areas or None, "expr": st.expr,
        "testcases": [str(DEFAULT_PROJECT / t) for t in st.testcases] or None,   # relative to home.ROOT
        "kconfig_add": list((st.kconfig_add or {}).get("items") or []),
        "known_issues": Path(st.known_issues) if st.known_issues else None}
    if tree.kind == "user":
        stored.update(tree=tree.repo, base=None if rng else tree.base_rev)
    else:
        stored.update(kernel=".".join((tree.version or "").split(".")[:2]))
    must = {"run_id": old.run_id, "patchset_hash": old.checkout.get("patchset_hash"), "base": tree.base,
            "builds": {b.label: b.key for b in old.builds if b.key}}
    return argparse.Namespace(**{**vars(args), **stored}), must


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


def run_options(args: argparse.Namespace, rerun: dict[str, Any] | None = None) -> RunOptions:
    """The typed settings of `ktest run` from its validated arguments."""
    from ktest.base import shard
    from ktest.run import RunOptions

    return RunOptions(rounds=args.rounds, max_rounds=args.max_rounds, vms=pool_size(args), reps=args.reps,
                      accel=args.accel, areas=tuple(args.area or kconfig.AREAS),
                      testcases=[Path(p) for p in args.testcases] if args.testcases else None,
                      expr=args.expr, known_issues=args.known_issues, reports=Path(args.reports), jobs=args.jobs,
                      bisect=not args.no_bisect, db=Path(args.db) if args.db else None, shard=shard.parse(args.shard),
                      kconfig_add=tuple(args.kconfig_add), rerun=rerun)


def cmd_run(args: argparse.Namespace, eng: Engine) -> int:
    rerun = None
    if args.rerun:
        args, rerun = rerun_args(args, eng)
        validate_inputs(args)       # the stored series, tree and files, as for a new run
        rerun_matches(args, rerun)  # before the tree is prepared (the Debian tree is a 2 GB extraction)
    elif not args.series:
        from ktest.base.errors import BadOption
        raise BadOption(option="ktest run", value="without a series", why="give one (or --rerun RUN_ID)")
    validate_run(args)
    opts, spec = run_options(args, rerun), tree_spec(args)
    worst = 0
    for s in args.series:
        try:
            result, outdir = eng.run(spec, s, opts, argv=["ktest", *sys.argv[1:]])
        except Interrupted:
            raise                   # Ctrl-C or SIGTERM ends the whole command, not just this series
        except KtestError as e:
            eng.progress.end_group()
            print(e.line(), file=sys.stderr)
            worst = worst_exit([worst, e.exit_code])
            continue
        eng.progress.end_group()    # the verdict is not folded into the last log group
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
        held = "did NOT hold" if e.held is False else e.word
        lines.append(inert(f"  expected {e.change or '':8} {e.check} {e.metric}: {held}"))
    return lines


def cmd_kvm(args: argparse.Namespace, eng: Engine) -> int:
    from ktest.base.errors import KvmUnusable

    ok, reason = eng.kvm(tree_spec(args), args.fresh)
    if not ok and args.require:
        raise KvmUnusable(reason=reason)
    print(f"kvm: {'usable' if ok else 'NOT usable, ktest will use TCG'} ({reason})")
    return 0


def cmd_merge(args: argparse.Namespace, eng: Engine) -> int:
    import time

    out = Path(args.out) if args.out else Path("reports") / time.strftime("merged-%Y%m%d-%H%M%S")
    m = eng.merge([Path(d) for d in args.dirs], out, Path(args.db) if args.db else None)
    for r in m["runs"]:
        print(inert(f"{r['series']} on {r['kernel']} ({r['shards']} shard(s)): {r['status']}"
                    + (f" ({', '.join(r['regressions'])})" if r["regressions"] else "")
                    + (f": {r['error']}" if r["error"] else "")))
    print(inert(f"merged report {out / 'index.html'}"))
    return int(m["exit_code"])


def cmd_report(args: argparse.Namespace, eng: Engine) -> int:
    print(f"rendered {eng.report(Path(args.result)) / 'index.html'}")
    return 0


def cmd_history(args: argparse.Namespace, eng: Engine) -> int:
    from ktest.report.history import History

    if args.out and not args.html:
        from ktest.base.errors import BadOption
        raise BadOption(option="--out", value=args.out, why="goes with --html")
    if args.html:
        bounded("--limit", args.limit, 1, 10000)
    h = History.open(Path(args.db) if args.db else eng.cache.history_db)
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


def _kernel_image(args: argparse.Namespace, eng: Engine) -> Path:
    """--bzimage, --build KEY|DIR, or the chosen tree's base kernel: a checked bzImage."""
    from ktest.base.errors import BootImageMissing
    from ktest.boot.vm import check_bzimage

    if args.bzimage:
        bz = Path(args.bzimage)
    elif args.build:
        d = Path(args.build) if "/" in args.build else eng.cache.root / "artifacts" / args.build
        bz = d / "bzImage"
    else:
        bz = eng.base_image(tree_spec(args))
    if not bz.is_file():
        raise BootImageMissing(path=bz)
    check_bzimage(bz)
    return bz


def cmd_compare(args: argparse.Namespace, eng: Engine) -> int:
    import time

    out = (Path(args.out) if args.out else Path("reports") / time.strftime("compare-%Y%m%d-%H%M%S")).resolve()
    m = eng.compare(args.run_a, args.run_b, out, args.side, Path(args.db) if args.db else None,
                    argv=["ktest", *sys.argv[1:]])
    c = m.compare or {}
    print(inert(f"compare {args.side} sides: A = {c['a']['run_id']} ({c['a']['series']}, {c['a']['boots']} boots) "
                f"vs B = {c['b']['run_id']} ({c['b']['series']}, {c['b']['boots']} boots)"))
    print("\n".join(run_summary_lines(m, out)))
    return m.outcome.exit_code


def cmd_shell(args: argparse.Namespace, eng: Engine) -> int:
    import tempfile

    from ktest.base.errors import NotATerminal
    from ktest.boot import shell
    from ktest.boot.vm import choose_accel

    if not (sys.stdin.isatty() and sys.stdout.isatty()):
        raise NotATerminal()
    bz = _kernel_image(args, eng)
    accel = choose_accel(eng.cache, bz, args.accel, eng.progress)
    topo = shell.TOPOLOGIES[args.topology]
    eng.progress.stage(f"booting {bz} ({accel}) with the {topo.name} topology: Ctrl-D leaves")
    eng.progress.clear()
    with tempfile.TemporaryDirectory(prefix="ktest-shell-") as rw:
        rc = shell.run(bz.resolve(), Path(rw), topo, accel)
    print(f"ktest shell: the guest is gone (vng exit {rc})")
    return 0 if rc == 0 else EXIT_COULD_NOT_RUN


def cmd_boot(args: argparse.Namespace, eng: Engine) -> int:
    import time

    bz = _kernel_image(args, eng)
    out = Path(args.out) if args.out else Path("reports") / time.strftime("boot-%Y%m%d-%H%M%S")
    try:
        run = eng.boot(bz.resolve(), out.resolve(), testcases=args.testcases, expr=args.expr, reps=args.reps,
                       accel=args.accel, known_issues=args.known_issues)
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


def cmd_doctor(args: argparse.Namespace, eng: Engine) -> int:
    from ktest import doctor
    from ktest.host.tree import DEFAULT_KERNEL

    probe = None
    if args.probe:
        from ktest.engine import TreeSpec

        def probe() -> tuple[bool, str]:      # the default tree's base kernel, booted once
            return eng.kvm(TreeSpec(kernel=args.kernel), fresh=False)
    text, rc = doctor.report(doctor.diagnose(eng.cache, args.kernel or DEFAULT_KERNEL, probe))
    eng.progress.end_group()
    print(text)
    return rc


COMMANDS = {"doctor": cmd_doctor, "tree": cmd_tree, "shell": cmd_shell, "compare": cmd_compare, "build": cmd_build, "run": cmd_run, "calibrate": cmd_calibrate, "boot": cmd_boot, "merge": cmd_merge, "kvm": cmd_kvm,
            "report": cmd_report, "history": cmd_history}
