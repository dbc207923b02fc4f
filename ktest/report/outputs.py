"""Outputs of a run, all rendered from result.json alone: index.html, junit.xml, kcidb.json,
summary.md.  `ktest report RESULT.json` re-renders them for any stored run."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from jinja2 import Environment, PackageLoader, select_autoescape
from markupsafe import Markup, escape

from ktest.judge import agreement
from ktest.base.cache import write_json_atomic
from ktest.judge.crash import sentence as crash_sentence
from ktest.report.history import anchor
from ktest.base.result import CheckResult, MetricResult, Outcome, Result, Status
from ktest.base.safetext import inert, md_code, md_text
from ktest.judge.verdict import REGRESSIONS

if TYPE_CHECKING:
    from junitparser import TestCase, TestSuite

ORIGIN = "ktest"


# --- SVG charts (numbers only; every text goes through escape) -----------------------------------

def strip_chart(m: MetricResult, width: int = 560) -> Markup:
    """Both sides' samples on one linear axis: one row of dots per side, the median as a bar."""
    rows = [("base", m.base_samples, "#5b7db1", m.base_median), ("patched", m.patched_samples, "#d0663a", m.patched_median)]
    vals = [v for _, s, _, _ in rows for v in s]
    if not vals:
        return Markup("<em>no samples</em>")
    lo, hi = min(0.0, min(vals)), max(vals)
    hi = hi if hi > lo else lo + 1
    x0, x1, rh = 100, width - 20, 28
    sx: Callable[[float], float] = lambda v: x0 + (v - lo) / (hi - lo) * (x1 - x0)
    h = rh * len(rows) + 22
    parts = [f'<svg class="chart" role="img" width="{width}" height="{h}" viewBox="0 0 {width} {h}" '
             f'xmlns="http://www.w3.org/2000/svg"><title>{escape(m.metric)} ({escape(m.unit)})</title>']
    for i, (name, samples, color, med) in enumerate(rows):
        y = 15 + i * rh
        parts.append(f'<text x="4" y="{y + 4}" font-size="12">{name} n={len(samples)}</text>')
        parts.append(f'<line x1="{x0}" x2="{x1}" y1="{y}" y2="{y}" stroke="#ddd"/>')
        for v in samples:
            parts.append(f'<circle cx="{sx(v):.1f}" cy="{y}" r="4" fill="{color}" fill-opacity="0.6">'
                         f'<title>{v:.2f} {escape(m.unit)}</title></circle>')
        if med is not None:
            parts.append(f'<line x1="{sx(med):.1f}" x2="{sx(med):.1f}" y1="{y - 9}" y2="{y + 9}" stroke="{color}" '
                         f'stroke-width="3"/>')
    ya = 15 + len(rows) * rh - 8
    for t in range(5):
        v = lo + (hi - lo) * t / 4
        parts.append(f'<text x="{sx(v):.1f}" y="{ya + 14}" font-size="10" text-anchor="middle">{v:.3g}</text>')
    parts.append(f'<text x="4" y="{ya + 14}" font-size="10">{escape(m.unit)}</text></svg>')
    return Markup("".join(parts))


def _fmt(v: float | None, unit: str | None = "") -> str:
    if v is None:
        return "–"
    return f"{v:.1f}{(' ' + unit) if unit else ''}"


def _tail(outdir: Path, rel: str | None, n: int = 150) -> str:
    """The end of a log the result names (inside the run directory; a FIFO, a device or a link out of
    the directory is not read, and of a huge log only its last MiB)."""
    from ktest.base.safeio import Refused, tail_text

    if not rel:
        return "(no log recorded)"
    try:
        return tail_text(outdir / rel, n, root=outdir)
    except Refused as e:
        return f"(log not shown: it {e.why})" if not e.missing else "(log not available)"
    except OSError:
        return "(log not available)"


