"""Helpers for checks running inside the guest: commands, devices, namespaces, clocks."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar


RETRIES = 3     # a repetition whose precondition did not hold is redone this often in a row
AIM_MISSES = 3  # a check's repetitions aimed at a moment may miss it this often per repetition wanted
STARVED = 2     # and may find the guest starved by its host this often per repetition wanted
_T = TypeVar("_T")


class PreconditionNotMet(Exception):
    """A repetition's precondition, established by observation, did not hold: redo it (repeat())."""
    per_rep: int | None = None   # a budget of its own per repetition wanted; None: RETRIES in a row
    what = "the precondition did not hold"


class MissedAim(PreconditionNotMet):
    """A repetition aimed at a moment (a phase of an interval) landed elsewhere, as seen in the kernel's
    clock: the host's round trip moved between the aim and the landing.  The setup did not fail, the
    aim did; repeat() gives misses a budget of their own, AIM_MISSES per repetition wanted."""
    per_rep = AIM_MISSES
    what = "the aim missed"


class HostStarved(PreconditionNotMet):
    """The host did not run the guest while the interval a repetition times was running, as seen in the
    kernel's clock: a timer the measured path waits for ran jiffies after it expired (under TCG the guest
    has no steal time; its clock goes on while its vCPU thread waits for a host CPU).  What was timed is
    the host's, not the kernel's; repeat() redoes it on a budget of its own, STARVED per repetition
    wanted, and a boot that spends it is a setup error (its host was too busy), never a sample."""
    per_rep = STARVED
    what = "the host starved the guest"


class SetupNotEstablished(RuntimeError):
    """A check's precondition could not be established in this boot (a starved guest, a slow host round
    trip): the guest plugin reports it as a setup ERROR, never as the kernel's FAIL, and the verdict
    leaves the boot out (more boots are booted when too few are left)."""


def repeat(reps: int, one: Callable[[], _T], why: list[str] | None = None) -> tuple[list[_T], int]:
    """Run `one()` reps times; a repetition whose precondition did not hold is redone, up to RETRIES
    times in a row, and SetupNotEstablished is raised with the reasons if it still does not hold.
    The budget is each repetition's, not the check's: a precondition that holds 4 times in 5 under
    load (a cut aimed at a phase of the interval lands outside it when the host's round trip varies)
    sets up every repetition, while one that never holds still ends the check after RETRIES + 1 tries.
    A MissedAim or HostStarved is not counted in a row: each kind is redone up to its `per_rep` * reps
    times in all.  Returns (results, redone); `why`, when given, collects the reasons of the redone
    repetitions."""
    out: list[_T] = []
    redone = in_a_row = 0
    spent: dict[type, int] = {}
    why = [] if why is None else why
    while len(out) < reps:
        try:
            out.append(one())
            in_a_row = 0
        except PreconditionNotMet as e:
            redone += 1
            why.append(str(e))
            if (per_rep := e.per_rep) is not None:
                n = spent[type(e)] = spent.get(type(e), 0) + 1
                if n > per_rep * reps:
                    raise SetupNotEstablished(f"{e.what} {n} times for {reps} repetitions: "
                                              f"{'; '.join(why[-3:])}") from None
                continue
            in_a_row += 1
            if in_a_row > RETRIES:
                raise SetupNotEstablished(f"precondition not established after {RETRIES} retries: "
                                          f"{'; '.join(why[-3:])}") from None
    return out, redone


def sh(cmd: str, check: bool = True, ns: str | None = None) -> str:
    """Run a shell command (optionally in a netns); return stdout; raise with stderr on failure."""
    if ns:
        cmd = f"ip netns exec {ns} sh -c {quote(cmd)}"
    p = subprocess.run(cmd, shell=True, capture_output=True, text=True)
    if check and p.returncode != 0:
        raise RuntimeError(f"`{cmd}` failed ({p.returncode}): {p.stderr.strip()[:500]}")
    return p.stdout


def ip_batch(ns: str | None, lines: list[str], check: bool = True) -> None:
    """Run `ip` commands in one exec (`ip [-n NS] -batch -`), stopping at the first that fails
    (check=False: -force, run them all and ignore failures).  Under TCG every exec costs tens of
    milliseconds: a topology is built in a few of these, not a shell and an `ip` per step."""
    cmd = ["ip"] + (["-n", ns] if ns else []) + ([] if check else ["-force"]) + ["-batch", "-"]
    p = subprocess.run(cmd, input="\n".join(lines) + "\n", capture_output=True, text=True)
    if check and p.returncode != 0:
        raise RuntimeError(f"`{' '.join(cmd)}` failed ({p.returncode}): {p.stderr.strip()[:500]}\n"
                           f"commands: {lines}")


