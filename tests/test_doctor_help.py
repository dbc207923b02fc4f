"""A CLI that teaches: `ktest --help` says what ktest is and lists the commands in the order a user
meets them; every command's help ends with examples.  `ktest doctor` says whether the machine is
ready, one line per item with a fix, exit 0 or 2."""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from ktest import cli
from ktest import doctor
from ktest.base.cache import Cache

PROJECT = Path(__file__).resolve().parent.parent


def ktest(*args, env=None):
    return subprocess.run([sys.executable, "-m", "ktest", *args], capture_output=True, text=True, cwd=PROJECT,
                          env=dict(os.environ, COLUMNS="120", **(env or {})), timeout=60)


def commands() -> list[str]:
    sub = next(a for a in cli.parser()._actions if a.dest == "cmd")
    return list(sub.choices)


def test_top_help_says_what_ktest_is_and_lists_commands_in_the_order_a_user_meets_them():
    p = ktest("--help")
    assert p.returncode == 0
    lines = p.stdout.splitlines()
    what = next(l for l in lines[1:] if l.strip())
    assert what.startswith("ktest: test a Linux kernel patch series for regressions"), what
    listed = [m.group(1) for m in re.finditer(r"^    (\w+)\s{2,}", p.stdout, re.M)]
    assert listed == cli.ORDER and sorted(listed) == sorted(commands())
    assert "ktest doctor" in p.stdout and "ktest run patches/linkwatch" in p.stdout
    assert "3 undecided" in p.stdout


@pytest.mark.parametrize("cmd", sorted(cli.EXAMPLES))
def test_every_command_help_ends_with_real_examples(cmd):
    assert cmd in commands()
    p = ktest(cmd, "--help")
    assert p.returncode == 0, p.stderr
    tail = p.stdout.rstrip().split("\nexamples:\n")
    assert len(tail) == 2, p.stdout
    examples = tail[1].splitlines()
    assert 2 <= len(examples) <= 3
    for e in examples:
        line = e.strip()
        assert re.match(r"(\w+=\S+ )?ktest ", line), line
        assert f"ktest {cmd}" in line, line
        # every option an example uses is one the command has
        for opt in re.findall(r"(?<= )(--?[a-z][\w-]*)", line.split("#")[0]):
            assert opt in p.stdout.split("\nexamples:\n")[0], (cmd, opt)


def test_no_command_without_examples():
    assert set(commands()) == set(cli.EXAMPLES)


def _all_ok(monkeypatch, tmp_path):
    monkeypatch.setattr(doctor, "which", lambda tool: f"/usr/bin/{tool}")
    monkeypatch.setattr(doctor, "version_of", lambda path, args: f"{Path(path).name} 1.0")
    monkeypatch.setenv("KTEST_VNG", "/usr/bin/vng")
    monkeypatch.setattr(doctor, "memory", lambda: doctor.Item("free memory", "ok", "8 GiB"))
    monkeypatch.setattr(doctor, "host_load", lambda: doctor.Item("host load", "ok", "quiet"))
    monkeypatch.setattr(doctor, "default_tree", lambda cache, k: doctor.Item("default tree", "ok", "prepared"))


def test_doctor_ready_is_exit_0_with_one_line_per_item(tmp_path, monkeypatch, capsys):
    _all_ok(monkeypatch, tmp_path)
    from ktest.base.machine import host_key

    (tmp_path / "kvm-probe.json").write_text(json.dumps({host_key(): {"ok": True, "reason": "a KVM guest booted in 1.2s"}}))
    assert cli.main(["--cache", str(tmp_path), "doctor"]) == 0
    out = capsys.readouterr().out.splitlines()
    names = [l[6:26].strip() for l in out[:-1]]
    assert names[:3] == ["vng (virtme-ng)", "qemu-system-x86_64", "iproute2 (ip)"]
    for item in ("tcpdump", "gcc", "make", "flex", "bison", "bc", "udev (udevadm)", "KVM", "cache dir",
                 "free disk", "free memory", "host load", "default tree"):
        assert item in names
    assert all(l.startswith("ok ") for l in out[:-1]), out
    assert "usable (a KVM guest booted in 1.2s; cached probe)" in "\n".join(out)
    assert out[-1].startswith("ready (")


