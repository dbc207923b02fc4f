"""The HTML report in a real browser: headless Chromium loads a report rendered from a recorded run,
the verdict and the charts are there, and the page logs nothing to the console."""

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from ktest.report.outputs import write_all
from ktest.base.result import Result

R = Result.from_json

FIXTURE = Path(__file__).parent / "fixtures" / "result-linkwatch.json"
ARTIFACTS = Path(__file__).resolve().parent.parent / "reports" / "test-artifacts"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--enable-logging=stderr", "--v=0", "--window-size=1280,2600"]

pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (ci/setup.sh installs it)")


def chromium(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([CHROMIUM, *FLAGS, f"--user-data-dir={tmp_path / 'profile'}", *args],
                          capture_output=True, text=True, timeout=120)


def console_lines(stderr: str) -> list[str]:
    return [l for l in stderr.splitlines() if re.search(r":CONSOLE(\(\d+\)|:\d+)?\]", l)]


def test_console_detector_sees_a_console_error(tmp_path):
    page = tmp_path / "bad.html"
    page.write_text("<!doctype html><title>x</title><script>console.error('ktest-probe-error')</script>")
    p = chromium(tmp_path, "--dump-dom", page.as_uri())
    assert any("ktest-probe-error" in l for l in console_lines(p.stderr)), p.stderr[-2000:]


def test_report_renders_in_chromium(tmp_path):
    result = json.loads(FIXTURE.read_text())
    out = tmp_path / "run"
    write_all(R(result), out)
    page = (out / "index.html").as_uri()
    dom = chromium(tmp_path, "--dump-dom", page)
    assert dom.returncode == 0, dom.stderr[-2000:]
    assert 'id="verdict"' in dom.stdout and "Verdict: " + result["verdict"]["status"] in dom.stdout
    n_charts = dom.stdout.count('class="chart"')
    assert n_charts == sum(len(c["metrics"]) for c in result["checks"]) and n_charts > 0
    assert console_lines(dom.stderr) == [], console_lines(dom.stderr)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    shot = ARTIFACTS / "report-screenshot.png"
    p = chromium(tmp_path, f"--screenshot={shot}", page)
    assert p.returncode == 0 and shot.stat().st_size > 10_000
    assert console_lines(p.stderr) == []


def visible_text(dom: str) -> str:
    """The page's text as a reader sees it: no scripts or styles, no tags, entities decoded."""
    import html

    dom = re.sub(r"<(script|style)\b.*?</\1>", " ", dom, flags=re.S | re.I)
    return html.unescape(re.sub(r"<[^>]+>", " ", dom))


@pytest.mark.parametrize("fixture", ["result-linkwatch.json", "result-bonding.json"])
def test_report_shows_words_not_python_values(tmp_path, fixture):
    """No True/False/None on the page: booleans and absent values read as words.  The recorded run is
    given the values that used to leak (a metric's per-boot replication, environment entries that are
    booleans or absent).  Check names are the tests' own ids (pytest's "always-True" parameter ids) and
    are left out of the scan."""
    result = json.loads((Path(__file__).parent / "fixtures" / fixture).read_text())
    m = next(m for c in result["checks"] for m in c["metrics"])
    m.update(q_value=0.2, q_tail=0.3, boots_base=2, boots_patched=2, tail_floor=5.0, floor_source="estimated",
             replicated={"centre": True, "tail": False})
    result["env"].update(launch_to_harness_s=None, kvm_usable=False)
    out = tmp_path / "run"
    write_all(R(result), out)
    dom = chromium(tmp_path, "--dump-dom", (out / "index.html").as_uri())
    assert dom.returncode == 0, dom.stderr[-2000:]
    text = visible_text(dom.stdout)
    for c in result["checks"]:
        text = text.replace(c["path"], "")
    leaks = [text[max(0, x.start() - 60):x.end() + 20] for x in re.finditer(r"\b(True|False|None)\b", text)]
    assert leaks == [], leaks
