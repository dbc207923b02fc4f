"""Patch series: load (directory, single patch, mbox) and apply with `git am --3way`.

A series directory may hold a `series` file (quilt style: one file name a line, # comments) that
orders the patches, and an `expected.json` that declares the effect the series should have.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast

import email
import email.policy
import hashlib
import json
import re
import uuid
from pathlib import Path

from ktest.base.errors import (BadExpected, BadRange, BadSeriesFile, EmptySeries, NotAPatch, PatchDoesNotApply, RangeNeedsTree,
                     SeriesNotFound)
from ktest.host.gitutil import add_worktree, git, remove_worktree
from ktest.base.records import Patch, Series, Tree

if TYPE_CHECKING:
    from git import Commit

MBOX_FROM = re.compile(r"^From [0-9a-f]{40} Mon Sep 17 00:00:00 2001$|^From \S+@\S+ .*\d{4}$|^From [0-9a-f]{40} ", re.M)
DIFF_START = re.compile(r"^(diff --git |--- \S|Index: )", re.M)
PATCH_NUM = re.compile(r"\[[^\]]*?\b(\d+)/(\d+)\]")
SUBJECT_TAGS = re.compile(r"^(\s*\[[^\]]*\]\s*)+")
PATCH_GLOBS = ("*.patch", "*.diff", "*.mbox", "*.mbx", "*.eml")


def _split_mbox(text: str) -> list[str]:
    starts = [m.start() for m in MBOX_FROM.finditer(text)]
    if len(starts) <= 1:
        return [text]
    starts.append(len(text))
    return [text[a:b] for a, b in zip(starts, starts[1:])]


def _parse(text: str, name: str, source: Path) -> tuple[Patch | None, str | None]:
    """Return (patch, None) for a patch or (None, cover_subject) for a cover letter."""
    body_start = text.split("\n", 1)[1] if text.startswith("From ") else text
    msg = email.message_from_string(body_start, policy=email.policy.default)
    subject = " ".join(str(msg.get("Subject", "")).split())
    has_diff = bool(DIFF_START.search(text))
    m = PATCH_NUM.search(subject)
    if m and m.group(1) == "0" or (not has_diff and subject and "PATCH" in subject.upper() and m):
        return None, SUBJECT_TAGS.sub("", subject)
    if not subject and not msg.get("From"):
        raise NotAPatch(path=source, why="no mail headers (Subject/From): not `git format-patch` output")
    if not has_diff:
        raise NotAPatch(path=source, why=f"'{name}' has no diff")
    return Patch(index=0, name=name, subject=SUBJECT_TAGS.sub("", subject) or name,
                 author=str(msg.get("From", "")), date=str(msg.get("Date", "")),
                 sha256=hashlib.sha256(text.encode()).hexdigest(), text=text), None


def _read(path: Path, root: Path | None) -> str:
    """A patch file (through safeio: a regular file, bounded, inside the series folder)."""
    from ktest.base.safeio import PATCH_LIMIT, Refused, read_text

    try:
        return read_text(path, PATCH_LIMIT, root)
    except Refused as e:
        raise NotAPatch(path=path, why=f"it {e.why}") from None
    except UnicodeDecodeError:
        raise NotAPatch(path=path, why="not UTF-8 text") from None


def _series_file(order: Path, folder: Path) -> list[Path]:
    """The patch files a `series` file lists, each a plain file of the series folder itself: a name with
    a folder (`../x.patch`, `/etc/x`) or a symlink out of the folder is refused."""
    from ktest.base.safeio import SMALL_LIMIT, Refused, inside, read_text

    try:
        text = read_text(order, SMALL_LIMIT, folder)
    except Refused as e:
        raise BadSeriesFile(path=order, name="nothing", why=f"cannot be read: it {e.why}") from None
    except UnicodeDecodeError:
        raise BadSeriesFile(path=order, name="nothing", why="cannot be read: not UTF-8 text") from None
    files = []
    for n in filter(None, (l.split("#", 1)[0].strip() for l in text.splitlines())):
        if Path(n).name != n or n in (".", ".."):
            raise BadSeriesFile(path=order, name=n, why="is not a file name in the series folder")
        f = folder / n
        try:
            inside(f, folder)
        except Refused as e:
            raise BadSeriesFile(path=order, name=n, why=e.why) from None
        if not f.is_file():
            raise BadSeriesFile(path=order, name=n)
        files.append(f)
    return files


def load_series(path: str | Path) -> Series:
    p = Path(path)
    if not p.exists():
        raise SeriesNotFound(path=path)
    if p.is_dir():
        order = p / "series"
        if order.exists() or order.is_symlink():
            files = _series_file(order, p)
        else:
            # every match, whatever it is: a FIFO or a device named *.patch is refused by _read, not skipped
            files = sorted({f for g in PATCH_GLOBS for f in p.glob(g)})
        name, root = p.name, p
    else:
        files, name, root = [p], p.stem, None
    patches, cover = [], None
    for f in files:
        chunks = _split_mbox(_read(f, root))
        for i, chunk in enumerate(chunks):
            label = f.name if len(chunks) == 1 else f"{f.name}#{i + 1}"
            patch, cov = _parse(chunk, label, f)
            if patch:
                patches.append(patch)
            else:
                cover = cover or cov
    if not patches:
        raise EmptySeries(path=path)
    for i, patch in enumerate(patches, 1):
        patch.index = i
    exp = p / "expected.json"
    expected = load_expected(exp, p) if p.is_dir() and (exp.exists() or exp.is_symlink()) else None
    return Series(name=name, path=p.absolute(), patches=patches, cover=cover, expected=expected)


def looks_like_range(arg: str | Path) -> bool:
    """`A..B` (or `A..`) that is not a path on disk: a revision range of the --tree repository."""
    return ".." in str(arg) and not Path(arg).exists() and not str(arg).startswith(("/", "./", "../"))


def load(arg: str | Path, repo: Path | None = None) -> Series:
    """A series argument: a path (patch dir, .patch, mbox) or, with a repository, a revision range."""
    if looks_like_range(arg):
        if repo is None:
            raise RangeNeedsTree(spec=arg)
        return load_range(repo, str(arg))
    return load_series(arg)


def load_range(repo_path: Path, spec: str) -> Series:
    """The commits of `start..end` in the user's repository (only read), oldest first, one patch each,
    with their own commit ids: nothing is applied, the base is `start`.  The range must be a line of
    patches on its start: no merge commit, not empty, and `start` an ancestor of `end`."""
    import git as gitpython

    if "..." in spec:
        raise BadRange(spec=spec, path=repo_path, why="A...B is a symmetric difference, not a series; use A..B")
    start_rev, _, end_rev = spec.partition("..")
    end_rev = end_rev or "HEAD"
    if not start_rev:
        raise BadRange(spec=spec, path=repo_path, why="no start: the range's start is its base (A..B)")
    try:
        repo = gitpython.Repo(repo_path)
    except (gitpython.InvalidGitRepositoryError, gitpython.NoSuchPathError):
        from ktest.base.errors import NotAGitTree

        raise NotAGitTree(path=repo_path, why="is not a git repository") from None
    ends = {}
    for rev in (start_rev, end_rev):
        try:
            ends[rev] = repo.commit(rev)
        except (gitpython.BadName, ValueError, gitpython.GitCommandError):
            raise BadRange(spec=spec, path=repo_path, why=f"{rev} does not name a commit") from None
    start, end = ends[start_rev], ends[end_rev]
    if not repo.is_ancestor(start, end):
        raise BadRange(spec=spec, path=repo_path, why=f"its start {start_rev} is not an ancestor of {end_rev}")
    commits = list(repo.iter_commits(f"{start.hexsha}..{end.hexsha}", reverse=True))
    if not commits:
        raise BadRange(spec=spec, path=repo_path, why="it is empty: no commit is in the range")
    def summary(c: Commit) -> str:     # GitPython types it str | bytes
        return c.summary if isinstance(c.summary, str) else c.summary.decode(errors="replace")

    for c in commits:
        if len(c.parents) > 1:
            raise BadRange(spec=spec, path=repo_path,
                           why=f"commit {c.hexsha[:12]} '{summary(c)}' is a merge; a series is a line of patches")
    patches = []
    for i, c in enumerate(commits, 1):
        text = repo.git.format_patch("-1", "--stdout", "--no-signature", c.hexsha, stdout_as_string=True) + "\n"
        patches.append(Patch(index=i, name=c.hexsha[:12], subject=" ".join(summary(c).split()),
                             author=f"{c.author.name} <{c.author.email}>", date=c.authored_datetime.isoformat(),
                             sha256=hashlib.sha256(text.encode()).hexdigest(), text=text, commit=c.hexsha))
    return Series(name=spec, path=Path(repo_path).absolute(), patches=patches,
                  range={"spec": spec, "repo": str(Path(repo_path).absolute()), "start": start.hexsha,
                         "end": end.hexsha, "start_rev": start_rev, "end_rev": end_rev})


EXPECTED_CHANGES = ("decrease", "increase", "none")


def _expected_entries(data: dict[str, Any], key: str, fields: tuple[str, ...]) -> str | None:
    """Why data[key] is not a list of objects with string `fields`, or None."""
    entries = data.get(key, [])
    if not isinstance(entries, list):
        return f"'{key}' is a JSON {type(entries).__name__}, not a list"
    for i, e in enumerate(entries):
        if not isinstance(e, dict):
            return f"'{key}'[{i}] is a JSON {type(e).__name__}, not an object"
        for f in fields:
            if not isinstance(e.get(f), str):
                return f"'{key}'[{i}] has no string '{f}'"
    return None


def load_expected(path: Path, root: Path | None = None) -> dict[str, Any]:
    """A series' expected.json, checked for the shape README documents (before any work is done)."""
    from ktest.base.safeio import SMALL_LIMIT, Refused, read_json

    try:
        data = read_json(path, SMALL_LIMIT, root)
    except Refused as e:
        raise BadExpected(path=path, why=f"it {e.why}") from None
    except UnicodeDecodeError:
        raise BadExpected(path=path, why="not UTF-8 text") from None
    except ValueError as e:
        raise BadExpected(path=path, why=f"not JSON ({e})") from None
    if not isinstance(data, dict):
        raise BadExpected(path=path, why=f"a JSON {type(data).__name__}, not an object")
    why = (_expected_entries(data, "checks", ("check", "transition"))
           or _expected_entries(data, "metrics", ("check", "metric", "change")))
    if why is None:
        bad = [m["change"] for m in data.get("metrics", []) if m["change"] not in EXPECTED_CHANGES]
        why = f"change {bad[0]!r} is not one of {', '.join(EXPECTED_CHANGES)}" if bad else None
    if why is None and not isinstance(data.get("summary", ""), str):
        why = "'summary' is not a string"
    if why:
        raise BadExpected(path=path, why=why)
    return data