def proc_net(ns: str, name: str) -> str:
    """/proc/net/NAME as namespace NS sees it, read in process (no exec).  thread-self: the namespace
    of the calling thread, which `netns` switches."""
    with netns(ns):
        return Path("/proc/thread-self/net", name).read_text()


def quote(s: str) -> str:
    import shlex

    return shlex.quote(s)


def virtio_nics() -> list[str]:
    """The virtio-net interfaces, found by driver (udev may rename them from eth0/eth1)."""
    out = []
    for dev in sorted(Path("/sys/class/net").iterdir()):
        drv = dev / "device" / "driver"
        if drv.exists() and os.path.basename(os.readlink(drv)) == "virtio_net":
            out.append(dev.name)
    return out


def nic_netdev(nic: str) -> str:
    """The QEMU netdev id (n0, n1, ...) behind a virtio NIC: vng adds its NICs in netdev order, so the
    n-th virtio NIC by PCI address is n<n>."""
    by_pci = sorted(virtio_nics(), key=lambda n: os.path.realpath(f"/sys/class/net/{n}/device/.."))
    return f"n{by_pci.index(nic)}"


class HostLinkError(RuntimeError):
    pass


_link_seq = [0]


def config_irq(nic: str) -> int | None:
    """The IRQ of virtio NIC `nic`'s config-change vector (MSI-X "virtioN-config"), or None."""
    dev = Path(f"/sys/class/net/{nic}/device").resolve().name
    for line in Path("/proc/interrupts").read_text().splitlines():
        if line.rstrip().endswith(f" {dev}-config"):
            return int(line.split(":", 1)[0])
    return None


def irq_count(irq: int) -> int:
    """How often `irq` has fired, on all CPUs: passive (no linkwatch sync), cheap enough to poll."""
    p = Path(f"/sys/kernel/irq/{irq}/per_cpu_count")
    if p.exists():
        return sum(int(x) for x in p.read_text().strip().split(",") if x)
    for line in Path("/proc/interrupts").read_text().splitlines():
        head, _, rest = line.partition(":")
        if head.strip() == str(irq):
            return sum(int(x) for x in rest.split() if x.isdigit())
    return 0


class _IrqWatch:
    """Polls an IRQ's count in a thread of its own (every 0.2 ms, local sysfs) and keeps when it first
    moved: the ack is a file on 9p whose every look is a round trip to the host, and under load such a
    look can take tens of ms, so the loop that waits for it cannot also time the interrupt."""

    def __init__(self, irq: int):
        import threading

        self.irq, self.count0 = irq, irq_count(irq)
        self.t: float | None = None
        self.done = threading.Event()
        self.th = threading.Thread(target=self._run, daemon=True)
        self.th.start()

    def _run(self) -> None:
        import time

        while not self.done.is_set():
            if irq_count(self.irq) != self.count0:
                self.t = time.monotonic()
                return
            time.sleep(0.0002)

    def stop(self, now: float) -> float | None:
        self.done.set()
        self.th.join()
        if self.t is None and irq_count(self.irq) != self.count0:
            return now                       # fired after the last poll: at most this late
        return self.t


def host_set_link(nic: str, up: bool, timeout: float = 30.0) -> dict[str, Any]:
    """Ask the host to set the QEMU link of virtio NIC `nic` up or down (QMP set_link: a cable pull, seen
    by the guest as a config-change interrupt and netif_carrier_off/on).  Blocks until the host says it
    is done; returns its answer plus `request_ms`, the guest-side round trip (time.monotonic), and
    `t_irq`: when the guest saw the NIC's config-change interrupt fire (its count polled while waiting,
    time.monotonic), the kernel-side moment of the cable change, or None if it was not seen by the time
    of the ack.  Raises HostLinkError when ktest gave this guest no link control or the host could not
    do it."""
    return host_set_netdev(nic_netdev(nic), up, timeout, irq=config_irq(nic))


