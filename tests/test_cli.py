"""Every bad input: one line on stderr, exit 2, no traceback, the user's tree untouched."""

import os
import subprocess
import sys


from fakekernel import make_series


def ktest(*args, cache=None, env=None):
    e = dict(os.environ, **(env or {}))
    if cache:
        e["KTEST_CACHE"] = str(cache)
    return subprocess.run([sys.executable, "-m", "ktest", *args], capture_output=True, text=True, env=e,
                          timeout=120)


def one_error_line(p, code):
    """Progress lines may come first; the error is exactly one line, and the last."""
    lines = [l for l in p.stderr.splitlines() if l.strip()]
    errors = [l for l in lines if " error" in l]
    assert p.returncode == 2, p.stderr
    assert "Traceback" not in p.stderr
    assert len(errors) == 1 and errors[0] == lines[-1], p.stderr
    assert errors[0].startswith("ktest: ") and f"[{code}]" in errors[0]
    return errors[0]


def test_missing_series(tmp_path, fake_tree):
    one_error_line(ktest("build", str(tmp_path / "nope"), "--tree", str(fake_tree), cache=tmp_path / "c"),
                   "series-not-found")


def test_not_a_patch(tmp_path, fake_tree):
    f = tmp_path / "x.patch"
    f.write_text("hello\n")
    one_error_line(ktest("build", str(f), "--tree", str(fake_tree), cache=tmp_path / "c"), "not-a-patch")


def test_empty_series_dir(tmp_path, fake_tree):
    (tmp_path / "e").mkdir()
    one_error_line(ktest("build", str(tmp_path / "e"), "--tree", str(fake_tree), cache=tmp_path / "c"),
                   "empty-series")


def test_tree_not_git(tmp_path):
    (tmp_path / "plain").mkdir()
    line = one_error_line(ktest("tree", "--tree", str(tmp_path / "plain"), cache=tmp_path / "c"), "not-a-git-tree")
    assert "not a git repository" in line


def test_tree_missing(tmp_path):
    one_error_line(ktest("tree", "--tree", str(tmp_path / "gone"), cache=tmp_path / "c"), "not-a-git-tree")


def test_bad_base(tmp_path, fake_tree):
    one_error_line(ktest("tree", "--tree", str(fake_tree), "--base", "v9.9", cache=tmp_path / "c"), "bad-base")


def test_unknown_kernel(tmp_path):
    one_error_line(ktest("tree", "--kernel", "2.6", cache=tmp_path / "c"), "unknown-kernel")


def test_patch_does_not_apply(tmp_path, fake_tree):
    other = tmp_path / "other"
    subprocess.run(["git", "clone", "-q", str(fake_tree), str(other)], check=True)
    series = make_series(other, tmp_path / "s", [("net/core/dev.c", "int zz;\n", "net: one"),
                                                 ("net/core/dev.c", "int yy;\n", "net: two")])
    (series / "0001-net-one.patch").unlink()  # patch 2 now has no base
    line = one_error_line(ktest("build", str(series), "--tree", str(fake_tree), cache=tmp_path / "c"),
                          "patch-does-not-apply")
    assert "net: two" in line and "net/core/dev.c" in line


def test_cache_not_writable(tmp_path, fake_tree):
    ro = tmp_path / "ro"
    ro.write_text("a file, not a dir")
    one_error_line(ktest("tree", "--tree", str(fake_tree), "--cache", str(ro / "sub")), "cache-not-writable")


def test_build_error_one_line(tmp_path, fake_tree):
    series = make_series(fake_tree, tmp_path / "b", [("net/core/dev.c", "#error boom\n", "net: boom")])
    line = one_error_line(ktest("build", str(series), "--tree", str(fake_tree), cache=tmp_path / "c"),
                          "build-failed")
    assert "net/core/dev.c:1" in line and "boom" in line


def test_missing_host_tools_checked_up_front(tmp_path, fake_tree):
    # a PATH with git and python but no compiler toolchain
    bindir = tmp_path / "bin"
    bindir.mkdir()
    for tool in ("git", "tar", "dpkg-query"):
        src = subprocess.run(["which", tool], capture_output=True, text=True).stdout.strip()
        if src:
            (bindir / tool).symlink_to(src)
    line = one_error_line(ktest("build", "--tree", str(fake_tree), cache=tmp_path / "c",
                                env={"PATH": str(bindir)}), "missing-host-tools")
    assert "gcc" in line and "flex" in line and "apt-get install" in line


def test_help_teaches():
    p = ktest("--help")
    assert p.returncode == 0 and "exit codes" in p.stdout and "ktest.pl" in p.stdout


import pytest  # noqa: E402
from pathlib import Path  # noqa: E402


@pytest.mark.parametrize("args", [
    ["run", "--rounds", "0"], ["run", "--rounds", "-3"], ["run", "--reps", "0"],
    ["run", "--vms", "0"], ["run", "--vms", "100000000000000000000"], ["run", "-j", "0"],
    ["run", "--rounds", "3", "--max-rounds", "2"],
    ["calibrate", "--area", "linkwatch", "--boots", "3"], ["calibrate", "--area", "bonding", "--reps", "0"],
])
def test_absurd_numbers_are_refused_before_any_work(tmp_path, fake_tree, fake_series, args):
    """--rounds 0 once gave 'no regression' after zero boots; numbers are checked before the tree is read."""
    extra = [str(fake_series)] if args[0] == "run" else []
    p = ktest(*args, *extra, "--tree", str(fake_tree), cache=tmp_path / "c")
    one_error_line(p, "bad-option")
    assert not (tmp_path / "c" / "repos").exists(), "no work was done"


@pytest.mark.parametrize("content,why", [
    ("[]", "not an object"), ("{}", "schema"), ('{"schema": "ktest.result/1"}', "is a required property"),
    ("HOSTILE", "outside the run directory"),
])
def test_report_and_merge_refuse_wrong_shapes_and_foreign_log_paths(tmp_path, content, why):
    import json as _json
    fixture = Path(__file__).parent / "fixtures" / "result-linkwatch.json"
    run = tmp_path / "artifact" / "run1"
    run.mkdir(parents=True)
    if content == "HOSTILE":
        (tmp_path / "secret").write_text("root:x:0:0")
        r = _json.loads(fixture.read_text())
        r["boots"][0]["boot"]["console_log"] = "../../secret"
        content = _json.dumps(r)
    (run / "result.json").write_text(content)
    for args in (["report", str(run)], ["merge", str(tmp_path / "artifact"), "--out", str(tmp_path / "m")]):
        line = one_error_line(ktest(*args, cache=tmp_path / "c"), "bad-result")
        assert why in line, line
    assert not (run / "index.html").exists()
