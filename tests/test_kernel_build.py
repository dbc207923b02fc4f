"""Real builds of the default tree (Debian linux-source 6.12) with the real lean config.

Uses the normal cache (~/.cache/ktest or $KTEST_CACHE) so that the tree, ccache and artifacts are
reused from run to run; on a fresh machine the first run does a cold build.
"""

import subprocess

import pytest

from ktest.host import kconfig
from ktest.host.build import Builder
from ktest.base.cache import Cache
from ktest.base.progress import Progress
from ktest.host.tree import debian_tree

pytestmark = pytest.mark.kernel


def tree_state(repo):
    run = lambda *a: subprocess.run(["git", *a], cwd=repo, capture_output=True, text=True, check=True).stdout
    return run("rev-parse", "HEAD"), run("status", "--porcelain", "--ignored"), run("worktree", "list")


@pytest.fixture(scope="module")
def default_tree():
    cache = Cache.open()
    return cache, debian_tree(cache, "6.12")


def test_default_tree_is_tagged_git_repo(default_tree):
    _, tree = default_tree
    assert tree.version.startswith("6.12.") and tree.base_rev == f"v{tree.version}"
    assert (tree.repo / "net" / "core" / "link_watch.c").exists()


def test_build_default_tree_then_cache_hit(default_tree, monkeypatch):
    cache, tree = default_tree
    before = tree_state(tree.repo)
    b = Builder(cache, tree, progress=Progress(interval=60))
    build = b.build(tree.base, "base")
    assert build.bzimage.exists() and build.bzimage.stat().st_size > 1_000_000
    have = kconfig.parse_config(build.config.read_text())
    for sym, val in kconfig.requested(kconfig.fragments()).items():
        assert have.get(sym, "n") == val, sym

    # a second build of the same thing is a cache hit and runs no make at all
    def no_make(*a, **k):
        raise AssertionError(f"make was run on a cache hit: {a}")
    monkeypatch.setattr(Builder, "_build_locked", no_make)
    monkeypatch.setattr(Builder, "_run_make", no_make)
    again = Builder(cache, tree, progress=Progress()).build(tree.base, "base")
    monkeypatch.undo()
    assert again.cached and again.dir == build.dir
    assert tree_state(tree.repo) == before, "the default tree's HEAD and working tree are unchanged"


def test_the_bonding_area_runs_every_selftest_program_the_tree_ships_with_its_config(default_tree):
    """ktest/areas/bonding.toml against the default tree: every TEST_PROG of the bonding selftests'
    Makefile is listed, and every symbol of their `config` is in the area's fragment."""
    import re

    from ktest.areas import get

    _, tree = default_tree
    d = tree.repo / "tools/testing/selftests/drivers/net/bonding"
    mk = (d / "Makefile").read_text()
    progs = re.findall(r"([\w.-]+\.sh)", mk.split("TEST_PROGS")[1].split("TEST_FILES")[0])
    area = get("bonding")
    assert progs and sorted(set(progs)) == sorted({s.script for s in area.selftests})
    want = kconfig.parse_config((d / "config").read_text())
    have = kconfig.parse_config(area.kconfig)
    assert {k: v for k, v in want.items() if have.get(k) != v} == {}