def _failed_where(out: str) -> str | None:
    """The file (and line) git am stopped at, if it says."""
    for pat in (r"CONFLICT \([^)]*\): Merge conflict in (\S+)", r"error: patch failed: (\S+:\d+)",
                r"error: (\S+): patch does not apply", r"sha1 information is lacking or useless \((\S+)\)",
                r"error: (\S+): does not exist in index", r"error: (\S+): already exists"):
        m = re.search(pat, out)
        if m:
            return m.group(1)
    return None


# git am's lines that say that it failed, not why
_GENERIC = re.compile(r"^(error: )?(Failed to merge in the changes\.|could not build fake ancestor|"
                      r"Did you hand edit your patch\?|patch failed: |.*: patch does not apply$)|^hint: "
                      r"|^Patch failed at |^When you have resolved|^If you prefer to skip|^To restore the")


def git_reason(stdout: str, stderr: str) -> str:
    """git's own first meaningful word on a failed `git am`: a 3-way CONFLICT line, else the first
    error: or fatal: line that is not one of git am's generic ones (corrupt patch at line N, invalid
    path '../x', ... beyond a symbolic link)."""
    conflict = [l for l in stdout.splitlines() if l.startswith("CONFLICT ")]
    errors = [l.strip() for l in stderr.splitlines() if l.startswith(("error:", "fatal:"))]
    for line in conflict + [l for l in errors if not _GENERIC.match(l)] + errors:
        return line.removeprefix("error: ").removeprefix("fatal: ")
    rest = [l.strip() for l in stderr.splitlines() if l.strip() and not _GENERIC.match(l.strip())]
    return rest[0] if rest else "git am failed"


