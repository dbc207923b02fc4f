"""Bad inputs through the CLI, one table: each is refused with one line `ktest: user error [code]: ...`,
exit 2, no traceback, and the user's tree as it was.  Inputs that can be checked up front are refused
before any work (no tree prepared, nothing built or booted); a patch that does not apply names git's
own reason."""

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from fakekernel import git
from test_cli import ktest
from test_tree_apply import snapshot

MAIL = """From 1111111111111111111111111111111111111111 Mon Sep 17 00:00:00 2001
From: A U Thor <a@example.org>
Date: Wed, 1 Jan 2020 00:00:00 +0000
Subject: [PATCH] {subject}

---
{diff}--
2.39.0
"""

CORRUPT = """diff --git a/net/core/dev.c b/net/core/dev.c
--- a/net/core/dev.c
+++ b/net/core/dev.c
@@ -1,1 +1,5 @@
 int d;
+int e;
this line is not a hunk line
"""

ESCAPE = """diff --git a/../../evil b/../../evil
new file mode 100644
--- /dev/null
+++ b/../../evil
@@ -0,0 +1 @@
+pwned
"""

THROUGH_LINK = """diff --git a/net/outside/x b/net/outside/x
new file mode 100644
--- /dev/null
+++ b/net/outside/x
@@ -0,0 +1 @@
+pwned
"""


def mail(tmp_path, subject, diff) -> str:
    d = tmp_path / "mail"
    d.mkdir()
    (d / "0001-x.patch").write_text(MAIL.format(subject=subject, diff=diff))
    return str(d)


def series_with_expected(tmp_path, series, text) -> str:
    d = tmp_path / "with-expected"
    shutil.copytree(series, d)
    (d / "expected.json").write_text(text)
    return str(d)


def write(tmp_path, name, data) -> str:
    f = tmp_path / name
    f.write_bytes(data if isinstance(data, bytes) else data.encode())
    return str(f)


def foreign_db(tmp_path) -> str:
    import sqlite3

    f = tmp_path / "other.sqlite"
    sqlite3.connect(f).executescript("CREATE TABLE runs (id INTEGER, name TEXT);")
    return str(f)


def run_args(series, *extra):
    return ["run", series, *extra, "--testcases", "testcases/test_smoke.py"]


def with_merge(tree) -> str:
    """A side branch merged into a branch of the tree: the range from the tag holds a merge commit."""
    git(tree, "checkout", "-q", "-b", "side", "v6.12.99")
    (tree / "net" / "core" / "side.c").write_text("int s;\n")
    git(tree, "add", "-A")
    git(tree, "commit", "-q", "-m", "side")
    git(tree, "checkout", "-q", "-b", "merged", "master")
    git(tree, "merge", "-q", "--no-edit", "side")
    return "v6.12.99..merged"


