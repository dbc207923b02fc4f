"""Boot a kernel under virtme-ng non-interactively, with timeouts, cleanup and console capture.

vng runs in its own process group (QEMU can outlive the vng parent), so a timeout or Ctrl-C kills
the whole group.  The guest tells us it is up by writing `started.json` into the rwdir (the harness
does this first thing), which ends the boot-timeout phase.
"""

from __future__ import annotations

import functools
import json
import os
import platform
import shlex
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import IO, Any

from ktest.base.cache import Cache, write_json_atomic
from ktest.base.machine import GUEST_CPUS, host_key, qemu_version
from ktest.base.errors import Interrupted, MissingHostTools, NotABzImage
from ktest.base.proc import kill_group
from ktest.base.progress import Progress
from ktest.boot.hostwait import Sampler

VNG_EXIT_DIED = 255  # vng's code for "panic or QEMU died"


@dataclass
class BootSpec:
    bzimage: Path
    command: str                 # shell command run inside the guest
    rwdir: Path                  # host dir, mounted read-write at the same path in the guest
    accel: str = "tcg"           # "kvm" | "tcg"
    cpus: int = GUEST_CPUS        # base.machine: measured
    memory: str = "1G"
    boot_timeout: float = 90.0   # until started.json appears
    idle_timeout: float = 180.0  # no console/stdout output and no rwdir writes
    # after an Oops/BUG/panic or a hung-task/lockup report on the console, the harness (stdout, rwdir)
    # writing nothing for this long ends the boot: a dead kernel is not waited out to the idle timeout
    crash_quiet: float = 30.0
    hard_timeout: float = 1800.0
    # root=/dev/root: vng tags its 9p root export "/dev/root" and passes no root=, relying on the
    # block layer's fallback; our lean kernels have no block layer, so name the 9p root directly.
    # cache=loose on the (read-only) 9p root: Python imports do thousands of lookups, and with vng's
    # default cache=none each is a round trip to the host.
    # no_timer_check: skip the IO-APIC timer check of early boot (check_timer -> timer_irq_works), as
    # every KVM guest does on its own (arch/x86/kernel/kvm.c sets no_timer_check).  Under TCG on a busy
    # host the check waits a few jiffies for the timer and, when the vCPU is starved, panics with
    # "IO-APIC + timer doesn't work!" before the harness starts: seen in 1 of 8 patched boots of a no-op
    # run with a CPU-bound process beside it, and judged a crash of the patched kernel.
    append: tuple[str, ...] = ("root=/dev/root", "panic=-1", "net.ifnames=0", "printk.devkmsg=on", "no_timer_check",
                               "rootflags=version=9p2000.L,trans=virtio,access=any,msize=512000,cache=loose")
    qemu_opts: tuple[str, ...] = ()
    wait_started: bool = True    # False for probes that run no harness
    link_control: bool = False   # a QMP socket and a LinkAgent answering rwdir/link/N.req (ktest.boot.linkctl)
    udev_rules: Path | None = None  # guest /run/udev/rules.d (see lean_udev_rules)
    # virtio-net NICs added to vng's `--network loop` pair, on the same QEMU hub (netdevs n2, n3, ...):
    # the far end of a bond whose slaves are the pair, so the host can pull a slave's cable (set_link)
    extra_nics: int = 0


