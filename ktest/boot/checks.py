"""Run checks on one kernel: boot it under vng with the guest harness and collect structured results."""

from __future__ import annotations

import functools
import json
import os
import shlex
import sys
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

from ktest.judge import console
from ktest.judge import crash as crash_mod
from ktest.base.cache import Cache, write_json_atomic
from ktest.base.progress import Progress
from ktest.base.machine import GUEST_CPUS
from ktest.boot.hostwait import Sampler
from ktest.boot.vm import BootResult, BootSpec, boot_with_retry, choose_accel, host_env, lean_udev_rules

from ktest.base.home import PACKAGE
from ktest.base.home import ROOT as PROJECT
from ktest.base.home import TESTCASES as DEFAULT_TESTCASES


@dataclass
class GuestRun:
    label: str
    boot: BootResult
    started: dict[str, Any] | None
    finished: dict[str, Any] | None
    results: list[dict[str, Any]]
    splats: list[console.Splat]
    env: dict[str, Any] = field(default_factory=dict)
    selection: dict[str, Any] | None = None   # selection.json: what was collected, what this shard ran
    crash: crash_mod.Crash | None = None   # the kernel crashed: what, in which check, what never ran

    @property
    def crashed(self) -> bool:
        return self.boot.outcome in ("panic", "qemu-died", "crash") or console.crashed(self.splats) \
            or self.crash is not None

    def to_json(self) -> dict[str, Any]:
        return {"label": self.label, "boot": self.boot.to_json(), "started": self.started,
                "finished": self.finished, "results": self.results,
                "splats": [s.to_json() for s in self.splats], "env": self.env, "selection": self.selection,
                "crash": self.crash.to_json() if self.crash else None}


def _read_json(p: Path) -> dict[str, Any] | None:
    try:
        return cast(dict[str, Any], json.loads(p.read_text()))
    except (OSError, ValueError):
        return None


def _read_results(p: Path) -> list[dict[str, Any]]:
    out = []
    if p.exists():
        for line in p.read_text(errors="replace").splitlines():
            try:
                out.append(json.loads(line))
            except ValueError:
                pass  # a line cut short by a crash
    return out


# a third virtio-net NIC on the loop hub: the far end of the bond over the loop pair (bonding's
# test_virtio_slaves), which the host's set_link can cut like a cable
EXTRA_NICS = 1


def guest_command(rwdir: Path, paths: list[Path], expr: str | None, reps: int,
                  selftests: Path | None = None, env: dict[str, Any] | None = None,
                  shard: tuple[int, int] | None = None) -> str:
    """Write the guest's command into rwdir/run.sh and return a short command that runs it: the
    command travels on the kernel command line (base64), which is cut at 2048 bytes on x86.

    Python runs with -S and an explicit PYTHONPATH: under TCG, site.py's .pth processing (the editable
    install's finder pulls in importlib.metadata) costs about a second; plugin autoload is off too."""
    import sysconfig

    args = [sys.executable, "-S", "-m", "ktest.guest", "--out", str(rwdir), "--reps", str(reps)]
    if expr:
        args += ["-k", expr]
    if shard:
        args += ["--shard", f"{shard[0]}/{shard[1]}"]
    args += [str(p) for p in paths]
    pypath = os.pathsep.join([str(PROJECT), sysconfig.get_paths()["purelib"]])
    script = rwdir / "run.sh"
    script.write_text("\n".join([
        "#!/bin/sh",
        "export PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PYTEST_DISABLE_PLUGIN_AUTOLOAD=1",
        f"export PYTHONPATH={shlex.quote(pypath)}",
        "export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        f"export KTEST_SELFTESTS={shlex.quote(str(selftests or ''))} KTEST_ROOT={shlex.quote(str(PROJECT))}",
        *(f"export {k}={shlex.quote(str(v))}" for k, v in (env or {}).items()),
        f"cd {shlex.quote(str(PROJECT))}",
        f"exec {shlex.join(args)}",
        ""]))
    return f"sh {shlex.quote(str(script))}"


def _selftests_of(bzimage: Path) -> Path | None:
    d = bzimage.parent / "selftests" / "tools" / "testing" / "selftests"
    return d if d.is_dir() else None


def check_path(p: str | Path) -> Path:
    """A check file, directory or pytest node id ("FILE::test[param]", as reports print them), taken
    relative to the working directory, or else to the ktest checkout (the ids' root)."""
    file, sep, rest = str(p).partition("::")
    f = Path(file)
    if not f.exists() and not f.is_absolute() and (PROJECT / f).exists():
        f = PROJECT / f
    return Path(str(f.resolve()) + sep + rest)


