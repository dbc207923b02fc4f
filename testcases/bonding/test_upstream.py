"""The kernel tree's own bonding selftests (every TEST_PROG of tools/testing/selftests/drivers/net/bonding,
as listed with its cost in ktest/areas/bonding.toml), run in the same guest the kselftest way: through the
tree's kselftest/runner.sh, with the directory's `settings` timeout, its output read as KTAP.

Each program (or group of bond_options.sh) is a check; each of its `TEST: ... [ OK ]` lines becomes a
result of its own under that check, so that ktest's verdicts and upstream's sit side by side in the
report.  A program that needs something this guest lacks exits 4 (ksft_skip): a SKIP with its reason."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from ktest.judge import ktap
from ktest.areas import get

# not anchored: some cases print a number without a newline just before their TEST: line
TEST_LINE = re.compile(r"TEST: (?P<name>.*?)\s*\[\s*(?P<res>OK|FAIL|SKIP|XFAIL|IGNORE)\s*\]\s*$")
STATUS = {"OK": "PASS", "FAIL": "FAIL", "SKIP": "SKIP", "XFAIL": "PASS", "IGNORE": "SKIP"}
# runner.sh logs to /dev/stdout, which in vng's guest is the harness's stdout, not this pipe: log to our fd 1
RUN = 'BASE_DIR="$1"; cd "$2" && . "$1/kselftest/runner.sh" && logfile=/proc/self/fd/1 && run_many "./$3"'
SELFTESTS = get("bonding").selftests


def parse(output: str) -> list[tuple[str, str]]:
    """The cases a net selftest script reports through lib.sh's log_test.  A name that repeats (lag_lib's
    "mode (1) bond recovery", once per case) gets its ordinal, so each case stays a result of its own."""
    out, seen = [], {}
    for m in map(TEST_LINE.search, output.splitlines()):
        if m:
            name = m["name"].strip()
            seen[name] = seen.get(name, 0) + 1
            out.append((name if seen[name] == 1 else f"{name} #{seen[name]}", STATUS[m["res"]]))
    return out


def settings_timeout(d: Path) -> int:
    """The runner's per-program timeout: the directory's `settings`, else kselftest's default 45 s."""
    f = d / "settings"
    m = re.search(r"^timeout=(\d+)\s*$", f.read_text(), re.M) if f.exists() else None
    return int(m[1]) if m else 45


def skip_reason(r: ktap.Result) -> str:
    said = [d.strip() for d in r.diagnostics if "SKIP" in d or "skip" in d]
    return said[-1] if said else (r.reason or "the program exited with ksft_skip (4)")


@pytest.fixture(scope="session")
def selftests_root(tmp_path_factory) -> Path:
    """The kernel's exported selftests, copied where they can write: the export sits on the guest's
    read-only root, and some programs write into their own directory (6.1's bond-break-lacpdu-tx.sh runs
    `mktemp dump.XXXXXX` there under `set -e`, and exits 1 without a word when it cannot)."""
    root = os.environ.get("KTEST_SELFTESTS")
    if not root or not Path(root).is_dir():
        pytest.skip("no selftests exported with this kernel's build")
    dest = tmp_path_factory.mktemp("selftests") / "selftests"
    shutil.copytree(root, dest, symlinks=True)
    return dest


@pytest.mark.slow
@pytest.mark.parametrize("st", [pytest.param(s, id=s.id, marks=pytest.mark.cost(s.cost)) for s in SELFTESTS])
def test_kselftest(record, keep_file, selftests_root, st):
    root = str(selftests_root)
    d = Path(root) / st.dir
    script = d / st.script
    if not script.exists():
        pytest.skip(f"this tree has no {st.dir}/{st.script}")
    if not (Path(root) / "kselftest" / "runner.sh").exists():
        pytest.skip("this tree has no kselftest/runner.sh")
    if st.tests and not re.search(rf"^{re.escape(st.tests)}\s*\(\)", script.read_text(), re.M):
        pytest.skip(f"this tree's {st.script} has no {st.tests} test")
    limit = settings_timeout(d)
    env = dict(os.environ, **({"TESTS": st.tests} if st.tests else {}))
    t0 = time.monotonic()
    try:
        out = subprocess.run(["bash", "-c", RUN, "ktest", root, str(d), st.script], env=env, text=True,
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=limit + 120).stdout
    except subprocess.TimeoutExpired as e:     # the runner's own timeout did not end it: keep what it printed
        out = (e.stdout or b"").decode(errors="replace") if isinstance(e.stdout, bytes) else (e.stdout or "")
    record.note("run_s", round(time.monotonic() - t0, 1))
    record.note("timeout_s", limit)
    keep_file(f"{st.id}.ktap").write_text(out)
    print(out[-8000:])
    doc = ktap.parse(out.splitlines())
    assert doc.tests, f"the kselftest runner printed no result for {st.script}: {out[-500:]}"
    res = doc.tests[0]
    record.note("ktap", f"{res.status}{' # ' + res.directive if res.directive else ''}")
    cases = parse("\n".join(res.diagnostics))
    for name, status in cases:
        record.subresult(name, status)
    record.metric("cases_passed", [sum(s == "PASS" for _, s in cases)], "count", lower_is_better=False)
    if res.status == "SKIP":
        pytest.skip(f"{st.script}: {skip_reason(res)}")
    failed = [n for n, s in cases if s == "FAIL"]
    assert not failed, f"upstream {st.id} failed: {failed}"
    assert res.status == "PASS", f"upstream {st.id}: {res.status} ({res.directive})"
