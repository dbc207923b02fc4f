"""A crashed kernel leads every output: the crash analysis (ktest/judge/crash.py) on the real LKDTM console log,
the verdict that counts the checks it cut off under it, the outputs that lead with it, and the boot
that is ended once the kernel is dead instead of waiting out the idle timeout (fake vng, no VM)."""

import copy
import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from junitparser import JUnitXml
from markdown_it import MarkdownIt

from ktest.boot.checks import run_checks
from ktest.cli import run_summary_lines
from ktest.judge.console import parse
from ktest.judge.crash import analyse, trace_lines
from ktest.report.outputs import render_html, render_junit, render_kcidb, render_summary
from ktest.base.progress import Silent
from ktest.boot.vm import BootSpec, boot_with_retry, dead_kernel
from ktest.base.result import Result
from results import judged

R = Result.from_json

HERE = Path(__file__).parent
FIX = HERE / "fixtures" / "console"
LKDTM = (FIX / "lkdtm-6.12.117.log").read_text().splitlines()
CLEAN = (FIX / "clean-boot-6.12.117.log").read_text().splitlines()
OOPS = LKDTM[415:470]           # "Performing direct entry EXCEPTION" .. the Oops (a NULL dereference)
FP = "oops:lkdtm_EXCEPTION/full_proxy_write/vfs_write"
IDS = [f"testcases/bonding/test_enslave.py::test_{x}" for x in ("attach", "prio", "failover", "failback")]
PATHS = [f"bonding.enslave.{x}" for x in ("attach", "prio", "failover", "failback")]


def mark(what, path, t):
    return f"[{t:12.6f}] ktest: check {what} {path}" + (" PASS" if what == "end" else "")


def console_with_markers():
    """A real boot and a real Oops, with the harness's markers around the first two checks: the Oops
    comes while the second is running."""
    return "\n".join(CLEAN + [mark("start", PATHS[0], 6.1), mark("end", PATHS[0], 6.2),
                              mark("start", PATHS[1], 6.3)] + OOPS) + "\n"


def oops_run(console, results=(), starts=(), outcome="crash"):
    return analyse(console, parse(console), outcome=outcome, harness_started=True, harness_finished=False,
                   results=list(results), starts=list(starts), selection={"run": IDS},
                   ended_because="oops on the console")


def res(path, status="PASS", fin=None, i=None):
    return {"id": IDS[PATHS.index(path)], "path": path, "status": status, "message": "ip failed (137): Killed"
            if status == "FAIL" else None, "metrics": [], "timelines": [], "notes": {}, "finished_at_uptime_s": fin}


def test_the_console_markers_name_the_running_check_and_what_never_ran():
    c = oops_run(console_with_markers(), results=[res(PATHS[0])])
    assert (c.kind, c.fingerprint, c.function) == ("oops", FP, "lkdtm_EXCEPTION")
    assert c.during == PATHS[1] and c.where == f"check {PATHS[1]}"
    assert c.not_run == PATHS[2:], "the check it crashed in is not 'not run': it is where it crashed"
    assert c.at_s == pytest.approx(6.723876)
    assert c.trace[0].startswith("BUG: kernel NULL pointer dereference")
    assert "RIP: 0010:lkdtm_EXCEPTION+0x2/0xa" in c.trace and "  full_proxy_write+0x3e/0x59" in c.trace
    assert not any("?" in l or "RSP" in l or "Code:" in l for l in c.trace), "no registers, bytes or guesses"


def test_without_markers_the_start_records_and_the_splats_timestamp_decide():
    console = "\n".join(CLEAN + OOPS)
    starts = [{"id": IDS[0], "path": PATHS[0], "uptime_s": 6.0}, {"id": IDS[1], "path": PATHS[1], "uptime_s": 6.5},
              {"id": IDS[2], "path": PATHS[2], "uptime_s": 6.9}]
    c = oops_run(console, results=[res(PATHS[0], fin=6.4), res(PATHS[1], "FAIL", fin=6.8)], starts=starts)
    assert c.during == PATHS[1], "the Oops at 6.72 s came while the second check (6.5-6.8 s) ran"
    assert c.not_run == PATHS[2:]


def test_the_first_fatal_splat_is_the_crash_not_a_survived_warning():
    c = analyse("\n".join(LKDTM), parse("\n".join(LKDTM)), outcome="panic", harness_started=False,
                harness_finished=False, results=[], starts=[], selection=None)
    assert c.kind == "bug" and c.fingerprint == "bug:lkdtm_BUG/full_proxy_write/vfs_write"
    assert c.during is None and c.where == "boot, before the guest harness started"


def test_a_silent_hang_is_a_timeout_in_the_check_that_never_finished():
    starts = [{"id": IDS[0], "path": PATHS[0], "uptime_s": 6.0}, {"id": IDS[1], "path": PATHS[1], "uptime_s": 6.5}]
    c = analyse("\n".join(CLEAN), [], outcome="idle-timeout", harness_started=True, harness_finished=False,
                results=[res(PATHS[0])], starts=starts, selection={"run": IDS}, ended_because="idle 180s")
    assert (c.kind, c.fingerprint, c.during) == ("timeout", f"timeout:{PATHS[1]}", PATHS[1])
    assert c.title == "idle 180s" and c.not_run == PATHS[2:]


