"""Timeouts, retries and cleanup of the vng launcher, against a fake vng (no VM)."""

import os
import tempfile
import time
from pathlib import Path

import pytest

from ktest.boot.checks import run_checks
from ktest.boot.vm import BootSpec, boot, boot_with_retry, vng_command
from ktest.base.progress import Silent

FAKE = Path(__file__).parent / "fakevng.py"


@pytest.fixture
def fake_vng(monkeypatch, tmp_path):
    monkeypatch.setenv("KTEST_VNG", str(FAKE))
    pids = tmp_path / "pids"
    monkeypatch.setenv("FAKE_VNG_PIDS", str(pids))
    return pids


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie is dead for our purposes
    stat = Path(f"/proc/{pid}/stat")
    return stat.exists() and stat.read_text().split(") ")[1][0] != "Z"


def spec(tmp_path, **kw):
    return BootSpec(bzimage=tmp_path / "bzImage", command="true", rwdir=tmp_path / "rw", **kw)


def test_command_line_is_non_interactive_and_captures_console(tmp_path, fake_vng):
    cmd = vng_command(spec(tmp_path, accel="tcg"))
    for flag in ("--skip-modules", "--force-9p", "--no-dhcp", "-v", "--disable-kvm", "--exec"):
        assert flag in cmd
    assert cmd[cmd.index("--network") + 1] == "loop" and cmd[cmd.index("--user") + 1] == "root"
    assert "--disable-kvm" not in vng_command(spec(tmp_path, accel="kvm"))


def test_the_guest_skips_the_io_apic_timer_check_under_either_accel(tmp_path):
    """A starved TCG vCPU fails early boot's IO-APIC timer check and panics before the harness (seen
    under load, and judged the patched kernel's crash); KVM guests skip that check by themselves."""
    for accel in ("tcg", "kvm"):
        cmd = vng_command(spec(tmp_path, accel=accel))
        assert "no_timer_check" in cmd[cmd.index("--append") + 1].split(), accel


def test_ok(tmp_path, fake_vng, monkeypatch):
    monkeypatch.setenv("FAKE_VNG_MODE", "ok")
    r = boot(spec(tmp_path), tmp_path / "log", Silent())
    assert r.outcome == "ok" and r.exit_code == 0 and r.started_after_s is not None
    assert "Linux version" in r.console_log.read_text()


def test_kernel_that_strips_dev_from_root_gets_the_other_spelling_once(tmp_path, fake_vng, monkeypatch):
    monkeypatch.setenv("FAKE_VNG_MODE", "root-stripped")
    monkeypatch.setenv("FAKE_VNG_LOG", str(tmp_path / "appends"))
    (tmp_path / "bzImage").write_text("a 6.1 kernel")
    r = boot(spec(tmp_path), tmp_path / "log", Silent())
    assert r.outcome == "ok" and "9pnet_virtio" not in r.console_log.read_text()
    assert "no channels available" in (tmp_path / "log" / "console-root-not-found.log").read_text()
    r2 = boot(spec(tmp_path), tmp_path / "log2", Silent())
    assert r2.outcome == "ok"
    tried = [("root=/dev//dev/root" in l, "root=/dev/root " in l) for l in (tmp_path / "appends").read_text().splitlines()]
    assert tried == [(False, True), (True, False), (True, False)], "the second boot goes straight to what worked"


def test_boot_timeout_kills_whole_group(tmp_path, fake_vng, monkeypatch):
    monkeypatch.setenv("FAKE_VNG_MODE", "hang")
    r = boot(spec(tmp_path, boot_timeout=2.0), tmp_path / "log", Silent())
    assert r.outcome == "boot-timeout" and r.exit_code is None and r.infra_failure
    vng_pid, qemu_pid = map(int, fake_vng.read_text().split())
    time.sleep(0.2)
    assert not alive(vng_pid) and not alive(qemu_pid), "no qemu may outlive ktest"


def test_idle_timeout_after_harness_started(tmp_path, fake_vng, monkeypatch):
    monkeypatch.setenv("FAKE_VNG_MODE", "stall")
    r = boot(spec(tmp_path, boot_timeout=30, idle_timeout=2.0), tmp_path / "log", Silent())
    assert r.outcome == "idle-timeout" and r.started_after_s is not None and not r.infra_failure
    _, qemu_pid = map(int, fake_vng.read_text().split())
    assert not alive(qemu_pid)


