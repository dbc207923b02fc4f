"""`ktest shell`: an interactive guest with a check area's topology already set up, to poke at a failing
check by hand.  The topologies are built by the checks' own code (bondlib.BondTopo, guestlib), so what
the shell shows is what the checks ran on.

vng runs without --exec: its init starts our script as the root shell (`--shell`) on the console, the
script builds the topology and then runs an interactive bash.  Leaving that bash (Ctrl-D, `exit`)
powers the guest off.  vng and QEMU run in a process group of their own that is the terminal's
foreground group while the guest runs; on the way out (also on SIGTERM) the group is killed and the
terminal's settings are restored, so nothing is left running and the terminal is not left raw.
"""

from __future__ import annotations

import os
import shlex
import signal
import subprocess
import sys
import sysconfig
from dataclasses import dataclass
from pathlib import Path

from ktest.base.home import ROOT as PROJECT
from ktest.base.home import TESTCASES
PROMPT = "ktest-shell# "


@dataclass(frozen=True)
class Topology:
    name: str
    what: str                      # one line: what is set up
    setup: str | None              # Python run in the guest before the shell (PYTHONPATH: ktest, bondlib)
    try_: tuple[str, ...] = ()     # commands worth typing first


TOPOLOGIES = {t.name: t for t in (
    Topology("none", "nothing set up: the two virtio-net NICs as booted", None,
             ("ip -br link", "cat /sys/class/net/*/operstate")),
    Topology("virtio", "the linkwatch NICs: both virtio-net NICs admin up (operstate is passive to read; "
             "`ip link show dev X` and /sys/class/net/X/carrier force a linkwatch sync)",
             "from ktest.guest.lib import virtio_nics, ip_batch\n"
             "ip_batch(None, [f'link set {n} up' for n in virtio_nics()])\n",
             ("ip -br link", "cat /sys/class/net/*/operstate", "ip monitor link")),
    Topology("bond", "bonding: kb0 active-backup (miimon 10) over s0 s1 s2 in netns kt_h1; their veth peers "
             "p0-p2 on bridge br0 in kt_sw, with kt_h2 (192.0.2.2) behind it",
             "import bondlib\nbondlib.BondTopo().__enter__()\n",
             ("ip netns exec kt_h1 cat /proc/net/bonding/kb0", "ip -n kt_sw link set p0 down",
              "ip netns exec kt_h1 ping -c 3 192.0.2.2")),
    Topology("bond-lacp", "bonding: kb0 802.3ad (lacp_rate fast, miimon 10) over s0 s1 s2 in netns kt_h1, "
             "peers on br0 in kt_sw (a bridge does not speak LACP: each slave is its own aggregator)",
             "import bondlib\nbondlib.BondTopo(mode='802.3ad', opts='lacp_rate fast').__enter__()\n",
             ("ip netns exec kt_h1 cat /proc/net/bonding/kb0",)),
)}


def guest_script(rwdir: Path, topo: Topology) -> Path:
    """rwdir/shell.sh: set up the topology, say what is there, then an interactive bash."""
    pypath = os.pathsep.join([str(PROJECT), str(TESTCASES / "bonding"),
                              sysconfig.get_paths()["purelib"]])
    lines = ["#!/bin/bash",
             "export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
             f"export PYTHONPATH={shlex.quote(pypath)} PYTHONDONTWRITEBYTECODE=1",
             "cd /root 2>/dev/null || cd /"]
    if topo.setup:
        lines += [f"if ! {shlex.quote(sys.executable)} -S -c {shlex.quote(topo.setup)}; then",
                  f"  echo 'ktest shell: setting up the {topo.name} topology failed (the shell is yours anyway)'",
                  "fi"]
    lines += [f"echo {shlex.quote(f'ktest shell: {topo.name}: {topo.what}')}",
              *(f"echo {shlex.quote('  try: ' + c)}" for c in topo.try_),
              "echo 'ktest shell: Ctrl-D or exit leaves (the guest powers off)'",
              f"export PS1={shlex.quote(PROMPT)}",
              "exec bash --norc --noprofile -i", ""]
    script = rwdir / "shell.sh"
    script.write_text("\n".join(lines))
    script.chmod(0o755)
    return script


def command(bzimage: Path, rwdir: Path, topo: Topology, accel: str) -> list[str]:
    """vng's command line: as for checks (same kernel arguments, NICs, 9p root, lean udev rules), but
    interactive: our script as the shell instead of --exec, and no console copy on stderr."""
    from ktest.boot.vm import BootSpec, lean_udev_rules, vng_command

    spec = BootSpec(bzimage=bzimage, command="", rwdir=rwdir, accel=accel,
                    udev_rules=lean_udev_rules(rwdir / "udev-rules.d"))
    cmd = vng_command(spec)
    cmd = cmd[:cmd.index("--exec")]
    cmd.remove("-v")
    return cmd + ["--shell", str(guest_script(rwdir, topo))]


def run(bzimage: Path, rwdir: Path, topo: Topology, accel: str) -> int:
    """Run the guest on this terminal until its shell ends; return vng's exit code."""
    import termios

    from ktest.boot.vm import vng_env

    tty = sys.stdin.fileno()
    saved = termios.tcgetattr(tty)
    proc = subprocess.Popen(command(bzimage, rwdir, topo, accel), env=vng_env(), process_group=0)
    old_ttou = signal.signal(signal.SIGTTOU, signal.SIG_IGN)   # tcsetpgrp from the background
    try:
        os.tcsetpgrp(tty, proc.pid)           # the guest's group reads the terminal (QEMU's stdio)
        return proc.wait()
    finally:
        from ktest.base.proc import kill_group

        if proc.poll() is None or _group_alive(proc.pid):
            kill_group(proc, grace=5.0)
        os.tcsetpgrp(tty, os.getpgrp())
        termios.tcsetattr(tty, termios.TCSANOW, saved)
        signal.signal(signal.SIGTTOU, old_ttou)


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
        return True
    except ProcessLookupError:
        return False