def test_a_warning_then_silence_is_a_hang_after_that_warning():
    text = "\n".join(CLEAN + LKDTM[320:364])
    sp = parse(text)
    assert [s.kind for s in sp] == ["warning"]
    c = analyse(text, sp, outcome="crash", harness_started=True, harness_finished=False, results=[], starts=[],
                selection=None)
    assert c.kind == "hang" and c.fingerprint == sp[0].fingerprint and c.title.startswith("no progress after warning")


def test_no_crash_when_the_kernel_only_warned_or_was_clean():
    for text in ("\n".join(CLEAN), "\n".join(CLEAN + LKDTM[320:364])):
        assert analyse(text, parse(text), outcome="ok", harness_started=True, harness_finished=True, results=[],
                       starts=[], selection=None) is None


def test_trace_lines_of_a_warning():
    warn = parse("\n".join(LKDTM))[0]
    assert trace_lines(warn.text)[:2] == [warn.title, "RIP: 0010:lkdtm_WARNING+0x8/0xb"]


# --- the verdict and the outputs --------------------------------------------------------------

def guest_run(label, results, crash=None, splats=()):
    return {"label": label, "results": results, "splats": list(splats), "crash": crash,
            "boot": {"outcome": "crash" if crash else "ok"}, "started": {}}


@pytest.fixture
def crashed_result():
    """A one-patch series whose patched kernel oopses in the second check, which fails (its `ip` was
    killed), and cuts off the two after it; base passes everything.  All four patched boots crash alike
    (four a side: the failure counts of the check that failed are evidence on their own, Fisher p = 1/70)."""
    crash = oops_run(console_with_markers(), results=[res(PATHS[0])]).to_json()
    crash["during"] = PATHS[1]
    splat = parse(console_with_markers())[0].to_json()
    base = [guest_run(f"base-{i}", [res(p) for p in PATHS]) for i in (1, 2, 3, 4)]
    patched = [guest_run(f"patched-{i}", [res(PATHS[0]), res(PATHS[1], "FAIL")], crash, [splat]) for i in (1, 2, 3, 4)]
    r = json.loads((HERE / "fixtures" / "result-linkwatch.json").read_text())
    r["series"]["expected"] = None
    r["boots"] = []
    r["known_checks"] = []
    r = judged(r, base, patched)
    p = r["series"]["patches"][0]
    r["culprit"] = {"patch": 1, "subject": p["subject"], "why": "only patch of the series"}
    return r


def test_the_crash_is_one_regression_and_the_checks_it_cut_off_are_not(crashed_result):
    v = crashed_result["verdict"]
    assert v["status"] == "regression" and v["exit_code"] == 1
    assert v["regressions"] == [f"new oops: {FP}", PATHS[1]], "the crash first; the check that ran and failed stays"
    assert v["not_run"] == PATHS[2:]
    by = {c["path"]: c for c in crashed_result["checks"]}
    assert by[PATHS[2]]["verdict"] == "not run" and by[PATHS[2]]["patched"]["status"] == "MISS"
    assert by[PATHS[2]]["not_run"]["reason"] == f"not run: patched kernel crashed in {PATHS[1]}"
    assert v["crash"]["during"] == PATHS[1] and v["crash"]["boots"] == ["patched-1", "patched-2", "patched-3", "patched-4"]


def test_a_crash_during_a_check_that_left_no_result_is_counted_under_the_crash(crashed_result):
    base = [guest_run("base-1", [res(p) for p in PATHS])]
    crash = oops_run(console_with_markers(), results=[res(PATHS[0])]).to_json()
    r = copy.deepcopy(crashed_result)
    r = judged(r, base, [guest_run("patched-1", [res(PATHS[0])], crash)])
    by = {c["path"]: c for c in r["checks"]}
    assert by[PATHS[1]]["verdict"] == "crashed" and r["verdict"]["regressions"] == [f"new oops: {FP}"]


def test_summary_leads_with_the_crash_the_check_and_the_trace(crashed_result):
    md = render_summary(R(crashed_result))
    first = md.splitlines()[0]
    assert "**regression**" in first and "oopsed in lkdtm\\_EXCEPTION" in first
    assert f"during check {PATHS[1]}" in first and "2 checks not run after it" in first
    assert "4 of 4 boot(s)" in first
    head = md[:md.index("| check |")]
    assert "Culprit: patch 1" in head and "    RIP: 0010:lkdtm_EXCEPTION+0x2/0xa" in head
    assert "new oops in patched" not in md, "the crash is not repeated as a splat at the end"
    row = next(l for l in md.splitlines() if l.startswith(f"| {PATHS[3]} "))
    assert "not run: patched kernel crashed in" in row and "regression" not in row


