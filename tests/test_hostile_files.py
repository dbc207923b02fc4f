"""Files from outside that ktest must read carefully (issue 25): run directories from other machines
(merge, compare, report), logs that are FIFOs or huge, results with odd fields, subjects with control
bytes, and the places ktest writes to.  The bad inputs that are refused are in test_bad_inputs.py; here
are the ones that must work, without reading what they must not."""

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from fakekernel import git, wait_for_fake_make
from test_cli import ktest

from ktest import cli
from ktest.base import safeio
from ktest.base.result import Result

from results import minimal

R = Result.from_json

FIXTURE = Path(__file__).parent / "fixtures" / "result-linkwatch.json"
SECRET = "TOPSECRET-host-file"


def stored(tmp_path, name="run", change=None) -> Path:
    r = json.loads(FIXTURE.read_text())
    if change:
        change(r)
    d = tmp_path / name
    (d / "boots" / "base-1" / "attempt-1").mkdir(parents=True)
    (d / "boots" / "base-1" / "attempt-1" / "console.log").write_text("[    0.0] Linux version\nlast line\n")
    (d / "result.json").write_text(json.dumps(r))
    return d


def files_under(d: Path) -> list[Path]:
    return [Path(here, f) for here, _, fs in os.walk(d) for f in fs]


# --- safeio itself ------------------------------------------------------------------------------

def test_safeio_refuses_special_files_links_out_and_big_files(tmp_path):
    os.mkfifo(tmp_path / "fifo")
    (tmp_path / "root").mkdir()
    (tmp_path / "outside.txt").write_text("x")
    (tmp_path / "root" / "out").symlink_to(tmp_path / "outside.txt")
    (tmp_path / "root" / "in.txt").write_text("inside")
    (tmp_path / "root" / "in-link").symlink_to(tmp_path / "root" / "in.txt")
    cases = {tmp_path / "fifo": "a FIFO", Path("/dev/zero"): "a character device", tmp_path: "a directory",
             tmp_path / "nope": "does not exist"}
    for path, why in cases.items():
        with pytest.raises(safeio.Refused, match=why):
            safeio.read_bytes(path, 100)
    with pytest.raises(safeio.Refused, match="symlink that leads out of"):
        safeio.read_bytes(tmp_path / "root" / "out", 100, root=tmp_path / "root")
    assert safeio.read_bytes(tmp_path / "root" / "in-link", 100, root=tmp_path / "root") == b"inside"
    with pytest.raises(safeio.Refused, match="more than the 3 bytes"):
        safeio.read_bytes(tmp_path / "root" / "in.txt", 3)


def test_safeio_json_depth_is_bounded_without_recursion():
    with pytest.raises(ValueError, match="nested more than 64"):
        safeio.loads_json("[" * 100_000 + "]" * 100_000)
    with pytest.raises(ValueError, match="nested more than 64"):
        safeio.loads_json("[" * 65 + "]" * 65)
    assert safeio.loads_json("[" * 64 + "]" * 64) == safeio.loads_json("[" * 64 + "]" * 64)


def test_safeio_tail_reads_only_the_end_of_a_huge_log(tmp_path):
    log = tmp_path / "console.log"
    with open(log, "wb") as f:
        f.truncate(5 << 30)         # 5 GiB, sparse
        f.seek(5 << 30)
        f.write(b"\nthe last line\n")
    assert safeio.tail_text(log, 3).splitlines()[-1] == "the last line"


# --- 1. merge copies no host file through a symlink -------------------------------------------------

def test_merge_copies_boots_without_following_symlinks(tmp_path):
    secret = tmp_path / "host"
    secret.mkdir()
    (secret / "shadow").write_text(SECRET)
    run = stored(tmp_path)
    (run / "boots" / "l").symlink_to(secret)                       # a folder link out of the run
    (run / "boots" / "base-1" / "shadow").symlink_to(secret / "shadow")   # a file link out of it
    (run / "boots" / "base-1" / "inner").symlink_to(run / "boots" / "base-1" / "attempt-1")   # inside, still
    os.mkfifo(run / "boots" / "base-1" / "attempt-1" / "stdout.log")          # would block a copy
    out = tmp_path / "merged"
    p = ktest("merge", str(run), "--out", str(out), "--db", str(tmp_path / "h.sqlite"), cache=tmp_path / "c")
    assert p.returncode not in (2, 130) and "Traceback" not in p.stderr, p.stderr     # the verdict is the runs'
    copied = files_under(out)
    assert any(f.name == "console.log" for f in copied), "the run's own logs are copied"
    for f in copied:
        assert not f.is_symlink(), f
        assert SECRET not in f.read_text(errors="replace"), f"{f} holds the host's file"
    assert not any(f.name == "stdout.log" for f in copied), "a FIFO is not copied"
    result = json.loads(next(out.glob("*/result.json")).read_text())
    skipped = " ".join(result["settings"]["merge_skipped"])
    assert "boots/l (a symlink)" in skipped and "shadow (a symlink)" in skipped and "a FIFO" in skipped


