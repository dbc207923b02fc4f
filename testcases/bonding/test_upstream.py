"""The kernel tree's own bonding selftest, tools/testing/selftests/drivers/net/bonding/bond_options.sh,
run in the same guest.  Each of its `TEST: ... [ OK ]` lines becomes a result of its own under this
check, so ktest's verdicts and upstream's sit side by side in the report."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

# not anchored: some cases print a number without a newline just before their TEST: line
TEST_LINE = re.compile(r"TEST: (?P<name>.*?)\s*\[\s*(?P<res>OK|FAIL|SKIP|XFAIL|IGNORE)\s*\]\s*$")
STATUS = {"OK": "PASS", "FAIL": "FAIL", "SKIP": "SKIP", "XFAIL": "PASS", "IGNORE": "SKIP"}


def parse(output: str) -> list[tuple[str, str]]:
    return [(m["name"].strip(), STATUS[m["res"]]) for m in map(TEST_LINE.search, output.splitlines()) if m]


# prio: slave prio and primary_reselect (15 cases, ~500 s under TCG); num_grat_arp: peer notification
# counts, which upstream checks with peer_notify_delay 100 (ours uses the default delay).  The costs
# (TCG seconds) let `ktest run --shard` put them on different shards.
@pytest.mark.slow
@pytest.mark.parametrize("tests", [pytest.param("prio", marks=pytest.mark.cost(500)),
                                   pytest.param("num_grat_arp", marks=pytest.mark.cost(110))])
def test_bond_options(record, tests):
    root = os.environ.get("KTEST_SELFTESTS")
    if not root or not Path(root).is_dir():
        pytest.skip("no selftests exported with this kernel's build")
    script = Path(root) / "drivers/net/bonding/bond_options.sh"
    if not script.exists():
        pytest.skip(f"this tree has no {script.relative_to(root)}")
    if not re.search(rf"^{re.escape(tests)}\s*\(\)", script.read_text(), re.M):
        pytest.skip(f"this tree's bond_options.sh has no {tests} test")
    missing = [t for t in ("jq", "ping", "tc", "bash") if shutil.which(t) is None]
    if missing:
        pytest.skip(f"bond_options.sh needs {', '.join(missing)} on the host (the guest uses the host's userspace)")
    p = subprocess.run(["bash", script.name], cwd=script.parent, env=dict(os.environ, TESTS=tests),
                       capture_output=True, text=True, timeout=1500)
    cases = parse(p.stdout)
    for name, status in cases:
        record.subresult(name, status)
    record.metric("cases_passed", [sum(s == "PASS" for _, s in cases)], "count", lower_is_better=False)
    record.note("exit_status", p.returncode)
    print(p.stdout[-6000:])
    assert cases, f"bond_options.sh ran no test (exit {p.returncode}): {p.stderr[-500:]}"
    failed = [n for n, s in cases if s == "FAIL"]
    assert not failed, f"upstream bond_options.sh failed: {failed}"
    assert p.returncode in (0, 4), f"bond_options.sh exit {p.returncode} (4 = skipped)"