def test_hard_cap(tmp_path, fake_vng, monkeypatch):
    monkeypatch.setenv("FAKE_VNG_MODE", "stall")
    r = boot(spec(tmp_path, boot_timeout=30, idle_timeout=30, hard_timeout=2.0), tmp_path / "log", Silent())
    assert r.outcome == "hard-timeout"


def test_qemu_died_is_retried_once_and_recorded(tmp_path, fake_vng, monkeypatch):
    monkeypatch.setenv("FAKE_VNG_MODE", "die")
    r = boot_with_retry(spec(tmp_path), tmp_path / "log", Silent())
    assert r.outcome == "qemu-died" and r.attempts == 2 and r.retried_because == "qemu-died"
    assert (tmp_path / "log" / "attempt-1" / "console.log").exists()


def test_panic_mid_run_keeps_results_and_the_crash(tmp_path, fake_vng, monkeypatch, cache):
    monkeypatch.setenv("FAKE_VNG_MODE", "panic")
    run = run_checks(cache, tmp_path / "bzImage", tmp_path / "out", accel="tcg", progress=Silent())
    assert run.boot.outcome == "panic" and run.boot.attempts == 1, "a panic after start is not retried"
    assert [r["path"] for r in run.results] == ["smoke.a"]
    assert run.crashed and run.splats[0].kind == "panic"
    assert run.splats[0].fingerprint == "panic:__handle_sysrq/write_sysrq_trigger"
    assert (tmp_path / "out" / "guest-run.json").exists()


def test_ctrl_c_kills_group(tmp_path, fake_vng, monkeypatch):
    import signal
    import subprocess
    import sys

    code = ("import sys; from pathlib import Path; from ktest.boot.vm import BootSpec, boot; "
            "boot(BootSpec(bzimage=Path('x'), command='true', rwdir=Path(sys.argv[1])), Path(sys.argv[2]))")
    env = dict(os.environ, FAKE_VNG_MODE="hang")
    p = subprocess.Popen([sys.executable, "-c", code, str(tmp_path / "rw"), str(tmp_path / "log")], env=env,
                         stderr=subprocess.PIPE, text=True)
    for _ in range(100):
        if fake_vng.exists() and fake_vng.read_text().strip():
            break
        time.sleep(0.1)
    p.send_signal(signal.SIGINT)
    p.wait(timeout=20)
    vng_pid, qemu_pid = map(int, fake_vng.read_text().split())
    time.sleep(0.2)
    assert not alive(vng_pid) and not alive(qemu_pid)


POOL_SCRIPT = """
import signal, sys
from pathlib import Path
from ktest.boot import pool
from ktest.boot import vm
from ktest.cli import _terminate
from ktest.base.progress import Silent

signal.signal(signal.SIGTERM, _terminate)
out = Path(sys.argv[1])

def runner(cache, bz, outdir, *, label, progress, **kw):
    spec = vm.BootSpec(bzimage=bz, command="true", rwdir=outdir / "rw", boot_timeout=600)
    return vm.boot_with_retry(spec, outdir / "log", progress, label)

jobs = [pool.BootJob(f"j{i}", Path("x"), out / f"j{i}", f"j{i}") for i in range(2)]
pool.run_jobs(None, jobs, 2, Silent(), runner=runner)
"""