# C0 controls but tab and newline, DEL, C1 controls, bidi overrides: shown as \xNN in the HTML pages
_HTML_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def _visible_controls(v: object) -> object:
    """Jinja's finalize: every value a page shows (a subject, a check name, a console tail) with its
    control characters visible instead of raw (ESC, BEL and NUL from outside text never reach the page);
    and words, not Python values: a yes/no for True/False and a dash for None."""
    if v is True or v is False:
        return "yes" if v else "no"
    if v is None:
        return "–"
    if isinstance(v, str):
        from ktest.base.safetext import _visible

        out = _HTML_CONTROL.sub(_visible, v)
        return Markup(out) if isinstance(v, Markup) else out
    return v


def metric_clock(m: MetricResult) -> str | None:
    """Which clock timed a latency: a check names its kernel-clock metrics `*_kernel` (kprobe events in
    the kernel's CLOCK_MONOTONIC, microseconds, no user-space scheduling in them); other times are taken
    in user space in the guest, where a loaded host adds tens of ms."""
    if (m.unit or "") not in ("ms", "s", "us"):
        return None
    return "kernel (kprobes)" if m.metric.endswith("_kernel") else "user space"


def _over_boots(m: MetricResult) -> str:
    """How a metric fared over boots, in words: each aspect's decision (ktest-rule/3), the smallest
    harmful change the run could detect, and whose noise; a result of the older rule says whether the
    shift held in every boot."""
    names = {"centre": "median", "tail": "p90"}
    if m.decisions:
        words = {"DIFFERENT": "changed", "SAME": "ruled out", "UNKNOWN": "in doubt"}
        parts = [", ".join(f"{names.get(k, k)} {words.get(v, v)}" for k, v in m.decisions.items())]
        if m.mde is not None:
            parts.append(f"detects {_fmt(m.mde, m.unit or '')}")
        if clock := metric_clock(m):
            parts.append(f"clock: {clock}")
        if m.noise:
            parts.append(f"noise: {m.noise}")
        return "; ".join(parts)
    rep = m.replicated
    if not isinstance(rep, dict) or not rep:
        return "not compared over boots"
    return "holds in every boot: " + ", ".join(
        f"{names.get(k, k)} {'yes' if v else 'no' if v is False else 'not measured'}" for k, v in rep.items())


def template_env() -> Environment:
    """The package's templates (report.html.j2, merge.html.j2), autoescaped, with fmt and strip_chart."""
    env = Environment(loader=PackageLoader("ktest", "templates"), autoescape=select_autoescape(["html", "j2"]),
                      trim_blocks=True, lstrip_blocks=True, finalize=_visible_controls)
    env.filters["fmt"] = _fmt
    env.filters["over_boots"] = _over_boots
    env.globals["strip_chart"] = strip_chart
    env.globals["trends_anchor"] = anchor
    return env


def control_note(result: Result, path: str) -> str | None:
    """The resolution a metric of check `path` is read against: its area's control path's spread, the
    median over the base boots (None when the area names no control or no base boot timed it)."""
    import statistics

    for row in result.resolution or []:
        if path.startswith(f"{row['area']}."):
            xs = [x for x in row.get("base") or [] if x is not None]
            if xs:
                return f"control spread {_fmt(statistics.median(xs), row.get('unit') or 'ms')}"
    return None


def render_html(result: Result, outdir: Path) -> str:
    """The report page.  Its template reads the result's JSON form (`r`)."""
    env = template_env()
    logs = []
    for b in result.boots:
        boot = b.get("boot") or {}
        shard = f"shard {b['shard']}: " if b.get("shard") else ""
        logs.append({"name": f"{shard}{b['side']} {b.get('purpose', 'round')} {b.get('round', '?')}",
                     "console": _tail(outdir, boot.get("console_log")),
                     "stdout": _tail(outdir, boot.get("stdout_log"), 80)})
    from ktest.judge.stats import RULE_TEXT

    return env.get_template("report.html.j2").render(r=result, logs=logs, rule_text=RULE_TEXT,
                                                      crash=crash_lead(result), verdict_text=check_verdict_text,
                                                      reproduce=lambda c: reproduce(result, c),
                                                      control=lambda path: control_note(result, path),
                                                      agreement=agreement.table(result))


