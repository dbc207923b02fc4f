"""Where a guest's boot goes before its first check, from the boot directories ktest keeps.

    python ci/boot_phases.py DIR [DIR ...] [--json OUT]

DIR: a run's or a calibration's output (every `boots/*/` and `boot-*/` below it is read).  Per boot,
in the guest's uptime (s), from its console (virtme-ng-init's lines, printk-stamped), `rw/started.json`
(a calibration's boot keeps it in `guest-run.json`) and `rw/checks-started.jsonl`:
  tmpfiles     systemd-tmpfiles (virtme-ng-init's "running systemd-tmpfiles" to "basic initialization done")
  udev         udev's coldplug and settle ("triggering udev coldplug" to "udev is done")
  script       virtme-ng-init starts ktest's script (uptime)
  harness      the guest harness is running (uptime; Python started, before pytest)
  first_check  the first check starts (uptime; pytest imported, the checks collected)
Prints the median and range of each; --json writes every boot's phases and the summary.  A boot whose
console lacks a line (another init, a boot that died) is left out and counted.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import sys
from pathlib import Path

STAMP = re.compile(r"^\[\s*(\d+\.\d+)\]")
MARKS = {"tmpfiles0": "virtme-ng-init: running systemd-tmpfiles", "tmpfiles1": "virtme-ng-init: basic initialization done",
         "udev0": "virtme-ng-init: triggering udev coldplug", "udev1": "virtme-ng-init: udev is done",
         "script": "virtme-ng-init: starting script"}
PHASES = ("tmpfiles", "udev", "script", "harness", "first_check")


def console_marks(text: str) -> dict[str, float]:
    """The uptime of the first console line carrying each of MARKS."""
    out: dict[str, float] = {}
    for line in text.splitlines():
        m = STAMP.match(line)
        if not m:
            continue
        for key, needle in MARKS.items():
            if key not in out and needle in line:
                out[key] = float(m.group(1))
    return out


def boot_phases(boot: Path) -> dict[str, float] | None:
    """One boot directory's phases (s), or None when something is missing."""
    con, cs = boot / "attempt-1" / "console.log", boot / "rw" / "checks-started.jsonl"
    st, gr = boot / "rw" / "started.json", boot / "guest-run.json"
    started = (json.loads(st.read_text()) if st.is_file()
               else (json.loads(gr.read_text()).get("started") or {}) if gr.is_file() else {})
    if not (con.is_file() and cs.is_file() and "uptime_at_harness_s" in started):
        return None
    m = console_marks(con.read_text(errors="replace"))
    first = cs.read_text().splitlines()
    if len(m) < len(MARKS) or not first:
        return None
    return {"tmpfiles": round(m["tmpfiles1"] - m["tmpfiles0"], 3), "udev": round(m["udev1"] - m["udev0"], 3),
            "script": m["script"], "harness": float(started["uptime_at_harness_s"]),
            "first_check": float(json.loads(first[0])["uptime_s"])}


def summarize(dirs: list[Path]) -> dict:
    boots, missing = {}, 0
    for d in dirs:
        for b in sorted({p for p in [*d.glob("**/boots/*"), *d.glob("**/boot-*")] if p.is_dir()}):
            ph = boot_phases(b)
            if ph is None:
                missing += 1
            else:
                boots[str(b)] = ph
    summary = {k: {"median": round(statistics.median(v), 2), "min": min(v), "max": max(v)}
               for k in PHASES if (v := [ph[k] for ph in boots.values()])}
    return {"boots": boots, "left_out": missing, "summary": summary}


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("dirs", nargs="+", type=Path)
    ap.add_argument("--json", type=Path, help="write every boot's phases and the summary here")
    a = ap.parse_args(argv)
    res = summarize(a.dirs)
    if not res["boots"]:
        print(f"boot_phases: no boot with a console, started.json and a started check under {a.dirs}", file=sys.stderr)
        return 2
    print(f"{len(res['boots'])} boots ({res['left_out']} left out: a line missing)")
    for k, s in res["summary"].items():
        print(f"  {k:12s} median {s['median']:6.1f} s   range {s['min']:6.1f}-{s['max']:6.1f}")
    if a.json:
        a.json.write_text(json.dumps(res, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
