"""Kconfig fragments shipped as package data, merged onto tinyconfig and verified.

base.config boots under virtme-ng; one fragment per check area adds what its checks need.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from .cache import short_hash
from .errors import KconfigMissing, UnknownArea

AREAS = ("linkwatch", "bonding")
CONFIG_LINE = re.compile(r"^(CONFIG_\w+)=(.*)$")
NOT_SET = re.compile(r"^# (CONFIG_\w+) is not set$")


@dataclass(frozen=True)
class Fragment:
    name: str
    text: str

    def symbols(self) -> dict[str, str]:
        return parse_config(self.text)


def parse_config(text: str) -> dict[str, str]:
    """CONFIG_X -> value; `# CONFIG_X is not set` and `=n` both read as "n"."""
    out = {}
    for line in text.splitlines():
        line = line.strip()
        if m := CONFIG_LINE.match(line):
            out[m.group(1)] = m.group(2)
        elif m := NOT_SET.match(line):
            out[m.group(1)] = "n"
    return out


def fragments(areas: list[str] | tuple[str, ...] = AREAS) -> list[Fragment]:
    pkg = resources.files("ktest") / "kconfig"
    out = [Fragment("base", (pkg / "base.config").read_text())]
    for a in areas:
        if a not in AREAS:
            raise UnknownArea(name=a, known=", ".join(AREAS))
        out.append(Fragment(a, (pkg / f"{a}.config").read_text()))
    return out


def requested(frags: list[Fragment]) -> dict[str, str]:
    want: dict[str, str] = {}
    for f in frags:
        want.update(f.symbols())
    return want


def config_key(frags: list[Fragment]) -> str:
    """Identifies the kconfig request: the method (tinyconfig + merge) and the fragments' text."""
    return short_hash("tinyconfig+merge_config/v1", *(f"{f.name}\n{f.text}" for f in frags))


def verify(config_text: str, want: dict[str, str], config_path: Path | str) -> None:
    have = parse_config(config_text)
    missing = []
    for sym, val in sorted(want.items()):
        got = have.get(sym, "n")
        if val.strip('"') != got.strip('"'):
            missing.append(f"{sym}={val} (got {got})")
    if missing:
        raise KconfigMissing(missing=", ".join(missing), config=config_path)


def write_fragments(frags: list[Fragment], dest: Path) -> list[Path]:
    dest.mkdir(parents=True, exist_ok=True)
    paths = []
    for f in frags:
        p = dest / f"{f.name}.config"
        p.write_text(f.text)
        paths.append(p)
    return paths