def _precompile(paths: list[Path]) -> None:
    """The guest's root is read-only, so it cannot cache bytecode; compiling under TCG is slow.
    Write the .pyc files on the host first (compileall writes even with PYTHONDONTWRITEBYTECODE), and
    pytest's assertion-rewritten ones of the check files, conftests and the guest plugin too."""
    import compileall

    files = [Path(str(p).partition("::")[0]) for p in paths]      # a node id: its file
    for f in files:
        if f.is_dir():
            compileall.compile_dir(str(f), quiet=2)
        elif f.suffix == ".py":
            compileall.compile_file(str(f), quiet=2)
    _prerewrite(tuple(sorted({str(f.resolve()) for f in files if f != PACKAGE})))


@functools.cache
def _prerewrite(files: tuple[str, ...]) -> None:
    """pytest rewrites the asserts of every check module, conftest and `-p` plugin it imports, and caches
    the result beside the source only where it may write bytecode: never in the guest, so each boot
    rewrote them all again (on the host 1.4 s against 0.4 s from the cache for all of testcases/; under
    TCG with four guests on two cores, a large part of the 12-20 s from pytest's import to the first
    check).  One collection on the host, allowed to write, leaves the rewritten .pyc where the guest's
    pytest reads them (same interpreter, same pytest, same sources).  Best effort: an installed,
    read-only copy of the checks just keeps rewriting in the guest."""
    if files:
        _host_collect(files, write_bytecode=True)


def _host_collect(paths: Iterable[str | Path], extra: list[str] | None = None,
                  write_bytecode: bool = False) -> dict[str, Any] | None:
    """Collect checks on the host as the guest does (its plugin, in a subprocess: the check modules are
    not imported into ktest) and return the plugin's selection.json; None if the collection failed.
    write_bytecode: let Python and pytest cache bytecode (pytest's rewritten modules) beside the sources."""
    import subprocess
    import tempfile

    env = dict(os.environ, PYTEST_DISABLE_PLUGIN_AUTOLOAD="1", KTEST_SLOW="1", PYTHONDONTWRITEBYTECODE="1")
    if write_bytecode:
        del env["PYTHONDONTWRITEBYTECODE"]
    with tempfile.TemporaryDirectory(prefix="ktest-collect-") as d:
        args = [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "ktest.guest.plugin",
                "-p", "no:cacheprovider", f"--rootdir={PROJECT}", f"--ktest-out={d}",
                *[str(Path(p).resolve()) for p in paths], *(extra or [])]
        try:
            subprocess.run(args, cwd=PROJECT, env=env, capture_output=True, text=True, timeout=120)
        except (OSError, subprocess.SubprocessError):
            return None
        return _read_json(Path(d) / "selection.json")


SLOW_MODES = {True: "1", False: "0", "only": "only", "none": "none"}


def _select_env(slow: bool | str | list[str], ids: list[str] | None = None) -> dict[str, str]:
    """The guest plugin's selection: KTEST_SLOW (the mode for slow checks) and KTEST_IDS (just these
    node ids of the collection, which the guest still collects whole: its selection.json, the order
    of checks and the shard split stay those of the whole run)."""
    if isinstance(slow, list):
        ids, slow = slow, "only"
    env = {"KTEST_SLOW": SLOW_MODES[slow]}
    if ids is not None:
        env["KTEST_IDS"] = json.dumps(list(ids))
    return env


def collect_checks(paths: Iterable[str | Path], expr: str | None = None,
                   shard: tuple[int, int] | None = None) -> dict[str, dict[str, Any]]:
    """The checks a guest would run with these paths, -k expression and shard, in collection order:
    node id -> {"cost": declared seconds, "slow": an upstream selftest}.  Collected on the host with
    the guest's own plugin.  A collection that fails says nothing: {}."""
    extra = (["-k", expr] if expr else []) + ([f"--ktest-shard={shard[0]}/{shard[1]}"] if shard else [])
    sel = _host_collect(paths, extra)
    if sel is None:
        return {}
    coll = {c["id"]: {"cost": float(c.get("cost", 0)), "slow": bool(c.get("slow"))} for c in sel.get("collected", [])}
    return {i: coll[i] for i in sel.get("run", []) if i in coll}


def slow_checks(paths: Iterable[str | Path], expr: str | None = None,
                shard: tuple[int, int] | None = None) -> dict[str, float]:
    """The slow checks (the upstream selftests) of `collect_checks`, with their declared costs."""
    return {i: c["cost"] for i, c in collect_checks(paths, expr, shard).items() if c["slow"]}


def _rounded(share: float | None) -> float | None:
    """A host wait share as it is recorded (per result and per boot): to 0.001."""
    return None if share is None else round(share, 3)


