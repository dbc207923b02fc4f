"""Kconfig fragments, merged onto tinyconfig and verified.

base.config (package data) boots under virtme-ng; each check area's file (ktest/areas/*.toml) holds
the fragment that adds what its checks need.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from ktest import areas as _areas
from ktest.base.cache import short_hash
from ktest.base.errors import BadKconfigAdd, KconfigMissing

AREAS = _areas.names()
CONFIG_LINE = re.compile(r"^(CONFIG_\w+)=(.*)$")
NOT_SET = re.compile(r"^# (CONFIG_\w+) is not set$")


@dataclass(frozen=True)
class Fragment:
    name: str
    text: str
    optional: bool = False   # merged, but a symbol the tree's Kconfig cannot grant is recorded, not fatal

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


def fragments(areas: list[str] | tuple[str, ...] = AREAS, extra: Fragment | None = None) -> list[Fragment]:
    """base.config, each area's fragment, then the user's (--kconfig-add), which wins where they differ."""
    out = [Fragment("base", (resources.files("ktest") / "kconfig" / "base.config").read_text())]
    out += [Fragment(a, _areas.get(a).kconfig) for a in areas]
    out += [Fragment(f"{a}-where-available", t, optional=True)
            for a in areas if (t := _areas.get(a).kconfig_where_available)]
    return out + ([extra] if extra else [])


def _symbol_line(line: str) -> bool:
    return bool(CONFIG_LINE.match(line) or NOT_SET.match(line))


def user_fragment(items: list[str] | tuple[str, ...] | None) -> Fragment | None:
    """--kconfig-add, as tuxmake has it: each item CONFIG_X=VALUE or a file of such lines, in order, as
    one fragment named "user".  Checked before any work: anything else is one line, exit 2."""
    lines: list[str] = []
    for item in items or ():
        if _symbol_line(item.strip()):
            lines.append(item.strip())
            continue
        from ktest.base.safeio import SMALL_LIMIT, Refused, read_text

        path = Path(item)
        if not path.exists():
            raise BadKconfigAdd(value=item, why="is neither CONFIG_X=VALUE nor a file")
        try:
            text = read_text(path, SMALL_LIMIT)
        except Refused as e:
            raise BadKconfigAdd(value=item, why=f"is neither CONFIG_X=VALUE nor a file: it {e.why}") from None
        except UnicodeDecodeError:
            raise BadKconfigAdd(value=item, why="not UTF-8 text") from None
        found = 0
        for n, raw in enumerate(text.splitlines(), 1):
            line = raw.strip()
            if not line or (line.startswith("#") and not NOT_SET.match(line)):
                continue
            if not _symbol_line(line):
                raise BadKconfigAdd(value=item, why=f"line {n} is not CONFIG_X=VALUE: {line[:80]}")
            lines.append(line)
            found += 1
        if not found:
            raise BadKconfigAdd(value=item, why="sets no symbol")
    return Fragment("user", "\n".join(lines) + "\n") if lines else None


def requested(frags: list[Fragment], optional: bool = False) -> dict[str, str]:
    """What the fragments ask for, the later winning: the required symbols, or (optional=True) those
    asked only where the tree's Kconfig allows them."""
    want: dict[str, str] = {}
    for f in frags:
        for sym, val in f.symbols().items():
            want.pop(sym, None)
            if f.optional == optional:
                want[sym] = val
    return want


def unmet(config_text: str, want: dict[str, str]) -> list[str]:
    """The requested symbols the built .config does not have as asked, as `CONFIG_X=y (got n)`."""
    have = parse_config(config_text)
    return [f"{sym}={val} (got {have.get(sym, 'n')})" for sym, val in sorted(want.items())
            if val.strip('"') != have.get(sym, "n").strip('"')]


def config_key(frags: list[Fragment]) -> str:
    """Identifies the kconfig request: the method (tinyconfig + merge) and the fragments' text."""
    return short_hash("tinyconfig+merge_config/v1", *(f"{f.name}\n{f.text}" for f in frags))


def verify(config_text: str, want: dict[str, str], config_path: Path | str) -> None:
    if missing := unmet(config_text, want):
        raise KconfigMissing(missing=", ".join(missing), config=config_path)


def write_fragments(frags: list[Fragment], dest: Path) -> list[Path]:
    dest.mkdir(parents=True, exist_ok=True)
    paths = []
    for f in frags:
        p = dest / f"{f.name}.config"
        p.write_text(f.text)
        paths.append(p)
    return paths
