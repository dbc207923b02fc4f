"""A kernel developer's daily loop, for real on the default tree: a branch (revision range) as the series,
`--rerun` of a stored run, and `ktest shell` in a pseudo-terminal."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from ktest.cache import Cache
from ktest.tree import debian_tree

pytestmark = pytest.mark.kernel
ROOT = Path(__file__).resolve().parent.parent


def git(repo, *args, env=None):
    e = dict(os.environ, GIT_AUTHOR_NAME="Dev", GIT_AUTHOR_EMAIL="dev@example.org", GIT_COMMITTER_NAME="Dev",
             GIT_COMMITTER_EMAIL="dev@example.org", **(env or {}))
    return subprocess.run(["git", *args], cwd=repo, env=e, check=True, capture_output=True, text=True).stdout.strip()


def ktest(*args, timeout=3600):
    return subprocess.run([sys.executable, "-m", "ktest", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=timeout, env=dict(os.environ))


@pytest.fixture(scope="module")
def branch(tmp_path_factory):
    """A developer's clone of the default tree with the linkwatch seed's two patches committed on a
    branch `lw`: made with plumbing on a shared, unchecked-out clone (no 1 GB checkout)."""
    tree = debian_tree(Cache.open(), "6.12")
    clone = tmp_path_factory.mktemp("dev") / "linux"
    subprocess.run(["git", "clone", "-q", "--shared", "--no-checkout", str(tree.repo), str(clone)], check=True)
    git(clone, "branch", "lw", tree.base_rev)
    head = git(clone, "rev-parse", f"{tree.base_rev}^{{commit}}")
    index = {"GIT_INDEX_FILE": str(clone / ".git" / "scratch-index")}
    for patch in sorted((ROOT / "patches" / "linkwatch").glob("000[1-9]-*.patch")):
        git(clone, "read-tree", head, env=index)
        git(clone, "apply", "--cached", str(patch), env=index)
        subject = next(l for l in patch.read_text().splitlines() if l.startswith("Subject:"))
        msg = subject.split("]", 1)[1].strip()
        head = git(clone, "commit-tree", git(clone, "write-tree", env=index), "-p", head, "-m", msg)
    git(clone, "update-ref", "refs/heads/lw", head)
    return tree, clone


def test_a_branch_as_the_series_builds_its_commits_on_the_range_start(branch, tmp_path):
    tree, clone = branch
    before = (git(clone, "for-each-ref"), git(clone, "rev-parse", "lw"))
    ids = git(clone, "rev-list", "--reverse", f"{tree.base_rev}..lw").split()
    reports = tmp_path / "reports"
    p = ktest("run", "--tree", str(clone), f"{tree.base_rev}..lw", "--reports", str(reports),
              "--testcases", "testcases/linkwatch/test_operstate.py", "-k", "virtio_bounce and gap_0_1s",
              "--rounds", "1", "--max-rounds", "1", "--reps", "5")
    assert p.returncode == 0, p.stderr[-3000:]
    r = json.loads((reports / "latest" / "result.json").read_text())
    assert r["series"]["range"]["spec"] == f"{tree.base_rev}..lw"
    assert r["tree"]["base"] == tree.base and r["tree"]["base_rev"] == tree.base_rev
    assert [x["commit"] for x in r["series"]["patches"]] == ids, "the developer's own commit ids, built as they are"
    assert [b["commit"] for b in r["builds"]] == [tree.base, *ids]
    (c,) = [c for c in r["checks"] if c["path"].endswith("gap_0_1s")]
    m = {x["metric"]: x for x in c["metrics"]}["up_to_running"]
    assert m["verdict"] == "improved", m
    co = {x["id"]: x for x in json.loads((reports / "latest" / "kcidb.json").read_text())["checkouts"]}
    patched = next(x for k, x in co.items() if not k.endswith("_base"))
    assert patched["git_commit_hash"] == ids[-1] and patched["misc"]["commits"] == ids
    html = (reports / "latest" / "index.html").read_text()
    assert 'id="range"' in html and ids[-1][:12] in html
    assert (git(clone, "for-each-ref"), git(clone, "rev-parse", "lw")) == before, "the developer's repo is only read"