def test_html_banner_terminal_junit_and_kcidb_lead_with_the_crash(crashed_result, tmp_path):
    html = render_html(R(crashed_result), tmp_path)
    banner = html[html.index('<div id="verdict"'):html.index("</div>", html.index('id="crash"'))]
    assert "The patched kernel oopsed in lkdtm_EXCEPTION during check" in banner and "Culprit: patch 1" in banner
    assert html.index('id="crash-trace"') < html.index('id="matrix"')

    out = run_summary_lines(R(crashed_result), tmp_path)
    assert out[0].startswith(f"{crashed_result['series']['name']}: regression: the patched kernel oopsed")
    assert f"(other regressions: {PATHS[1]})" in out[0] and any("RIP: 0010:lkdtm_EXCEPTION" in l for l in out[1:7])

    f = tmp_path / "junit.xml"
    f.write_text(render_junit(R(crashed_result)))
    ET.parse(f)
    cases = [c for s in JUnitXml.fromfile(str(f)) for c in s]
    first = cases[0]
    assert first.name == "kernel.crash.patched" and type(first.result[0]).__name__ == "Failure"
    assert "during check" in first.result[0].message and "RIP: 0010:lkdtm_EXCEPTION" in first.result[0].text
    by = {c.name: c for c in cases}
    skipped = by[PATHS[2]].result[0]
    assert type(skipped).__name__ == "Skipped" and skipped.message == f"not run: patched kernel crashed in {PATHS[1]}"
    assert type(by[PATHS[1]].result[0]).__name__ == "Failure", "the check that ran and failed stays a failure"
    assert not any(n.startswith("kernel.splat.") for n in by), "the crash's splat is the crash's test case"

    tests = {t["path"]: t for t in render_kcidb(R(crashed_result))["tests"] if t["build_id"].endswith("_patched")}
    t = tests[f"ktest.{PATHS[3]}"]
    assert t["status"] == "MISS" and t["misc"]["not_run"].startswith("not run: patched kernel crashed")


def test_hostile_crash_text_stays_inert(crashed_result):
    evil = "<img src=x onerror=alert(1)> [x](https://evil.example) `code` \x1b[31m"
    r = copy.deepcopy(crashed_result)
    r["verdict"]["crash"].update(trace=["BUG: " + evil, "  " + evil], during=evil, ended_because=evil)
    md = render_summary(R(r))
    out = MarkdownIt("commonmark").render(md)
    assert "<img" not in out and "<a " not in out and "\x1b" not in md
    html = render_html(R(r), Path("/nonexistent"))
    assert "<img src=x" not in html


# --- the boot: a dead kernel is not waited out -----------------------------------------------

def test_dead_kernel_rule():
    seen = {"kind": "oops", "line": "BUG: kernel NULL pointer dereference", "at": 100.0}
    assert dead_kernel({}, 999, 200.0, 30) is None
    assert dead_kernel(seen, 10, 200.0, 30) is None, "the harness wrote 10 s ago: still running checks"
    assert dead_kernel(seen, 999, 110.0, 30) is None, "the splat is 10 s old"
    why = dead_kernel(seen, 40, 200.0, 30)
    assert why.startswith("oops on the console (BUG: kernel NULL") and "40s" in why


@pytest.fixture
def fake_vng(monkeypatch, tmp_path):
    monkeypatch.setenv("KTEST_VNG", str(HERE / "fakevng.py"))
    monkeypatch.setenv("FAKE_VNG_PIDS", str(tmp_path / "pids"))
    monkeypatch.setenv("FAKE_VNG_MODE", "oops-hang")


def spec(tmp_path, **kw):
    return BootSpec(bzimage=tmp_path / "bzImage", command="true", rwdir=tmp_path / "rw", **kw)


def test_an_oops_then_silence_ends_the_boot_early_and_is_not_retried(tmp_path, fake_vng):
    r = boot_with_retry(spec(tmp_path, idle_timeout=60, crash_quiet=1.5), tmp_path / "log", Silent())
    # "crash", not "idle-timeout": the crash rule ended the boot, before the 60 s idle timeout could
    assert r.outcome == "crash" and r.attempts == 1 and not r.infra_failure
    assert r.ended_because.startswith("oops on the console (BUG: kernel NULL pointer dereference")
    assert "idle timeout" in r.ended_because


def test_before_the_early_end_the_same_boot_waited_out_the_idle_timeout(tmp_path, fake_vng):
    r = boot_with_retry(spec(tmp_path, idle_timeout=3, crash_quiet=1000), tmp_path / "log", Silent())
    assert r.outcome == "idle-timeout" and r.attempts == 1


def test_run_checks_records_the_crash_its_check_and_what_never_ran(tmp_path, fake_vng, monkeypatch, cache):
    run = run_checks(cache, tmp_path / "bzImage", tmp_path / "out", accel="tcg", progress=Silent(), crash_quiet=1.5)
    assert run.boot.outcome == "crash" and run.crashed
    c = run.crash
    assert (c.kind, c.fingerprint, c.during, c.not_run) == ("oops", FP, "smoke.b", ["smoke.c"])
    assert json.loads((tmp_path / "out" / "guest-run.json").read_text())["crash"]["during"] == "smoke.b"
