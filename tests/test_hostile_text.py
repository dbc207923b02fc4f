"""Hostile text from a patch subject and the console (HTML, Markdown, backticks, ANSI/OSC escapes,
control bytes, bidi overrides) rendered to every output: summary.md has no live HTML, links or images;
junit.xml parses; kcidb.json validates; the terminal gets no raw escape sequences.  (index.html is
covered by test_outputs.py and, in Chromium, by test_report_browser.py.)"""

import copy
import io
import json
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import kcidb_io
import pytest
from junitparser import JUnitXml
from markdown_it import MarkdownIt

from ktest.cli import run_summary_lines
from ktest.base.errors import PatchDoesNotApply
from ktest.report.outputs import write_all
from ktest.base.progress import Progress
from test_bad_inputs import CORRUPT, MAIL
from test_cli import ktest
from ktest.base.result import Result

R = Result.from_json

FIXTURE = Path(__file__).parent / "fixtures" / "result-linkwatch.json"

HOSTILE = ('net: <script>alert(1)</script> <img src=x onerror=alert(2)> [click](https://evil.example/x) '
           '![pixel](https://evil.example/p.png) `code` **bold** _em_ | cell | ~~gone~~ https://bare.example '
           'www.evil.example a@evil.example &amp; \x1b[31mred\x1b[0m \x1b]8;;https://evil.example\x07osc\x1b]8;;\x07 '
           '\x1b]0;title\x07 \x07\x08\x00\x7f\x9b \u202etxt.exe\n# heading\r\n- item')
CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


@pytest.fixture
def hostile_result():
    r = json.loads(FIXTURE.read_text())
    r = copy.deepcopy(r)
    r["series"]["name"] = "series " + HOSTILE
    r["series"]["patches"][0]["subject"] = HOSTILE
    r["culprit"] = {"patch": 1, "subject": HOSTILE, "why": "first patch that shows: " + HOSTILE}
    r["verdict"]["error"] = "ktest: user error [x]: " + HOSTILE
    r["verdict"]["regressions"] = [r["checks"][0]["path"], "new warning:" + HOSTILE]
    r["checks"][0]["verdict"] = "regression"
    r["checks"][0]["messages"]["patched"] = ["assert " + HOSTILE]
    splat = {"kind": "warning", "fingerprint": "warning:" + HOSTILE, "title": "WARNING: CPU: 0 PID: 1 at " + HOSTILE,
             "text": HOSTILE, "functions": [], "line": 1, "known": None}
    r["splats"]["new"] = [splat]
    r["splats"]["patched"] = [splat]
    r["expected"][0]["observed"] = HOSTILE
    return r


def test_summary_md_has_no_live_html_links_or_images(hostile_result, tmp_path):
    write_all(R(hostile_result), tmp_path)
    md = (tmp_path / "summary.md").read_text()
    assert not CONTROL.search(md), "no control bytes, no bidi overrides"
    assert "<" not in md and "\x1b" not in md
    assert not re.search(r"(?<!\\)\]\(", md), "no link or image syntax"
    assert not re.search(r"(?<!\\)!\\?\[", md.replace("\\!\\[", "")), "no image syntax"
    own = re.sub(r"`ktest boot --build [0-9a-f]+ --testcases [^`]+ --reps \d+`", "", md)   # reproduce commands
    assert not re.search(r"(?<![\\])`", own.replace("`ktest calibrate`", "")), "no code span from outside text"
    assert not re.search(r"(?<!\\)://", md), "no bare URL GitHub would autolink"
    assert "\\x1b\\[31m" in md, "the escape is shown, as text"
    # one line per item: a newline in a subject does not start a heading or a list item
    assert not any(l.startswith(("# heading", "- item")) for l in md.splitlines())
    html = MarkdownIt("commonmark").enable(["table", "strikethrough"]).render(md)
    for live in ("<script", "<img", "<a ", "<strong>bold", "<em>em", "<s>gone", "<h1", "<li>item"):
        assert live not in html, live
    assert html.count("<code>") == html.count("<code>ktest calibrate</code>") + html.count("<code>ktest boot --build "), \
        "only ktest's own code spans"
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html, "the text is still there, inert"
    header = next(l for l in md.splitlines() if l.startswith("| check"))
    rows = [l for l in md.splitlines() if l.startswith("| linkwatch")]
    assert all(len(re.findall(r"(?<!\\)\|", l)) == header.count("|") for l in rows), "no extra table cells"


def test_junit_and_kcidb_stay_valid(hostile_result, tmp_path):
    write_all(R(hostile_result), tmp_path)
    ET.parse(tmp_path / "junit.xml")
    xml = (tmp_path / "junit.xml").read_text()
    assert "\x1b" not in xml and "<script" not in xml
    cases = [c for s in JUnitXml.fromfile(str(tmp_path / "junit.xml")) for c in s]
    splat = next(c for c in cases if c.name.startswith("kernel.splat."))
    assert "\\x1b[31mred" in splat.result[0].message
    kcidb_io.schema.LATEST.validate(json.loads((tmp_path / "kcidb.json").read_text()))


def test_terminal_gets_no_escape_sequences(hostile_result, tmp_path):
    lines = run_summary_lines(R(hostile_result), tmp_path)
    buf = io.StringIO()
    progress = Progress(stream=buf)
    progress.stage(f"[{hostile_result['series']['name']}] applying 1 patch(es)")
    progress.info(HOSTILE)
    progress.warn(HOSTILE)
    progress.status(HOSTILE)
    err = PatchDoesNotApply(index=1, subject=HOSTILE, name="0001.patch", base="v6.12", why="git: " + HOSTILE).line()
    for text in [*lines, buf.getvalue(), err]:
        assert not CONTROL.search(text.replace("\n", "")), repr(text)
    assert "\n" not in err and "\\x1b]8;;https" in err


def test_hostile_subject_through_the_cli(tmp_path, fake_tree):
    """An RFC 2047 encoded subject decodes to ESC sequences: the one error line shows them as text."""
    d = tmp_path / "s"
    d.mkdir()
    subject = "=?utf-8?q?net=3A_=1B]0;pwned=07=1B[2J<script>?="
    (d / "0001-x.patch").write_text(MAIL.format(subject=subject, diff=CORRUPT))
    p = ktest("build", str(d), "--tree", str(fake_tree), cache=tmp_path / "c")
    assert p.returncode == 2 and "Traceback" not in p.stderr
    assert not CONTROL.search(p.stderr.replace("\n", "")), repr(p.stderr)
    assert "net: \\x1b]0;pwned\\x07\\x1b[2J<script>" in p.stderr.splitlines()[-1]


@pytest.mark.parametrize("cmd", ["ktest boot --build abc --testcases 'testcases/x.py::test_a[gap_0.1s]' --reps 5",
                                 "ktest boot --testcases 'a`b``c.py::t[*x*]' --reps 5", "`ktest` <b>x</b> [a](b)"])
def test_a_command_in_summary_md_is_one_code_span_that_copies_as_it_is(cmd):
    from ktest.base.safetext import md_code

    html = MarkdownIt("commonmark").render(f"- base: {md_code(cmd)}\n")
    spans = re.findall(r"<code>(.*?)</code>", html, re.S)
    import html as h

    assert len(spans) == 1 and h.unescape(spans[0]) == cmd, html