def host_set_netdev(netdev: str, up: bool, timeout: float = 30.0, irq: int | None = None) -> dict[str, Any]:
    """host_set_link by QEMU netdev id (n0, n1, ...): for a NIC that was moved into another network
    namespace, where this namespace's /sys/class/net no longer shows it (map it with nic_netdev first).
    `irq`: the NIC's config interrupt (config_irq), watched for `t_irq`."""
    import json
    import time

    d = os.environ.get("KTEST_LINKCTL")
    if not d or not Path(d).parent.is_dir():
        raise HostLinkError("this guest has no host link control (KTEST_LINKCTL unset)")
    Path(d).mkdir(exist_ok=True)
    _link_seq[0] += 1
    n = f"{os.getpid()}-{_link_seq[0]}"
    req, ack = Path(d) / f"{n}.req", Path(d) / f"{n}.ack"
    watch = _IrqWatch(irq) if irq is not None else None
    t0 = time.monotonic()
    tmp = Path(d) / f"{n}.tmp"
    tmp.write_text(json.dumps({"netdev": netdev, "up": up}))
    os.replace(tmp, req)
    try:
        while not ack.exists():
            if time.monotonic() - t0 > timeout:
                raise HostLinkError(f"the host did not answer a link request within {timeout:.0f}s")
            time.sleep(0.001)
        t1 = time.monotonic()
    finally:
        t_irq = watch.stop(time.monotonic()) if watch else None
    ans = json.loads(ack.read_text())
    ack.unlink(missing_ok=True)
    if not ans.get("ok"):
        raise HostLinkError(ans.get("error") or "the host could not set the link")
    return {**ans, "request_ms": (t1 - t0) * 1000.0, "t_request": t0, "t_ack": t1, "t_irq": t_irq}


def uptime_s() -> float:
    return float(Path("/proc/uptime").read_text().split()[0])


# --- network namespaces, in-process ----------------------------------------------------------------

CLONE_NEWNET = 0x40000000


class netns:
    """`with netns("kt_sw"):` runs the block in that network namespace (setns on /run/netns/NAME);
    sockets created inside stay bound to it after the block.  Not thread-safe: it switches the
    calling thread."""

    def __init__(self, name: str) -> None:
        self.name = name

    def __enter__(self) -> netns:
        import ctypes

        self.libc = ctypes.CDLL(None, use_errno=True)
        self.home = os.open("/proc/self/ns/net", os.O_RDONLY)
        fd = os.open(f"/run/netns/{self.name}", os.O_RDONLY)
        try:
            if self.libc.setns(fd, CLONE_NEWNET) != 0:
                raise OSError(ctypes.get_errno(), f"setns({self.name})")
        finally:
            os.close(fd)
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            if self.libc.setns(self.home, CLONE_NEWNET) != 0:
                import ctypes

                raise OSError(ctypes.get_errno(), "setns(back)")
        finally:
            os.close(self.home)


# --- kernel timestamps via the printk ring buffer --------------------------------------------------

class KMsg:
    """Kernel timestamps without kprobes: a marker written to /dev/kmsg and the kernel's own log lines
    (e.g. bonding's "making interface the new active one") carry the same printk clock, in us.
    Needs printk.devkmsg=on (ktest boots with it) so markers are not rate limited."""

    def __init__(self) -> None:
        self.fd = os.open("/dev/kmsg", os.O_RDWR | os.O_NONBLOCK)
        os.lseek(self.fd, 0, os.SEEK_END)

    def mark(self, text: str) -> None:
        os.write(self.fd, f"ktest: {text}".encode())

    def read(self) -> list[tuple[float, str]]:
        """New records since the last read: [(t_ms, message)]."""
        out: list[tuple[float, str]] = []
        while True:
            try:
                rec = os.read(self.fd, 8192).decode(errors="replace")
            except BlockingIOError:
                return out
            except BrokenPipeError:  # overwritten records: skip ahead
                continue
            head, _, msg = rec.partition(";")
            fields = head.split(",")
            if len(fields) >= 3:
                out.append((int(fields[2]) / 1000.0, msg.split("\n", 1)[0]))

    @staticmethod
    def interval(records: list[tuple[float, str]], start: str, end: str) -> float | None:
        """ms from the first record containing `start` to the first later one containing `end`."""
        t0 = next((t for t, m in records if start in m), None)
        if t0 is None:
            return None
        t1 = next((t for t, m in records if t >= t0 and end in m), None)
        return None if t1 is None else t1 - t0

    def close(self) -> None:
        os.close(self.fd)
