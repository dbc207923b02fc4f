"""A kernel developer's daily loop, for real on the default tree: a branch (revision range) as the series,
`--rerun` of a stored run, and `ktest shell` in a pseudo-terminal."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from ktest.base.cache import Cache
from ktest.host.tree import debian_tree

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


@pytest.fixture(scope="module")
def range_run(branch, tmp_path_factory):
    tree, clone = branch
    before = (git(clone, "for-each-ref"), git(clone, "rev-parse", "lw"))
    reports = tmp_path_factory.mktemp("range") / "reports"
    p = ktest("run", "--tree", str(clone), f"{tree.base_rev}..lw", "--reports", str(reports),
              "--db", str(reports.parent / "history.sqlite"),       # the user's history stays theirs
              "--testcases", "testcases/linkwatch/test_operstate.py::test_virtio_bounce[gap_0.1s]",
              "--rounds", "2", "--max-rounds", "2", "--reps", "5")   # 2 boots a side: the least a test over boots uses
    after = (git(clone, "for-each-ref"), git(clone, "rev-parse", "lw"))
    return tree, clone, reports, p, before == after


def test_a_branch_as_the_series_builds_its_commits_on_the_range_start(range_run):
    tree, clone, reports, p, untouched = range_run
    ids = git(clone, "rev-list", "--reverse", f"{tree.base_rev}..lw").split()
    # exit 3 (undecided) is a run in doubt on some other aspect; the bounce's effect is decided below
    assert p.returncode in (0, 3), p.stderr[-3000:]
    r = json.loads((reports / "latest" / "result.json").read_text())
    assert r["series"]["range"]["spec"] == f"{tree.base_rev}..lw"
    assert r["tree"]["base"] == tree.base and r["tree"]["base_rev"] == tree.base_rev
    assert [x["commit"] for x in r["series"]["patches"]] == ids, "the developer's own commit ids, built as they are"
    assert [b["commit"] for b in r["builds"]] == [tree.base, *ids]
    (c,) = [c for c in r["checks"] if c["path"].endswith("gap_0_1s")]
    m = {x["metric"]: x for x in c["metrics"]}["up_to_running_kernel"]
    assert m["verdict"] == "improved", m
    co = {x["id"]: x for x in json.loads((reports / "latest" / "kcidb.json").read_text())["checkouts"]}
    patched = next(x for k, x in co.items() if not k.endswith("_base"))
    assert patched["git_commit_hash"] == ids[-1] and patched["misc"]["commits"] == ids
    html = (reports / "latest" / "index.html").read_text()
    assert 'id="range"' in html and ids[-1][:12] in html
    assert untouched, "the developer's repo is only read"


def test_a_rerun_repeats_the_stored_run_on_the_same_builds(range_run, tmp_path):
    tree, clone, reports, p, _ = range_run
    assert p.returncode in (0, 3), p.stderr[-3000:]
    old = json.loads((reports / "latest" / "result.json").read_text())
    q = ktest("run", "--rerun", old["run_id"], "--db", str(reports.parent / "history.sqlite"),
              "--reports", str(tmp_path / "again"))
    assert q.returncode in (0, 3), q.stderr[-3000:]
    new = json.loads((tmp_path / "again" / "latest" / "result.json").read_text())
    assert new["settings"]["rerun_of"] == old["run_id"]
    assert [(b["label"], b["key"], b["cached"]) for b in new["builds"]] == \
        [(b["label"], b["key"], True) for b in old["builds"]], "the same artifacts, from the cache"
    assert new["series"]["range"] == old["series"]["range"]
    assert [b["label"] for b in new["boots"]] == [b["label"] for b in old["boots"]]
    (c,) = [c for c in new["checks"] if c["path"].endswith("gap_0_1s")]
    assert {x["metric"]: x for x in c["metrics"]}["up_to_running_kernel"]["verdict"] == "improved"


def _qemu_pids_using(path: str) -> list[int]:
    pids = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                if path in (d / "cmdline").read_bytes().decode(errors="replace"):
                    pids.append(int(d.name))
            except OSError:
                pass
    return pids


@pytest.mark.parametrize("leave", ["ctrl-d", "sigterm"])
def test_ktest_shell_has_the_bond_topology_and_leaves_nothing_running(tmp_path, leave):
    """`ktest shell --topology bond` in a pseudo-terminal: the checks' bond is there, the commands work;
    Ctrl-D leaves (exit 0), and so does a SIGTERM to ktest, and no vng or QEMU is left behind."""
    import pexpect

    from ktest.host.build import Builder
    from ktest.base.progress import Progress

    cache = Cache.open()
    tree = debian_tree(cache, "6.12")
    build = Builder(cache, tree, progress=Progress(interval=60)).build(tree.base, "base")
    child = pexpect.spawn(sys.executable, ["-m", "ktest", "shell", "--build", build.key, "--topology", "bond"],
                          cwd=str(ROOT), env=dict(os.environ, TERM="dumb", TMPDIR=str(tmp_path)), encoding="utf-8",
                          codec_errors="replace", timeout=240, dimensions=(40, 200))
    child.logfile_read = open(tmp_path / "session.log", "w")
    try:
        child.expect_exact("ktest shell: bond: bonding: kb0 active-backup")
        child.expect_exact("ktest-shell# ")
        child.sendline("ip netns exec kt_h1 cat /proc/net/bonding/kb0 | grep -E 'Mode|Currently Active'; echo done-$((6*7))")
        child.expect_exact("done-42")
        before = child.before
        assert "Bonding Mode: fault-tolerance (active-backup)" in before, before
        assert "Currently Active Slave: s0" in before, before
        child.expect_exact("ktest-shell# ")
        child.sendline("ip netns exec kt_h1 ping -c 2 -W 5 192.0.2.2 >/dev/null && echo ping-ok-$((6*7))")
        child.expect_exact("ping-ok-42", timeout=60)
        child.expect_exact("ktest-shell# ")
        if leave == "ctrl-d":
            child.sendcontrol("d")
            child.expect_exact("ktest shell: the guest is gone")
            child.expect(pexpect.EOF)
            child.close()
            assert child.exitstatus == 0
        else:
            child.kill(15)
            child.expect(pexpect.EOF)
            child.close()
            assert child.exitstatus == 130
    finally:
        if child.isalive():
            child.terminate(force=True)
    assert _qemu_pids_using(str(tmp_path)) == [], "no vng or QEMU is left running"
    assert not list(tmp_path.glob("ktest-shell-*")), "the guest's rw directory is gone"