def test_a_second_sigterm_during_cleanup_still_leaves_no_guest_and_starts_no_retry(tmp_path, fake_vng, monkeypatch):
    """Seen for real: `kill` sent SIGTERM to ktest and to its process group, so the second one landed
    while the pool was still killing guests; that cleanup was cut short, the guests lived on, ktest never
    exited, and a boot whose guest died under it was retried.  Every boot loop now watches an abort flag."""
    import signal
    import subprocess
    import sys

    script = tmp_path / "pool_run.py"
    script.write_text(POOL_SCRIPT)
    env = dict(os.environ, FAKE_VNG_MODE="hang", FAKE_VNG_IGNORE_TERM="1")
    p = subprocess.Popen([sys.executable, str(script), str(tmp_path / "out")], env=env,
                         stderr=subprocess.PIPE, text=True)
    for _ in range(200):
        if fake_vng.exists() and len(fake_vng.read_text().split()) == 4:
            break
        time.sleep(0.1)
    pids = [int(x) for x in fake_vng.read_text().split()]
    assert len(pids) == 4, "both guests started"
    try:
        p.send_signal(signal.SIGTERM)
        time.sleep(0.5)               # inside the 3 s in which the pool waits for the guests to go
        p.send_signal(signal.SIGTERM)
        p.wait(timeout=30)
        time.sleep(0.2)
        left = [pid for pid in pids if alive(pid)]
    finally:                          # a failing run must not leave its stand-ins behind
        p.kill()
        for pid in pids[::2]:
            try:
                os.killpg(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
    assert left == [], "no guest outlives ktest"
    assert not list((tmp_path / "out").rglob("attempt-2")), "no boot is retried after an interruption"


def _image(path: Path) -> Path:
    """Bytes with the x86 boot header's magic where a bzImage has it (fake vng boots anything)."""
    head = bytearray(0x400)
    head[0x202:0x206] = b"HdrS"
    path.write_bytes(bytes(head))
    return path


def test_a_bad_image_or_a_panicking_kernel_never_decides_the_hosts_kvm_answer(tmp_path, fake_vng, monkeypatch,
                                                                               cache):
    from ktest.base.errors import NotABzImage
    from ktest.boot.vm import probe_kvm

    if not os.access("/dev/kvm", os.R_OK | os.W_OK):
        pytest.skip("the probe boots only where /dev/kvm opens")
    probe = cache.root / "kvm-probe.json"
    text = tmp_path / "hostname"
    text.write_text("myhost\n")
    with pytest.raises(NotABzImage):
        probe_kvm(cache, text, Silent())
    assert not probe.exists()
    monkeypatch.setenv("FAKE_VNG_MODE", "panic")
    ok, reason = probe_kvm(cache, _image(tmp_path / "bzImage"), Silent())
    assert not ok and "not cached" in reason and not probe.exists(), "the kernel's panic is not KVM's failure"
    monkeypatch.setenv("FAKE_VNG_MODE", "ok")
    assert probe_kvm(cache, tmp_path / "bzImage", Silent())[0] and probe.exists()


def test_link_control_gives_the_guest_a_qmp_socket_and_leaves_nothing(tmp_path, fake_vng, monkeypatch):
    """Each argument of its own (vng's --qemu-opts would swallow the rest of the command line), in a
    private directory short enough for a unix socket path, removed with the boot."""
    cmd = vng_command(spec(tmp_path), tmp_path / "q.sock")
    assert cmd[cmd.index("--qemu-opt=-qmp") + 1] == f"--qemu-opt=unix:{tmp_path / 'q.sock'},server=on,wait=off"
    assert cmd.index("--qemu-opt=-qmp") < cmd.index("--exec")
    monkeypatch.setenv("FAKE_VNG_MODE", "ok")
    before = set(Path(tempfile.gettempdir()).glob("ktest-qmp-*"))
    r = boot(spec(tmp_path, link_control=True), tmp_path / "log", Silent())
    used = (tmp_path / "log" / "vng-cmd.txt").read_text()
    assert r.outcome == "ok" and "-qmp" in used and len(used.split("unix:")[1].split(",")[0]) < 108
    assert set(Path(tempfile.gettempdir()).glob("ktest-qmp-*")) == before
    assert (tmp_path / "rw" / "link").is_dir(), "the request directory the guest writes to"


def test_qmp_dirs_of_killed_ktest_processes_are_reaped(tmp_path):
    """A SIGKILL runs no clean-up: the next boot removes the directories whose owner pid is gone."""
    import subprocess
    import sys

    from ktest.boot.vm import reap_qmp_dirs

    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True).stdout.strip()
    (tmp_path / f"ktest-qmp-{dead}-abc").mkdir()
    (tmp_path / f"ktest-qmp-{os.getpid()}-def").mkdir()
    (tmp_path / "ktest-qmp-old").mkdir()
    assert reap_qmp_dirs(tmp_path) == [tmp_path / f"ktest-qmp-{dead}-abc"]
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"ktest-qmp-{os.getpid()}-def", "ktest-qmp-old"]


def test_extra_nics_join_the_loop_hub_after_vngs_pair(tmp_path, fake_vng):
    """ktest's third NIC is a hubport on vng's loop hub 0, numbered after n0/n1 (so the n-th virtio NIC
    by PCI slot is netdev n<n>, which nic_netdev assumes), each QEMU word its own --qemu-opt."""
    from dataclasses import replace

    cmd = vng_command(replace(spec(tmp_path), extra_nics=2))
    opts = [a.removeprefix("--qemu-opt=") for a in cmd if a.startswith("--qemu-opt=")]
    assert opts == ["-netdev", "hubport,id=n2,hubid=0", "-device", "virtio-net-pci,netdev=n2",
                    "-netdev", "hubport,id=n3,hubid=0", "-device", "virtio-net-pci,netdev=n3"]
    assert cmd[cmd.index("--network") + 1] == "loop"
    assert not any(a.startswith("--qemu-opt=") for a in vng_command(spec(tmp_path)))
