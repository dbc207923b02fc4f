"""End to end, for real: `ktest run patches/linkwatch` builds, boots base and patched kernels, and the
series' declared expected effect holds.  Then the same work as two CI shards (ci/gha-shard.sh, the
workflow's shard step) merged by ci/gha-merge.sh gives the same checks and verdicts."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.kernel
ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def unsharded(tmp_path_factory):
    reports = tmp_path_factory.mktemp("e2e") / "reports"
    p = subprocess.run([sys.executable, "-m", "ktest", "run", "patches/linkwatch", "--reports", str(reports)],
                       cwd=ROOT, capture_output=True, text=True, timeout=3600, env=dict(os.environ))
    return p, reports


def test_run_linkwatch_series_expected_effect_holds(unsharded):
    p, reports = unsharded
    assert p.returncode in (0, 1), p.stderr[-3000:]
    result = json.loads((reports / "latest" / "result.json").read_text())
    assert result["checkout"]["valid"] is True
    assert result["settings"]["check_areas"] == ["linkwatch"]
    held = {(e["check"], e["metric"]): e["held"] for e in result["expected"]}
    assert held and all(v is True for v in held.values()), json.dumps(result["expected"], indent=1)
    assert p.returncode == result["verdict"]["exit_code"] == 0, result["verdict"]
    for f in ("index.html", "junit.xml", "kcidb.json", "summary.md"):
        assert (reports / "latest" / f).exists()


def test_two_ci_shards_merged_give_the_unsharded_verdicts(unsharded, tmp_path):
    p, reports = unsharded
    whole = json.loads((reports / "latest" / "result.json").read_text())
    for i in (1, 2):
        s = subprocess.run(["bash", "ci/gha-shard.sh", "6.12", "patches/linkwatch", f"{i}/2"], cwd=ROOT,
                           capture_output=True, text=True, timeout=3600,
                           env={**os.environ, "KTEST_REPORTS": str(tmp_path / f"ktest-6.12-linkwatch-{i}")})
        assert s.returncode == 0, s.stdout[-2000:] + s.stderr[-3000:]
        assert "kvm: " in s.stdout, "the shard step ran the functional KVM probe"
    summary = tmp_path / "summary.md"
    m = subprocess.run(["bash", "ci/gha-merge.sh", str(tmp_path), str(tmp_path / "merged")], cwd=ROOT,
                       capture_output=True, text=True, env={**os.environ, "GITHUB_STEP_SUMMARY": str(summary)})
    assert m.returncode == 0, m.stdout + m.stderr
    (run,) = json.loads((tmp_path / "merged" / "merge.json").read_text())["runs"]
    merged = json.loads((tmp_path / "merged" / run["dir"] / "result.json").read_text())
    assert run["shards"] == 2 and "no regression" in summary.read_text()
    assert [c["path"] for c in merged["checks"]] == [c["path"] for c in whole["checks"]]
    assert {c["path"]: c["verdict"] for c in merged["checks"]} == {c["path"]: c["verdict"] for c in whole["checks"]}
    assert [(e["check"], e["held"]) for e in merged["expected"]] == [(e["check"], e["held"]) for e in whole["expected"]]
    n = {c["path"]: [m["n_base"] for m in c["metrics"]] for c in merged["checks"]}
    assert n == {c["path"]: [m["n_base"] for m in c["metrics"]] for c in whole["checks"]}, "same number of samples"
