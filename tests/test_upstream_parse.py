"""Parsing bond_options.sh output (lines as the real script printed them in a guest here)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "testcases" / "bonding"))

from test_upstream import parse  # noqa: E402

REAL = """\
TEST: prio (active-backup miimon primary_reselect 0)                [ OK ]
TEST: prio (balance-alb miimon primary_reselect 2)                  [ OK ]
10TEST: num_grat_arp (active-backup miimon num_grat_arp 10)           [ OK ]
TEST: prio (active-backup ns_ip6_target primary_reselect 1)         [FAIL]
        some diagnostic line
TEST: prio ns                                                      [SKIP]
"""


def test_parse_real_lines():
    assert parse(REAL) == [
        ("prio (active-backup miimon primary_reselect 0)", "PASS"),
        ("prio (balance-alb miimon primary_reselect 2)", "PASS"),
        ("num_grat_arp (active-backup miimon num_grat_arp 10)", "PASS"),
        ("prio (active-backup ns_ip6_target primary_reselect 1)", "FAIL"),
        ("prio ns", "SKIP"),
    ]


def test_a_repeated_case_name_gets_its_ordinal():
    lines = "TEST: mode (1) bond recovery   [ OK ]\nTEST: mode (1) bond recovery   [FAIL]\n"
    assert parse(lines) == [("mode (1) bond recovery", "PASS"), ("mode (1) bond recovery #2", "FAIL")]
