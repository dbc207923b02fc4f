"""Outside text (patch subjects, series names, console lines, git's messages) made inert for each output.

A patch subject or a splat title is written by someone else: on a terminal its escape sequences would
recolour, retitle or hide lines (ESC, OSC 8 links, bidi overrides), and in summary.md (shown by GitHub as
$GITHUB_STEP_SUMMARY) its HTML, links and images would be live.  `inert` shows control characters as
visible \\xNN text; `md_text` does that and escapes what Markdown would interpret.  The HTML report is
autoescaped by Jinja and JUnit's XML by `outputs.xml_safe`.
"""

from __future__ import annotations

import html
import re

# C0 and C1 controls, DEL, and the bidi embeddings/overrides/isolates ("Trojan Source")
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def _visible(m: re.Match[str]) -> str:
    c = ord(m.group())
    return f"\\x{c:02x}" if c < 0x100 else f"\\u{c:04x}"


def inert(text: object) -> str:
    """One line with no control characters: each is shown as \\xNN (\\uNNNN for bidi controls)."""
    return _CONTROL.sub(_visible, str(text))


# characters Markdown (CommonMark + GitHub's extensions) gives a meaning inline: emphasis, code,
# links and images, tables, strikethrough, escapes
_MD_SPECIAL = re.compile(r"([\\`*_\[\]!|~])")
_AUTOLINK = [(re.compile(r"(?<=[A-Za-z0-9]):(?=//)"), r"\\:"),        # scheme://  (GitHub autolinks)
             (re.compile(r"(?i)\b(www)\.(?=\S)"), r"\1\\."),           # www.example.org
             (re.compile(r"@"), r"\\@")]                               # user@example.org


def md_text(text: object) -> str:
    """Outside text as literal Markdown inline text: no HTML, no code spans, no emphasis, no links,
    images or autolinks, no table cells, on one line."""
    s = _MD_SPECIAL.sub(r"\\\1", inert(text))
    for pat, repl in _AUTOLINK:
        s = pat.sub(repl, s)
    return html.escape(s, quote=False)


def md_code(text: object) -> str:
    """Outside text (a command) as one Markdown code span: shown literally and copied as it is, from the
    rendered page or the raw file.  The fence is one backtick longer than any run of backticks inside,
    and padded with a space when the text starts or ends with one; control characters are shown."""
    s = inert(text)
    runs = [len(r) for r in re.findall(r"`+", s)]
    fence = "`" * (max(runs, default=0) + 1)
    pad = " " if s.startswith("`") or s.endswith("`") else ""
    return f"{fence}{pad}{s}{pad}{fence}"
