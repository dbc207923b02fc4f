"""The referee table: upstream selftests next to the ktest checks that cover the same behaviour."""

import json
from pathlib import Path

from ktest.judge.agreement import table, upstream_path
from ktest.guest.plugin import dotted_path
from ktest.report.outputs import render_html, render_summary
from ktest.base.result import Result

R = Result.from_json


def check(path, base, patched):
    return {"path": path, "base": {"status": base, "statuses": [base]},
            "patched": {"status": patched, "statuses": [patched]}, "metrics": [], "messages": {"base": [], "patched": []},
            "notes": {"base": {}, "patched": {}}, "timelines": {"base": [], "patched": []},
            "transition": "unchanged", "verdict": "unchanged"}


def result(checks):
    """A recorded bonding run (tests/fixtures) with these checks."""
    r = json.loads((Path(__file__).parent / "fixtures" / "result-bonding.json").read_text())
    r["settings"]["check_areas"] = ["bonding"]
    r["checks"] = checks
    return r


def test_the_upstream_path_is_what_the_guest_names_that_check():
    node = "testcases/bonding/test_upstream.py::test_kselftest[bond_options.sh:num_grat_arp]"
    assert upstream_path("bonding", "bond_options.sh:num_grat_arp") == dotted_path(node)


def test_rows_pair_each_upstream_program_with_its_covering_checks_per_side():
    r = result([
        check(upstream_path("bonding", "bond_options.sh:prio"), "PASS", "FAIL"),
        check(upstream_path("bonding", "bond_options.sh:prio") + ".prio_active-backup_miimon", "PASS", "FAIL"),
        check("bonding.active_backup.prio_selects_highest", "PASS", "PASS"),
        check("bonding.active_backup.failback_follows_primary_reselect.always-True", "PASS", "FAIL"),
        check(upstream_path("bonding", "bond_options.sh:num_grat_arp"), "PASS", "PASS"),
        check("bonding.active_backup.peer_notification", "FAIL", "PASS"),
        check(upstream_path("bonding", "bond_macvlan_ipvlan.sh"), "SKIP", "SKIP"),
        check(upstream_path("bonding", "mode-1-recovery-updelay.sh"), "PASS", "FLAKY"),
        check("bonding.active_backup.updelay_is_honoured", "PASS", "PASS"),
    ])
    rows = {row["upstream"]: row for row in table(R(r))}
    assert list(rows) == ["mode-1-recovery-updelay.sh", "bond_options.sh:prio", "bond_options.sh:num_grat_arp",
                          "bond_macvlan_ipvlan.sh"], \
        "in the area file's order, only what ran"
    prio = rows["bond_options.sh:prio"]
    assert prio["ktest"] == ["bonding.active_backup.prio_selects_highest",
                             "bonding.active_backup.failback_follows_primary_reselect.always-True"]
    assert prio["base"] == {"upstream": "PASS", "ktest": "PASS", "agree": True}
    assert prio["patched"] == {"upstream": "FAIL", "ktest": "FAIL", "agree": True}, "any covering failure fails"
    assert rows["bond_options.sh:num_grat_arp"]["base"]["agree"] is False
    assert rows["bond_macvlan_ipvlan.sh"]["base"] == {"upstream": "SKIP", "ktest": None, "agree": None}
    assert rows["mode-1-recovery-updelay.sh"]["patched"] == {"upstream": "FLAKY", "ktest": "PASS", "agree": None}


def test_the_table_is_in_the_page_and_the_summary(tmp_path):
    r = result([check(upstream_path("bonding", "bond_options.sh:num_grat_arp"), "PASS", "PASS"),
                check("bonding.active_backup.peer_notification", "FAIL", "PASS")])
    html = render_html(R(r), tmp_path)
    assert 'id="agreement"' in html and "FAIL / PASS" not in html and "PASS / FAIL (<b>disagree</b>)" in html
    md = render_summary(R(r))
    assert r"| bond\_options.sh:num\_grat\_arp | bonding.active\_backup.peer\_notification | PASS / FAIL **disagree** | " \
           "PASS / PASS agree |" in md, "markdown-escaped"
    assert 'id="agreement"' not in render_html(R(result([check("smoke.x", "PASS", "PASS")])), tmp_path)
