"""The one place that reads files from outside: series and their `series`/expected.json files,
--known-issues, --kconfig-add fragments, result.json files from other machines, and the logs a run
directory names.  It copies them too (`ktest merge`, `ktest compare`).

Every read here:
- opens only a regular file: a FIFO (which would block), a device (/dev/zero never ends), a socket or a
  directory where a file is expected is refused with a reason, without reading a byte;
- given a root (a run directory, a series folder), follows no symlink out of it: the path is resolved
  and must still lie inside the root;
- is bounded: a file larger than the limit is refused (or, for a log's tail, only its end is read),
  so a 5 GB log or a growing file cannot exhaust memory.
JSON from outside is also bounded in nesting (a 100,000-deep document would exhaust the stack).

Refusals are `Refused` (its `why` a short phrase: "is a FIFO, not a regular file"); each caller turns
it into its own one-line user error, which names the input.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Any

MiB = 1 << 20
PATCH_LIMIT = 64 * MiB          # one patch file or mbox of a series
SMALL_LIMIT = 4 * MiB           # series, expected.json, known-issues, kconfig fragments
RESULT_LIMIT = 256 * MiB        # a result.json
COPY_LIMIT = 1024 * MiB         # one file copied out of a run directory (a log)
TAIL_BYTES = 1 * MiB            # what a report shows of a log at most: its end
JSON_DEPTH = 64                 # nesting of a JSON document (a result nests about 8 deep)


class Refused(Exception):
    """A file that is not read: `why` says what it is (missing, a FIFO, a link out of its root, too big)."""

    def __init__(self, path: Path | str, why: str, missing: bool = False):
        self.path, self.why, self.missing = path, why, missing
        super().__init__(f"{path} {why}")


def _kind(mode: int) -> str | None:
    """Why a file of this mode is not read, or None for a regular file."""
    if stat.S_ISREG(mode):
        return None
    for test, what in ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO"), (stat.S_ISCHR, "a character device"),
                       (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket")):
        if test(mode):
            return f"is {what}, not a regular file"
    return "is not a regular file"


def _mib(n: int) -> str:
    return f"{n / MiB:.0f} MiB" if n >= MiB else f"{n} bytes"


def inside(path: Path | str, root: Path | str) -> Path:
    """`path` with every symlink resolved, which must lie inside `root` (also resolved)."""
    real, top = Path(os.path.realpath(path)), Path(os.path.realpath(root))
    if not real.is_relative_to(top):
        why = "is a symlink that leads out of" if Path(path).is_symlink() else "lies outside"
        raise Refused(path, f"{why} {root}")
    return real


def open_regular(path: Path | str, root: Path | str | None = None, limit: int | None = None) -> int:
    """A read-only descriptor of a regular file (the caller closes it).  With a root, the resolved path
    must lie inside it and the last component is opened without following a link."""
    target = inside(path, root) if root is not None else Path(path)
    flags = os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC | (os.O_NOFOLLOW if root is not None else 0)
    try:
        fd = os.open(target, flags)      # O_NONBLOCK: opening a FIFO does not wait for a writer
    except FileNotFoundError:
        raise Refused(path, "does not exist", missing=True) from None
    except OSError as e:
        raise Refused(path, f"cannot be opened ({e.strerror or e})") from None
    try:
        st = os.fstat(fd)
        if why := _kind(st.st_mode):
            raise Refused(path, why)
        if limit is not None and st.st_size > limit:
            raise Refused(path, f"is {_mib(st.st_size)}, more than the {_mib(limit)} ktest reads")
        os.set_blocking(fd, True)
    except BaseException:
        os.close(fd)
        raise
    return fd


def read_bytes(path: Path | str, limit: int, root: Path | str | None = None) -> bytes:
    fd = open_regular(path, root, limit)
    with os.fdopen(fd, "rb") as f:
        data = f.read(limit + 1)
    if len(data) > limit:               # it grew while it was read
        raise Refused(path, f"is more than the {_mib(limit)} ktest reads")
    return data


def read_text(path: Path | str, limit: int, root: Path | str | None = None) -> str:
    """UTF-8 text; UnicodeDecodeError (a ValueError) if it is not."""
    return read_bytes(path, limit, root).decode()


def depth(data: object, limit: int = JSON_DEPTH) -> int:
    """How deeply containers nest in `data` (iteratively: the check itself cannot overflow the stack);
    stops counting past `limit`."""
    best, stack = 0, [(data, 1)]
    while stack:
        v, d = stack.pop()
        if isinstance(v, (dict, list)):
            best = max(best, d)
            if best > limit:
                return best
            stack.extend((x, d + 1) for x in (v.values() if isinstance(v, dict) else v))
    return best


def loads_json(text: str | bytes, max_depth: int = JSON_DEPTH) -> Any:     # any JSON value
    """json.loads, with a document nested deeper than max_depth refused as a ValueError (as bad JSON is)."""
    try:
        data = json.loads(text)
    except RecursionError:
        raise ValueError(f"nested more than {max_depth} levels deep") from None
    if depth(data, max_depth) > max_depth:
        raise ValueError(f"nested more than {max_depth} levels deep")
    return data


def read_json(path: Path | str, limit: int, root: Path | str | None = None, max_depth: int = JSON_DEPTH) -> Any:
    """Refused for the file; UnicodeDecodeError or ValueError (bad or too deep JSON) for its content."""
    return loads_json(read_text(path, limit, root), max_depth)


def read_json_or(path: Path | str, limit: int, missing: Callable[..., Exception], bad: Callable[..., Exception],
                 root: Path | str | None = None) -> Any:
    """read_json with its refusals as the caller's errors: `missing(path=...)` when the file is not
    there, `bad(path=..., why=...)` when it is not a regular file, too large, not UTF-8 or not JSON."""
    try:
        return read_json(path, limit, root)
    except Refused as e:
        if e.missing:
            raise missing(path=path) from None
        raise bad(path=path, why=f"it {e.why}") from None
    except UnicodeDecodeError:
        raise bad(path=path, why="not UTF-8 text") from None
    except ValueError as e:
        raise bad(path=path, why=f"not JSON ({e})") from None


def tail_text(path: Path | str, lines: int, root: Path | str | None = None, max_bytes: int = TAIL_BYTES) -> str:
    """The last `lines` lines of a log (of its last max_bytes at most), undecodable bytes replaced."""
    fd = open_regular(path, root)
    with os.fdopen(fd, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        if size > max_bytes:
            f.seek(size - max_bytes)
        data = f.read(max_bytes)
    text = data.decode(errors="replace").splitlines()
    if size > max_bytes and text:
        text = text[1:]                 # the first line was cut
    return "\n".join(text[-lines:])


def copy_file(src: Path | str, dst: Path | str, root: Path | str, limit: int = COPY_LIMIT) -> None:
    """Copy a regular file from inside `root` (no link out of it, no special file, bounded)."""
    fd = open_regular(src, root, limit)
    with os.fdopen(fd, "rb") as fin:
        Path(dst).parent.mkdir(parents=True, exist_ok=True)
        with open(dst, "wb") as fout:
            shutil.copyfileobj(fin, fout, 1 * MiB)


def copy_tree(src: Path | str, dst: Path | str, root: Path | str, limit: int = COPY_LIMIT) -> list[str]:
    """Copy a folder's regular files and subfolders, following no symlink at all (a link, to a file
    or a folder, inside the root or not, is skipped) and copying no special file.  Returns what was
    skipped, as 'relative/path (why)'."""
    src, dst = Path(src), Path(dst)
    inside(src, root)
    skipped: list[str] = []
    for here, dirs, files in os.walk(src, followlinks=False):
        rel = Path(here).relative_to(src)
        (dst / rel).mkdir(parents=True, exist_ok=True)
        for name in sorted(dirs):
            if os.path.islink(os.path.join(here, name)):
                skipped.append(f"{rel / name} (a symlink)")
                dirs.remove(name)
        for name in files:
            p = Path(here, name)
            if p.is_symlink():
                skipped.append(f"{rel / name} (a symlink)")
                continue
            try:
                copy_file(p, dst / rel / name, root, limit)
            except Refused as e:
                skipped.append(f"{rel / name} ({e.why})")
    return skipped