@dataclass
class BootResult:
    # ok | script-failed | panic | crash (ended early: see ended_because) | boot-timeout | idle-timeout
    # | hard-timeout | qemu-died | no-harness
    outcome: str
    exit_code: int | None
    duration_s: float
    started_after_s: float | None  # host wall time from launch to the harness's started.json
    console_log: Path
    stdout_log: Path
    attempts: int = 1
    retried_because: str | None = None
    env: dict[str, Any] = field(default_factory=dict)
    ended_because: str | None = None   # why ktest ended the boot itself (a crash, a timeout)
    infra_error: str | None = None     # the machine failed a service the guest asked for (host link control)
    # the host's scheduler statistics of the guest's QEMU threads, sampled while it ran (hostwait): not
    # serialised, cut into the checks' windows by checks.run_checks
    host_wait: Sampler | None = field(default=None, repr=False, compare=False)

    @property
    def infra_failure(self) -> bool:
        """Failed before the guest harness started: the machine's problem, worth one retry.  A kernel
        that crashed ("panic", "crash") is the kernel's problem, not the machine's: never retried."""
        return self.started_after_s is None and self.outcome in ("boot-timeout", "qemu-died", "idle-timeout",
                                                                 "no-harness")

    def to_json(self) -> dict[str, Any]:
        d = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "host_wait"}
        d["console_log"], d["stdout_log"] = str(self.console_log), str(self.stdout_log)
        return d


def vng_binary() -> str:
    import sys

    here = Path(sys.executable).parent / "vng"
    found = os.environ.get("KTEST_VNG") or (str(here) if here.exists() else shutil.which("vng"))
    if not found:
        raise MissingHostTools(missing="vng", packages="virtme-ng (pip)")
    for tool, pkg in (("qemu-system-x86_64", "qemu-system-x86"), ("udevadm", "udev")):
        if not shutil.which(tool) and not Path("/usr/bin", tool).exists() and not Path("/usr/sbin", tool).exists():
            raise MissingHostTools(missing=tool, packages=pkg)
    return found


def vng_command(spec: BootSpec, qmp: Path | None = None) -> list[str]:
    cmd = [vng_binary(), "-r", str(spec.bzimage), "--skip-modules", "--user", "root",
           "--cpus", str(spec.cpus), "--memory", spec.memory, "--network", "loop", "--no-dhcp",
           "--force-9p", f"--rwdir={spec.rwdir}", "-v"]
    if spec.accel == "tcg":
        cmd.append("--disable-kvm")
    if qmp is not None:       # one argument each: --qemu-opts would swallow the rest of the command line
        cmd += ["--qemu-opt=-qmp", f"--qemu-opt=unix:{qmp},server=on,wait=off"]
    if spec.append:
        cmd += ["--append", " ".join(spec.append)]
    if spec.qemu_opts:
        cmd.append("--qemu-opts=" + " ".join(spec.qemu_opts))
    if spec.udev_rules:
        cmd.append(f"--rodir=/run/udev/rules.d={spec.udev_rules}")
    for i in range(2, 2 + spec.extra_nics):     # after vng's n0/n1, so the n-th NIC by PCI slot is n<n>
        cmd += ["--qemu-opt=-netdev", f"--qemu-opt=hubport,id=n{i},hubid=0",
                "--qemu-opt=-device", f"--qemu-opt=virtio-net-pci,netdev=n{i}"]
    cmd += ["--exec", spec.command]
    return cmd


def vng_env() -> dict[str, Any]:
    """vng runs its helpers (virtme-run, ...) from PATH: put the venv's bin dir first."""
    import sys

    path = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "/usr/bin:/bin"),
                            "/usr/sbin", "/sbin"])
    return dict(os.environ, LC_ALL="C", PATH=path)


def lean_udev_rules(dest: Path) -> Path:
    """A /run/udev/rules.d for the guest that masks every udev rule file of the host by name and keeps
    only the virtio-ports symlink rule that vng's script I/O needs.  The guest runs the host's udev,
    whose coldplug under TCG costs seconds and renames the NICs; with no rules it does neither."""
    dest.mkdir(parents=True, exist_ok=True)
    for d in ("/usr/lib/udev/rules.d", "/lib/udev/rules.d", "/etc/udev/rules.d"):
        for f in Path(d).glob("*.rules") if Path(d).is_dir() else ():
            (dest / f.name).write_text("")
    (dest / "50-udev-default.rules").write_text(
        'SUBSYSTEM=="virtio-ports", KERNEL=="vport*", ATTR{name}=="?*", SYMLINK+="virtio-ports/$attr{name}"\n')
    return dest


