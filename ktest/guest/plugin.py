"""pytest plugin for checks running in the guest: the `record` fixture (metrics with units and
samples, timelines, notes), the `reps` fixture, and one JSON line per check in results.jsonl."""

from __future__ import annotations

import json
import os
import re
import statistics
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import pytest

_records: dict[str, "Recorder"] = {}
_reports: dict[str, dict[str, Any]] = {}


class Recorder:
    def __init__(self) -> None:
        self.metrics: list[dict[str, Any]] = []
        self.timelines: list[dict[str, Any]] = []
        self.notes: dict[str, Any] = {}
        self.subresults: list[dict[str, Any]] = []

    def metric(self, name: str, samples: Iterable[float], unit: str, lower_is_better: bool = True,
               context: bool = False, min_effect: float | None = None,
               min_effect_tail: float | None = None) -> dict[str, Any]:
        """Record a measured quantity: every sample, its unit, and a summary.  context=True: shown to
        explain the check's own metrics (e.g. the harness's part of a timing), never a verdict.
        min_effect: the smallest change of this metric that matters to users, in its unit; the A/B rule
        never flags less.  min_effect_tail: the same for its p90 (default min_effect)."""
        samples = [float(s) for s in samples]
        m = {"name": name, "unit": unit, "samples": samples, "n": len(samples),
             "lower_is_better": lower_is_better, "context": context, "min_effect": min_effect,
             "min_effect_tail": min_effect_tail}
        if samples:
            m["value"] = statistics.median(samples)
        self.metrics.append(m)
        return m

    def timeline(self, name: str, events: list[dict[str, Any]]) -> None:
        """An ordered list of observed events, each {"t_ms": float, ...}."""
        self.timelines.append({"name": name, "events": events})

    def note(self, key: str, value: Any) -> None:
        self.notes[key] = value

    def subresult(self, name: str, status: str, message: str | None = None) -> None:
        """A result of its own under this check's path (e.g. each case of an upstream selftest)."""
        assert status in ("PASS", "FAIL", "SKIP", "ERROR"), status
        self.subresults.append({"name": name, "status": status, "message": message})

    def to_json(self) -> dict[str, Any]:
        return {"metrics": self.metrics, "timelines": self.timelines, "notes": self.notes}


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--ktest-out", default=None, help="results dir (rwdir)")
    parser.addoption("--ktest-reps", type=int, default=5, help="repetitions per measurement")
    parser.addoption("--ktest-shard", default=None, help="I/N: run only shard I of N (see ktest.base.shard)")
    parser.addoption("--ktest-kmsg", action="store_true",
                     help="mark each check's start and end on the kernel console (in the guest only)")