# --- 7., 8., 10. report: odd result fields and logs -------------------------------------------------

def test_report_with_fifo_and_missing_logs_and_hostile_check_paths(tmp_path):
    def change(r):
        r["boots"][0]["boot"]["console_log"] = None
        r["boots"][1]["boot"].pop("console_log")
        r["boots"][2]["boot"]["console_log"] = "boots/base-1/attempt-1/fifo.log"
        r["checks"][0]["path"] = "linkwatch.\x1b[31mred<b>bold</b>\x07.ok\x00"
    run = stored(tmp_path, change=change)
    os.mkfifo(run / "boots" / "base-1" / "attempt-1" / "fifo.log")
    p = ktest("report", str(run), cache=tmp_path / "c")
    assert p.returncode == 0, p.stderr
    html = (run / "index.html").read_text()
    assert "(no log recorded)" in html and "(log not shown: it is a FIFO, not a regular file)" in html
    for raw in ("\x1b", "\x07", "\x00", "<b>bold"):
        assert raw not in html
    assert "\\x1b[31mred&lt;b&gt;bold" in html
    kcidb = json.loads((run / "kcidb.json").read_text())
    paths = [t["path"] for t in kcidb["tests"]]
    assert "ktest.linkwatch._31mred_b_bold_b_.ok_" in paths


def test_a_result_kcidb_refuses_writes_no_output(tmp_path):
    """A field KCIDB refuses (here a base that is not a commit hash) is one line, and no output is
    half-written: not index.html and junit.xml without kcidb.json."""
    run = stored(tmp_path, change=lambda r: r["tree"].update(base="not-a-hash"))
    p = ktest("report", str(run), cache=tmp_path / "c")
    assert p.returncode == 2 and "[bad-result]" in p.stderr and "KCIDB" in p.stderr, p.stderr
    assert not (run / "index.html").exists() and not (run / "junit.xml").exists()


# --- 21. control bytes in the trends page -------------------------------------------------------------

def test_history_html_shows_control_bytes_visibly(tmp_path):
    from ktest.report import trends
    from ktest.report.history import History

    r = json.loads(FIXTURE.read_text())
    r["series"]["name"] = "evil\x1b]0;title\x07\x00name"
    h = History.open(tmp_path / "h.sqlite")
    h.record(R(r), tmp_path / "result.json")
    trends.write(h, tmp_path / "history.html")
    page = (tmp_path / "history.html").read_text()
    assert "\x1b" not in page and "\x07" not in page and "\x00" not in page
    assert "evil\\x1b]0;title\\x07\\x00name" in page


# --- 3. the default reports dir is never inside the kernel tree --------------------------------------

def test_reports_default_moves_out_of_the_tree(tmp_path, fake_tree, fake_series, monkeypatch):
    monkeypatch.chdir(fake_tree)
    args = cli.parser().parse_args(["run", str(fake_series), "--tree", ".", "--cache", str(tmp_path / "c"),
                                    "--testcases", str(Path(__file__).parent.parent / "testcases" / "test_smoke.py")])
    cli.validate_inputs(args)
    assert Path(args.reports) == tmp_path / "c" / "reports"
    monkeypatch.chdir(tmp_path)
    args = cli.parser().parse_args(["boot", "--tree", str(fake_tree), "--cache", str(tmp_path / "c")])
    cli.validate_inputs(args)
    assert Path(args.out).parent == Path("reports"), "outside the tree, reports/ stays where it was"


# --- 14. --rerun that cannot match stops before the tree is prepared -----------------------------------