def _pump(stream: IO[str], path: Path, activity: list[float], tee: Callable[[str], None] | None = None) -> None:
    with open(path, "w", errors="replace") as f:
        for line in iter(stream.readline, ""):
            f.write(line)
            f.flush()
            activity[0] = time.monotonic()
            if tee:
                tee(line)


def _crash_watch(seen: dict[str, Any]) -> Callable[[str], None]:
    """A console tee that remembers the first fatal or stuck splat line: {"kind", "line", "at"}."""
    from ktest.judge.console import TS, fatal_kind

    def tee(line: str) -> None:
        if "kind" not in seen and (kind := fatal_kind(line)):
            seen.update(kind=kind, line=TS.sub("", line).strip()[:200], at=time.monotonic())
    return tee


def dead_kernel(seen: dict[str, Any], harness_quiet_s: float, now: float, quiet: float) -> str | None:
    """Pure: why a boot should end now because its kernel is dead, or None.  `seen` is what the console
    watch found; the harness must have been quiet for `quiet` seconds since the splat and since its own
    last write (a harness that keeps writing after an Oops is still running checks)."""
    if "kind" not in seen:
        return None
    since_splat = now - seen["at"]
    if since_splat < quiet or harness_quiet_s < quiet:
        return None
    return (f"{seen['kind']} on the console ({seen['line']}), then the guest harness wrote nothing for "
            f"{min(since_splat, harness_quiet_s):.0f}s: ended without waiting for the idle timeout")


def _latest_mtime(d: Path) -> float:
    try:
        return max((p.stat().st_mtime for p in d.iterdir()), default=0.0)
    except OSError:
        return 0.0


ROOT_ARG = "root=/dev/root"
# Kernels before 6.5 (init/do_mounts.c) strip "/dev/" from root= before mounting a root that is not
# a block device, so the 9p tag they ask for is "root" and vng's export "/dev/root" is not found.
# Given root=/dev//dev/root they ask for "/dev/root".  Newer kernels take the name as it is.
ROOT_ARG_STRIPPED = "root=/dev//dev/root"
ROOT_TAG_MISSING = "9pnet_virtio: no channels available for device root"
_root_arg: dict[tuple[str, int, int], str] = {}   # (bzImage, size, mtime) -> the root= that mounted its 9p root


def _with_root(spec: BootSpec, root: str) -> BootSpec:
    return replace(spec, append=tuple(root if a == ROOT_ARG else a for a in spec.append))


def _image_id(bz: Path) -> tuple[str, int, int]:
    st = Path(bz).stat()
    return (str(Path(bz).resolve()), st.st_size, st.st_mtime_ns)


def boot(spec: BootSpec, logdir: Path, progress: Progress | None = None, label: str = "") -> BootResult:
    """Boot once.  If the kernel cannot find vng's 9p root under the name root= gives (a kernel that
    strips "/dev/" from it, see ROOT_ARG_STRIPPED), boot again with the other spelling; what worked
    is remembered per image for the rest of the process."""
    progress = progress or Progress()
    try:
        image = _image_id(spec.bzimage)
    except OSError:
        image = None
    if image in _root_arg and ROOT_ARG in spec.append:
        spec = _with_root(spec, _root_arg[image])
    res = _boot_once(spec, logdir, progress, label)
    if (res.outcome in ("panic", "crash") and ROOT_ARG in spec.append and res.console_log.exists()
            and ROOT_TAG_MISSING in res.console_log.read_text(errors="replace")):
        progress.info(f"boot {label}: this kernel looks for the 9p root under another name; "
                      f"booting again with {ROOT_ARG_STRIPPED}")
        os.replace(res.console_log, logdir / "console-root-not-found.log")
        spec = _with_root(spec, ROOT_ARG_STRIPPED)
        res = _boot_once(spec, logdir, progress, label)
        if image is not None and res.outcome not in ("panic", "crash"):
            _root_arg[image] = ROOT_ARG_STRIPPED
    return res


