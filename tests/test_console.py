"""The console parser on real console logs of the lean 6.12.117 kernel, captured under vng with LKDTM
(tests/fixtures/console/README.md says how).  Pure: text in, splats out."""

from pathlib import Path

import pytest

from ktest.judge.console import KnownIssues, crashed, parse

FIX = Path(__file__).parent / "fixtures" / "console"


@pytest.fixture(scope="module")
def lkdtm():
    return parse((FIX / "lkdtm-6.12.117.log").read_text())


def test_every_provoked_splat_is_found_in_order(lkdtm):
    assert [s.kind for s in lkdtm] == ["warning", "bug", "oops", "panic"]


def test_fingerprints_name_the_faulting_functions(lkdtm):
    warn, bug, oops, panic = lkdtm
    assert warn.fingerprint == "warning:lkdtm_WARNING/full_proxy_write/vfs_write"
    assert bug.fingerprint == "bug:lkdtm_BUG/full_proxy_write/vfs_write"
    assert "Oops: invalid opcode" in bug.text, "the BUG's own Oops line is part of the same splat"
    assert oops.fingerprint == "oops:lkdtm_EXCEPTION/full_proxy_write/vfs_write"
    assert oops.title.startswith("BUG: kernel NULL pointer dereference")
    # this lean kernel prints no stack with a panic (no DEBUG_BUGVERBOSE): fingerprinted by its message
    assert panic.fingerprint == "panic:Kernel panic - not syncing: dumptest"
    for s in lkdtm:
        assert "0x" not in s.fingerprint and "[" not in s.fingerprint, "no addresses or timestamps"


def test_fingerprint_is_stable_across_boots(lkdtm):
    again = parse((FIX / "lkdtm-6.12.117.log").read_text().replace("[    ", "[   9"))
    assert [s.fingerprint for s in again] == [s.fingerprint for s in lkdtm]


def test_blocks_are_cut_at_their_end_markers(lkdtm):
    warn = lkdtm[0]
    assert warn.text.splitlines()[0].startswith("WARNING: CPU:")
    assert "end trace" in warn.text.splitlines()[-1]


def test_panic_means_crashed_warning_does_not(lkdtm):
    assert crashed(lkdtm)
    assert not crashed(lkdtm[:1])


def test_clean_boot_has_no_splats():
    assert parse((FIX / "clean-boot-6.12.117.log").read_text()) == []


def test_known_issues_mark_matching_fingerprints(lkdtm, tmp_path):
    f = tmp_path / "known.json"
    f.write_text('[{"fingerprint": "warning:lkdtm_WARNING*", "reason": "provoked by the self-test"}]')
    marked = KnownIssues.load(f).mark(parse((FIX / "lkdtm-6.12.117.log").read_text()))
    assert marked[0].known == "provoked by the self-test" and all(s.known is None for s in marked[1:])


def test_other_kinds_by_their_header_lines():
    # Header formats of splats this lean kernel cannot produce (no KASAN/lockdep/hung-task detector
    # built in); the block/fingerprint logic is the one exercised on the real logs above.
    text = "\n".join([
        "[    1.0] BUG: KASAN: slab-use-after-free in foo_bar+0x12/0x40",
        "[    1.1] INFO: task kworker/0:1:12 blocked for more than 122 seconds.",
        "[    1.2] rcu: INFO: rcu_preempt detected stalls on CPUs/tasks:",
        "[    1.3] WARNING: possible circular locking dependency detected",
    ])
    assert [s.kind for s in parse(text)] == ["kasan", "hung_task", "rcu_stall", "lockdep"]
