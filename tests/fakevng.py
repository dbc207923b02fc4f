#!/usr/bin/env python3
"""A stand-in for vng in unit tests.  FAKE_VNG_MODE picks the behaviour:
ok: write started.json + one result, exit 0 | hang: hang before the harness (with a child "qemu")
| die: print a little console and exit 255 | stall: start the harness, then hang silently
| panic: start, write one result, print a real-looking panic, exit 255
| oops-hang: start, one result, start a second check, print a real Oops (lkdtm EXCEPTION, from
  tests/fixtures/console), then hang silently like a kernel whose dead task held a lock
| run: run the guest command (--exec) here on the host, as the guest would, and exit with its status
  (the smoke checks only read the system)
| root-stripped: like a 6.1 kernel without a block layer, which finds the 9p root only when given
  root=/dev//dev/root (the lines printed are those of a real 6.1.192 boot)."""
import json
import os
import subprocess
import sys
import time
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


if mode == "root-stripped":
    append = " ".join(a for a in args if "root=" in a)
    with open(os.environ["FAKE_VNG_LOG"], "a") as f:
        f.write(append + "\n")
    if "root=/dev//dev/root" not in append:
        for l in ["[    3.373442] 9pnet_virtio: no channels available for device root",
                  "[    3.374320] devtmpfs: mounted",
                  "[    4.136748] Kernel panic - not syncing: Requested init /usr/lib/virtme-ng-init failed (error -2).",
                  "[    4.137348] CPU: 0 PID: 1 Comm: swapper/0 Not tainted 6.1.192+ #1",
                  "[    4.137759] Call Trace:", "[    4.139999]  <TASK>", "[    4.139999]  dump_stack_lvl+0x33/0x42",
                  "[    4.139999]  panic+0xfc/0x267", "[    4.139999]  kernel_init+0xad/0xfc",
                  "[    4.139999]  ret_from_fork+0x1f/0x30", "[    4.139999]  </TASK>"]:
            print(l, file=sys.stderr, flush=True)
        sys.exit(255)
    mode = "ok"
if mode == "run":
    sys.exit(subprocess.run(["sh", "-c", args[args.index("--exec") + 1]]).returncode)
if mode == "ok":
    started()
    result("smoke.a")
    sys.exit(0)
if mode == "die":
    sys.exit(255)
if mode == "oops-hang":
    started()
    (rw / "selection.json").write_text(json.dumps({"run": [f"testcases/test_smoke.py::test_{x}" for x in "abc"]}))
    for x, t in (("a", 5.0), ("b", 6.0)):
        with open(rw / "checks-started.jsonl", "a") as f:
            f.write(json.dumps({"id": f"testcases/test_smoke.py::test_{x}", "path": f"smoke.{x}", "uptime_s": t}) + "\n")
        if x == "a":
            with open(rw / "results.jsonl", "a") as f:
                f.write(json.dumps({"id": "testcases/test_smoke.py::test_a", "path": "smoke.a", "status": "PASS",
                                    "duration_s": 0.1, "message": None, "metrics": [], "timelines": [], "notes": {},
                                    "finished_at_uptime_s": 5.5}) + "\n")
    log = (Path(__file__).parent / "fixtures" / "console" / "lkdtm-6.12.117.log").read_text().splitlines()
    for l in log[415:470]:          # "lkdtm: Performing direct entry EXCEPTION" .. the Oops's last line
        print(l, file=sys.stderr, flush=True)
    mode = "hang"
if mode in ("hang", "stall"):
    child = subprocess.Popen(["sleep", "1000"])  # plays QEMU, which may outlive vng
    if os.environ.get("FAKE_VNG_IGNORE_TERM"):   # a vng slow to die: only SIGKILL ends it
        import signal
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    if pidfile:
        with open(pidfile, "a") as f:             # one line per guest
            f.write(f"{os.getpid()} {child.pid}\n")
    if mode == "stall":
        started()
        # the harness collected one check and started it, which never ends
        (rw / "selection.json").write_text(json.dumps({"run": ["testcases/test_smoke.py::test_a",
                                                               "testcases/test_smoke.py::test_b"]}))
        with open(rw / "checks-started.jsonl", "a") as f:
            f.write(json.dumps({"id": "testcases/test_smoke.py::test_a", "path": "smoke.a", "uptime_s": 2.0}) + "\n")
    while True:
        time.sleep(1)
if mode == "panic":
    started()
    result("smoke.a")
    for l in ["[    5.100000] Kernel panic - not syncing: sysrq triggered crash",
              "[    5.100001] CPU: 0 UID: 0 PID: 1 Comm: sh Not tainted 6.12.99 #1",
              "[    5.100002] Call Trace:", "[    5.100003]  <TASK>",
              "[    5.100004]  panic+0x10/0x20", "[    5.100005]  sysrq_handle_crash+0x16/0x20",
              "[    5.100006]  __handle_sysrq+0x9b/0x180", "[    5.100007]  write_sysrq_trigger+0x2a/0x40",
              "[    5.100008] ---[ end Kernel panic - not syncing: sysrq triggered crash ]---"]:
        print(l, file=sys.stderr, flush=True)
    sys.exit(255)
