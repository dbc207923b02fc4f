"""Real boots of the default tree's base kernel under virtme-ng (KVM where it works, else TCG)."""

from pathlib import Path

import pytest

from ktest.host.build import Builder
from ktest.base.cache import Cache
from ktest.boot.checks import run_checks
from ktest.base.progress import Progress
from ktest.host.tree import debian_tree
from ktest.base.result import Result
from results import judged, minimal

R = Result.from_json

pytestmark = pytest.mark.kernel
HERE = __import__("pathlib").Path(__file__).parent


@pytest.fixture(scope="module")
def base_kernel():
    cache = Cache.open()
    tree = debian_tree(cache, "6.12")
    build = Builder(cache, tree, progress=Progress(interval=60)).build(tree.base, "base")
    return cache, tree, build


def test_boot_runs_smoke_checks_and_returns_structured_results(base_kernel, tmp_path):
    cache, tree, build = base_kernel
    run = run_checks(cache, build.bzimage, tmp_path / "boot", label="base",
                     paths=[HERE.parent / "testcases" / "test_smoke.py"], progress=Progress(interval=60))
    assert run.boot.outcome == "ok", run.boot.console_log.read_text()[-3000:]
    assert {r["path"]: r["status"] for r in run.results} == {
        "smoke.virtio_nics_present": "PASS", "smoke.guest_basics": "PASS"}
    basics = next(r for r in run.results if r["path"] == "smoke.guest_basics")
    assert basics["metrics"][0]["unit"] == "ms" and basics["metrics"][0]["n"] == 1
    assert run.env["kernel_release"].startswith(tree.version)  # "+": setlocalversion, untagged build
    assert run.env["accel"] in ("kvm", "tcg") and run.env["clocksource"]
    assert run.started["uptime_at_harness_s"] > 0 and run.finished["pytest_exit"] == 0
    assert run.splats == []
    # the host read its QEMU's threads while the checks ran, and cut the wait into each check's window
    assert 0.0 <= run.env["host_wait_share"] <= 1.0
    assert all(0.0 <= r["host_wait_share"] <= 1.0 for r in run.results), run.results


def test_crash_mid_run_keeps_results_and_splats(base_kernel, tmp_path):
    cache, _, build = base_kernel
    run = run_checks(cache, build.bzimage, tmp_path / "crash", label="base",
                     paths=[HERE / "guest_cases" / "test_crash_selftest.py"], progress=Progress(interval=60))
    assert run.boot.outcome == "panic" and run.boot.attempts == 1
    assert [r["status"] for r in run.results] == ["PASS", "PASS"], "results written before the panic survive"
    kinds = [s.kind for s in run.splats]
    assert "warning" in kinds and kinds[-1] == "panic"
    warn = next(s for s in run.splats if s.kind == "warning")
    assert warn.fingerprint.startswith("warning:lkdtm_WARNING")
    assert run.crashed


def test_6_1_boots_and_skips_the_bounce_for_a_stated_reason(tmp_path):
    """Debian's 6.1, built and booted for real: it finds vng's 9p root only as root=/dev//dev/root (ktest
    learns that from its console), and its virtio_net does not sync the carrier in ndo_open/ndo_stop, so
    the virtio bounce skips with that reason while the dummy-carrier scenario runs."""
    cache = Cache.open()
    tree = debian_tree(cache, "6.1")
    build = Builder(cache, tree, progress=Progress(interval=60)).build(tree.base, "base")
    run = run_checks(cache, build.bzimage, tmp_path / "boot", label="6.1", reps=1,
                     paths=[HERE.parent / "testcases" / "linkwatch"], expr="gap_0.1s or dummy",
                     progress=Progress(interval=60))
    assert run.boot.outcome == "ok", run.boot.console_log.read_text()[-3000:]
    assert run.env["kernel_release"].startswith("6.1.")
    st = {r["path"]: r for r in run.results}
    bounce = st["linkwatch.operstate.virtio_bounce.gap_0_1s"]
    assert bounce["status"] == "SKIP" and "ndo_open/ndo_close" in bounce["message"], bounce
    assert st["linkwatch.operstate.dummy_carrier"]["status"] == "PASS"


