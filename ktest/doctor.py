"""`ktest doctor`: is this machine ready for a first run?  One line per item (the tools and their
versions, KVM, the cache dir, free disk and memory, the host's load, the default tree), each with a fix when it is not
ready.  Nothing is built or booted: KVM is the cached probe's answer (`ktest kvm` writes it); only
`--probe`, with no answer cached, boots a guest to find out.

An item is `ok`, `warn` (a run works, but slower or after a step ktest does by itself) or `FAIL` (a
run would stop there).  Exit 0 when nothing fails, 2 otherwise."""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from ktest.base.cache import Cache

# what a first `ktest run` of the default tree leaves in the cache, measured on the 2-core host:
# trees/ 2.2 GiB (linux-source-6.12 extracted, as git), lineages/ 1.7 GiB (worktree + O= dir), ccache
FIRST_RUN_DISK_GIB = 5.0
LATER_RUN_DISK_GIB = 1.0
GUEST_MEM_GIB = 1.5         # one guest: 1 GiB of guest memory plus QEMU (as pool.default_vms counts)

APT = "apt-get install"


@dataclass
class Item:
    name: str
    status: str             # ok | warn | FAIL
    detail: str
    fix: str = ""

    def line(self) -> str:
        s = f"{self.status:4}  {self.name:20} {self.detail}"
        return s + (f"\n      fix: {self.fix}" if self.fix and self.status != "ok" else "")


# (item name, executable, version arguments, fix when missing)
TOOLS = [
    ("qemu-system-x86_64", "qemu-system-x86_64", ["--version"], f"{APT} qemu-system-x86"),
    ("iproute2 (ip)", "ip", ["-V"], f"{APT} iproute2"),
    ("tcpdump", "tcpdump", ["--version"], f"{APT} tcpdump"),
    ("gcc", "gcc", ["--version"], f"{APT} build-essential"),
    ("make", "make", ["--version"], f"{APT} build-essential"),
    ("flex", "flex", ["--version"], f"{APT} flex"),
    ("bison", "bison", ["--version"], f"{APT} bison"),
    ("bc", "bc", ["--version"], f"{APT} bc"),
    ("udev (udevadm)", "udevadm", ["--version"], f"{APT} udev"),
    ("git", "git", ["--version"], f"{APT} git"),
]


def which(tool: str) -> str | None:
    """On PATH, or in the sbin dirs a non-root PATH may lack (as vm.vng_binary looks)."""
    found = shutil.which(tool)
    if found:
        return found
    for d in ("/usr/sbin", "/sbin", "/usr/bin"):
        if os.access(Path(d, tool), os.X_OK):
            return str(Path(d, tool))
    return None


def version_of(path: str, args: list[str]) -> str:
    try:
        p = subprocess.run([path, *args], capture_output=True, text=True, timeout=20, stdin=subprocess.DEVNULL)
    except (OSError, subprocess.SubprocessError):
        return "found, but does not run"
    out = (p.stdout.strip() or p.stderr.strip()).splitlines()
    first = out[0].strip()[:70] if out else ""
    return (f"{Path(path).name} {first}" if first[:1].isdigit() else first) or f"found ({path})"


def tools() -> list[Item]:
    items = []
    vng = os.environ.get("KTEST_VNG") or next(
        (str(p) for p in [Path(sys.executable).parent / "vng"] if p.exists()), None) or shutil.which("vng")
    if vng:
        items.append(Item("vng (virtme-ng)", "ok", version_of(vng, ["--version"])))
    else:
        items.append(Item("vng (virtme-ng)", "FAIL", "not found", "pip install virtme-ng (ci/setup.sh does)"))
    for name, exe, args, fix in TOOLS:
        path = which(exe)
        items.append(Item(name, "ok", version_of(path, args)) if path else Item(name, "FAIL", "not found", fix))
    return items


def kvm(cache: Cache, probe: Callable[[], tuple[bool, str]] | None = None) -> Item:
    """The cached probe's answer for this host; without one, whether /dev/kvm opens, and (probe given)
    the probe itself.  KVM missing is a warning: ktest runs under TCG, several times slower."""
    from ktest.base.machine import kvm_answer

    ans = kvm_answer(cache)
    if ans is None and probe is not None:
        ok, reason = probe()
        ans = {"ok": ok, "reason": reason}
    if ans is not None:
        if ans.get("ok"):
            return Item("KVM", "ok", f"usable ({ans.get('reason')}; cached probe)")
        return Item("KVM", "warn", f"not usable, runs use TCG, several times slower ({ans.get('reason')})",
                    "give this user /dev/kvm (group kvm, or a udev rule as ci/gha-kvm.sh writes), then "
                    "`ktest kvm --fresh`")
    if not os.access("/dev/kvm", os.R_OK | os.W_OK):
        return Item("KVM", "warn", "/dev/kvm is missing or not accessible: runs will use TCG, several times slower",
                    "enable virtualisation (or nested KVM) and add this user to group kvm")
    return Item("KVM", "warn", "/dev/kvm opens, but no guest has been probed on this host yet "
                "(a PVM host opens it and hangs the guest)", "`ktest doctor --probe` or `ktest kvm` boots one to find out")


def cache_dir(cache: Cache) -> Item:
    return Item("cache dir", "ok", f"{cache.root} (writable; $KTEST_CACHE or --cache moves it)")


def _tree_prepared(cache: Cache, version: str) -> Path | None:
    trees = cache.root / "trees"
    if not trees.is_dir():
        return None
    return next((d for d in sorted(trees.glob(f"linux-source-{version}_*")) if (d / ".git" / "ktest-ready").exists()),
                None)


