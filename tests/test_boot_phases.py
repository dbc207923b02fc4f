"""ci/boot_phases.py on boot directories laid out as ktest keeps them: each phase from the console's
printk stamps, started.json and the first started check; a boot that lacks a line is left out and counted."""

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

CONSOLE = """[    0.000000] Linux version 6.12.118+
[    4.074224] virtme-ng-init: running systemd-tmpfiles
[    9.840472] virtme-ng-init: basic initialization done
[   10.937583] virtme-ng-init: Starting systemd-udevd version 252
[   10.945823] virtme-ng-init: triggering udev coldplug
[   18.015620] virtme-ng-init: waiting for udev to settle
[   20.569550] virtme-ng-init: udev is done
[   20.580331] virtme-ng-init: starting script
[   30.000000] virtme-ng-init: udev is done
"""


def _boot(root: Path, name: str, console: str, harness: float, first: float) -> None:
    """A run's boot (boots/NAME, rw/started.json) or a calibration's (boot-N, started in guest-run.json)."""
    b = root / name if name.startswith("boot-") else root / "boots" / name
    (b / "attempt-1").mkdir(parents=True)
    (b / "rw").mkdir()
    (b / "attempt-1" / "console.log").write_text(console)
    if name.startswith("boot-"):
        (b / "guest-run.json").write_text(json.dumps({"started": {"uptime_at_harness_s": harness}}))
    else:
        (b / "rw" / "started.json").write_text(json.dumps({"uptime_at_harness_s": harness}))
    (b / "rw" / "checks-started.jsonl").write_text(json.dumps({"path": "a.b", "uptime_s": first}) + "\n"
                                                   + json.dumps({"path": "a.c", "uptime_s": first + 30}) + "\n")


def test_phases_of_kept_boots(tmp_path):
    _boot(tmp_path, "base-1", CONSOLE, 27.03, 55.63)
    _boot(tmp_path, "patched-1", CONSOLE.replace("20.569550", "14.945823"), 25.0, 45.0)
    _boot(tmp_path, "base-2", CONSOLE.replace("triggering udev coldplug", "something else"), 25.0, 45.0)
    _boot(tmp_path / "cal", "boot-1", CONSOLE, 15.5, 40.0)
    p = subprocess.run([sys.executable, "ci/boot_phases.py", str(tmp_path), "--json", str(tmp_path / "p.json")],
                       cwd=ROOT, capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    got = json.loads((tmp_path / "p.json").read_text())
    assert got["left_out"] == 1 and len(got["boots"]) == 3
    assert got["boots"][str(tmp_path / "cal" / "boot-1")]["harness"] == 15.5, "a calibration's boot"
    b1 = got["boots"][str(tmp_path / "boots" / "base-1")]
    assert b1 == {"tmpfiles": 5.766, "udev": 9.624, "script": 20.580331, "harness": 27.03, "first_check": 55.63}, \
        "the first line of each mark, the first check started"
    assert got["summary"]["udev"] == {"median": 9.62, "min": 4.0, "max": 9.624}
    assert "3 boots (1 left out" in p.stdout


def test_no_boot_is_an_error(tmp_path):
    p = subprocess.run([sys.executable, "ci/boot_phases.py", str(tmp_path)], cwd=ROOT, capture_output=True, text=True)
    assert p.returncode == 2 and "no boot" in p.stderr and "Traceback" not in p.stderr
