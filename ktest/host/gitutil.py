"""Thin git helpers.  GitPython validates repos and revisions; plain git does the rest."""

from __future__ import annotations

import functools
import os
import subprocess
from pathlib import Path
from typing import Any

from ktest.base.errors import GitFailed

# Fixed identity and dates make ktest's own commits reproducible: the same base and patch give the
# same commit sha on every machine, so builds are cache hits across runs and machines.
KTEST_IDENT = {
    "GIT_AUTHOR_NAME": "ktest",
    "GIT_AUTHOR_EMAIL": "ktest@localhost",
    "GIT_COMMITTER_NAME": "ktest",
    "GIT_COMMITTER_EMAIL": "ktest@localhost",
}
FIXED_DATE = "2000-01-01T00:00:00+0000"


def git(*args: str, cwd: Path | None = None, env: dict[str, Any] | None = None, check: bool = True,
        input: str | None = None) -> subprocess.CompletedProcess[str]:
    full_env = dict(os.environ, **KTEST_IDENT, GIT_TERMINAL_PROMPT="0", LC_ALL="C")
    if env:
        full_env.update(env)
    p = subprocess.run(["git", *args], cwd=cwd, env=full_env, text=True, input=input,
                       capture_output=True)
    if check and p.returncode != 0:
        why = (p.stderr.strip() or p.stdout.strip()).splitlines()
        raise GitFailed(args=" ".join(args[:3]), cwd=cwd or ".", why=why[-1] if why else f"exit {p.returncode}")
    return p


def git_out(*args: str, cwd: Path | None = None) -> str:
    return git(*args, cwd=cwd).stdout.strip()


def common_dir(repo: Path) -> Path:
    """The repo's shared git dir (the main .git even when `repo` is a linked worktree)."""
    out = git_out("rev-parse", "--path-format=absolute", "--git-common-dir", cwd=repo)
    return Path(out)


def add_worktree(shadow: Path, dest: Path, commit: str) -> None:
    git("--git-dir", str(shadow), "worktree", "add", "--detach", "--force", str(dest), commit)


def remove_worktree(shadow: Path, dest: Path) -> None:
    git("--git-dir", str(shadow), "worktree", "remove", "--force", str(dest), check=False)
    git("--git-dir", str(shadow), "worktree", "prune", check=False)


@functools.cache
def ktest_version(release: str) -> str:
    """ktest's `release` and, where it runs from a git checkout, that checkout's commit ("0.1.0+g1a2b3c4d5e6f",
    ".dirty" when tracked files differ from it): a stored result names the code that judged it, so that a
    rate quoted from it can be reproduced at that commit."""
    root = Path(__file__).resolve().parents[2]
    if not (root / ".git").exists():
        return release
    head = git("rev-parse", "--short=12", "HEAD", cwd=root, check=False)
    if head.returncode:
        return release
    dirty = git("status", "--porcelain", "--untracked-files=no", cwd=root, check=False).stdout.strip()
    return f"{release}+g{head.stdout.strip()}{'.dirty' if dirty else ''}"
