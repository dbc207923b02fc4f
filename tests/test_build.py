import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from fakekernel import git, make_series, make_tree
from ktest.host.build import Builder, check_host_tools, first_error, parse_warnings
from ktest.base.errors import BuildFailed, MissingHostTools
from ktest.host.pipeline import build_series
from ktest.base.progress import Silent
from ktest.host.tree import user_tree


@pytest.fixture
def calls(tmp_path, monkeypatch):
    f = tmp_path / "make-calls"
    monkeypatch.setenv("KTEST_FAKE_CALLS", str(f))
    return f


def n_calls(f: Path) -> int:
    return len(f.read_text().splitlines()) if f.exists() else 0


def test_base_build_then_cache_hit_runs_no_make(cache, fake_tree, calls):
    t = user_tree(cache, fake_tree)
    b = Builder(cache, t, progress=Silent())
    first = b.build(t.base, "base")
    assert first.status == "PASS" and not first.cached
    assert first.bzimage.read_text().startswith("fake bzImage")
    assert (first.dir / "meta.json").exists() and (first.dir / "config").exists()
    made = n_calls(calls)
    assert made >= 1
    again = Builder(cache, t, progress=Silent()).build(t.base, "base")
    assert again.cached and again.dir == first.dir
    assert n_calls(calls) == made, "a cache hit must not run make"


def test_series_builds_each_patch_and_reports_new_warning(cache, fake_tree, fake_series, calls):
    t = user_tree(cache, fake_tree)
    res = build_series(cache, t, str(fake_series), areas=("linkwatch",), progress=Silent())
    assert len(res.patches) == 2
    assert len({res.base.key, res.patches[0].key, res.patches[1].key}) == 3
    assert res.base.warnings == []
    assert list(res.new_warnings) == [2], "only patch 2 adds a warning"
    (w,) = res.new_warnings[2]
    assert (w.file, w.line, w.message) == ("net/core/dev.c", 2, "new thing [-Wcpp]")


def test_build_error_names_file_and_line(cache, tmp_path, fake_tree):
    series = make_series(fake_tree, tmp_path / "broken", [
        ("net/core/link_watch.c", "int a;\n#error expected ';' before '}' token\n", "net: break it")])
    t = user_tree(cache, fake_tree)
    with pytest.raises(BuildFailed) as e:
        build_series(cache, t, str(series), areas=(), progress=Silent())
    msg = str(e.value)
    assert "net/core/link_watch.c:2" in msg and "expected ';'" in msg and "build-" in msg
    # nothing trusted was left for the failed commit
    arts = [p for p in (cache.root / "artifacts").iterdir() if not p.name.startswith(".")]
    assert len(arts) == 1, "only the base artifact exists"


def test_first_error_parsers():
    src, obj = Path("/c/src"), Path("/c/obj")
    log = "  CC      a.o\n/c/src/net/core/x.c:10:3: error: 'foo' undeclared\nmake[2]: *** [x] Error 1\n"
    assert first_error(log, src, obj) == ("net/core/x.c:10", "'foo' undeclared")
    log = "ld: vmlinux.o: in function `f':\nnet/core/y.c:(.text+0x1): undefined reference to `bar'\n"
    assert first_error(log, src, obj) == ("net/core/y.c", "undefined reference to `bar'")
    assert first_error("make: *** No rule to make target 'x'.  Stop.\n", src, obj)[0] == "make"
    ws = parse_warnings("../src/a.c:1:2: warning: w1 [-Wx]\n../src/a.c:1:2: warning: w1 [-Wx]\n", src, obj)
    assert [(w.file, w.line) for w in ws] == [("a.c", 1)]


def test_missing_host_tools_listed_together():
    with pytest.raises(MissingHostTools) as e:
        check_host_tools(which=lambda t: None if t in ("flex", "bison") else "/usr/bin/" + t,
                         header_dirs=("/nonexistent",))
    msg = str(e.value)
    assert "flex" in msg and "bison" in msg and "libelf.h" in msg and "libelf-dev" in msg