def reap_qmp_dirs(tmp: Path | None = None) -> list[Path]:
    """Remove the QMP socket directories of ktest processes that are gone (a SIGKILL runs no clean-up);
    their names carry the owner's pid.  Returns what was removed."""
    gone = []
    for d in Path(tmp or tempfile.gettempdir()).glob("ktest-qmp-*-*"):
        pid = d.name.split("-")[2]
        if pid.isdigit() and not Path(f"/proc/{pid}").exists():
            shutil.rmtree(d, ignore_errors=True)
            gone.append(d)
    return gone


def _boot_once(spec: BootSpec, logdir: Path, progress: Progress, label: str) -> BootResult:
    logdir.mkdir(parents=True, exist_ok=True)
    spec.rwdir.mkdir(parents=True, exist_ok=True)
    console_log, stdout_log = logdir / "console.log", logdir / "stdout.log"
    started_file = spec.rwdir / "started.json"
    started_file.unlink(missing_ok=True)
    if _abort.is_set():
        raise Interrupted(stage=f"boot {label}")
    # the QMP socket lives in a short private directory: a unix socket path has at most 107 bytes
    qmp_dir = None
    if spec.link_control:
        reap_qmp_dirs()
        qmp_dir = Path(tempfile.mkdtemp(prefix=f"ktest-qmp-{os.getpid()}-"))
    cmd = vng_command(spec, qmp_dir / "qmp.sock" if qmp_dir else None)
    (logdir / "vng-cmd.txt").write_text(shlex.join(cmd) + "\n")
    activity = [time.monotonic()]
    harness = [time.monotonic()]       # the guest script's stdout (the harness's own output)
    crash_seen: dict[str, Any] = {}
    t0 = time.monotonic()

    def stdout_tee(_line: str) -> None:
        harness[0] = time.monotonic()

    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, errors="replace", start_new_session=True,
                            env=vng_env())
    sampler = Sampler(sid=proc.pid)        # its own session: vng's pid is the session of its QEMU
    crash_tee = _crash_watch(crash_seen)

    def console_tee(line: str) -> None:
        crash_tee(line)
        sampler.console(line, time.monotonic())
    pumps: list[threading.Thread] = []
    agent = None
    outcome, started_after, ended_because = None, None, None
    try:                      # from here on, whatever happens (Ctrl-C included), the guest's group goes
        with _live_lock:
            _live.add(proc)
        if qmp_dir is not None:
            from ktest.boot.linkctl import LinkAgent

            agent = LinkAgent(qmp_dir / "qmp.sock", spec.rwdir / "link").start()
        pumps += [threading.Thread(target=_pump, args=(proc.stderr, console_log, activity, console_tee),
                                   daemon=True),
                  threading.Thread(target=_pump, args=(proc.stdout, stdout_log, activity, stdout_tee), daemon=True)]
        for t in pumps:
            t.start()
        while True:
            if _abort.is_set():        # Ctrl-C/SIGTERM in the main thread: this guest goes too, now
                _killed[proc.pid] = True
                kill_group(proc)
                break
            rc = proc.poll()
            now = time.monotonic()
            sampler.poll(now)
            if started_after is None and started_file.exists():
                started_after = now - t0
            if rc is not None:
                break
            idle = now - max(activity[0], t0)
            rw_quiet = time.time() - _latest_mtime(spec.rwdir)
            dead = dead_kernel(crash_seen, min(now - harness[0], rw_quiet), now, spec.crash_quiet) \
                if crash_seen else None
            if dead:
                outcome, ended_because = "crash", dead
            elif spec.wait_started and started_after is None and now - t0 > spec.boot_timeout:
                outcome = "boot-timeout"
            elif idle > spec.idle_timeout and rw_quiet > spec.idle_timeout:
                outcome = "idle-timeout"
                ended_because = f"no console or harness output for {spec.idle_timeout:.0f}s (idle timeout)"
            elif now - t0 > spec.hard_timeout:
                outcome = "hard-timeout"
                ended_because = f"still running after {spec.hard_timeout:.0f}s (hard timeout)"
            if outcome:
                kill_group(proc)
                break
            progress.status(f"boot {label}: {now - t0:.0f}s" + (" (guest harness running)" if started_after else ""))
            time.sleep(0.2)
    except KeyboardInterrupt:
        kill_group(proc)
        raise Interrupted(stage=f"boot {label}") from None
    finally:
        progress.clear()
        kill_group(proc)  # nothing of this boot may outlive it, even on success
        if agent is not None:
            agent.close()
            if agent.infra_error:
                progress.warn(f"infra error [link-control] in boot {label}: {agent.infra_error}")
        if qmp_dir is not None:
            shutil.rmtree(qmp_dir, ignore_errors=True)
        with _live_lock:
            _live.discard(proc)
        for t in pumps:
            if t.ident is not None:        # started
                t.join(timeout=5)
    rc = proc.returncode
    if rc is not None and _killed.get(proc.pid):
        raise Interrupted(stage=f"boot {label}")
    if outcome is None:
        from ktest.judge.console import crashed, parse

        if crashed(parse(console_log.read_text(errors="replace"))):
            outcome = "panic"
        elif rc == VNG_EXIT_DIED:
            outcome = "qemu-died"
        elif spec.wait_started and started_after is None:
            outcome = "no-harness"  # vng or the guest failed before the harness could start
        elif rc == 0:
            outcome = "ok"
        else:
            outcome = "script-failed"
    return BootResult(outcome=outcome, exit_code=rc if outcome not in ("boot-timeout", "idle-timeout", "hard-timeout",
                                                                       "crash") else None,
                      duration_s=time.monotonic() - t0, started_after_s=started_after,
                      console_log=console_log, stdout_log=stdout_log, ended_because=ended_because,
                      infra_error=agent.infra_error if agent is not None else None, host_wait=sampler)


