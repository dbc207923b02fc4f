"""An installed ktest (`pip install .` into a fresh venv, run from outside the checkout) finds its checks
(share/ktest/testcases, ktest/base/home.py) and runs them in a guest: here a fake vng that runs the guest's
command on the host, so the installed harness collects and runs the real smoke checks (no VM)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
FAKE = Path(__file__).parent / "fakevng.py"


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    d = tmp_path_factory.mktemp("installed")
    venv = d / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    p = subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "-q", str(ROOT)], cwd=d,
                       capture_output=True, text=True, timeout=900)
    assert p.returncode == 0, p.stdout[-2000:] + p.stderr[-3000:]
    return d, venv


def test_the_installed_package_knows_where_its_checks_are(installed):
    d, venv = installed
    p = subprocess.run([str(venv / "bin" / "python"), "-c",
                        "import ktest, ktest.base.home as h; print(ktest.__file__); print(h.TESTCASES)"],
                       cwd=d, capture_output=True, text=True, check=True)
    pkg, tc = p.stdout.split()
    assert Path(pkg).is_relative_to(venv) and not Path(pkg).is_relative_to(ROOT), "not the checkout's ktest"
    assert Path(tc) == venv / "share" / "ktest" / "testcases"
    for f in ("test_smoke.py", "linkwatch/test_operstate.py", "linkwatch/lwbench.py", "bonding/bondlib.py"):
        assert (Path(tc) / f).read_text() == (ROOT / "testcases" / f).read_text(), f


def test_the_installed_ktest_boot_runs_its_checks(installed):
    d, venv = installed
    bz = d / "bzImage"
    head = bytearray(1024)
    head[0x202:0x206] = b"HdrS"             # the x86 boot header magic, all ktest checks of an image
    bz.write_bytes(bytes(head))
    env = dict(os.environ, KTEST_VNG=str(FAKE), FAKE_VNG_MODE="run", PATH=f"{venv / 'bin'}:/usr/bin:/bin")
    env.pop("PYTHONPATH", None)
    tc = venv / "share" / "ktest" / "testcases" / "test_smoke.py"
    p = subprocess.run([str(venv / "bin" / "ktest"), "boot", "--bzimage", str(bz), "--accel", "tcg",
                        "--cache", str(d / "cache"), "--out", str(d / "out"), "--testcases", str(tc)],
                       cwd=d, env=env, capture_output=True, text=True, timeout=300)
    results = [json.loads(line) for line in (d / "out" / "rw" / "results.jsonl").read_text().splitlines()] \
        if (d / "out" / "rw" / "results.jsonl").exists() else []
    assert {r["path"] for r in results} == {"smoke.virtio_nics_present", "smoke.guest_basics"}, \
        p.stdout[-2000:] + p.stderr[-2000:]
    # node ids relative to the checks' root, as in a checkout
    assert {r["id"] for r in results} == {"testcases/test_smoke.py::test_virtio_nics_present",
                                          "testcases/test_smoke.py::test_guest_basics"}
