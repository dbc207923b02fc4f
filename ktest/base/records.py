"""Typed records that flow between the stages (tree -> series -> build -> boot -> results)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class Tree:
    """A kernel source tree at a base commit.  `repo` is where its objects live (never written to);
    `shadow` is ktest's own bare repo in the cache that borrows them and receives applied series."""

    name: str            # "linux-6.12.117" or the user's path
    kind: str            # "debian" | "user"
    repo: Path
    shadow: Path
    base: str            # full commit sha
    base_rev: str        # what the user asked for ("v6.12.117", "HEAD", ...)
    version: str         # "6.12.117" from the Makefile

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d["repo"], d["shadow"] = str(self.repo), str(self.shadow)
        return d


@dataclass
class Patch:
    index: int           # 1-based position in the series
    name: str            # file name (or "mbox#N")
    subject: str
    author: str
    date: str
    sha256: str          # of the patch text as given
    text: str = field(repr=False)
    commit: str | None = None   # set once applied

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d.pop("text")
        return d


@dataclass
class Series:
    name: str
    path: Path
    patches: list[Patch]
    cover: str | None = None          # cover letter subject, if one was recognised
    expected: dict[str, Any] | None = None      # the series' declared expected effect (expected.json)
    range: dict[str, Any] | None = None         # a revision range as the series: spec, repo, start, end (full shas)

    @property
    def patchset_hash(self) -> str:
        """KCIDB: sha256 over the newline-terminated sha256 of each patch, in order."""
        import hashlib

        return hashlib.sha256("".join(p.sha256 + "\n" for p in self.patches).encode()).hexdigest()

    def applying(self, tree_name: str, base_rev: str) -> str:
        """What the apply stage does, in words: a range is built as it is on its start (nothing is
        applied); patches are applied to the tree's base."""
        n = len(self.patches)
        if self.range:
            return f"[{self.name}] {n} commit{'s' if n != 1 else ''} of {tree_name} {self.range['start'][:12]}, " \
                   "built as they are"
        return f"[{self.name}] applying {n} patch{'es' if n != 1 else ''} to {tree_name} {base_rev}"

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "path": str(self.path),
            "cover": self.cover,
            "patchset_hash": self.patchset_hash,
            "patches": [p.to_json() for p in self.patches],
            "expected": self.expected,
            "range": self.range,
        }


@dataclass
class Warning_:
    file: str
    line: int
    message: str

    def key(self) -> tuple[str, str]:
        # Line numbers move when a patch adds lines above; compare on file + message.
        return (self.file, self.message)


@dataclass
class Build:
    commit: str
    config_key: str
    key: str
    dir: Path
    status: str                      # "PASS" | "FAIL"
    cached: bool
    duration_s: float
    warnings: list[Warning_] = field(default_factory=list)
    error: str | None = None

    @property
    def bzimage(self) -> Path:
        return self.dir / "bzImage"

    @property
    def config(self) -> Path:
        return self.dir / "config"

    @property
    def log(self) -> Path:
        return self.dir / "build.log"

    def to_json(self) -> dict[str, Any]:
        return {
            "commit": self.commit,
            "config_key": self.config_key,
            "key": self.key,
            "dir": str(self.dir),
            "status": self.status,
            "cached": self.cached,
            "duration_s": round(self.duration_s, 2),
            "warnings": [asdict(w) for w in self.warnings],
            "error": self.error,
        }


def relative_path(p: Path, base: Path) -> str:
    try:
        return str(Path(p).resolve().relative_to(Path(base).resolve()))
    except ValueError:
        return str(p)