# --- reproducing one check ------------------------------------------------------------------------

QUIET_VERDICTS = ("unchanged", "not run", "crashed")


def node_id(result: Result, path: str) -> str | None:
    """The pytest node id that ran check `path` (a sub-result's id without its case name)."""
    for b in result.boots:
        for r in b.get("results", []):
            if r.get("path") == path and r.get("id"):
                file, _, rest = r["id"].partition("::")
                return f"{file}::{rest.partition('::')[0]}" if rest else file
    return None


def reproduce(result: Result, check: CheckResult) -> dict[str, str]:
    """For a check whose verdict is not "unchanged": per side, the command that boots that side's
    kernel build (from the cache) and runs just this check with the run's repetitions, from a ktest
    checkout.  Empty when the run has no build key or never ran the check."""
    if check.verdict in QUIET_VERDICTS:
        return {}
    nid = node_id(result, check.path)
    builds = [b for b in result.passed_builds() if b.key]
    if not nid or not builds:
        return {}
    import shlex

    reps = result.settings.reps
    keys = {"base": builds[0].key, "patched": builds[-1].key} if len(builds) > 1 else {"base": builds[0].key}
    return {side: shlex.join(["ktest", "boot", "--build", str(key), "--testcases", nid, "--reps", str(reps)])
            for side, key in keys.items()}


# --- the crash leads ---------------------------------------------------------------------------

def crash_lead(result: Result) -> dict[str, Any] | None:
    """The crash every output leads with (verdict["crash"]: a new crash of the patched kernel first,
    else any crash of either side), with every check it kept from running, one plain-text sentence,
    the culprit and the regression entry that stands for it."""
    c = result.outcome.crash
    if not c:
        return None
    side = c.get("side", "patched")
    not_run = list(c.get("not_run") or [])
    for x in result.checks:
        nr = x.not_run
        if nr and nr["side"] == side and nr["fingerprint"] == c["fingerprint"] and not nr["during"] \
                and x.path not in not_run:
            not_run.append(x.path)
    c = {**c, "not_run": not_run}
    cul = result.culprit if c.get("new") else None
    return {**c, "sentence": crash_sentence(c, side), "entry": f"new {c['kind']}: {c['fingerprint']}",
            "culprit": f"patch {cul.patch} “{cul.subject}”: {cul.why}" if cul else None}


def check_verdict_text(c: CheckResult) -> str:
    """A check's verdict as shown: a check its kernel's crash kept from running says so."""
    return c.not_run["reason"] if c.not_run else c.verdict


# --- JUnit ------------------------------------------------------------------------------------

def render_junit(result: Result) -> str:
    return junit_xml([junit_suite(result)])


def junit_xml(suites: list[Any]) -> str:
    from junitparser import JUnitXml

    xml = JUnitXml()
    for suite in suites:
        xml.add_testsuite(suite)
    out = xml.tostring()    # type: ignore[no-untyped-call]  # junitparser leaves Element.tostring unannotated
    return xml_safe(out.decode() if isinstance(out, bytes) else out)


