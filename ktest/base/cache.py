"""The cache dir (~/.cache/ktest or $KTEST_CACHE): layout, atomic writes and locks.

Layout:
    trees/linux-<ver>/      Debian linux-source extracted into a git repo (one base commit, tagged)
    repos/<id>.git          per source tree: a bare "shadow" repo borrowing its objects (alternates);
                            series are applied here, so the user's repo is never written to
    lineages/<id>/src,obj   one worktree + one O= build dir per (tree, kconfig): incremental rebuilds
    artifacts/<key>/        finished builds, keyed by (commit, kconfig, toolchain); renamed into place
    ccache/                 the compiler cache
    work/<run-id>/          per-run worktrees and scratch
    locks/                  flock files
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from ktest.base.errors import CacheNotWritable


def default_cache_dir() -> Path:
    env = os.environ.get("KTEST_CACHE")
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "ktest"


def short_hash(*parts: str | bytes, n: int = 16) -> str:
    h = hashlib.sha256()
    for p in parts:
        h.update(p.encode() if isinstance(p, str) else p)
        h.update(b"\0")
    return h.hexdigest()[:n]


def write_json_atomic(path: Path, data: object) -> None:
    """Write JSON so that a reader sees the old file or the new one, never half of one."""
    write_text_atomic(path, json.dumps(data, indent=2, sort_keys=True, default=str) + "\n")


def write_text_atomic(path: Path, text: str) -> None:
    """Write a file so that a reader sees the old one or the new one, never half of one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        os.fchmod(fd, 0o644)             # mkstemp makes 0600: readable like every other output
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


@dataclass(frozen=True)
class Cache:
    root: Path

    @classmethod
    def open(cls, root: Path | None = None) -> "Cache":
        root = Path(root or default_cache_dir()).expanduser().absolute()
        try:
            root.mkdir(parents=True, exist_ok=True)
            probe = root / f".write-probe-{os.getpid()}"
            probe.write_text("")
            probe.unlink()
        except OSError as e:
            raise CacheNotWritable(path=root, why=e.strerror or str(e)) from None
        return cls(root)

    @property
    def history_db(self) -> Path:
        """The run history's database: $KTEST_DB, else history.sqlite in the cache (--db overrides both)."""
        env = os.environ.get("KTEST_DB")
        return Path(env).expanduser() if env else self.root / "history.sqlite"

    def dir(self, *parts: str) -> Path:
        p = self.root.joinpath(*parts)
        p.mkdir(parents=True, exist_ok=True)
        return p

    @contextlib.contextmanager
    def lock(self, name: str, shared: bool = False) -> Iterator[None]:
        """An flock on locks/<name>.lock, held for the with-block (released if the process dies)."""
        path = self.dir("locks") / f"{name}.lock"
        with open(path, "a") as f:
            fcntl.flock(f, fcntl.LOCK_SH if shared else fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(f, fcntl.LOCK_UN)