def test_concurrent_builds_share_cache_safely(cache, fake_tree, calls):
    code = ("import sys; from ktest.base.cache import Cache; from ktest.host.tree import user_tree; "
            "from ktest.host.build import Builder; from ktest.base.progress import Silent; "
            "c = Cache.open(sys.argv[1]); t = user_tree(c, sys.argv[2]); "
            "print(Builder(c, t, progress=Silent()).build(t.base).dir)")
    procs = [subprocess.Popen([sys.executable, "-c", code, str(cache.root), str(fake_tree)],
                              stdout=subprocess.PIPE, text=True) for _ in range(2)]
    outs = [p.communicate(timeout=120)[0].strip() for p in procs]
    assert all(p.returncode == 0 for p in procs)
    assert outs[0] == outs[1]
    assert n_calls(calls) <= 3 * 2, "the second run waited for the lineage lock and took the cache hit"
    assert Path(outs[0], "bzImage").exists()


def test_ctrl_c_during_build_kills_make_and_leaves_no_artifact(cache, fake_tree, tmp_path):
    (fake_tree / "SLOW").write_text("")
    git(fake_tree, "add", "SLOW")
    git(fake_tree, "commit", "-q", "-m", "slow")
    env = dict(os.environ, KTEST_CACHE=str(cache.root))
    p = subprocess.Popen([sys.executable, "-m", "ktest", "build", "--tree", str(fake_tree)],
                         env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    # only this test's fake make: other runs on the machine may have their own fakebuild.py going
    mine = ["pgrep", "-f", f"{cache.root}/.*fakebuild.py bzImage"]
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if subprocess.run(mine, capture_output=True).returncode == 0:
            break
        time.sleep(0.2)
    else:
        p.kill()
        pytest.fail("fake make never started")
    p.send_signal(signal.SIGINT)
    out, err = p.communicate(timeout=30)
    assert p.returncode == 130
    assert "Traceback" not in err
    assert err.strip().splitlines()[-1].startswith("ktest: interrupted during build")
    time.sleep(0.5)
    assert subprocess.run(mine, capture_output=True).returncode != 0, \
        "make must not outlive ktest"
    arts = cache.root / "artifacts"
    assert not arts.exists() or not [a for a in arts.iterdir() if (a / "meta.json").exists()]


def test_a_revision_range_builds_the_users_commits_on_its_start(cache, fake_tree, calls):
    """`ktest build --tree T A..B`: the base is A, each commit of the range is built as it is (no apply,
    so the same commit ids), and the user's tree is left as it was."""
    from test_tree_apply import snapshot

    git(fake_tree, "checkout", "-q", "-b", "dev")
    for text, subject in (("int a;\nint b2;\nint c;\n", "net: change b"), ("int a;\n#warning w\n", "net: warn")):
        (fake_tree / "net/core/link_watch.c").write_text(text)
        git(fake_tree, "commit", "-q", "-am", subject)
    git(fake_tree, "checkout", "-q", "master")
    before = snapshot(fake_tree)
    ids = git(fake_tree, "rev-list", "--reverse", "v6.12.99..dev").split()
    t = user_tree(cache, fake_tree, "master")
    res = build_series(cache, t, "v6.12.99..dev", areas=("linkwatch",), progress=Silent())
    assert res.tree.base == git(fake_tree, "rev-parse", "v6.12.99^{commit}").strip()
    assert res.tree.base_rev == "v6.12.99"
    assert [b.commit for b in res.patches] == ids
    assert list(res.new_warnings) == [2]
    assert snapshot(fake_tree) == before


def test_kconfig_add_is_a_user_fragment_in_the_build_key_and_verified(cache, fake_tree, tmp_path, calls):
    from ktest.host import kconfig

    frag_file = tmp_path / "extra.config"
    frag_file.write_text("# my debugging\nCONFIG_NETCONSOLE=y\n# CONFIG_BRIDGE is not set\n")
    frag = kconfig.user_fragment(["CONFIG_DEBUG_INFO=y", str(frag_file)])
    assert frag.name == "user"
    assert frag.symbols() == {"CONFIG_DEBUG_INFO": "y", "CONFIG_NETCONSOLE": "y", "CONFIG_BRIDGE": "n"}
    assert kconfig.user_fragment([]) is None
    t = user_tree(cache, fake_tree)
    plain, extra = Builder(cache, t, progress=Silent()), Builder(cache, t, progress=Silent(), extra=frag)
    assert plain.key(t.base) != extra.key(t.base), "the user's fragment is part of the build key"
    b = extra.build(t.base, "base")
    assert "CONFIG_NETCONSOLE=y" in b.config.read_text()
    assert kconfig.requested(extra.frags)["CONFIG_BRIDGE"] == "n", "the user's fragment wins over the areas'"


def test_a_symbol_asked_where_available_is_logged_when_the_tree_cannot_grant_it(cache, fake_tree, tmp_path, calls):
    """6.1's KPROBES depends on MODULES: the linkwatch area asks for kprobe events only where the tree
    allows, so such a tree still builds and its log says what was not granted; a required symbol the
    tree cannot grant still fails the build."""
    from ktest.host import kconfig
    from ktest.base.errors import KconfigMissing

    frags = kconfig.fragments(["linkwatch"])
    assert [f.name for f in frags if f.optional] == ["linkwatch-where-available"]
    assert "CONFIG_KPROBES" in kconfig.requested(frags, optional=True)
    assert "CONFIG_KPROBES" not in kconfig.requested(frags) and "CONFIG_VETH" in kconfig.requested(frags)
    (fake_tree / "UNMET").write_text("CONFIG_KPROBES\nCONFIG_KPROBE_EVENTS\n")
    git(fake_tree, "add", "UNMET")
    git(fake_tree, "commit", "-q", "-m", "a Kconfig where KPROBES depends on MODULES")
    t = user_tree(cache, fake_tree)
    b = Builder(cache, t, progress=Silent(), areas=("linkwatch",)).build(t.base, "base")
    assert "CONFIG_KPROBES" not in b.config.read_text()
    log = (b.dir / "build.log").read_text()
    assert "not granted by this tree: CONFIG_KPROBES=y (got n), CONFIG_KPROBE_EVENTS=y (got n)" in log
    other = make_tree(tmp_path / "linux-without-veth")
    (other / "UNMET").write_text("CONFIG_VETH\n")
    git(other, "add", "UNMET")
    git(other, "commit", "-q", "-m", "a Kconfig without veth")
    t2 = user_tree(cache, other)
    with pytest.raises(KconfigMissing, match="CONFIG_VETH=y"):
        Builder(cache, t2, progress=Silent(), areas=("linkwatch",)).build(t2.base, "base")


def test_the_trees_selftests_travel_with_the_build_without_a_warning_per_file(cache, fake_tree, calls, capfd):
    """A commit dated ahead of the host's clock (as the mutant corpus's are): its selftests are exported
    into the artifact, and tar prints nothing on the user's terminal."""
    d = fake_tree / "tools/testing/selftests/kselftest"
    d.mkdir(parents=True)
    (d / "runner.sh").write_text("#!/bin/sh\n")
    git(fake_tree, "add", "-A")
    env = {**os.environ, "GIT_AUTHOR_DATE": "2036-01-01T00:00:00", "GIT_COMMITTER_DATE": "2036-01-01T00:00:00"}
    subprocess.run(["git", "-C", str(fake_tree), "commit", "-q", "-m", "selftests"], check=True, env=env)
    t = user_tree(cache, fake_tree)
    b = Builder(cache, t, progress=Silent()).build(t.base, "base")
    assert b.status == "PASS"
    assert (b.dir / "selftests/tools/testing/selftests/kselftest/runner.sh").read_text() == "#!/bin/sh\n"
    assert "in the future" not in capfd.readouterr().err
