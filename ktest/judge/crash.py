"""When a kernel crashed: what (kind, fingerprint, the first lines of its trace), where (the check that
was running) and what it cut off (the checks that never ran).  Pure: a boot's console, splats and
harness records in, a `Crash` out.

"Crashed" means a panic, an Oops or a BUG anywhere on the console, or a guest whose harness started and
never finished because the boot had to be ended (a hang, after a splat or not).  The check that was
running is read from the console itself (the harness marks each check's start and end on /dev/kmsg, so
the markers and the splat are in one ordered stream), else from the harness's start/finish records
compared with the splat's printk timestamp.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from ktest.judge.console import FATAL, FUNC, Splat, markers

LABEL = {"panic": "panic", "oops": "Oops", "bug": "BUG", "hang": "hang", "timeout": "timeout"}
ENDED = ("idle-timeout", "hard-timeout", "crash")   # boot outcomes where ktest had to end the guest


@dataclass
class Crash:
    kind: str                   # panic | oops | bug | hang (a splat, then silence) | timeout (silence)
    fingerprint: str            # the splat's, or "timeout:<check>"
    title: str                  # the splat's header line, or why the boot was ended
    during: str | None          # dotted path of the check that was running, if one was
    where: str                  # "check X", or where else the kernel was when it crashed
    at_s: float | None = None   # the splat's printk timestamp
    trace: list[str] = field(default_factory=list)
    not_run: list[str] = field(default_factory=list)   # checks due after it that never ran
    ended_because: str | None = None                   # why ktest ended the boot, if it did
    known: str | None = None                           # a known-issues entry matched the splat
    function: str | None = None                        # the first meaningful function of its trace

    @property
    def label(self) -> str:
        return LABEL.get(self.kind, self.kind)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


VERB = {"panic": "panicked", "oops": "oopsed", "bug": "hit a BUG", "hang": "hung", "timeout": "stopped responding"}


def sentence(c: dict[str, Any], side: str = "patched") -> str:
    """One line for a reader: "the patched kernel oopsed in F during check C (FINGERPRINT, 2 of 2 boots);
    18 checks not run after it".  Plain text: each output escapes it its own way."""
    kind = c["kind"]
    what = VERB.get(kind, f"crashed ({kind})")
    if kind == "hang" and c.get("title", "").startswith("no progress after "):
        what += " after a " + c["title"].removeprefix("no progress after ").split(":", 1)[0]
    s = f"the {side} kernel {what}"
    if c.get("function"):
        s += f" in {c['function']}"
    s += f" during check {c['during']}" if c.get("during") else f" in {c.get('where', '?')}"
    extra = [c["fingerprint"]]
    if c.get("of_boots"):
        extra.append(f"{len(c.get('boots') or [])} of {c['of_boots']} boot(s)")
    if c.get("known"):
        extra.append(f"known: {c['known']}")
    s += f" ({'; '.join(extra)})"
    if c.get("not_run"):
        n = len(c["not_run"])
        s += f"; {n} check{'s' if n != 1 else ''} not run after it"
    return s


def trace_lines(text: str, n: int = 8) -> list[str]:
    """The first lines a reader needs from a splat: its header, the faulting RIP and the first call
    trace frames (register dumps, code bytes and unreliable "? frames" left out)."""
    lines = text.splitlines()
    out = lines[:1]
    for l in lines[1:]:
        s = l.strip()
        if s.startswith("RIP: 0010:") or s.startswith("kernel BUG at") or s.startswith("Oops:"):
            out.append(s)
        elif (m := FUNC.match(l)) and not m.group(1):
            out.append("  " + s)
        elif s.startswith("Call Trace:"):
            out.append(s)
        if len(out) >= n:
            break
    return out


def running_at(console_text: str, line: int | None, at_s: float | None, starts: list[dict[str, Any]],
               results: list[dict[str, Any]]) -> str | None:
    """The check that was running at console line `line` (printk time `at_s`).  The console's own
    start/end markers decide when it has any before that line; else the harness's start records and
    the results' finish times, compared with the splat's timestamp."""
    marks = markers(console_text)
    if marks and line is not None and any(m[0] < line for m in marks):
        running = None
        for ln, what, path in marks:
            if ln >= line:
                break
            if what == "start":
                running = path
            elif path == running:
                running = None
        return running
    if at_s is None:
        return None
    done = {r.get("id"): r.get("finished_at_uptime_s") for r in results}
    running = None
    for s in starts:
        if s.get("uptime_s") is None or s["uptime_s"] > at_s:
            break
        fin = done.get(s.get("id"))
        running = s.get("path") if fin is None or fin >= at_s else None
    return running


def _unfinished(starts: list[dict[str, Any]], results: list[dict[str, Any]]) -> str | None:
    """The last check that started and left no result (where a hang without a splat was)."""
    done = {r.get("id") for r in results}
    left = [s for s in starts if s.get("id") not in done]
    return left[-1].get("path") if left else None


def analyse(console_text: str, splats: list[Splat], *, outcome: str, harness_started: bool,
            harness_finished: bool, results: list[dict[str, Any]], starts: list[dict[str, Any]], selection: dict[str, Any] | None,
            ended_because: str | None = None) -> Crash | None:
    """The crash of one boot, or None if its kernel did not crash."""
    fatal = next((s for s in splats if s.kind in FATAL), None)
    hung = harness_started and not harness_finished and outcome in ENDED
    if fatal is None and not hung:
        return None
    splat: Splat | None
    if fatal is not None:
        splat, kind = fatal, fatal.kind
    else:   # the guest stopped: the last splat before that, if any, says why
        splat, kind = (splats[-1], "hang") if splats else (None, "timeout")
    if splat is not None:
        during = running_at(console_text, splat.line, splat.time_s, starts, results)
    else:
        during = _unfinished(starts, results)
    if during is not None:
        where = f"check {during}"
    elif not harness_started:
        where = "boot, before the guest harness started"
    elif harness_finished:
        where = "the guest harness, outside any check"
    else:
        where = "the guest harness, between checks"
    if splat is not None:
        fp, title, trace = splat.fingerprint, splat.title, trace_lines(splat.text)
        if kind == "hang":
            title = f"no progress after {splat.kind}: {splat.title}"
    else:
        fp = f"timeout:{during or 'harness'}"
        title = ended_because or f"the guest stopped responding ({outcome})"
        trace = []
    return Crash(kind=kind, fingerprint=fp, title=title, during=during, where=where,
                 at_s=splat.time_s if splat else None, trace=trace,
                 not_run=not_run(selection, results, during), ended_because=ended_because,
                 known=splat.known if splat else None,
                 function=splat.functions[0] if splat and splat.functions else None)


def not_run(selection: dict[str, Any] | None, results: list[dict[str, Any]], during: str | None) -> list[str]:
    """Checks the harness was going to run (selection.json, in order) that left no result, other than
    the one the kernel crashed in."""
    from ktest.guest.plugin import dotted_path

    if not selection:
        return []
    done = {r.get("id") for r in results}
    ids = selection.get("run") or selection.get("selected") or []
    return [p for p in (dotted_path(i) for i in ids if i not in done) if p != during]

