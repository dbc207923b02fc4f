import subprocess

import pytest

from fakekernel import git, make_series
from ktest.base.errors import BadBase, NotAGitTree, NotAKernelTree, PatchDoesNotApply
from ktest.host.series import apply_series, load_series
from ktest.host.tree import kernel_version, strip_debian_gitignore, user_tree


def snapshot(repo):
    """Everything about the user's repo that ktest must leave alone."""
    return {
        "head": git(repo, "rev-parse", "HEAD"),
        "status": git(repo, "status", "--porcelain", "--ignored"),
        "refs": git(repo, "for-each-ref"),
        "worktrees": git(repo, "worktree", "list", "--porcelain"),
        "objects": sorted(p.name for p in (repo / ".git" / "objects").iterdir()),
    }


def test_kernel_version():
    assert kernel_version("VERSION = 6\nPATCHLEVEL = 12\nSUBLEVEL = 117\nEXTRAVERSION =\n") == "6.12.117"
    assert kernel_version("all:\n") is None


def test_strip_debian_gitignore():
    text = "*.o\n/tags\n\n#\n# Debian packaging: ignore everything at the top level, since it isn't\n" \
           "# included in our repository\n#\n/*\n!/debian/\n"
    out = strip_debian_gitignore(text)
    assert "/*" not in out.splitlines() and "!/debian/" not in out
    assert out.startswith("*.o\n/tags\n")


def test_user_tree_resolves_base(cache, fake_tree):
    t = user_tree(cache, fake_tree, "v6.12.99")
    assert t.version == "6.12.99" and t.kind == "user"
    assert t.base == git(fake_tree, "rev-parse", "HEAD").strip()
    assert (t.shadow / "objects" / "info" / "alternates").read_text().strip().endswith(".git/objects")


@pytest.mark.parametrize("make,why", [
    (lambda p: p / "missing", "does not exist"),
    (lambda p: (p / "plain").mkdir() or (p / "plain"), "is not a git repository"),
])
def test_user_tree_not_git(cache, tmp_path, make, why):
    with pytest.raises(NotAGitTree, match=why):
        user_tree(cache, make(tmp_path))


def test_user_tree_bad_base(cache, fake_tree):
    with pytest.raises(BadBase, match="no-such-rev"):
        user_tree(cache, fake_tree, "no-such-rev")


def test_user_tree_not_a_kernel(cache, tmp_path):
    r = tmp_path / "r"
    r.mkdir()
    (r / "README").write_text("hi")
    git(r, "init", "-q")
    git(r, "add", "-A")
    git(r, "commit", "-q", "-m", "x")
    with pytest.raises(NotAKernelTree):
        user_tree(cache, r)


def test_apply_leaves_user_tree_untouched_and_is_reproducible(cache, tmp_path, fake_tree, fake_series):
    before = snapshot(fake_tree)
    t = user_tree(cache, fake_tree)
    s1 = load_series(fake_series)
    c1 = apply_series(t, s1, tmp_path / "w1")
    s2 = load_series(fake_series)
    c2 = apply_series(t, s2, tmp_path / "w2")
    assert len(c1) == 2 and c1 == c2, "same base + same series must give the same commits"
    assert [p.commit for p in s1.patches] == c1
    assert snapshot(fake_tree) == before
    # the commits live in the shadow repo, one per patch, on top of the base
    log = subprocess.run(["git", "--git-dir", str(t.shadow), "log", "--format=%s", c1[-1]],
                         capture_output=True, text=True, check=True).stdout.split("\n")
    assert log[:3] == ["net: dev warns", "net: change b", "base"]
    wt = subprocess.run(["git", "--git-dir", str(t.shadow), "worktree", "list"], capture_output=True, text=True)
    assert "apply-" not in wt.stdout, "the apply worktree is removed"


def test_patch_that_does_not_apply_names_patch_and_file(cache, tmp_path, fake_tree):
    # a patch made against a different version of link_watch.c
    other = tmp_path / "other"
    subprocess.run(["git", "clone", "-q", str(fake_tree), str(other)], check=True)
    (other / "net/core/link_watch.c").write_text("completely different\ncontent\nhere\n")
    git(other, "commit", "-q", "-am", "diverge")
    series = make_series(other, tmp_path / "bad", [("net/core/link_watch.c", "changed\n", "net: conflicting")])
    t = user_tree(cache, fake_tree)
    before = snapshot(fake_tree)
    with pytest.raises(PatchDoesNotApply) as e:
        apply_series(t, load_series(series), tmp_path / "w")
    msg = str(e.value)
    assert "net: conflicting" in msg and "net/core/link_watch.c" in msg and "0001-" in msg
    assert snapshot(fake_tree) == before