def _procs_mentioning(text: str) -> list[int]:
    import os
    out = []
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                if text in open(f"/proc/{pid}/cmdline", "rb").read().decode(errors="replace"):
                    out.append(int(pid))
            except OSError:
                pass
    return out


@pytest.mark.parametrize("sig", ["SIGTERM", "SIGHUP"])
def test_sigterm_mid_boot_kills_the_guest_and_exits_130(base_kernel, tmp_path, sig):
    """`timeout`, CI cancellation and systemd send SIGTERM: ktest ends like Ctrl-C, one line, exit 130,
    and no vng/qemu of its guest outlives it."""
    import signal
    import subprocess
    import sys
    import time
    cache, _, build = base_kernel
    out = tmp_path / "boot"
    p = subprocess.Popen([sys.executable, "-m", "ktest", "boot", "--bzimage", str(build.bzimage), "--out", str(out),
                          "--testcases", str(HERE.parent / "testcases" / "linkwatch"), "--accel", "tcg"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not _procs_mentioning(str(out)) or not list(out.glob("**/vng-cmd.txt")):
        assert time.monotonic() < deadline and p.poll() is None, "the guest never started"
        time.sleep(0.5)
    time.sleep(3)                      # mid-boot
    p.send_signal(getattr(signal, sig))
    _, err = p.communicate(timeout=60)
    assert p.returncode == 130, err
    lines = [l for l in err.splitlines() if "interrupted" in l]
    assert len(lines) == 1 and "Traceback" not in err, err
    time.sleep(1)
    assert _procs_mentioning(str(out)) == [], "a vng/qemu process of the guest outlived ktest"


def test_an_oops_then_a_hang_ends_the_boot_and_leads_the_summary(base_kernel, tmp_path):
    """Base runs the self-test's checks around the Oops; "patched" (the same kernel) runs the check that
    oopses and hangs too.  The boot ends soon after the Oops, and the summary's first line names the
    Oops, its function and the check it happened in; the check after it is not run, not a regression."""
    from ktest.report.outputs import render_summary

    cache, tree, build = base_kernel
    case = [HERE / "guest_cases" / "test_oops_hang.py"]
    base = run_checks(cache, build.bzimage, tmp_path / "base", label="base-1", paths=case,
                      expr="not oops_then_hang", progress=Progress(interval=60))
    patched = run_checks(cache, build.bzimage, tmp_path / "patched", label="patched-1", paths=case,
                         progress=Progress(interval=60))
    b = patched.boot
    print(f"\nbase boot {base.boot.duration_s:.1f}s ({base.boot.outcome}); crashed boot {b.duration_s:.1f}s "
          f"({b.outcome}, harness at {b.started_after_s:.1f}s): {b.ended_because}")
    assert base.boot.outcome == "ok" and [r["status"] for r in base.results] == ["PASS", "PASS"]
    assert b.outcome == "crash" and b.attempts == 1, b.console_log.read_text()[-3000:]
    assert b.ended_because.startswith("oops on the console")
    # outcome "crash" (not "idle-timeout") is the early end: the crash rule ended it, not a timeout
    c = patched.crash
    assert c.fingerprint.startswith("oops:lkdtm_EXCEPTION") and c.during.endswith("oops_hang.b_oops_then_hang")
    assert c.not_run == [c.during.replace("b_oops_then_hang", "c_never_runs")]
    result = minimal(series={"name": "oops-hang-selftest", "patches": [], "expected": None},
                     tree={"name": tree.name, "base_rev": tree.base_rev}, run_id="kernel-test", env=patched.env)
    result = judged(result, [base.to_json()], [patched.to_json()])
    summary = render_summary(R(result))
    print(summary)
    first = summary.splitlines()[0]
    assert "**regression**" in first and "oopsed in lkdtm\\_EXCEPTION" in first
    assert "during check " in first and "oops\\_hang.b\\_oops\\_then\\_hang" in first
    assert "1 check not run after it" in first
    assert result["verdict"]["regressions"] == [f"new oops: {c.fingerprint}"]


def test_a_reproduce_command_boots_that_build_and_runs_just_that_check(base_kernel, tmp_path):
    """The command a report prints for a changed check, run as a user would (from elsewhere)."""
    import json
    import os
    import subprocess
    import sys

    cache, _, build = base_kernel
    p = subprocess.run([sys.executable, "-m", "ktest", "boot", "--build", build.key, "--testcases",
                        "testcases/test_smoke.py::test_guest_basics", "--reps", "1", "--out", str(tmp_path / "b"),
                        "--json"], cwd=tmp_path, capture_output=True, text=True, timeout=900,
                       env=dict(os.environ, PYTHONPATH=str(HERE.parent)))
    assert p.returncode == 0, p.stderr[-2000:]
    run = json.loads(p.stdout)
    assert [(r["id"], r["status"]) for r in run["results"]] == [("testcases/test_smoke.py::test_guest_basics", "PASS")]


def test_an_upstream_selftest_runs_through_the_kselftest_runner_and_its_ktap_is_read(base_kernel, tmp_path):
    """The referee on the real kernel: the tree's bond-eth-type-change.sh (its two cases, about 10 s under
    TCG) through the tree's kselftest runner, exported with the build; its KTAP is kept and read."""
    cache, _, build = base_kernel
    node = "testcases/bonding/test_upstream.py::test_kselftest[bond-eth-type-change.sh]"
    run = run_checks(cache, build.bzimage, tmp_path / "boot", label="base", paths=[HERE.parent / node], reps=1,
                     progress=Progress(interval=60))
    got = {r["path"].rpartition("kselftest.")[2]: r["status"] for r in run.results}
    assert got == {"bond-eth-type-change_sh": "PASS",
                   "bond-eth-type-change_sh.Change_ether_type_of_an_enslaved_bond_device_with_unsuccessful_enslave": "PASS",
                   "bond-eth-type-change_sh.Change_ether_type_of_an_enslaved_bond_device_with_successful_enslave": "PASS"}
    kept = next((tmp_path / "boot" / "rw" / "files").glob("*/bond-eth-type-change.sh.ktap")).read_text()
    assert kept.startswith("TAP version 13\n1..1\n") and "# TEST: Change ether type" in kept
    assert run.results[0]["notes"]["ktap"] == "PASS" and run.results[0]["notes"]["timeout_s"] == 1200


def _ours(marker: str) -> list[str]:
    """Processes whose command line names `marker` (a boot's own rw directory)."""
    out = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                cmd = (d / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue
            if marker in cmd:
                out.append(cmd[:200])
    return out


def test_a_guest_that_dies_with_a_link_cut_leaves_nothing_behind(base_kernel, tmp_path):
    import os
    import tempfile
    import threading

    cache, _, build = base_kernel
    out = tmp_path / "cut-panic"
    run = run_checks(cache, build.bzimage, out, label="base",
                     paths=[HERE / "guest_cases" / "test_cut_then_panic.py"], progress=Progress(interval=60))
    assert run.boot.outcome == "panic" and run.boot.infra_error is None
    assert [r["status"] for r in run.results][:1] == ["PASS"], "the host cut the link before the panic"
    assert not _ours(str(out)), "no vng or QEMU of that boot is left"
    assert not list(Path(tempfile.gettempdir()).glob(f"ktest-qmp-{os.getpid()}-*")), "its QMP directory went"
    assert not [t for t in threading.enumerate() if t.name == "ktest-linkctl"], "its link agent ended"


def test_a_monitor_socket_that_cannot_be_opened_is_an_infrastructure_error(base_kernel, tmp_path, monkeypatch,
                                                                           capsys):
    """QEMU started without its QMP socket (as if it could not be created): the check that asks for a
    link change is ERROR "infrastructure: ...", not a kernel failure; the boot records the machine's
    error and ktest says so in one warning line."""
    from ktest.boot import vm

    real = vm.vng_command

    def without_qmp(spec, qmp=None):
        return real(spec, None)

    monkeypatch.setattr(vm, "vng_command", without_qmp)
    cache, _, build = base_kernel
    run = run_checks(cache, build.bzimage, tmp_path / "noqmp", label="base",
                     paths=[HERE / "guest_cases" / "test_link_request.py"], progress=Progress(interval=60))
    (r,) = run.results
    assert r["status"] == "ERROR" and r["message"].startswith("infrastructure: "), r
    assert "cannot open QEMU's monitor socket" in r["message"]
    assert "cannot open QEMU's monitor socket" in (run.boot.infra_error or "")
    err = capsys.readouterr().err
    assert "infra error [link-control]" in err and "cannot open QEMU's monitor socket" in err