def add_host_wait(results: list[dict[str, Any]], starts: list[dict[str, Any]], sampler: Sampler) -> None:
    """Each result's `host_wait_share`: of the time the guest's QEMU threads wanted a host CPU while the
    check ran (its start record to its result, in the guest's uptime), the share they waited for one
    (hostwait).  A sub-result (an upstream program's case) has its program's window."""
    began = {s["id"]: s.get("uptime_s") for s in starts if "id" in s}
    for r in results:
        node = r.get("id", "")
        t0 = began.get(node, began.get(node.rpartition("::")[0]))
        t1 = r.get("finished_at_uptime_s")
        if t0 is not None and t1 is not None:
            if (share := _rounded(sampler.share_guest(t0, t1))) is not None:
                r["host_wait_share"] = share


def run_checks(cache: Cache, bzimage: Path, outdir: Path, *, label: str = "kernel",
               paths: Sequence[str] | Sequence[Path] | None = None,
               expr: str | None = None, reps: int = 5, accel: str = "auto", known_issues: Path | None = None,
               progress: Progress | None = None, boot_timeout: float | None = None,
               slow: bool | str | list[str] = True, shard: tuple[int, int] | None = None,
               ids: list[str] | None = None, crash_quiet: float | None = None, cpus: int = GUEST_CPUS) -> GuestRun:
    """Boot `bzimage` and run the checks.  The kernel tree's selftests are taken from the build
    artifact next to the image (bzimage.parent/selftests), when it has them.  Checks marked slow (the
    upstream selftests): slow=True runs them with the rest, False skips them (`ktest run`'s later
    rounds), "only" runs them alone and "none" leaves them out (round 1 on a pool: one guest each); a
    list of their node ids runs just those, alone (round 1 on a larger pool: slow checks split by cost).
    ids: run just these node ids of the collection (a side's checks split over guests by cost).
    shard=(i, n) runs only the i-th of n parts of the collected checks (ktest.base.shard).  cpus: the
    guest's vCPUs."""
    progress = progress or Progress()
    paths = [check_path(p) for p in (paths or [DEFAULT_TESTCASES])]
    accel = choose_accel(cache, bzimage, accel, progress)
    outdir.mkdir(parents=True, exist_ok=True)
    rwdir = outdir / "rw"
    rwdir.mkdir(exist_ok=True)
    for stale in ("results.jsonl", "started.json", "finished.json", "selection.json", "checks-started.jsonl"):
        (rwdir / stale).unlink(missing_ok=True)
    spec = BootSpec(bzimage=bzimage, command=guest_command(rwdir, paths, expr, reps, _selftests_of(bzimage),
                                                          {**_select_env(slow, ids), "KTEST_LINKCTL": rwdir / "link",
                                                           "KTEST_VIRTIO_NICS": 2 + EXTRA_NICS}, shard),
                    rwdir=rwdir, accel=accel, cpus=cpus,
                    boot_timeout=boot_timeout or (60.0 if accel == "kvm" else 120.0),
                    udev_rules=lean_udev_rules(outdir / "udev-rules.d"), link_control=True, extra_nics=EXTRA_NICS)
    if crash_quiet is not None:
        spec.crash_quiet = crash_quiet
    _precompile([PACKAGE, *paths])
    progress.stage(f"booting {label} ({accel}) and running checks")
    t0 = time.time()
    res = boot_with_retry(spec, outdir, progress, label)
    text = res.console_log.read_text(errors="replace") if res.console_log.exists() else ""
    splats = console.KnownIssues.load(known_issues).mark(console.parse(text))
    started = _read_json(rwdir / "started.json")
    env = host_env(spec)
    if started:
        env.update(kernel_release=started.get("kernel_release"), clocksource=started.get("clocksource"),
                   guest_uptime_at_harness_s=started.get("uptime_at_harness_s"),
                   launch_to_harness_s=round(res.started_after_s, 2) if res.started_after_s else None)
    finished, results, selection = (_read_json(rwdir / "finished.json"), _read_results(rwdir / "results.jsonl"),
                                    _read_json(rwdir / "selection.json"))
    starts = _read_results(rwdir / "checks-started.jsonl")
    if res.host_wait is not None:
        add_host_wait(results, starts, res.host_wait)
        if started and finished:
            env["host_wait_share"] = _rounded(res.host_wait.share_guest(started.get("uptime_at_harness_s") or 0.0,
                                                                        finished.get("uptime_s") or 0.0))
    crash = crash_mod.analyse(text, splats, outcome=res.outcome, harness_started=started is not None,
                              harness_finished=finished is not None, results=results,
                              starts=starts, selection=selection,
                              ended_because=res.ended_because)
    if crash:
        progress.warn(f"{label}: the kernel crashed ({crash.label} {crash.fingerprint}) in {crash.where}"
                      + (f"; {len(crash.not_run)} check(s) not run" if crash.not_run else "")
                      + (f"; {res.ended_because}" if res.ended_because else ""))
    run = GuestRun(label=label, boot=res, started=started, finished=finished, results=results, splats=splats,
                   env=env, selection=selection, crash=crash)
    write_json_atomic(outdir / "guest-run.json", {**run.to_json(), "wall_start": t0})
    return run
