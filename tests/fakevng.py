#!/usr/bin/env python3
"""A stand-in for vng in unit tests.  FAKE_VNG_MODE picks the behaviour:
ok: write started.json + one result, exit 0 | hang: hang before the harness (with a child "qemu")
| die: print a little console and exit 255 | stall: start the harness, then hang silently
| panic: start, write one result, print a real-looking panic, exit 255."""
import json, os, subprocess, sys, time
from pathlib import Path

args = sys.argv[1:]
rw = Path(next(a.split("=", 1)[1] for a in args if a.startswith("--rwdir=")))
mode = os.environ.get("FAKE_VNG_MODE", "ok")
pidfile = os.environ.get("FAKE_VNG_PIDS")
print("[    0.000000] Linux version 6.12.99-fake", file=sys.stderr, flush=True)


def started():
    (rw / "started.json").write_text(json.dumps({"uptime_at_harness_s": 1.0, "kernel_release": "6.12.99"}))


def result(name, status="PASS"):
    with open(rw / "results.jsonl", "a") as f:
        f.write(json.dumps({"id": name, "path": name, "status": status, "duration_s": 0.1, "message": None,
                            "metrics": [], "timelines": [], "notes": {}}) + "\n")


if mode == "ok":
    started(); result("smoke.a"); sys.exit(0)
if mode == "die":
    sys.exit(255)
if mode in ("hang", "stall"):
    child = subprocess.Popen(["sleep", "1000"])  # plays QEMU, which may outlive vng
    if pidfile:
        Path(pidfile).write_text(f"{os.getpid()} {child.pid}\n")
    if mode == "stall":
        started()
    while True:
        time.sleep(1)
if mode == "panic":
    started(); result("smoke.a")
    for l in ["[    5.100000] Kernel panic - not syncing: sysrq triggered crash",
              "[    5.100001] CPU: 0 UID: 0 PID: 1 Comm: sh Not tainted 6.12.99 #1",
              "[    5.100002] Call Trace:", "[    5.100003]  <TASK>",
              "[    5.100004]  panic+0x10/0x20", "[    5.100005]  sysrq_handle_crash+0x16/0x20",
              "[    5.100006]  __handle_sysrq+0x9b/0x180", "[    5.100007]  write_sysrq_trigger+0x2a/0x40",
              "[    5.100008] ---[ end Kernel panic - not syncing: sysrq triggered crash ]---"]:
        print(l, file=sys.stderr, flush=True)
    sys.exit(255)