_XML_FORBIDDEN = re.compile("[^\x09\x0a\x0d\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def xml_safe(text: str) -> str:
    """XML 1.0 cannot carry control characters at all (not even as &#x1b;): console and patch text may
    hold them, so they are shown as \\xNN instead, and the file stays well-formed."""
    return _XML_FORBIDDEN.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


def junit_suite(result: Result, name: str | None = None) -> TestSuite:
    from junitparser import Error, Failure, Skipped, TestCase, TestSuite

    suite = TestSuite(name or f"ktest.{result.series.name}")
    lead = crash_lead(result)
    crash_fps = {c["fingerprint"] for c in (result.crashes or {}).get("new", [])}
    if lead:        # first: the crash, with its trace, stands for every check it kept from running
        tc = TestCase(f"kernel.crash.{lead['side']}", classname="ktest.kernel")
        msg = lead["sentence"] + (f"; culprit {lead['culprit']}" if lead["culprit"] else "")
        tc.result = [Failure(msg) if lead.get("new") else Error(msg)]
        tc.result[0].text = "\n".join(lead.get("trace") or []) or lead.get("title", "")
        if lead.get("not_run"):
            tc.system_out = "not run because of this crash:\n" + "\n".join(lead["not_run"])
        suite.add_testcase(tc)
    for b in result.builds:
        tc = TestCase(f"build.{b.label.replace(' ', '_').replace('/', '_of_')}", classname="ktest.build")
        if b.status != Status.PASS:
            tc.result = [Failure(b.error or "build failed")]
        suite.add_testcase(tc)
    for c in result.checks:
        suite.add_testcase(_junit_case(c))
    for s in result.splats.get("new", []):
        if s["fingerprint"] in crash_fps:
            continue            # the crash's own test case above
        tc = TestCase(f"kernel.splat.{s['fingerprint']}", classname="ktest.kernel")
        tc.result = [Failure(f"new {s['kind']} in the patched kernel: {s['title']}")]
        suite.add_testcase(tc)
    for e in result.expected:
        tc = TestCase(f"expected.{e.check}.{e.metric}", classname="ktest.expected")
        if e.held is False:
            tc.result = [Failure(f"declared '{e.change}' did not hold: {e.observed}")]
        elif e.held is None:
            tc.result = [Skipped(f"{e.word}: {e.observed}")]
        suite.add_testcase(tc)
    v = result.outcome
    if v.status == Outcome.COULD_NOT_RUN:
        tc = TestCase(f"run.{v.stage or 'run'}", classname="ktest.run")
        tc.result = [Error(v.error or "could not run")]
        suite.add_testcase(tc)
    return suite


def _junit_case(c: CheckResult) -> TestCase:
    """One check as a JUnit test case: a regression fails it; flaky, undecided and a failure on one
    side only are errors; a check skipped on both sides is skipped."""
    from junitparser import Error, Failure, Skipped, TestCase

    tc = TestCase(c.path, classname="ktest.check")
    tc.system_out = "\n".join(
        f"{m.metric}: base {_fmt(m.base_median, m.unit)} (n={m.n_base}) -> patched "
        f"{_fmt(m.patched_median, m.unit)} (n={m.n_patched}): {m.verdict} ({m.reason})"
        for m in c.metrics)
    base, patched = c.base.status, c.patched.status
    said = c.messages.get("patched") or []
    if c.not_run:
        nr = c.not_run
        tc.result = [Error(nr["reason"]) if nr["during"] else Skipped(nr["reason"])]
    elif c.verdict in REGRESSIONS:
        tc.result = [Failure(f"{c.verdict}: {base} -> {patched}; " + "; ".join(said))]
    elif c.verdict == "flaky":
        tc.result = [Error(f"flaky on patched: {[str(s) for s in c.patched.statuses]}")]
    elif c.verdict == "undecided":
        doubt = [f"{m.metric}: {m.reason}" for m in c.metrics if m.doubt == "harm"]
        f = c.failures or {}
        if f.get("decision") == "UNKNOWN":
            doubt.insert(0, f"fails in {f['patched'][0]} of {f['patched'][1]} patched boots, "
                            f"{f['base'][0]} of {f['base'][1]} base (Fisher p={f['p']:.3g})")
        tc.result = [Error("undecided, not green: " + "; ".join(doubt))]
    elif base == Status.SKIP and patched == Status.SKIP:
        tc.result = [Skipped("; ".join(said) or "skipped")]
    elif c.verdict == "not compared":
        msg = f"not compared: {base} -> {patched}; " + "; ".join(said or c.messages.get("base") or [])
        tc.result = [Error(msg) if patched in (Status.FAIL, Status.ERROR) else Skipped(msg)]
    return tc


# --- KCIDB ------------------------------------------------------------------------------------

_KCIDB_NAME = re.compile(r"[^a-zA-Z0-9_-]+")


def kcidb_path(*parts: str) -> str:
    """A dotted KCIDB test path (each node [a-zA-Z0-9_-]+) from check paths and metric names, which come
    from the checks' source and the guest: anything else becomes _."""
    nodes = [n for p in parts for n in str(p).split(".")]
    return ".".join(_KCIDB_NAME.sub("_", n) or "_" for n in nodes)


def _no_nul(v: Any) -> Any:         # a JSON value in, the same shape out
    """KCIDB strings may not hold NUL: outside text (a subject, a tree name) shows it as \\x00."""
    if isinstance(v, str):
        return v.replace("\0", "\\x00")
    if isinstance(v, dict):
        return {k: _no_nul(x) for k, x in v.items()}
    if isinstance(v, list):
        return [_no_nul(x) for x in v]
    return v


def render_kcidb(result: Result) -> dict[str, Any]:
    import kcidb_io

    rid = result.run_id.replace("-", "_").lower()
    tree, series, checkout = result.tree, result.series, result.checkout
    base_co = {"id": f"{ORIGIN}:{rid}_base", "origin": ORIGIN, "tree_name": tree.name[:100],
               "git_commit_hash": tree.base, "git_commit_name": tree.base_rev, "start_time": result.created,
               "valid": True}
    co = {"id": f"{ORIGIN}:{rid}", "origin": ORIGIN, "tree_name": tree.name[:100],
          "git_commit_hash": tree.base, "git_commit_name": tree.base_rev, "start_time": result.created,
          "patchset_hash": checkout["patchset_hash"],
          "patchset_files": [{"name": f["name"], "url": Path(series.path or "", f["name"]).as_uri()
                              if not f["name"].count("#") else Path(series.path or "").as_uri()}
                             for f in checkout["patchset_files"]],
          "valid": bool(checkout["valid"])}
    if rng := series.range:     # the patched side is a commit of the user's repository: the range's end
        co.update(git_commit_hash=rng["end"], git_commit_name=str(rng.get("end_rev") or rng["end"])[:100],
                  patchset_files=[], patchset_hash="",
                  misc={"range": rng["spec"], "base": rng["start"], "commits": [p.commit for p in series.patches]})
    builds, tests = [], []
    side_build = {}
    for b in result.builds:
        if b.label != "base" and b is not result.builds[-1]:
            continue
        side = "base" if b.label == "base" else "patched"
        bid = f"{ORIGIN}:{rid}_{side}"
        side_build[side] = bid
        builds.append({"id": bid, "origin": ORIGIN, "checkout_id": base_co["id"] if side == "base" else co["id"],
                       "architecture": "x86_64", "config_name": "ktest-lean", "compiler": "gcc",
                       "duration": b.duration_s or 0.0, "status": "PASS" if b.status == Status.PASS else "FAIL"})
    for c in result.checks:
        for side, sr in (("base", c.base), ("patched", c.patched)):
            if side not in side_build:
                continue
            t: dict[str, Any] = {"id": f"{ORIGIN}:{rid}_{side}_{c.path}"[:255], "origin": ORIGIN, "build_id": side_build[side],
                 "path": kcidb_path("ktest", c.path), "status": "FAIL" if sr.status == Status.FLAKY else str(sr.status)}
            if c.not_run and c.not_run.get("side") == side:
                t["misc"] = {"not_run": c.not_run["reason"]}
            tests.append(t)
            for m in c.metrics:
                med, samples, tail = ((m.base_median, m.base_samples, m.base_p90) if side == "base"
                                      else (m.patched_median, m.patched_samples, m.patched_p90))
                if med is None:
                    continue
                tests.append({"id": f"{t['id']}_{m.metric}"[:255], "origin": ORIGIN, "build_id": side_build[side],
                              "path": kcidb_path("ktest", c.path, m.metric), "status": "DONE",
                              "number": {"value": float(med), "unit": m.unit},
                              "misc": {"samples": samples, "p90": tail}})
    data: dict[str, Any] = {"version": {"major": kcidb_io.schema.LATEST.major, "minor": kcidb_io.schema.LATEST.minor},
                            "checkouts": [base_co, co], "builds": builds, "tests": tests}
    data = _no_nul(data)
    kcidb_io.schema.LATEST.validate(data)
    return data


# --- Markdown summary ---------------------------------------------------------------------------

def render_summary(result: Result) -> str:
    """Markdown for $GITHUB_STEP_SUMMARY.  Every text that comes from the series, the tree, the console
    or the checks goes through md_text: GitHub renders this file, so its HTML, links and images would
    be live."""
    t = md_text
    v = result.outcome
    s = result.settings
    icon = {Outcome.REGRESSION: "❌", Outcome.NO_REGRESSION: "✅"}.get(v.status, "⚠️")
    lead = crash_lead(result)
    lines = [f"## {icon} ktest: {t(result.series.name)} on {t(result.tree.name)}: "
             f"**{t(v.status)}**" + (f": {t(lead['sentence'])}" if lead else ""), ""]
    if v.error:
        lines += [t(v.error), ""]
    if v.status in (Outcome.INTERRUPTED, Outcome.UNKNOWN):
        # no claim: say what is kept and how to get one, never a rule or a table nobody judged
        if v.status == Outcome.UNKNOWN:
            lines += [f"The run stopped before its verdict, after {result.boots_told()}; nothing was judged.", ""]
        lines += [f"Run {t(result.run_id)}, accel {t((result.env or {}).get('accel', '?'))}. The boots are kept "
                  "in this run's directory; `ktest run --rerun DIR` with that directory runs the series again."]
        return "\n".join(lines) + "\n"
    booted = result.rounds.booted if result.rounds else s.rounds
    if v.undecided and v.exit_code == 1:
        lines += [f"Also in doubt after {t(booted or s.rounds)} round(s); no more boots were spent on them "
                  "once the regression was decided:", ""]
    elif v.undecided:
        lines += [f"In doubt after {t(booted or s.rounds)} "
                  f"round(s), so not green (exit 3); more rounds (`--max-rounds`) can settle them:", ""]
    if v.undecided:
        lines += [f"- {t(u)}" for u in v.undecided] + [""]
    if rng := result.series.range:
        lines += [f"Revision range {t(rng['spec'])}: base {t(rng['start'][:12])}, commits "
                  + ", ".join(t((p.commit or "")[:12]) for p in result.series.patches), ""]
    if c := result.culprit:
        lines += [f"Culprit: patch {t(c.patch)} “{t(c.subject)}”: {t(c.why)}", ""]
    if lead:
        if lead.get("trace"):        # an indented code block: literal text, nothing in it is live
            lines += ["    " + inert(l) for l in lead["trace"]] + [""]
        if lead.get("ended_because"):
            lines += [f"ktest ended the boot: {t(lead['ended_because'])}", ""]
        if lead.get("not_run"):
            lines += [f"Not run because the kernel crashed in {t(lead.get('during') or lead.get('where'))} "
                      f"({len(lead['not_run'])}): " + ", ".join(t(p) for p in lead["not_run"]), ""]
    if result.checks:
        lines += ["| check | base | patched | verdict | key metric (median, base → patched) |", "|---|---|---|---|---|"]
        for ch in result.checks:
            m = ch.metrics[0] if ch.metrics else None
            km = (f"{t(m.metric)}: {t(_fmt(m.base_median, m.unit))} → "
                  f"{t(_fmt(m.patched_median, m.unit))} (n={m.n_base}/{m.n_patched})") if m else ""
            known = " (known base failure)" if ch.known_issue else ""
            lines.append(f"| {t(ch.path)} | {t(ch.base.status)}{known} | {t(ch.patched.status)} | "
                         f"{t(check_verdict_text(ch))} | {km} |")
        lines.append("")
        repro = [(ch, cmds) for ch in result.checks if (cmds := reproduce(result, ch))]
        if repro:
            lines += ["To reproduce a check (from a ktest checkout, with the run's kernel builds in the cache):", ""]
            for ch, cmds in repro:       # code spans: the commands copy from the page or the raw file and run
                lines += [f"- {t(ch.path)} ({t(check_verdict_text(ch))}):"]
                lines += [f"    - {side}: {md_code(cmd)}" for side, cmd in cmds.items()]
            lines.append("")
    agree = agreement.table(result)
    if agree:
        lines += ["Upstream selftests as referee (upstream / ktest, per side):", "",
                  "| upstream | ktest checks | base | patched |", "|---|---|---|---|"]
        for a in agree:
            cells = [f"{t(a[x]['upstream'] or '–')} / {t(a[x]['ktest'] or '–')}"
                     + {True: " agree", False: " **disagree**", None: ""}[a[x]["agree"]] for x in ("base", "patched")]
            lines.append(f"| {t(a['upstream'])} | {t(', '.join(a['ktest']) or 'none')} | {cells[0]} | {cells[1]} |")
        lines.append("")
    for e in result.expected:
        mark = "**did not hold**" if e.held is False else e.word
        lines.append(f"- expected {t(e.change)} of {t(e.check)} {t(e.metric)}: {mark} ({t(e.observed)})")
    for sp in result.splats.get("new", []):
        if lead and sp["fingerprint"] == lead["fingerprint"]:
            continue            # it leads the summary already
        lines.append(f"- new {t(sp['kind'])} in patched: {t(sp['fingerprint'])}: {t(sp.get('title', ''))}")
    if not result.boots:
        lines += ["", f"Nothing was booted: the run stopped at {t(v.stage or '?')}; run {t(result.run_id)}."]
        return "\n".join(lines) + "\n"
    lines += ["", f"{t(booted)} boots per side (planned {t(s.rounds)}) × {t(s.reps)} repetitions, "
                  f"accel {t((result.env or {}).get('accel', '?'))}; run {t(result.run_id)}."]
    if result.rounds and result.rounds.stopped:
        lines.append(f"Boots stopped early: {t(result.rounds.stopped)}.")
    cal = result.calibration
    lines.append(f"Rule {t(v.rule or '?')}; " + (f"noise floors calibrated ({t(cal['boots'])} boots, "
                                                       f"{t(cal['splits'])} splits)."
                 if cal else "**no calibration for this kernel and accel**: noise floors estimated from the base "
                             "samples (run `ktest calibrate`)."))
    if (result.history or {}).get("trends"):
        lines.append("Metric trends of this series across its runs: `history.html` beside this run's directory.")
    return "\n".join(lines) + "\n"


def write_all(result: Result, outdir: Path) -> None:
    """Render every output first, then write them: a result no output can be made of (KCIDB refuses a
    field of a result from elsewhere) writes none, instead of half of them."""
    import jsonschema

    from ktest.base.errors import BadResult

    html_text, junit = render_html(result, outdir), render_junit(result)
    try:
        kcidb = render_kcidb(result)
    except jsonschema.exceptions.ValidationError as e:
        where = "/".join(str(p) for p in e.absolute_path) or "the top level"
        raise BadResult(path=outdir / "result.json", why=f"its KCIDB form is invalid at {where}: "
                                                         f"{e.message[:200]}") from None
    summary = render_summary(result)
    outdir.mkdir(parents=True, exist_ok=True)
    (outdir / "index.html").write_text(html_text)
    (outdir / "junit.xml").write_text(junit)
    write_json_atomic(outdir / "kcidb.json", kcidb)
    (outdir / "summary.md").write_text(summary)
