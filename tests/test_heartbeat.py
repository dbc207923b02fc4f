"""Logs that move: not on a terminal, a run whose guests stall still prints a heartbeat, one line per
running guest (side and round, checks done of total, the check running now and for how long); under
GitHub Actions every stage and boot is a collapsible log group."""

import os
import queue
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from ktest.boot.pool import Board, BootJob

HERE = Path(__file__).parent
PROJECT = HERE.parent


def _lines(stream, q):
    for line in stream:
        q.put(line.rstrip("\n"))
    q.put(None)


def test_a_piped_run_with_stalled_guests_prints_heartbeats_in_log_groups(tmp_path, fake_tree, fake_series):
    env = dict(os.environ, KTEST_CACHE=str(tmp_path / "cache"), KTEST_VNG=str(HERE / "fakevng.py"),
               FAKE_VNG_MODE="stall", FAKE_VNG_PIDS=str(tmp_path / "pids"), KTEST_HEARTBEAT_S="0.5",
               GITHUB_ACTIONS="true")
    p = subprocess.Popen([sys.executable, "-m", "ktest", "run", str(fake_series), "--tree", str(fake_tree),
                          "--reports", str(tmp_path / "reports"), "--testcases", "testcases/test_smoke.py",
                          "--vms", "2", "--accel", "tcg"],
                         cwd=PROJECT, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                         stderr=subprocess.PIPE, text=True)
    q: queue.Queue = queue.Queue()
    threading.Thread(target=_lines, args=(p.stderr, q), daemon=True).start()
    seen: list[str] = []
    beats: set[str] = set()
    try:
        deadline = time.monotonic() + 150          # a bound on the test, not an assertion
        while time.monotonic() < deadline and not {"base-1", "patched-1"} <= beats:
            try:
                line = q.get(timeout=1)
            except queue.Empty:
                continue
            if line is None:
                break
            seen.append(line)
            if "[heartbeat]" in line and "running smoke.a for" in line:
                beats.add(line.split("[heartbeat] ", 1)[1].split(":", 1)[0])
        assert {"base-1", "patched-1"} <= beats, "\n".join(seen)
    finally:
        p.send_signal(signal.SIGTERM)
        p.wait(timeout=60)          # stderr is the reader thread's
    rest = []
    while (line := q.get(timeout=10)) is not None:
        rest.append(line)
    beat = next(l for l in seen if "[heartbeat] base-1:" in l and "running" in l)   # after "booting for ..."
    assert "checks 0/2 done, running smoke.a for" in beat, beat
    assert any(l.startswith("::group::ktest: ") and "boot base-1" in l for l in seen), "\n".join(seen)
    assert any(l.startswith("::group::ktest: ") and "building base" in l for l in seen), "\n".join(seen)
    assert p.returncode == 130
    everything = seen + rest
    # one line, `ktest: interrupted` and where (issue 25: SIGTERM and SIGINT print the same kind of line)
    last = [i for i, l in enumerate(everything) if l.startswith("ktest: interrupted")]
    assert len(last) == 1, everything
    opened = sum(l.startswith("::group::") for l in everything)
    closed = sum(l == "::endgroup::" for l in everything)
    assert opened == closed, (opened, closed)       # every group is closed, the last before the exit line
    assert everything.index("::endgroup::", len(everything) - 3) < last[0]


def test_heartbeat_lines_of_a_board(tmp_path):
    jobs = [BootJob(k, Path("bz"), tmp_path / k, k) for k in ("base-1", "patched-1", "base-2")]
    b = Board(jobs)
    b.set("base-1", "running")
    b.set("patched-1", "running")
    rw = tmp_path / "base-1" / "rw"
    rw.mkdir(parents=True)
    (rw / "started.json").write_text("{}")
    (rw / "selection.json").write_text('{"run": ["a", "b", "c"]}')
    (rw / "checks-started.jsonl").write_text('{"id": "a", "path": "x.a"}\n{"id": "b", "path": "x.b"}\n')
    # an upstream program's KTAP cases are results of their own: still one check done, not three
    (rw / "results.jsonl").write_text('{"id": "a", "path": "x.a", "status": "PASS"}\n'
                                      '{"id": "a", "path": "x.a.case_1", "status": "PASS"}\n'
                                      '{"id": "a", "path": "x.a.case_2", "status": "PASS"}\n')
    lines = b.beats()
    assert len(lines) == 2                              # base-2 is still queued: no line
    assert lines[0].startswith("base-1: checks 1/3 done, running x.b for ")
    assert lines[1].startswith("patched-1: booting for ")


def test_the_heartbeat_interval_is_30_s_unless_set(monkeypatch):
    from ktest.base.progress import default_interval

    monkeypatch.delenv("KTEST_HEARTBEAT_S", raising=False)
    assert default_interval() == 30.0
    for bad in ("", "abc", "0", "-5", "nan"):
        monkeypatch.setenv("KTEST_HEARTBEAT_S", bad)
        assert default_interval() == 30.0, bad
    monkeypatch.setenv("KTEST_HEARTBEAT_S", "2.5")
    assert default_interval() == 2.5
