"""Bad inputs through the CLI, one table: each is refused with one line `ktest: user error [code]: ...`,
exit 2, no traceback, and the user's tree as it was.  Inputs that can be checked up front are refused
before any work (no tree prepared, nothing built or booted); a patch that does not apply names git's
own reason."""

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from fakekernel import git, wait_for_fake_make
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


FIXTURE = Path(__file__).parent / "fixtures" / "result-linkwatch.json"
DEEP = "[" * 100_000 + "]" * 100_000


def fifo(tmp_path, name="fifo") -> str:
    f = tmp_path / name
    os.mkfifo(f)
    return str(f)


def stored_run(tmp_path, name="run", **change) -> str:
    """A run directory holding the recorded linkwatch result, with `change` applied (dotted keys)."""
    import json

    r = json.loads(FIXTURE.read_text())
    for dotted, v in change.items():
        d, keys = r, dotted.split(".")
        for k in keys[:-1]:
            d = d[k]
        d[keys[-1]] = v
    d = tmp_path / name
    d.mkdir()
    (d / "result.json").write_text(json.dumps(r))
    return str(d)


def run_dir_with(tmp_path, text=None, special=None, name="odd") -> str:
    """A run directory whose result.json is `text`, a FIFO (special='fifo') or a symlink out of it
    (special='link')."""
    d = tmp_path / name
    d.mkdir()
    if special == "fifo":
        os.mkfifo(d / "result.json")
    elif special == "link":
        (d / "result.json").symlink_to(stored_run(tmp_path, "elsewhere") + "/result.json")
    else:
        (d / "result.json").write_text(text)
    return str(d)


def series_dir(tmp_path, series, listing=None, link=None, special=None) -> str:
    """A copy of the series folder with a `series` file of `listing`, or with a patch that is a symlink
    to `link`, or (special='fifo') a FIFO named like a patch among the patches."""
    d = tmp_path / "series-copy"
    shutil.copytree(series, d)
    if special == "fifo":
        os.mkfifo(d / "0002-x.patch")
    if listing is not None:
        (d / "series").write_text(listing)
    if link is not None:
        (d / "0009-linked.patch").symlink_to(link)
    return str(d)


def outside_patch(tmp_path, series) -> str:
    f = tmp_path / "x.patch"
    shutil.copy(sorted(Path(series).glob("0001-*.patch"))[0], f)
    return str(f)