def _cost(item: pytest.Item) -> float:
    from ktest.base.shard import DEFAULT_COST

    m = item.get_closest_marker("cost")
    return float(m.args[0]) if m and m.args else DEFAULT_COST


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Shard selection runs first, on the whole collection, so -k (applied after) cannot move a
    check to another shard.  selection.json tells the host what was collected and what ran here."""
    from ktest.base import shard as shard_mod

    spec = shard_mod.parse(config.getoption("--ktest-shard"))
    costs = {it.nodeid: _cost(it) for it in items}
    slow = {it.nodeid for it in items if it.get_closest_marker("slow")}
    shard_keep = set(shard_mod.select(costs, spec))
    keep = set(shard_keep)
    mode = os.environ.get("KTEST_SLOW", "1")
    if (part := os.environ.get("KTEST_IDS")) is not None:   # this guest's part of the checks (on a pool)
        keep &= set(json.loads(part))
    if mode == "only":        # this guest runs the slow checks alone (ktest run's round 1 on a pool)
        keep &= slow
    elif mode == "none":      # ... and its sibling guest runs the rest
        keep -= slow
    elif mode == "0":         # a later round: slow checks ran in round 1 and say so
        for it in items:
            if it.nodeid in slow:
                it.add_marker(pytest.mark.skip(reason="slow upstream selftest: ktest run runs it in the "
                                                      "first round of each side only"))
    dropped = [it for it in items if it.nodeid not in keep]
    if dropped:
        items[:] = [it for it in items if it.nodeid in keep]
        config.hook.pytest_deselected(items=dropped)
    out = _out(config)
    if out is not None:
        sel = {"shard": list(spec) if spec else None, "slow": mode,
               "collected": [{"id": k, "cost": v, "slow": k in slow} for k, v in costs.items()],
               "selected": [k for k in costs if k in shard_keep]}   # the shard's part; "run": what ran
        (out / "selection.json").write_text(json.dumps(sel, indent=1) + "\n")


@pytest.fixture
def record(request: pytest.FixtureRequest) -> Recorder:
    r = Recorder()
    _records[request.node.nodeid] = r
    return r


@pytest.fixture
def keep_file(request: pytest.FixtureRequest, tmp_path: Path) -> Callable[[str], Path]:
    """keep_file(name) -> a path where a check keeps a whole file for the reader (a selftest's full KTAP
    output, say): files/<check path>/name in the boot's output directory, which the host keeps."""
    out = _out(request.config)
    base = out / "files" / dotted_path(request.node.nodeid) if out else tmp_path
    base.mkdir(parents=True, exist_ok=True)
    return lambda name: base / re.sub(r"[^\w.-]+", "_", name)


@pytest.fixture(scope="session")
def reps(request: pytest.FixtureRequest) -> int:
    return max(1, int(request.config.getoption("--ktest-reps")))


def dotted_path(nodeid: str) -> str:
    """testcases/linkwatch/test_bounce.py::test_latency[0.1] -> linkwatch.bounce.latency.0_1"""
    file, _, rest = nodeid.partition("::")
    parts = [p for p in Path(file).with_suffix("").parts if p != "testcases"]
    parts = [re.sub(r"^test_", "", p) for p in parts]
    name, _, param = rest.partition("[")
    parts += [re.sub(r"^test_", "", n) for n in name.split("::")]
    if param:
        parts.append(param.rstrip("]"))
    return ".".join(safe_part(p) for p in parts if p)


def safe_part(part: str) -> str:
    """One component of a dotted check path: runs of other characters than word ones and '-' become '_'."""
    return re.sub(r"[^\w-]+", "_", part).strip("_")


def _out(config: pytest.Config) -> Path | None:
    o = config.getoption("--ktest-out")
    return Path(o) if o else None


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    """Whose failure it is, by the exception's type (never by the traceback's text, which shows the
    source of every frame, docstrings that name an exception included): the machine's
    (ktest.guest.lib.HostLinkError), the check's setup (SetupNotEstablished) or the kernel's."""
    outcome = yield
    rep = outcome.get_result()
    if call.excinfo is not None:
        from ktest.guest.lib import HostLinkError, SetupNotEstablished

        rep.ktest_setup = bool(call.excinfo.errisinstance(SetupNotEstablished))
        rep.ktest_infra = bool(call.excinfo.errisinstance(HostLinkError))


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    r = _reports.setdefault(report.nodeid, {"status": "PASS", "duration_s": 0.0, "message": None})
    r["duration_s"] += report.duration
    if report.failed:
        # the machine failed the check (host link control: ktest.guest.lib.HostLinkError), not the kernel:
        # KCIDB's ERROR, "could not be executed properly"
        # likewise a precondition that could not be established in this boot (guestlib.SetupNotEstablished)
        setup = report.when == "call" and bool(getattr(report, "ktest_setup", False))
        infra = report.when == "call" and (bool(getattr(report, "ktest_infra", False)) or setup)
        r["status"] = "FAIL" if report.when == "call" and not infra else "ERROR"
        r["message"] = r["message"] or (("setup: " if setup else "infrastructure: " if infra else "") + _short(report))
        if infra:
            r["infra"] = True
    elif report.skipped:
        r["status"] = "SKIP"
        r["message"] = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
    for sec, text in report.sections:  # later phases repeat earlier sections: keep one of each
        if text.strip():
            r.setdefault("sections", {})[sec] = text[-8000:]