def test_rerun_of_a_changed_series_stops_before_any_tree_work(tmp_path, fake_tree, fake_series):
    def change(r):
        r["series"]["path"] = str(fake_series)
        r["checkout"]["patchset_hash"] = "0" * 64
        r["tree"].update(kind="user", repo=str(fake_tree), base_rev="HEAD")
    run = stored(tmp_path, change=change)
    cache = tmp_path / "c"
    p = ktest("run", "--rerun", str(run), "--reports", str(tmp_path / "r"), cache=cache)
    assert p.returncode == 2 and "[rerun-differs]" in p.stderr and "patches changed" in p.stderr, p.stderr
    assert not (cache / "repos").exists() and not (cache / "trees").exists()


# --- 20. a range is not "applied" ------------------------------------------------------------------------

def test_a_range_run_does_not_say_it_applies_patches(tmp_path, fake_tree, monkeypatch):
    from ktest import run as run_mod
    from ktest.base.progress import Progress
    from ktest.host.series import load

    said = []
    monkeypatch.setattr(Progress, "stage", lambda self, text, *a, **k: said.append(text))
    (fake_tree / "net" / "core" / "dev.c").write_text("int d9;\n")
    git(fake_tree, "commit", "-qam", "net: mine")
    series = load("HEAD~1..HEAD", fake_tree)
    r = run_mod._Run.__new__(run_mod._Run)
    r.series, r.tree, r.progress = series, type("T", (), {"name": "linux", "base_rev": "HEAD~1"})(), Progress()
    r.result = R(minimal(run_id="x"))
    r.cache = type("C", (), {"dir": lambda self, *p: tmp_path.joinpath(*p)})()
    r.apply()
    assert said and "applying" not in said[0] and "built as they are" in said[0], said


def test_ktest_build_of_a_range_does_not_say_it_applies_patches(tmp_path, fake_tree):
    (fake_tree / "net" / "core" / "dev.c").write_text("int d9;\n")
    git(fake_tree, "commit", "-qam", "net: mine")
    p = ktest("build", "--tree", str(fake_tree), "HEAD~1..HEAD", cache=tmp_path / "c")
    assert p.returncode == 0, p.stderr
    assert "built as they are" in p.stderr and "applying" not in p.stderr, p.stderr


# --- 23. SIGTERM and SIGINT: the same line; what is kept is said ----------------------------------------

@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_sigint_and_sigterm_print_the_same_line(tmp_path, fake_tree, sig):
    (fake_tree / "SLOW").write_text("")
    git(fake_tree, "add", "SLOW")
    git(fake_tree, "commit", "-q", "-m", "slow build")
    cache = tmp_path / "c"
    proc = subprocess.Popen([sys.executable, "-m", "ktest", "build", "--tree", str(fake_tree)],
                            stderr=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                            env=dict(os.environ, KTEST_CACHE=str(cache)))
    wait_for_fake_make(cache, proc)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=60)
    lines = [l for l in err.splitlines() if l.strip()]
    assert proc.returncode == 130 and "Traceback" not in err, err
    assert lines[-1] == "ktest: interrupted during build base", err
    assert "nothing partial" not in err and "user error" not in err


def test_an_interrupt_while_outputs_are_written_says_what_is_kept(tmp_path, monkeypatch):
    """Ctrl-C between result.json and the rendered outputs: the run folder stays with its result.json,
    and the line says so (and how to render it), instead of claiming nothing was kept."""
    from ktest.report import outputs
    from ktest.base.errors import Interrupted
    from ktest.run import run_series

    outdir_seen = []

    def interrupted(*a, **k):
        raise KeyboardInterrupt

    def fake_run(cache, tree, series, series_path, opts, progress, argv, chosen, why, run_id, outdir, runner):
        outdir_seen.append(outdir)
        (outdir / "result.json").write_text("{}")
        outputs.write_all(None, outdir)

    monkeypatch.setattr(outputs, "write_all", interrupted)
    monkeypatch.setattr("ktest.run._run", fake_run)
    monkeypatch.setattr("ktest.run.check_host_tools", lambda: None)
    monkeypatch.setattr("ktest.host.tree.series_tree", lambda cache, tree, series: tree)
    from ktest.run import RunOptions

    series = Path(__file__).parent.parent / "patches" / "linkwatch"
    opts = RunOptions(reports=tmp_path / "r", testcases=[Path("testcases/test_smoke.py")])
    tree = type("T", (), {"kind": "debian", "repo": None})()
    with pytest.raises(Interrupted) as e:
        run_series(None, tree, str(series), opts, None)
    line = e.value.line()
    assert line.startswith("ktest: interrupted during the run of ") and "ktest report" in line, line
    assert (outdir_seen[0] / "result.json").exists() and str(outdir_seen[0]) in line