def big_file(tmp_path, name, size) -> str:
    f = tmp_path / name
    with open(f, "wb") as fh:
        fh.truncate(size)          # sparse: nothing is written
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
    # --- round two (issue 25) -------------------------------------------------------------------
    # 2. a special file as the series is refused, not read
    ("series-dev-zero", lambda t, tree, s: run_args("/dev/zero"), "not-a-patch", ["character device"], True),
    ("series-fifo", lambda t, tree, s: run_args(fifo(t)), "not-a-patch", ["a FIFO"], True),
    ("series-folder-fifo-patch", lambda t, tree, s: run_args(series_dir(t, s, special="fifo")), "not-a-patch",
     ["0002-x.patch", "a FIFO"], True),
    ("series-too-big", lambda t, tree, s: ["build", big_file(t, "huge.patch", 65 << 20)], "not-a-patch",
     ["65 MiB", "more than the 64 MiB"], True),
    ("series-patch-links-out", lambda t, tree, s: ["build", series_dir(t, s, link=outside_patch(t, s))],
     "not-a-patch", ["symlink that leads out of"], True),
    # 22. a `series` file names files of its folder only
    ("series-file-parent", lambda t, tree, s: ["build", series_dir(
        t, s, listing=f"../{Path(outside_patch(t, s)).name}\n")],
     "bad-series-file", ["lists ../x.patch", "not a file name in the series folder", "(hint: "], True),
    ("series-file-absolute", lambda t, tree, s: run_args(series_dir(t, s, listing="/etc/passwd\n")),
     "bad-series-file", ["/etc/passwd"], True),
    ("series-file-missing-name", lambda t, tree, s: run_args(series_dir(t, s, listing="0042-nope.patch\n")),
     "bad-series-file", ["0042-nope.patch", "does not exist", "(hint: "], True),
    # 18. bad-range has a hint
    ("range-empty-has-hint", lambda t, tree, s: ["build", "HEAD..HEAD"], "bad-range", ["(hint: give A..B"], True),
    # 6. JSON nested 100,000 deep
    ("expected-deep", lambda t, tree, s: run_args(series_with_expected(t, s, DEEP)), "bad-expected",
     ["nested more than 64 levels"], True),
    ("known-issues-deep", lambda t, tree, s: run_args(s, "--known-issues", write(t, "k.json", DEEP)),
     "bad-known-issues", ["nested more than"], True),
    ("report-deep", lambda t, tree, s: ["report", run_dir_with(t, DEEP)], "bad-result", ["nested more than"], True),
    ("merge-deep", lambda t, tree, s: ["merge", run_dir_with(t, DEEP), "--out", str(t / "m")], "bad-result",
     ["nested more than"], True),
    ("compare-deep", lambda t, tree, s: ["compare", stored_run(t), run_dir_with(t, DEEP), "--out", str(t / "c")],
     "bad-result", ["nested more than"], True),
    # 16. --known-issues that is not a regular file says what it is
    ("known-issues-dir", lambda t, tree, s: run_args(s, "--known-issues", str(t)), "bad-known-issues",
     ["a directory, not a regular file"], True),
    ("known-issues-fifo", lambda t, tree, s: run_args(s, "--known-issues", fifo(t)), "bad-known-issues",
     ["a FIFO"], True),
    ("known-issues-dev-zero", lambda t, tree, s: ["boot", "--known-issues", "/dev/zero"], "bad-known-issues",
     ["character device"], True),
    # 10. results that are special files or links out of their folder
    ("report-result-fifo", lambda t, tree, s: ["report", run_dir_with(t, special="fifo")], "bad-result",
     ["a FIFO"], True),
    ("report-dev-zero", lambda t, tree, s: ["report", "/dev/zero"], "bad-result", ["character device"], True),
    ("merge-result-fifo", lambda t, tree, s: ["merge", run_dir_with(t, special="fifo"), "--out", str(t / "m")],
     "bad-result", ["a FIFO"], True),
    ("merge-result-links-out", lambda t, tree, s: ["merge", run_dir_with(t, special="link"), "--out", str(t / "m")],
     "bad-result", ["symlink that leads out of"], True),
    ("report-result-links-out", lambda t, tree, s: ["report", run_dir_with(t, special="link")], "bad-result",
     ["symlink that leads out of"], True),
    ("compare-result-links-out", lambda t, tree, s: ["compare", run_dir_with(t, special="link"), stored_run(t, "b"),
                                                     "--out", str(t / "c")], "bad-result",
     ["symlink that leads out of"], True),
    # 4. + 9. green with no real comparison; shard fields
    ("compare-run-with-itself", lambda t, tree, s: ["compare", stored_run(t), stored_run(t, "same") + "/result.json",
                                                    "--out", str(t / "c")], "same-run", ["same run"], True),
    ("compare-a-dir-with-itself", lambda t, tree, s: ["compare", stored_run(t), str(t / "run"), "--out", str(t / "c")],
     "same-run", ["20261121-230137-32013-c254"], True),
    ("merge-shard-count-0", lambda t, tree, s: ["merge", stored_run(t, **{"settings.shard": {"index": 0, "count": 0}}),
                                                "--out", str(t / "m")], "bad-result", ["settings/shard"], True),
    ("merge-shard-count-1e9", lambda t, tree, s: ["merge", stored_run(
        t, **{"settings.shard": {"index": 1, "count": 10 ** 9}}), "--out", str(t / "m")], "bad-result",
     ["settings/shard/count", "1000"], True),
    ("merge-shard-strings", lambda t, tree, s: ["merge", stored_run(
        t, **{"settings.shard": {"index": "1", "count": "2"}}), "--out", str(t / "m")], "bad-result",
     ["settings/shard"], True),
    ("merge-shard-index-past-count", lambda t, tree, s: ["merge", stored_run(
        t, **{"settings.shard": {"index": 3, "count": 2}}), "--out", str(t / "m")], "bad-result",
     ["index 3 is more than count 2"], True),
    ("run-shard-1e9", lambda t, tree, s: run_args(s, "--shard", "1/1000000000"), "bad-shard", ["N must be"], True),
    # 17. compare's run-not-found names the argument, not --rerun
    ("compare-run-not-found", lambda t, tree, s: ["compare", "no-such-run", stored_run(t), "--out", str(t / "c")],
     "run-not-found", ["RUN_A no-such-run"], True),
    # 11. unusable --out/--reports, before any work
    ("merge-out-is-a-file", lambda t, tree, s: ["merge", stored_run(t), "--out", write(t, "f", "x")], "bad-out",
     ["--out", "exists and is not a directory"], True),
    ("compare-out-is-a-file", lambda t, tree, s: ["compare", stored_run(t), stored_run(t, "b"), "--out",
                                                  write(t, "f", "x")], "bad-out", ["not a directory"], True),
    ("boot-out-is-a-file", lambda t, tree, s: ["boot", "--out", write(t, "f", "x")], "bad-out",
     ["not a directory"], True),
    ("calibrate-out-is-a-file", lambda t, tree, s: ["calibrate", "--area", "linkwatch", "--out", write(t, "f", "x")],
     "bad-out", ["not a directory"], True),
    ("boot-out-under-a-file", lambda t, tree, s: ["boot", "--out", write(t, "f", "x") + "/logs"], "bad-out",
     ["cannot be created", "is not a directory"], True),
    ("reports-under-a-file", lambda t, tree, s: run_args(s, "--reports", write(t, "f", "x") + "/r"),
     "reports-not-a-dir", ["cannot be created"], True),
    # 3. nothing is written into the user's tree
    ("reports-in-tree", lambda t, tree, s: run_args(s, "--reports", str(tree / "reports")), "reports-in-tree",
     ["inside the kernel tree"], True),
    ("boot-out-in-tree", lambda t, tree, s: ["boot", "--out", str(tree / "logs")], "reports-in-tree",
     ["--out"], True),
    # 5. an unusable history database, before the work
    ("ktest-db-is-a-dir", lambda t, tree, s: (run_args(s), {"KTEST_DB": str(t)}), "bad-db",
     ["KTEST_DB", "not a regular file"], True),
    ("db-under-a-file", lambda t, tree, s: run_args(s, "--db", write(t, "f", "x") + "/h.sqlite"), "bad-db",
     ["cannot be created", "is not a directory"], True),
    ("history-ktest-db-is-a-dir", lambda t, tree, s: (["history"], {"KTEST_DB": str(t)}), "bad-db",
     ["KTEST_DB", "not a regular file"], True),
    ("merge-db-is-a-dir", lambda t, tree, s: ["merge", stored_run(t), "--out", str(t / "m"), "--db", str(t)],
     "bad-db", ["not a regular file"], True),
    # 12. + 13. every option of boot, build and run, before any work
    ("boot-reps-0", lambda t, tree, s: ["boot", "--reps", "0"], "bad-option", ["--reps 0"], True),
    ("boot-testcases-missing", lambda t, tree, s: ["boot", "--testcases", "/nonexistent"], "bad-testcases",
     ["/nonexistent does not exist"], True),
    ("boot-testcases-passwd", lambda t, tree, s: ["boot", "--testcases", "/etc/passwd"], "bad-testcases",
     ["not a Python check file"], True),
    ("boot-testcases-dev-zero", lambda t, tree, s: ["boot", "--testcases", "/dev/zero"], "bad-testcases",
     ["not a regular file"], True),
    ("boot-testcases-node-of-missing-file", lambda t, tree, s: ["boot", "--testcases", "/nonexistent.py::test_a"],
     "bad-testcases", ["/nonexistent.py::test_a does not exist"], True),
    ("boot-testcases-node-not-a-name", lambda t, tree, s: ["boot", "--testcases", "testcases/test_smoke.py::1 or x"],
     "bad-testcases", ["not a check's node id"], True),
    ("boot-testcases-node-in-a-folder", lambda t, tree, s: ["boot", "--testcases", "testcases::test_a"],
     "bad-testcases", ["names a check in a folder"], True),
    ("build-jobs-0", lambda t, tree, s: ["build", "--jobs", "0"], "bad-option", ["--jobs 0"], True),
    ("build-jobs-negative", lambda t, tree, s: ["build", "--jobs", "-1"], "bad-option", ["--jobs -1"], True),
    ("run-testcases-missing", lambda t, tree, s: ["run", s, "--testcases", "/nonexistent"], "bad-testcases",
     ["/nonexistent"], True),
    ("run-k-unbalanced", lambda t, tree, s: run_args(s, "-k", "not ("), "bad-expr", ["not ("], True),
    ("boot-k-unbalanced", lambda t, tree, s: ["boot", "-k", "a and"], "bad-expr", ["a and"], True),
    # 19. history --limit
    ("history-limit-0", lambda t, tree, s: ["history", "--limit", "0", "--db", str(t / "h.sqlite")], "bad-option",
     ["--limit 0"], True),
    ("history-limit-negative", lambda t, tree, s: ["history", "--limit", "-3", "--json", "--db", str(t / "h.sqlite")],
     "bad-option", ["--limit -3"], True),
    # 15. argparse's refusals are one line too
    ("usage-rounds-abc", lambda t, tree, s: ["run", s, "--rounds", "abc"], "usage",
     ["ktest run: argument --rounds", "invalid int value: 'abc'", "(hint: `ktest run --help`"], True),
    ("usage-unknown-option", lambda t, tree, s: ["history", "--colour"], "usage", ["unrecognized arguments: --colour"],
     True),
    ("usage-unknown-command", lambda t, tree, s: ["frobnicate"], "usage", ["invalid choice: 'frobnicate'"], True),
    ("usage-no-command", lambda t, tree, s: [], "usage", ["required: COMMAND"], True),
    ("usage-bad-choice", lambda t, tree, s: ["run", s, "--accel", "warp"], "usage", ["--accel", "'warp'"], True),
    ("usage-missing-value", lambda t, tree, s: ["run", s, "--reports"], "usage", ["expected one argument"], True),
    ("usage-shell-exclusive", lambda t, tree, s: ["shell", "--build", "k", "--bzimage", "b"], "usage",
     ["not allowed with argument"], True),
]