def pytest_collection_finish(session: pytest.Session) -> None:
    """What will run, in order, after -k and shard selection: a check in it that never started was cut
    off (the kernel crashed before its turn)."""
    out = _out(session.config)
    sel = out / "selection.json" if out is not None else None
    if sel is not None and sel.exists():
        data = json.loads(sel.read_text())
        data["run"] = [it.nodeid for it in session.items]
        sel.write_text(json.dumps(data, indent=1) + "\n")


def pytest_runtest_logstart(nodeid: str, location: tuple[str, int | None, str]) -> None:
    """Say on the console and in the results dir that a check starts: if the kernel crashes, the host
    knows which check was running (the console's order and timestamps, and these records)."""
    out = _out(_config) if _config is not None else None
    if out is None:
        return
    path = dotted_path(nodeid)
    _kmsg(f"ktest: check start {path}")
    with open(out / "checks-started.jsonl", "a") as f:
        f.write(json.dumps({"id": nodeid, "path": path, "uptime_s": _uptime()}) + "\n")
        f.flush()
        os.fsync(f.fileno())


def pytest_runtest_logfinish(nodeid: str, location: tuple[str, int | None, str]) -> None:
    _flush(nodeid)


def _kmsg(text: str) -> None:
    if _config is None or not _config.getoption("--ktest-kmsg"):
        return
    try:
        fd = os.open("/dev/kmsg", os.O_WRONLY | os.O_NONBLOCK)
    except OSError:
        return
    try:
        os.write(fd, f"<5>{text}\n".encode(errors="replace"))
    except OSError:
        pass
    finally:
        os.close(fd)


_config: pytest.Config | None = None
_done: set[str] = set()


def pytest_configure(config: pytest.Config) -> None:
    global _config
    _config = config
    config.addinivalue_line("markers", "cost(seconds): the check's run time under TCG, to balance shards")
    config.addinivalue_line("markers", "slow: an upstream selftest; ktest run gives it a guest of its own in "
                                       "round 1 (KTEST_SLOW=only) and skips it in later rounds (KTEST_SLOW=0)")


def _short(report: pytest.TestReport) -> str:
    crash = getattr(report.longrepr, "reprcrash", None)
    if crash is not None:
        return f"{crash.message.splitlines()[0][:300]} ({Path(crash.path).name}:{crash.lineno})"
    return str(report.longrepr).strip().splitlines()[-1][:300]


def _flush(nodeid: str) -> None:
    if nodeid in _done or _config is None:
        return
    _done.add(nodeid)
    out = _out(_config)
    rep = dict(_reports.get(nodeid, {"status": "ERROR", "duration_s": 0.0, "message": "no report"}))
    rep["log"] = "".join(f"--- {k} ---\n{v}\n" for k, v in rep.pop("sections", {}).items())
    rec = _records.get(nodeid)
    line = {"id": nodeid, "path": dotted_path(nodeid), **rep, **(rec.to_json() if rec else
            {"metrics": [], "timelines": [], "notes": {}}), "finished_at_uptime_s": _uptime()}
    if out is None:
        return
    _kmsg(f"ktest: check end {line['path']} {line['status']}")
    lines = [line]
    for sub in (rec.subresults if rec else []):
        lines.append({"id": f"{nodeid}::{sub['name']}", "path": f"{line['path']}.{safe_part(sub['name'])}",
                      "status": sub["status"], "message": sub["message"], "duration_s": 0.0, "log": "",
                      "metrics": [], "timelines": [], "notes": {}, "finished_at_uptime_s": line["finished_at_uptime_s"]})
    with open(out / "results.jsonl", "a") as f:
        for l in lines:
            f.write(json.dumps(l) + "\n")
        f.flush()
        os.fsync(f.fileno())


def _uptime() -> float:
    try:
        return float(Path("/proc/uptime").read_text().split()[0])
    except OSError:
        return time.monotonic()
