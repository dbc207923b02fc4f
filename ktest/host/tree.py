"""Kernel trees: the Debian linux-source default tree, or a user's git checkout, plus ktest's shadow repo.

The user's repository is only ever read.  Series are applied in worktrees of a bare "shadow" repo in
the cache whose object store borrows the source repo's objects (objects/info/alternates); new commits
land in the shadow repo alone.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path

import git as gitpython

from ktest.base.cache import Cache, short_hash
from ktest.base.errors import BadBase, NotAGitTree, NotAKernelTree, TreeSetupFailed, UnknownKernel
from ktest.host.gitutil import FIXED_DATE, common_dir, git, git_out
from ktest.base.records import Series, Tree

KNOWN_KERNELS = ("6.12", "6.1")
DEFAULT_KERNEL = "6.12"


def kernel_version(makefile_text: str) -> str | None:
    vals = {}
    for key in ("VERSION", "PATCHLEVEL", "SUBLEVEL"):
        m = re.search(rf"^{key}\s*=\s*(\d+)\s*$", makefile_text, re.M)
        if not m:
            return None
        vals[key] = m.group(1)
    return "{VERSION}.{PATCHLEVEL}.{SUBLEVEL}".format(**vals)


def strip_debian_gitignore(text: str) -> str:
    """Debian's linux-source adds `/*` + `!/debian/` at the end of the top-level .gitignore, which
    ignores the whole tree.  Drop that block so the tree behaves like upstream's."""
    out = re.sub(r"\n#\n# Debian packaging:.*?\n#\n/\*\n!/debian/\n?", "\n", text, flags=re.S)
    return "\n".join(l for l in out.splitlines() if l.strip() not in ("/*", "!/debian/")) + "\n"


# --- the Debian default tree --------------------------------------------------------------------

def _deb_version(pkg: str) -> str | None:
    p = subprocess.run(["dpkg-query", "-W", "-f=${Status}|${Version}", pkg], capture_output=True, text=True)
    if p.returncode != 0 or "install ok installed" not in p.stdout:
        return None
    return p.stdout.split("|", 1)[1]


def _apt_install(pkg: str, name: str) -> None:
    import os

    if os.geteuid() != 0:
        raise TreeSetupFailed(name=name, why=f"{pkg} is not installed and ktest is not root to apt-get it")
    for cmd in (["apt-get", "install", "-y", "-q", "--no-install-recommends", pkg],
                ["sh", "-c", f"apt-get update -q && apt-get install -y -q --no-install-recommends {pkg}"]):
        p = subprocess.run(cmd, capture_output=True, text=True,
                           env={"DEBIAN_FRONTEND": "noninteractive", "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"})
        if p.returncode == 0:
            return
    last = (p.stderr.strip().splitlines() or ["apt-get failed"])[-1]
    raise TreeSetupFailed(name=name, why=f"apt-get install {pkg}: {last}")


def debian_tree(cache: Cache, kernel: str = DEFAULT_KERNEL, progress: Callable[[str], None] = print) -> Tree:
    if kernel not in KNOWN_KERNELS:
        raise UnknownKernel(version=kernel)
    pkg = f"linux-source-{kernel}"
    debver = _deb_version(pkg)
    if debver is None:
        progress(f"installing {pkg} with apt-get")
        _apt_install(pkg, pkg)
        debver = _deb_version(pkg)
    tarball = next((p for p in (Path(f"/usr/src/{pkg}.tar.xz"), Path(f"/usr/src/{pkg}.tar.bz2")) if p.exists()), None)
    if tarball is None or debver is None:
        raise TreeSetupFailed(name=pkg, why=f"/usr/src/{pkg}.tar.xz is missing after installing {pkg}")

    dest = cache.dir("trees") / f"{pkg}_{debver.replace('~', '_')}"
    with cache.lock(f"tree-{dest.name}"):
        if not (dest / ".git" / "ktest-ready").exists():
            _make_git_tree(tarball, dest, f"{pkg} {debver}", progress)
    version = (dest / ".git" / "ktest-ready").read_text().strip()
    base = git_out("rev-parse", f"v{version}^{{commit}}", cwd=dest)
    return Tree(name=f"linux-{version}", kind="debian", repo=dest, shadow=shadow_repo(cache, dest),
                base=base, base_rev=f"v{version}", version=version)


