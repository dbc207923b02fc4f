"""A pure KTAP (and kselftest TAP 13) parser: lines in, a tree of results out, no I/O.

It reads what the kernel's test runners print:
- KTAP v1 and TAP 13/14 version lines, plans (`1..N`), result lines
  (`ok N - name # SKIP reason`, `not ok N name # TIMEOUT 45 seconds`, `# exit=1`), diagnostics (`# ...`);
- subtests nested by indentation (KTAP v1, kunit) and, as the kselftest runner prints them, a test
  program's own TAP inside its parent's `# `-prefixed output;
- a missing plan (then nothing is inferred as missing), and a stream that stops early (a crash, a
  timeout that killed the runner): the results so far, plus a CRASHED result for the test that was
  running, carrying its output.
Anything else (a script's own prints) is kept as diagnostics of the test it belongs to."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Iterable

VERSION = re.compile(r"^(?:KTAP version \d+|TAP version \d+)\s*$")
PLAN = re.compile(r"^1\.\.(\d+)\s*$")
RESULT = re.compile(r"^(?P<ok>ok|not ok)\s+(?P<num>\d+)(?:\s+-)?(?:\s+(?P<name>[^#]*?))?\s*(?:#\s*(?P<dir>.*?))?\s*$")
SUBTEST = re.compile(r"^#\s*Subtest:\s*(?P<name>.*?)\s*$")
RUNNER_HEADER = re.compile(r"^selftests: (?P<name>.+?)\s*$")     # kselftest runner.sh, before each program


@dataclass
class Result:
    name: str
    number: int | None
    status: str                       # PASS | FAIL | SKIP | CRASHED
    directive: str | None = None      # "SKIP reason", "TIMEOUT 45 seconds", "exit=1", "TODO ..."
    diagnostics: list[str] = field(default_factory=list)   # the test's own output, "# " removed
    subtests: list["Result"] = field(default_factory=list)
    plan: int | None = None           # of its subtests, when it had some

    @property
    def reason(self) -> str | None:
        """SKIP's reason, or the directive of a failure (TIMEOUT, exit=N)."""
        if self.directive and self.directive.upper().startswith("SKIP"):
            return self.directive[4:].strip() or None
        return self.directive

    def walk(self) -> Iterator[Result]:
        yield self
        for s in self.subtests:
            yield from s.walk()


@dataclass
class Document:
    version: str | None
    plan: int | None
    tests: list[Result]
    crashed: bool = False
    name: str | None = None       # a nested block's own "# Subtest: name" header
    trailing: list[str] = field(default_factory=list)      # diagnostics after the last result

    def walk(self) -> Iterator[Result]:
        for t in self.tests:
            yield from t.walk()


def _status(ok: bool, directive: str | None) -> str:
    d = (directive or "").upper()
    if d.startswith("SKIP"):
        return "SKIP"
    if d.startswith("TODO"):
        return "PASS" if ok else "SKIP"            # an expected failure is not a failure
    return "PASS" if ok else "FAIL"


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip(" "))


def _strip_hash(line: str) -> str:
    return line[2:] if line.startswith("# ") else line[1:] if line.startswith("#") else line


def _block(lines: list[str], i: int, indent: int) -> tuple[Document, int]:
    version = plan = None
    tests: list[Result] = []
    diag: list[str] = []
    nested: Document | None = None
    subname: str | None = None
    own_name: str | None = None
    while i < len(lines):
        raw = lines[i]
        if not raw.strip():
            i += 1
            continue
        ind = _indent(raw)
        if ind < indent:
            break
        if ind > indent:                      # an indented (KTAP v1) subtest block
            nested, i = _block(lines, i, ind)
            continue
        line = raw[indent:]
        i += 1
        if VERSION.match(line):
            if version is None and not tests and not diag:
                version = line.strip()
            else:
                diag.append(line)
        elif (m := PLAN.match(line)) and plan is None:
            plan = int(m[1])
        elif m := RESULT.match(line):
            directive = (m["dir"] or "").strip() or None
            name = (m["name"] or "").strip() or subname or (nested and nested.name) or f"test {m['num']}"
            r = Result(name=name, number=int(m["num"]), status=_status(m["ok"] == "ok", directive),
                       directive=directive, diagnostics=diag)
            if nested is not None:
                r.subtests, r.plan = nested.tests, nested.plan
                if nested.crashed and r.status == "PASS":
                    r.status = "FAIL"
            else:
                _nested_in_output(r)
            tests.append(r)
            diag, nested, subname = [], None, None
        elif m := SUBTEST.match(line):
            if not tests and plan is None and version is not None and own_name is None:
                own_name = m["name"]          # KTAP v1: the block names itself after its version line
            else:
                subname = m["name"]
        else:
            diag.append(_strip_hash(line))
    doc = Document(version=version, plan=plan, tests=tests, name=own_name)
    if nested is not None or (plan is not None and len(tests) < plan):
        # the stream stopped inside a test: keep what it printed and say it crashed
        num = (tests[-1].number or len(tests)) + 1 if tests else 1
        name = subname or (nested and nested.name) or next((m["name"] for d in diag if (m := RUNNER_HEADER.match(d))), f"test {num}")
        r = Result(name=name, number=num, status="CRASHED", diagnostics=diag,
                   directive="the output stopped before this test's result")
        if nested is not None:
            r.subtests, r.plan = nested.tests, nested.plan
        else:
            _nested_in_output(r)
        doc.tests.append(r)
        doc.crashed = True
    else:
        doc.trailing = diag
    return doc, i


def _nested_in_output(r: Result) -> None:
    """A kselftest program that prints TAP itself: the runner prefixes it with '# ', so it arrives as
    the parent's diagnostics.  Read it as the parent's subtests."""
    start = next((k for k, d in enumerate(r.diagnostics) if VERSION.match(d.strip())), None)
    if start is None:
        return
    inner, _ = _block([d.rstrip() for d in r.diagnostics[start:]], 0, 0)
    if inner.tests:
        r.subtests, r.plan = inner.tests, inner.plan
        if inner.crashed and r.status == "PASS":
            r.status = "FAIL"


def parse(stream: Iterable[str]) -> Document:
    """Parse KTAP/TAP text (an iterable of lines, or one string split by the caller)."""
    lines = [l.rstrip("\r\n").expandtabs(8).rstrip() for l in stream]
    # the document starts at its version line; anything before it (a boot log) is not KTAP
    start = next((k for k, l in enumerate(lines) if VERSION.match(l.strip())), 0)
    body = lines[start:]
    indent = _indent(body[0]) if body else 0
    doc, _ = _block(body, 0, indent)
    return doc