_live: set[subprocess.Popen[str]] = set()         # guests running now, in any thread
_live_lock = threading.Lock()
_killed: dict[int, bool] = {}                 # pid -> True: killed by kill_all (the boot is void, not a result)
_abort = threading.Event()         # set by kill_all: every boot loop kills its guest, none starts or retries


def kill_all() -> None:
    """Kill every running guest's process group (Ctrl-C, SIGTERM, a failed batch).  The abort flag is
    set first: if a second signal cuts this short, each guest's own boot loop still kills it within a
    poll, and no boot starts or retries after it."""
    _abort.set()
    with _live_lock:
        procs = list(_live)
    for p in procs:
        _killed[p.pid] = True
        kill_group(p)


def boot_with_retry(spec: BootSpec, logdir: Path, progress: Progress | None = None, label: str = "") -> BootResult:
    """A boot that fails for infrastructure reasons (never reached the harness) is retried once."""
    progress = progress or Progress()
    first = boot(spec, logdir / "attempt-1", progress, label)
    if not first.infra_failure:
        return first
    if _abort.is_set():
        raise Interrupted(stage=f"boot {label}")
    progress.warn(f"boot {label}: {first.outcome} before the guest harness started; retrying once")
    second = boot(spec, logdir / "attempt-2", progress, label)
    second.attempts, second.retried_because = 2, first.outcome
    return second


# --- the image --------------------------------------------------------------------------------

HDRS_OFFSET, HDRS_MAGIC = 0x202, b"HdrS"   # the x86 boot protocol's header signature (boot.rst)


def check_bzimage(path: Path) -> None:
    """Refuse what is not an x86 boot image before booting it: QEMU would fail on it, and the KVM
    probe would take that failure for KVM's."""
    try:
        with open(path, "rb") as f:
            head = f.read(HDRS_OFFSET + len(HDRS_MAGIC))
    except OSError as e:
        raise NotABzImage(path=path, why=e.strerror or str(e)) from None
    if len(head) < HDRS_OFFSET + len(HDRS_MAGIC):
        raise NotABzImage(path=path, why=f"{len(head)} bytes, too short for a boot header")
    if head[HDRS_OFFSET:] != HDRS_MAGIC:
        raise NotABzImage(path=path, why=f"no '{HDRS_MAGIC.decode()}' boot header magic at offset {HDRS_OFFSET:#x}")