def _make_git_tree(tarball: Path, dest: Path, what: str, progress: Callable[[str], None]) -> None:
    progress(f"extracting {tarball.name} into {dest.parent} (once)")
    if dest.exists():
        shutil.rmtree(dest)  # a half-made tree from an interrupted earlier attempt
    tmp = Path(tempfile.mkdtemp(prefix=".extract-", dir=dest.parent))
    try:
        p = subprocess.run(["tar", "-xf", str(tarball), "-C", str(tmp), "--strip-components=1"],
                           capture_output=True, text=True)
        if p.returncode != 0:
            raise TreeSetupFailed(name=what, why=f"tar: {p.stderr.strip()[:200]}")
        version = kernel_version((tmp / "Makefile").read_text())
        if not version:
            raise TreeSetupFailed(name=what, why="no kernel version in the tarball's Makefile")
        gi = tmp / ".gitignore"
        if gi.exists():
            gi.write_text(strip_debian_gitignore(gi.read_text()))
        env = {"GIT_AUTHOR_DATE": FIXED_DATE, "GIT_COMMITTER_DATE": FIXED_DATE}
        git("init", "-q", "-b", "main", cwd=tmp)
        git("config", "gc.auto", "0", cwd=tmp)
        git("add", "-A", cwd=tmp)
        git("commit", "-q", "--no-verify", "-m", f"Linux {version} from Debian's {what}", cwd=tmp, env=env)
        git("tag", f"v{version}", cwd=tmp)
        (tmp / ".git" / "ktest-ready").write_text(version + "\n")
        tmp.rename(dest)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


# --- a user's tree ------------------------------------------------------------------------------

def user_tree(cache: Cache, path: str | Path, base: str = "HEAD") -> Tree:
    p = Path(path).expanduser()
    if not p.exists():
        raise NotAGitTree(path=path, why="does not exist")
    if not p.is_dir():
        raise NotAGitTree(path=path, why="is not a directory")
    try:
        repo = gitpython.Repo(p)
    except gitpython.InvalidGitRepositoryError:
        raise NotAGitTree(path=path, why="is not a git repository") from None
    try:
        commit = repo.commit(base)
    except (gitpython.BadName, ValueError, gitpython.GitCommandError):
        raise BadBase(rev=base, path=path) from None
    try:
        makefile = commit.tree["Makefile"].data_stream.read().decode(errors="replace")
    except KeyError:
        makefile = ""
    version = kernel_version(makefile)
    if not version:
        raise NotAKernelTree(path=path, rev=base)
    p = p.absolute()
    return Tree(name=str(p), kind="user", repo=p, shadow=shadow_repo(cache, p), base=commit.hexsha,
                base_rev=base, version=version)


def shadow_repo(cache: Cache, repo: Path) -> Path:
    """ktest's bare repo for `repo`: borrows its objects, keeps ktest's commits and worktrees."""
    src_objects = common_dir(repo) / "objects"
    shadow = cache.root / "repos" / f"{short_hash(str(src_objects))}.git"
    with cache.lock(f"shadow-{shadow.name}"):
        if not (shadow / "ktest-ready").exists():
            shadow.mkdir(parents=True, exist_ok=True)
            git("init", "-q", "--bare", str(shadow))
            git("--git-dir", str(shadow), "config", "gc.auto", "0")
            (shadow / "objects" / "info").mkdir(parents=True, exist_ok=True)
            (shadow / "objects" / "info" / "alternates").write_text(f"{src_objects}\n")
            (shadow / "ktest-source").write_text(f"{repo}\n")
            (shadow / "ktest-ready").write_text("")
    return shadow


def series_tree(cache: Cache, tree: Tree, series: Series | None) -> Tree:
    """The tree a series is built on: `tree`, or for a revision range of it, the range's start."""
    rng = series.range if series is not None else None
    if not rng:
        return tree
    return user_tree(cache, rng["repo"], rng["start_rev"])
