"""Outside ktest (data for a threshold): every second, each running QEMU's threads' schedstat and, for
its boot dir (the rw virtfs path's parent), console lines' kernel timestamps paired with arrival time."""
import json, sys, time
from pathlib import Path
sys.path.insert(0, str(Path(__file__).resolve().parents[3]))   # the ktest checkout
from ktest.boot.hostwait import read_threads, console_stamp
out = open(sys.argv[1], "a")      # python sample.py SAMPLES.jsonl, beside a run; ended by a signal
pos: dict[str, int] = {}
while True:
    now = time.monotonic()
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            if not (d / "comm").read_text().startswith("qemu"):
                continue
            args = (d / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        rw = next((a.decode().split("path=")[1].split(",")[0] for a in args if b"/rw," in a and b"path=" in a), None)
        if not rw:
            continue
        boot = Path(rw).parent
        logs = sorted(boot.glob("attempt-*/console.log"))
        pair = None
        if logs:
            log = str(logs[-1])
            try:
                with open(log, errors="replace") as f:
                    f.seek(pos.get(log, 0))
                    data = f.read()
                    pos[log] = f.tell()
                ts = [console_stamp(l) for l in data.splitlines() if console_stamp(l) is not None]
                if ts:
                    pair = [now, ts[-1], log]
            except OSError:
                pass
        th = read_threads([int(d.name)])
        out.write(json.dumps({"t": now, "pid": int(d.name), "boot": str(boot), "threads": th, "pair": pair}) + "\n")
    out.flush()
    time.sleep(1.0)
