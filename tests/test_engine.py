"""The engine seam (ktest/engine.py): every command that boots a kernel goes through the Engine's
runner, so a test drives `ktest boot`, `ktest run` and `--rerun` with a stand-in runner and no VM."""

import argparse
from pathlib import Path

from fakekernel import make_series
from ktest import cli
from ktest.base.progress import Silent
from ktest.boot.vm import HDRS_MAGIC, HDRS_OFFSET
from ktest.engine import Engine, TreeSpec
from ktest.run import RunOptions
from replay import canned


def _bzimage(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"\0" * HDRS_OFFSET + HDRS_MAGIC + b"\0" * 64)
    return path


def test_ktest_boot_runs_its_checks_through_the_engines_runner(tmp_path, cache, capsys):
    """`ktest boot` reports what the runner returned, and its exit says whether a check failed."""
    seen = []

    def statuses(label):
        return [("testcases/test_smoke.py::test_guest_basics", "PASS"),
                ("testcases/test_smoke.py::test_virtio_nics_present", "FAIL")]
    fake = canned(statuses)

    def runner(cache_, bzimage, outdir, **kw):
        seen.append((bzimage, kw["paths"], kw["expr"], kw["reps"]))
        return fake(cache_, bzimage, outdir, **kw)

    bz = _bzimage(tmp_path / "k" / "bzImage")
    rc = cli.main(["boot", "--cache", str(cache.root), "--bzimage", str(bz), "--testcases", "testcases/test_smoke.py",
                   "-k", "test_guest_basics or test_virtio_nics_present", "--reps", "2", "--out", str(tmp_path / "out")], runner=runner)
    out = capsys.readouterr().out
    assert seen == [(bz.resolve(), ["testcases/test_smoke.py"], "test_guest_basics or test_virtio_nics_present", 2)]
    assert "FAIL  test_virtio_nics_present" in out and "PASS  test_guest_basics" in out, out
    assert rc == 1, "a failed check is exit 1"


def test_the_engine_runs_a_series_with_its_runner(tmp_path, fake_tree, cache):
    """Engine.run: the series applied to the user's tree, both sides booted by the runner, judged."""
    series = make_series(fake_tree, tmp_path / "s", [("net/core/dev.c", "int d1;\n", "net: one")])
    labels = []

    def statuses(label):
        labels.append(label)
        bad = label.startswith("patched")
        return [("testcases/test_smoke.py::area.a", "FAIL" if bad else "PASS")]

    eng = Engine(cache, Silent(), canned(statuses))
    result, outdir = eng.run(TreeSpec(repo=str(fake_tree)), str(series),
                             RunOptions(rounds=2, max_rounds=2, reps=1, vms=1, reports=tmp_path / "r",
                                        testcases=[Path("testcases/test_smoke.py")], bisect=False))
    assert (outdir / "result.json").is_file()
    assert {lb.split("-")[0] for lb in labels} == {"base", "patched"}
    assert result.outcome.exit_code == 1 and result.outcome.regressions == ["area.a"], result.outcome


def test_a_rerun_reads_the_stored_settings_into_new_arguments(tmp_path, fake_tree, cache):
    """--rerun builds a new Namespace from the stored run; the parsed one is left as the user gave it."""
    series = make_series(fake_tree, tmp_path / "s", [("net/core/dev.c", "int d1;\n", "net: one")])
    eng = Engine(cache, Silent(), canned(lambda label: [("testcases/test_smoke.py::area.a", "PASS")]))
    _, outdir = eng.run(TreeSpec(repo=str(fake_tree)), str(series),
                        RunOptions(rounds=2, max_rounds=3, reps=4, vms=1, reports=tmp_path / "r",
                                   testcases=[Path("testcases/test_smoke.py")], bisect=False))
    given = cli.parser().parse_args(["run", "--rerun", str(outdir), "--vms", "1"])
    before = dict(vars(given))
    new, must = cli.rerun_args(given, eng)
    assert vars(given) == before, "the parsed arguments are not written to"
    assert isinstance(new, argparse.Namespace) and new is not given
    assert (new.series, new.tree, new.rounds, new.max_rounds, new.reps, new.vms) == \
        ([str(series)], str(fake_tree), 2, 3, 4, 1)
    assert must["run_id"] == outdir.name and must["builds"], must