def test_an_interrupted_boot_says_where_its_logs_are_kept(tmp_path):
    """`ktest boot` interrupted while its guest runs: the boot's logs stay in --out (they show how far it
    got), and the one line says so instead of claiming nothing was kept."""
    bz = tmp_path / "bzImage"
    head = bytearray(1024)
    head[0x202:0x206] = b"HdrS"
    bz.write_bytes(bytes(head))
    out = tmp_path / "out"
    env = dict(os.environ, KTEST_CACHE=str(tmp_path / "c"), KTEST_VNG=str(Path(__file__).parent / "fakevng.py"),
               FAKE_VNG_MODE="stall", FAKE_VNG_PIDS=str(tmp_path / "pids"))
    proc = subprocess.Popen([sys.executable, "-m", "ktest", "boot", "--bzimage", str(bz), "--accel", "tcg",
                             "--out", str(out), "--testcases", "testcases/test_smoke.py"],
                            cwd=Path(__file__).parent.parent, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    pids = tmp_path / "pids"
    for _ in range(600):                       # until the fake guest runs (a bound, not an assertion)
        if pids.exists() and pids.read_text().strip() or proc.poll() is not None:
            break
        import time
        time.sleep(0.1)
    assert proc.poll() is None, proc.communicate()
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    lines = [l for l in err.splitlines() if l.strip()]
    assert proc.returncode == 130 and "Traceback" not in err, err
    assert lines[-1].startswith("ktest: interrupted during ") and f"kept in {out}" in lines[-1], err
    assert "nothing partial" not in err
    assert any(out.rglob("*")), "the interrupted boot's logs stay"
    for line in pids.read_text().split():      # the fake guest and its child are gone
        assert not Path(f"/proc/{line}").exists() or Path(f"/proc/{line}/stat").read_text().split()[2] == "Z"


def _read_only_mounts() -> bool:
    import shutil

    return os.geteuid() == 0 and shutil.which("unshare") is not None and \
        subprocess.run(["unshare", "-m", "true"], capture_output=True).returncode == 0


@pytest.mark.skipif(not _read_only_mounts(), reason="a read-only mount needs root and unshare -m")
@pytest.mark.parametrize("what", ["merge-out", "compare-out", "boot-out", "run-reports", "run-db"])
def test_outputs_on_a_read_only_filesystem_are_refused_up_front(tmp_path, fake_tree, fake_series, what):
    """Plain chmod does not stop root: a read-only filesystem does (os.access says EROFS).  Mounted in a
    private mount namespace, so nothing outside the test sees it."""
    ro = tmp_path / "ro"
    ro.mkdir()
    run = ["run", str(fake_series), "--tree", str(fake_tree), "--testcases", "testcases/test_smoke.py"]
    args, code = {
        "merge-out": (["merge", str(stored(tmp_path)), "--out", f"{ro}/m"], "bad-out"),
        "compare-out": (["compare", str(stored(tmp_path, "a")), str(stored(tmp_path, "b")), "--out", f"{ro}/c"],
                        "bad-out"),
        "boot-out": (["boot", "--out", f"{ro}/logs"], "bad-out"),
        "run-reports": (run + ["--reports", f"{ro}/r"], "reports-not-a-dir"),
        "run-db": (run + ["--reports", str(tmp_path / "r"), "--db", f"{ro}/h.sqlite"], "bad-db"),
    }[what]
    cache = tmp_path / "c"
    p = subprocess.run(["unshare", "-m", "--propagation", "private", "sh", "-c",
                        'mount -t tmpfs -o ro ktest-ro "$0" && exec "$@"', str(ro), sys.executable, "-m", "ktest",
                        *args], cwd=Path(__file__).parent.parent, capture_output=True, text=True, timeout=120,
                       env=dict(os.environ, KTEST_CACHE=str(cache)))
    lines = [l for l in p.stderr.splitlines() if l.strip()]
    assert p.returncode == 2 and "Traceback" not in p.stderr, p.stderr
    assert lines == [lines[-1]] and lines[-1].startswith(f"ktest: user error [{code}]: "), p.stderr
    assert "not writable" in lines[-1] or "read-only" in lines[-1], lines[-1]
    assert not (cache / "trees").exists() and not (cache / "repos").exists(), "refused before any work"