TREE_COMMANDS = {"tree", "build", "run", "calibrate", "kvm", "boot", "shell"}


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
    args, env = args if isinstance(args, tuple) else (args, {})
    if args and args[0] in TREE_COMMANDS and args[-1] != "--reports":
        args += ["--tree", str(linked_tree)]
    before = snapshot(linked_tree)
    p = ktest(*args, cache=tmp_path / "c", env={"COLUMNS": "300", **env})
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

    (fake_tree / "SLOW").write_text("")          # the fake build sleeps: time to interrupt it
    git(fake_tree, "add", "SLOW")
    git(fake_tree, "commit", "-q", "-m", "slow build")
    cache, reports = tmp_path / "c", tmp_path / "reports"
    proc = subprocess.Popen([sys.executable, "-m", "ktest", "run", str(fake_series), "--tree", str(fake_tree),
                             "--reports", str(reports), "--testcases", "testcases/test_smoke.py"],
                            stderr=subprocess.PIPE, text=True, env=dict(os.environ, KTEST_CACHE=str(cache)))
    wait_for_fake_make(cache, proc)
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


@pytest.mark.parametrize("node", ["testcases/test_smoke.py::test_guest_basics",
                                  "testcases/linkwatch/test_operstate.py::test_virtio_bounce[gap_0.1s]",
                                  "testcases/bonding/test_upstream.py::test_kselftest[bond_options.sh:num_grat_arp]"])
def test_a_check_node_id_of_an_existing_file_is_accepted(node):
    """`--testcases file.py::test[param]` names one check, as the reproduce commands print it."""
    import argparse

    from ktest.cli import validate_checks

    validate_checks(argparse.Namespace(testcases=[str(Path(__file__).resolve().parent.parent / node)], expr=None))


def test_a_check_node_id_is_found_from_another_directory(tmp_path, monkeypatch):
    """A report's reproduce command names checks relative to the checks' root; run from elsewhere, it
    still finds them (as checks.check_path does)."""
    import argparse

    from ktest.cli import validate_checks
    from ktest.base.errors import BadTestcases

    monkeypatch.chdir(tmp_path)
    validate_checks(argparse.Namespace(testcases=["testcases/test_smoke.py::test_guest_basics"], expr=None))
    with pytest.raises(BadTestcases):
        validate_checks(argparse.Namespace(testcases=["testcases/test_nothing.py::test_a"], expr=None))