def disk(cache: Cache, kernel: str, free_bytes: int | None = None) -> Item:
    if free_bytes is None:
        free_bytes = shutil.disk_usage(cache.root).free
    gib = free_bytes / 2**30
    need = LATER_RUN_DISK_GIB if _tree_prepared(cache, kernel) else FIRST_RUN_DISK_GIB
    if gib < need:
        return Item("free disk", "FAIL", f"{gib:.1f} GiB free under {cache.root}, a run needs about {need:.0f} GiB",
                    "free space there, or point $KTEST_CACHE (or --cache) at a bigger disk")
    return Item("free disk", "ok", f"{gib:.1f} GiB free under {cache.root} (a first run uses about "
                f"{FIRST_RUN_DISK_GIB:.0f} GiB)")


def memory(avail_gib: float | None = None) -> Item:
    from ktest.boot.pool import default_vms

    if avail_gib is None:
        try:
            kib = next(int(l.split()[1]) for l in open("/proc/meminfo") if l.startswith("MemAvailable:"))
            avail_gib = kib / 2**20
        except (OSError, StopIteration, ValueError):
            return Item("free memory", "warn", "cannot read MemAvailable from /proc/meminfo")
    if avail_gib < GUEST_MEM_GIB:
        return Item("free memory", "FAIL", f"{avail_gib:.1f} GiB available, one guest needs {GUEST_MEM_GIB} GiB",
                    "stop other work or add memory")
    vms = default_vms("tcg", mem_gib=avail_gib)
    return Item("free memory", "ok", f"{avail_gib:.1f} GiB available: {vms} guest(s) at once by default "
                f"({os.cpu_count()} core(s))")


# a host busier than this (some task waited for a CPU in this % of the last minute, PSI) makes timings
# noisier before ktest's own guests add to it
BUSY_PSI = 20.0


def host_load(pressure: str | None = None, schedstat: bool | None = None) -> Item:
    """Can ktest see how hard the host starves a guest (its QEMU threads' schedstat: boot.hostwait), and
    is the host busy now (the CPU's pressure stall information, avg60 of "some")?"""
    if schedstat is None:
        schedstat = Path("/proc/self/schedstat").exists()
    if not schedstat:
        return Item("host load", "warn", "no /proc/PID/schedstat (a kernel without CONFIG_SCHED_INFO): ktest "
                    "cannot tell a kernel that got slower from a host that got busier for one side",
                    "run on a kernel with scheduler statistics (Debian's and Ubuntu's have them)")
    if pressure is None:
        try:
            pressure = Path("/proc/pressure/cpu").read_text()
        except OSError:
            pressure = ""
    avg60 = next((float(f.split("=", 1)[1]) for line in pressure.splitlines() if line.startswith("some ")
                  for f in line.split() if f.startswith("avg60=")), None)
    if avg60 is None:
        return Item("host load", "ok", "guests' waits for a host CPU readable (schedstat); no CPU pressure "
                    "information (PSI) to say how busy the host is now")
    if avg60 > BUSY_PSI:
        return Item("host load", "warn", f"busy: some task waited for a CPU {avg60:.0f} % of the last minute",
                    "let other work finish first: timings get noisier, and a timing change on the side the "
                    "host starved more is held as undecided")
    return Item("host load", "ok", f"quiet: some task waited for a CPU {avg60:.0f} % of the last minute; "
                "guests' waits for a host CPU readable (schedstat)")


def default_tree(cache: Cache, kernel: str) -> Item:
    from ktest.host.tree import _deb_version

    pkg = f"linux-source-{kernel}"
    ready = _tree_prepared(cache, kernel)
    if ready:
        return Item("default tree", "ok", f"{pkg} prepared in {ready}")
    if not shutil.which("dpkg-query"):
        return Item("default tree", "FAIL", f"no dpkg: the default tree is Debian's {pkg}",
                    "run on Debian 12, or give your own tree: ktest run --tree ~/linux SERIES")
    try:
        installed = _deb_version(pkg)
    except OSError:
        installed = None
    if installed:
        return Item("default tree", "warn", f"{pkg} {installed} installed, not yet prepared (the first run "
                    "extracts it into the cache, about a minute)", "ktest tree")
    if os.geteuid() == 0:
        return Item("default tree", "warn", f"{pkg} not installed; ktest installs it with apt-get on first use",
                    "ktest tree")
    return Item("default tree", "FAIL", f"{pkg} not installed, and ktest is not root to install it",
                f"sudo {APT} {pkg}, or give your own tree: ktest run --tree ~/linux SERIES")


def diagnose(cache: Cache, kernel: str, probe: Callable[[], tuple[bool, str]] | None = None) -> list[Item]:
    return [*tools(), kvm(cache, probe), cache_dir(cache), disk(cache, kernel), memory(), host_load(),
            default_tree(cache, kernel)]


def report(items: list[Item]) -> tuple[str, int]:
    fails = [i for i in items if i.status == "FAIL"]
    warns = [i for i in items if i.status == "warn"]
    lines = [i.line() for i in items]
    host = f"{platform.node()}, {platform.release()}"
    if fails:
        lines.append(f"not ready ({host}): {len(fails)} item(s) to fix: {', '.join(i.name for i in fails)}")
    else:
        lines.append(f"ready ({host})" + (f", with {len(warns)} warning(s)" if warns else "")
                     + ": try `ktest run patches/linkwatch`")
    return "\n".join(lines), (2 if fails else 0)