# (id, args from (tmp_path, tree, series), code, words the line must hold, refused before any work)
CASES = [
    ("kconfig-add-not-a-symbol", lambda t, tree, s: run_args(s, "--kconfig-add", "NETCONSOLE=y"),
     "bad-kconfig-add", ["NETCONSOLE=y", "neither CONFIG_X=VALUE nor a file"], True),
    ("kconfig-add-bad-line", lambda t, tree, s: ["build", "--kconfig-add",
                                                 write(t, "frag.config", "CONFIG_A=y\nrm -rf /\n")],
     "bad-kconfig-add", ["line 2 is not CONFIG_X=VALUE", "rm -rf /"], True),
    ("kconfig-add-no-symbol", lambda t, tree, s: run_args(s, "--kconfig-add", write(t, "c.config", "# hi\n")),
     "bad-kconfig-add", ["sets no symbol"], True),
    ("shell-not-a-terminal", lambda t, tree, s: ["shell", "--topology", "bond"], "not-a-terminal",
     ["needs a terminal"], True),
    ("run-without-series", lambda t, tree, s: ["run"], "bad-option", ["without a series"], True),
    ("range-empty", lambda t, tree, s: run_args("HEAD..HEAD"), "bad-range", ["HEAD..HEAD", "empty"], True),
    ("range-start-not-ancestor", lambda t, tree, s: run_args("HEAD..v6.12.99"), "bad-range",
     ["HEAD is not an ancestor of v6.12.99"], True),
    ("range-merge", lambda t, tree, s: ["build", with_merge(tree)], "bad-range", ["is a merge", "Merge branch"], True),
    ("range-unknown-rev", lambda t, tree, s: run_args("v6.12.99..no-such-branch"), "bad-range",
     ["no-such-branch does not name a commit"], True),
    ("range-symmetric", lambda t, tree, s: run_args("v6.12.99...HEAD"), "bad-range", ["symmetric"], True),
    ("range-with-base", lambda t, tree, s: run_args("v6.12.99..HEAD", "--base", "HEAD"), "range-with-base",
     ["--base HEAD", "v6.12.99..HEAD"], True),
    ("bzimage-is-text", lambda t, tree, s: ["boot", "--bzimage", write(t, "hostname", "myhost\n"), "--accel", "auto"],
     "not-a-bzimage", ["too short"], True),
    ("bzimage-no-magic", lambda t, tree, s: ["boot", "--bzimage", write(t, "img", b"\x7fELF" + bytes(4096)),
                                             "--accel", "auto"], "not-a-bzimage", ["HdrS", "0x202"], True),
    ("known-issues-not-json", lambda t, tree, s: run_args(s, "--known-issues", write(t, "k.json", "[{")),
     "bad-known-issues", ["not JSON"], True),
    ("known-issues-not-a-list", lambda t, tree, s: run_args(s, "--known-issues", write(t, "k.json", '{"a": 1}')),
     "bad-known-issues", ["not a list"], True),
    ("known-issues-bad-entry", lambda t, tree, s: run_args(s, "--known-issues",
                                                           write(t, "k.json", '[{"reason": "x"}]')),
     "bad-known-issues", ["entry 0"], True),
    ("known-issues-missing", lambda t, tree, s: run_args(s, "--known-issues", str(t / "nope.json")),
     "known-issues-missing", ["nope.json"], True),
    ("boot-known-issues-missing", lambda t, tree, s: ["boot", "--known-issues", str(t / "nope.json")],
     "known-issues-missing", ["nope.json"], True),
    ("db-not-sqlite", lambda t, tree, s: run_args(s, "--db", write(t, "h.sqlite", "hello, not a database\n")),
     "bad-db", ["SQLite"], True),
    ("db-foreign-schema", lambda t, tree, s: run_args(s, "--db", foreign_db(t)), "bad-db", ["not ktest's"], True),
    ("db-is-a-dir", lambda t, tree, s: run_args(s, "--db", str(t)), "bad-db", ["not a regular file"], True),
    ("history-db-not-sqlite", lambda t, tree, s: ["history", "--db", write(t, "h.sqlite", "x" * 200)],
     "bad-db", ["SQLite"], True),
    ("reports-is-a-file", lambda t, tree, s: run_args(s, "--reports", write(t, "reports", "a file\n")),
     "reports-not-a-dir", ["not a directory"], True),
    ("expected-not-json", lambda t, tree, s: run_args(series_with_expected(t, s, '{"metrics": [')),
     "bad-expected", ["not JSON"], True),
    ("expected-wrong-shape", lambda t, tree, s: run_args(series_with_expected(
        t, s, '{"metrics": [{"check": "a.b", "metric": "m", "change": "sideways"}]}')),
     "bad-expected", ["sideways"], True),
    ("expected-not-an-object", lambda t, tree, s: ["build", series_with_expected(t, s, '["decrease"]')],
     "bad-expected", ["not an object"], True),
    ("kernel-with-tree", lambda t, tree, s: ["tree", "--kernel", "6.1"], "kernel-with-tree", ["--kernel 6.1"], True),
    ("kernel-default-with-tree", lambda t, tree, s: run_args(s, "--kernel", "6.12"), "kernel-with-tree", [], True),
    ("patch-corrupt", lambda t, tree, s: ["build", mail(t, "net: corrupt", CORRUPT)],
     "patch-does-not-apply", ["net: corrupt", "corrupt patch at line"], False),
    ("patch-escapes-tree", lambda t, tree, s: ["build", mail(t, "net: escape", ESCAPE)],
     "patch-does-not-apply", ["net: escape", "invalid path '../../evil'"], False),
    ("patch-through-symlink", lambda t, tree, s: ["build", mail(t, "net: through a link", THROUGH_LINK)],
     "patch-does-not-apply", ["net: through a link", "net/outside"], False),
]


@pytest.fixture
def linked_tree(fake_tree, tmp_path):
    """The fake tree with a symlink that points outside it (net/outside -> a directory beside it)."""
    (tmp_path / "outside").mkdir()
    (fake_tree / "net" / "outside").symlink_to(tmp_path / "outside")
    git(fake_tree, "add", "-A")
    git(fake_tree, "commit", "-q", "-m", "a symlink")
    return fake_tree