# --- KVM probe --------------------------------------------------------------------------------

def probe_kvm(cache: Cache, bzimage: Path, progress: Progress | None = None, timeout: float = 25.0) -> tuple[bool, str]:
    """Does KVM really run a guest here?  /dev/kvm existing is not enough (a PVM host opens it and
    then hangs the guest), so boot `bzimage` with KVM and `true` as the command, under a short
    timeout.  The answer is cached per host (kernel release, QEMU version), and only when it is about
    KVM: an image that is not a bzImage is refused first, and a kernel that panics (so KVM ran it)
    says nothing about KVM."""
    progress = progress or Progress()
    path = cache.root / "kvm-probe.json"
    known = json.loads(path.read_text()) if path.exists() else {}
    key = host_key()
    if key in known:
        return known[key]["ok"], known[key]["reason"]
    if not os.access("/dev/kvm", os.R_OK | os.W_OK):
        ok, reason = False, "/dev/kvm is missing or not accessible"
    else:
        check_bzimage(bzimage)
        progress.info(f"probing whether KVM really runs a guest ({timeout:.0f}s at most, once per host)")
        d = cache.dir("work", f"kvm-probe-{os.getpid()}")
        spec = BootSpec(bzimage=bzimage, command="true", rwdir=d / "rw", accel="kvm", boot_timeout=timeout,
                        idle_timeout=timeout, hard_timeout=timeout, wait_started=False)
        res = boot(spec, d, Progress(interval=3600))
        ok = res.outcome == "ok"
        reason = (f"a KVM guest booted in {res.duration_s:.1f}s" if ok else
                  f"a KVM guest did not finish 'true' ({res.outcome}, exit {res.exit_code}, {res.duration_s:.0f}s)")
        shutil.rmtree(d, ignore_errors=True)
        if res.outcome in ("panic", "crash"):   # the kernel's fault, not KVM's: answer for this call only
            return False, reason + "; the kernel itself panicked, so this is not cached"
    known[key] = {"ok": ok, "reason": reason, "qemu": qemu_version(), "host_kernel": platform.release(),
                  "at": time.time()}
    write_json_atomic(path, known)
    return ok, reason


def forget_kvm_probe(cache: Cache) -> None:
    """Drop this host's cached probe answer (after fixing KVM, or on a CI runner)."""
    path = cache.root / "kvm-probe.json"
    if path.exists():
        known = json.loads(path.read_text())
        known.pop(host_key(), None)
        write_json_atomic(path, known)


_probe_lock = threading.Lock()     # concurrent guests: one probe, the others wait for its answer


def choose_accel(cache: Cache, bzimage: Path, want: str, progress: Progress) -> str:
    if want in ("kvm", "tcg"):
        return want
    with _probe_lock:
        ok, reason = probe_kvm(cache, bzimage, progress)
    if ok:
        return "kvm"
    if not _warned:
        progress.warn(f"KVM is not usable ({reason}); falling back to TCG emulation, which is much slower")
        _warned.append(reason)
    return "tcg"


_warned: list[str] = []  # the TCG fallback is announced once per process


@functools.cache
def _vng_version(vng: str) -> str:
    try:
        return subprocess.run([vng, "--version"], capture_output=True, text=True, timeout=20).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        return "?"


def host_env(spec: BootSpec) -> dict[str, Any]:
    return {"qemu": qemu_version(), "vng": _vng_version(vng_binary()), "accel": spec.accel, "cpus": spec.cpus,
            "memory": spec.memory, "virtio_nics": 2 + spec.extra_nics, "host_kernel": platform.release(),
            "host": platform.node()}
