"""`ktest run` when the series cannot be tested: the report still says why and names the patch."""

import json
import os
import subprocess
import sys

from fakekernel import make_series


def run(tmp_path, series, tree):
    env = dict(os.environ, KTEST_CACHE=str(tmp_path / "cache"))
    return subprocess.run([sys.executable, "-m", "ktest", "run", str(series), "--tree", str(tree),
                           "--reports", str(tmp_path / "reports"), "--testcases", "testcases/test_smoke.py"],
                          capture_output=True, text=True, env=env, timeout=300)


def test_series_that_does_not_apply_is_reported_invalid(tmp_path, fake_tree):
    other = tmp_path / "other"
    subprocess.run(["git", "clone", "-q", str(fake_tree), str(other)], check=True)
    series = make_series(other, tmp_path / "s", [("net/core/dev.c", "int zz;\n", "net: one"),
                                                 ("net/core/dev.c", "int yy;\n", "net: two")])
    (series / "0001-net-one.patch").unlink()
    p = run(tmp_path, series, fake_tree)
    assert p.returncode == 2 and "[patch-does-not-apply]" in p.stderr and "Traceback" not in p.stderr
    r = json.loads((tmp_path / "reports" / "latest" / "result.json").read_text())
    assert r["checkout"]["valid"] is False
    assert r["culprit"]["patch"] == 1 and r["culprit"]["why"] == "does not apply"
    assert r["verdict"]["status"] == "could not run" and r["verdict"]["exit_code"] == 2
    kcidb = json.loads((tmp_path / "reports" / "latest" / "kcidb.json").read_text())
    assert kcidb["checkouts"][1]["valid"] is False
    assert "does not apply" in (tmp_path / "reports" / "latest" / "index.html").read_text()


def test_patch_that_breaks_the_build_is_a_regression_with_its_culprit(tmp_path, fake_tree):
    """A series that breaks the build is the series' fault: a regression (exit 1) naming the patch,
    with nothing booted; the base building is what makes it comparable."""
    series = make_series(fake_tree, tmp_path / "s", [
        ("net/core/dev.c", "int d2;\n", "net: fine"),
        ("net/core/link_watch.c", "#error broken\n", "net: breaks the build")])
    p = run(tmp_path, series, fake_tree)
    assert p.returncode == 1 and "Traceback" not in p.stderr, p.stderr
    assert "regression (build of patch 2/2)" in p.stdout
    assert "culprit: patch 2 (net: breaks the build) does not build" in p.stdout
    r = json.loads((tmp_path / "reports" / "latest" / "result.json").read_text())
    assert r["checkout"]["valid"] is True and r["boots"] == []
    assert [b["status"] for b in r["builds"]] == ["PASS", "PASS", "FAIL"]
    assert r["verdict"]["status"] == "regression" and r["verdict"]["stage"] == "build"
    assert r["culprit"]["patch"] == 2 and r["culprit"]["why"] == "does not build"
    assert "net/core/link_watch.c:1" in r["builds"][2]["error"]
    junit = (tmp_path / "reports" / "latest" / "junit.xml").read_text()
    assert "<failure" in junit and "link_watch.c:1" in junit


def test_a_base_that_does_not_build_could_not_run(tmp_path, fake_tree):
    bad = tmp_path / "bad"
    subprocess.run(["git", "clone", "-q", str(fake_tree), str(bad)], check=True)
    (bad / "net" / "core" / "dev.c").write_text("#error base broken\n")
    subprocess.run(["git", "-C", str(bad), "commit", "-qam", "break the base"], check=True,
                   env=dict(os.environ, GIT_AUTHOR_NAME="t", GIT_AUTHOR_EMAIL="t@t", GIT_COMMITTER_NAME="t",
                            GIT_COMMITTER_EMAIL="t@t"))
    series = make_series(bad, tmp_path / "s", [("net/core/link_watch.c", "int d2;\n", "net: fine")])
    p = run(tmp_path, series, bad)
    assert p.returncode == 2 and "[build-failed]" in p.stderr
    r = json.loads((tmp_path / "reports" / "latest" / "result.json").read_text())
    assert r["verdict"]["status"] == "could not run" and [b["status"] for b in r["builds"]] == ["FAIL"]
