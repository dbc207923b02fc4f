"""The pure KTAP parser (ktest/judge/ktap.py): the grammar's cases on small texts, then recorded real output of
the tree's bonding selftests run through the kselftest runner in a guest here (tests/data/ktap/)."""

from pathlib import Path

import pytest

from ktest.judge import ktap

DATA = Path(__file__).parent / "data" / "ktap"


def statuses(doc):
    return [(t.name, t.status) for t in doc.walk()]


def test_kunit_style_nesting_by_indentation_with_directives():
    doc = ktap.parse("""\
KTAP version 1
1..3
    KTAP version 1
    # Subtest: suite
    1..3
    ok 1 first
    not ok 2 second
    # a diagnostic of the third
    not ok 3 third # TODO not done yet
not ok 1 suite
ok 2 - dashed name # SKIP no hardware here
not ok 3 # TIMEOUT 45 seconds
""".splitlines())
    assert doc.version == "KTAP version 1" and doc.plan == 3 and not doc.crashed
    assert statuses(doc) == [("suite", "FAIL"), ("first", "PASS"), ("second", "FAIL"), ("third", "SKIP"),
                             ("dashed name", "SKIP"), ("test 3", "FAIL")]
    suite = doc.tests[0]
    assert suite.plan == 3 and suite.subtests[2].diagnostics == ["a diagnostic of the third"]
    assert doc.tests[1].reason == "no hardware here"
    assert doc.tests[2].reason == "TIMEOUT 45 seconds"


def test_a_missing_plan_infers_nothing_missing():
    doc = ktap.parse(["TAP version 13", "ok 1 a", "not ok 2 b # exit=1", "# Totals: pass:1 fail:1"])
    assert doc.plan is None and not doc.crashed
    assert statuses(doc) == [("a", "PASS"), ("b", "FAIL")]
    assert doc.tests[1].reason == "exit=1" and doc.trailing == ["Totals: pass:1 fail:1"]


def test_the_stream_stopping_mid_test_keeps_the_results_so_far_and_adds_a_crashed_one():
    doc = ktap.parse("""\
[    1.0] a boot log line before the document
TAP version 13
1..3
# selftests: drivers/net/bonding: one.sh
ok 1 selftests: drivers/net/bonding: one.sh
# selftests: drivers/net/bonding: two.sh
# TEST: half way   [ OK ]
""".splitlines())
    assert doc.crashed
    assert statuses(doc) == [("selftests: drivers/net/bonding: one.sh", "PASS"),
                             ("drivers/net/bonding: two.sh", "CRASHED")]
    crashed = doc.tests[1]
    assert crashed.number == 2 and crashed.diagnostics[-1] == "TEST: half way   [ OK ]", "its output is kept"


def test_a_nested_subtest_block_that_stops_fails_its_parent():
    doc = ktap.parse(["KTAP version 1", "1..1", "  KTAP version 1", "  # Subtest: s", "  1..2", "  ok 1 a"])
    assert doc.crashed and doc.tests[0].status == "CRASHED" and doc.tests[0].name == "s"
    assert [(t.name, t.status) for t in doc.tests[0].subtests] == [("a", "PASS"), ("test 2", "CRASHED")]


def test_a_programs_own_tap_inside_the_runners_hash_prefix_is_its_subtests():
    doc = ktap.parse("""\
TAP version 13
1..1
# timeout set to 45
# selftests: net: prog
# TAP version 13
# 1..2
# ok 1 inner_a
# not ok 2 inner_b # SKIP needs root
ok 1 selftests: net: prog
""".splitlines())
    prog = doc.tests[0]
    assert prog.status == "PASS" and prog.plan == 2
    assert [(t.name, t.status, t.reason) for t in prog.subtests] == [("inner_a", "PASS", None),
                                                                     ("inner_b", "SKIP", "needs root")]


def test_hostile_text_is_data():
    doc = ktap.parse(["TAP version 13", "1..1", "# <script>alert(1)</script> ## ok 9", "ok 1 </td> # SKIP <b>x"])
    assert doc.tests[0].name == "</td>" and doc.tests[0].reason == "<b>x"
    assert doc.tests[0].diagnostics == ["<script>alert(1)</script> ## ok 9"]


@pytest.mark.parametrize("name", sorted(p.name for p in DATA.glob("*.ktap")) or ["none"])
def test_recorded_runner_output_from_a_guest(name):
    """Each recorded file is what the kselftest runner printed for one bonding program in a guest on the
    default tree; its .expect file says (status, number of TEST: cases, of them passed), counted with grep."""
    if name == "none":
        pytest.fail("no recorded KTAP fixtures in tests/data/ktap")
    text = (DATA / name).read_text()
    want = (DATA / name).with_suffix(".expect").read_text().split()
    doc = ktap.parse(text.splitlines())
    assert doc.version == "TAP version 13" and doc.plan == 1
    res = doc.tests[0]
    assert res.status == want[0]
    from importlib import util
    spec = util.spec_from_file_location("upstream", Path(__file__).parent.parent / "testcases" / "bonding" /
                                        "test_upstream.py")
    mod = util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    cases = mod.parse("\n".join(res.diagnostics))
    assert [len(cases), sum(s == "PASS" for _, s in cases)] == [int(want[1]), int(want[2])]


def test_a_recording_cut_mid_program_is_the_cases_so_far_and_a_crashed_result():
    """What a kernel crash (or a killed runner) leaves: the real recording, cut after its third case."""
    lines = (DATA / "mode-1-recovery-updelay.sh.ktap").read_text().splitlines()
    cut = lines[:lines.index(next(l for l in lines if "TEST:" in l)) + 3]
    doc = ktap.parse(cut)
    assert doc.crashed and [(t.name, t.status) for t in doc.tests] == [
        ("drivers/net/bonding: mode-1-recovery-updelay.sh", "CRASHED")]
    assert sum("[ OK ]" in d for d in doc.tests[0].diagnostics) == 3