def _why(stdout: str, stderr: str) -> str:
    where, reason = _failed_where(stdout + stderr), git_reason(stdout, stderr)
    return f"{where} (git: {reason})" if where and where not in reason else f"git: {reason}"


def apply_series(tree: Tree, series: Series, workdir: Path) -> list[str]:
    """Apply each patch as one commit on tree.base in a fresh worktree; return the commit shas.

    Commits get the patch's author date as committer date and a fixed committer, so the same series
    on the same base always yields the same shas (and so the same cached builds).  The worktree is
    removed afterwards; the commits stay in the shadow repo under refs/ktest/."""
    if series.range:            # the user's own commits: built as they are, nothing to apply
        return [cast(str, p.commit) for p in series.patches]      # a range's patches are its commits
    key = f"{series.patchset_hash[:16]}-{tree.base[:12]}"
    memo = tree.shadow / "ktest-applied" / f"{key}.json"
    if memo.exists():  # applied before: the same patches on the same base give the same commits
        commits: list[str] = json.loads(memo.read_text())
        if len(commits) == len(series.patches) and all(
                git("--git-dir", str(tree.shadow), "cat-file", "-e", f"{c}^{{commit}}", check=False).returncode == 0
                for c in commits):
            for patch, c in zip(series.patches, commits):
                patch.commit = c
            return commits
    wt = workdir / f"apply-{uuid.uuid4().hex[:8]}"
    add_worktree(tree.shadow, wt, tree.base)
    try:
        commits = []
        for patch in series.patches:
            pf = workdir / f"{patch.index:04d}.patch"
            pf.write_text(patch.text)
            p = git("am", "--3way", "--keep-cr", "--committer-date-is-author-date", str(pf), cwd=wt, check=False)
            if p.returncode != 0:
                git("am", "--abort", cwd=wt, check=False)
                raise PatchDoesNotApply(index=patch.index, subject=patch.subject, name=patch.name,
                                        base=tree.base_rev, why=_why(p.stdout, p.stderr))
            patch.commit = git("rev-parse", "HEAD", cwd=wt).stdout.strip()
            commits.append(patch.commit)
        git("--git-dir", str(tree.shadow), "update-ref", f"refs/ktest/{key}", commits[-1])
        from ktest.base.cache import write_json_atomic

        write_json_atomic(memo, commits)
        return commits
    finally:
        remove_worktree(tree.shadow, wt)
