"""Patch series: load (directory, single patch, mbox) and apply with `git am --3way`.

A series directory may hold a `series` file (quilt style: one file name a line, # comments) that
orders the patches, and an `expected.json` that declares the effect the series should have.
"""

from __future__ import annotations

import email
import email.policy
import hashlib
import json
import re
import uuid
from pathlib import Path

from .errors import BadSeriesFile, EmptySeries, NotAPatch, PatchDoesNotApply, SeriesNotFound
from .gitutil import add_worktree, git, remove_worktree
from .records import Patch, Series, Tree

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


def _read(path: Path) -> str:
    try:
        return path.read_text()
    except UnicodeDecodeError:
        raise NotAPatch(path=path, why="not UTF-8 text") from None


def load_series(path: str | Path) -> Series:
    p = Path(path)
    if not p.exists():
        raise SeriesNotFound(path=path)
    if p.is_dir():
        order = p / "series"
        if order.exists():
            names = [l.split("#", 1)[0].strip() for l in order.read_text().splitlines()]
            files = []
            for n in filter(None, names):
                f = p / n
                if not f.is_file():
                    raise BadSeriesFile(path=order, name=n)
                files.append(f)
        else:
            files = sorted({f for g in PATCH_GLOBS for f in p.glob(g) if f.is_file()})
        name = p.name
    else:
        files, name = [p], p.stem
    patches, cover = [], None
    for f in files:
        chunks = _split_mbox(_read(f))
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
    expected = None
    exp = (p if p.is_dir() else p.parent) / "expected.json"
    if exp.exists() and p.is_dir():
        expected = json.loads(exp.read_text())
    return Series(name=name, path=p.absolute(), patches=patches, cover=cover, expected=expected)


def _failed_where(out: str) -> str:
    for pat in (r"CONFLICT \([^)]*\): Merge conflict in (\S+)", r"error: patch failed: (\S+:\d+)",
                r"error: (\S+): patch does not apply", r"sha1 information is lacking or useless \((\S+)\)",
                r"error: (\S+): does not exist in index", r"error: (\S+): already exists",
                r"Patch failed at \d+ (.*)"):
        m = re.search(pat, out)
        if m:
            return m.group(1)
    lines = [l for l in out.splitlines() if l.startswith(("error:", "fatal:"))]
    return lines[0] if lines else "git am failed"


def apply_series(tree: Tree, series: Series, workdir: Path) -> list[str]:
    """Apply each patch as one commit on tree.base in a fresh worktree; return the commit shas.

    Commits get the patch's author date as committer date and a fixed committer, so the same series
    on the same base always yields the same shas (and so the same cached builds).  The worktree is
    removed afterwards; the commits stay in the shadow repo under refs/ktest/."""
    key = f"{series.patchset_hash[:16]}-{tree.base[:12]}"
    memo = tree.shadow / "ktest-applied" / f"{key}.json"
    if memo.exists():  # applied before: the same patches on the same base give the same commits
        commits = json.loads(memo.read_text())
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
                                        base=tree.base_rev, where=_failed_where(p.stdout + p.stderr))
            patch.commit = git("rev-parse", "HEAD", cwd=wt).stdout.strip()
            commits.append(patch.commit)
        git("--git-dir", str(tree.shadow), "update-ref", f"refs/ktest/{key}", commits[-1])
        from .cache import write_json_atomic

        write_json_atomic(memo, commits)
        return commits
    finally:
        remove_worktree(tree.shadow, wt)