@pytest.mark.parametrize("make,code,words,up_front", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input_is_one_line_and_exit_2(tmp_path, linked_tree, fake_series, make, code, words, up_front):
    args = make(tmp_path, linked_tree, str(fake_series))
    if args[0] != "history":
        args += ["--tree", str(linked_tree)]
    before = snapshot(linked_tree)
    p = ktest(*args, cache=tmp_path / "c", env={"COLUMNS": "300"})
    lines = [l for l in p.stderr.splitlines() if l.strip()]
    assert p.returncode == 2, p.stderr
    assert "Traceback" not in p.stderr
    errors = [l for l in lines if l.startswith("ktest: user error ") or l.startswith("ktest: infra error ")]
    assert len(errors) == 1 and errors[0] == lines[-1], p.stderr
    line = errors[0]
    assert line.startswith(f"ktest: user error [{code}]: "), line
    for w in words:
        assert w in line, line
    assert "\x1b" not in p.stderr
    assert snapshot(linked_tree) == before, "the user's tree is never modified"
    assert not (tmp_path / "outside" / "x").exists() and not (tmp_path.parent / "evil").exists()
    if up_front:
        assert lines == [line], "refused before any work, so nothing else was printed"
        cache = tmp_path / "c"
        assert not (cache / "repos").exists() and not (cache / "trees").exists() and not (cache / "work").exists()
        assert not (cache / "kvm-probe.json").exists(), "a bad image never decides the host's KVM answer"
        assert not (tmp_path / "reports").is_dir() or not any((tmp_path / "reports").iterdir())


def test_a_real_db_and_an_absent_one_are_fine(tmp_path):
    import sqlite3

    db = tmp_path / "h.sqlite"
    sqlite3.connect(db).executescript("CREATE TABLE t (x);")
    for path in (db, tmp_path / "new.sqlite"):
        p = ktest("history", "--db", str(path), cache=tmp_path / "c")
        assert p.returncode == 0 and p.stderr == "", p.stderr


def test_interrupt_while_starting_up_is_one_line_and_130(tmp_path):
    """Ctrl-C while ktest's modules are still importing (here: rich, imported by a stand-in that is
    interrupted) gives one line and 130, not a traceback."""
    stub = tmp_path / "stub" / "rich"
    stub.mkdir(parents=True)
    (stub / "__init__.py").write_text("raise KeyboardInterrupt\n")
    pypath = os.pathsep.join([str(tmp_path / "stub"), str(Path(__file__).parent.parent)])
    p = ktest("history", "--db", str(tmp_path / "h.sqlite"), cache=tmp_path / "c", env={"PYTHONPATH": pypath})
    assert p.returncode == 130 and p.stderr == "ktest: interrupted\n", p.stderr


def test_interrupted_run_leaves_no_empty_report_dir(tmp_path, fake_tree, fake_series):
    """Ctrl-C while the base is built: reports/<run-id>/ holds nothing yet, so it does not stay."""
    import signal
    import sys
    import time

    (fake_tree / "SLOW").write_text("")          # the fake build sleeps: time to interrupt it
    git(fake_tree, "add", "SLOW")
    git(fake_tree, "commit", "-q", "-m", "slow build")
    cache, reports = tmp_path / "c", tmp_path / "reports"
    proc = subprocess.Popen([sys.executable, "-m", "ktest", "run", str(fake_series), "--tree", str(fake_tree),
                             "--reports", str(reports), "--testcases", "testcases/test_smoke.py"],
                            stderr=subprocess.PIPE, text=True, env=dict(os.environ, KTEST_CACHE=str(cache)))
    mine = ["pgrep", "-f", f"{cache}/.*fakebuild.py bzImage"]   # only this test's fake make
    deadline = time.monotonic() + 120
    while subprocess.run(mine, capture_output=True).returncode != 0:
        if time.monotonic() > deadline or proc.poll() is not None:
            proc.kill()
            pytest.fail(f"fake make never started: {proc.communicate()[1]}")
        time.sleep(0.2)
    assert [d for d in reports.iterdir() if d.is_dir()], "the run dir exists while it runs"
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130 and "Traceback" not in err, err
    assert not [d for d in reports.iterdir() if d.is_dir() and not d.is_symlink()], list(reports.iterdir())


def test_a_range_without_a_tree_is_one_line_and_exit_2(tmp_path):
    p = ktest("run", "origin/main..my-branch", cache=tmp_path / "c", env={"COLUMNS": "300"})
    assert p.returncode == 2 and "Traceback" not in p.stderr
    assert p.stderr.strip().splitlines() == [
        "ktest: user error [range-needs-tree]: origin/main..my-branch looks like a revision range, but no --tree "
        "names the repository it is in (and no such path exists) (hint: ktest run --tree ~/linux "
        "origin/main..my-branch)"]