def test_doctor_not_ready_is_exit_2_and_each_missing_item_has_a_fix(tmp_path, monkeypatch, capsys):
    _all_ok(monkeypatch, tmp_path)
    monkeypatch.setattr(doctor, "which", lambda tool: None if tool in ("tcpdump", "bison") else f"/usr/bin/{tool}")
    real_disk = doctor.disk
    monkeypatch.setattr(doctor, "disk", lambda cache, k: real_disk(cache, k, free_bytes=2**30))
    assert cli.main(["--cache", str(tmp_path), "doctor"]) == 2
    out = capsys.readouterr().out
    assert re.search(r"^FAIL  tcpdump .*not found\n      fix: apt-get install tcpdump$", out, re.M), out
    assert re.search(r"^FAIL  bison .*\n      fix: apt-get install bison$", out, re.M), out
    assert re.search(r"^FAIL  free disk +1\.0 GiB free .*\n      fix: ", out, re.M), out
    assert "not ready" in out.splitlines()[-1] and "tcpdump, bison, free disk" in out.splitlines()[-1]


def test_doctor_kvm_item_reads_the_cached_probe_and_boots_nothing(tmp_path, monkeypatch):
    from ktest.boot import vm
    from ktest.base.machine import host_key

    monkeypatch.setattr(vm, "boot", lambda *a, **k: pytest.fail("doctor booted a guest"))
    cache = Cache.open(tmp_path)
    item = doctor.kvm(cache)
    assert item.status == "warn" and item.fix                 # no answer: says how to get one
    (tmp_path / "kvm-probe.json").write_text(json.dumps({host_key(): {"ok": False, "reason": "a KVM guest did not finish"}}))
    item = doctor.kvm(cache)
    assert item.status == "warn" and "not usable" in item.detail and "ktest kvm --fresh" in item.fix
    asked = []
    (tmp_path / "kvm-probe.json").unlink()
    item = doctor.kvm(cache, probe=lambda: asked.append(1) or (True, "a KVM guest booted in 0.9s"))
    assert asked and item.status == "ok"


def test_doctor_memory_and_disk_thresholds(tmp_path):
    cache = Cache.open(tmp_path)
    assert doctor.memory(avail_gib=1.0).status == "FAIL"
    assert doctor.memory(avail_gib=6.0).status == "ok"
    assert doctor.disk(cache, "6.12", free_bytes=4 * 2**30).status == "FAIL"      # nothing prepared yet
    (tmp_path / "trees" / "linux-source-6.12_6.12.1-1" / ".git").mkdir(parents=True)
    (tmp_path / "trees" / "linux-source-6.12_6.12.1-1" / ".git" / "ktest-ready").write_text("6.12.1\n")
    assert doctor.disk(cache, "6.12", free_bytes=4 * 2**30).status == "ok"
    assert doctor.default_tree(cache, "6.12").status == "ok"


def test_doctor_host_load_says_whether_the_host_is_busy_and_whether_ktest_can_see_it():
    busy = "some avg10=61.20 avg60=48.93 avg300=22.13 total=17771115480\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=0\n"
    item = doctor.host_load(pressure=busy, schedstat=True)
    assert (item.status, item.detail) == ("warn", "busy: some task waited for a CPU 49 % of the last minute")
    assert "held as undecided" in item.fix
    quiet = busy.replace("avg60=48.93", "avg60=3.54")
    assert doctor.host_load(pressure=quiet, schedstat=True).status == "ok"
    assert "no CPU pressure information" in doctor.host_load(pressure="", schedstat=True).detail
    blind = doctor.host_load(pressure=quiet, schedstat=False)
    assert blind.status == "warn" and "CONFIG_SCHED_INFO" in blind.detail
    real = doctor.host_load()            # this host: whatever its load, one of the three answers, never an error
    assert real.name == "host load" and real.status in ("ok", "warn") and real.detail
