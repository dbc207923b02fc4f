"""End to end, for real: `ktest run patches/linkwatch` builds, boots base and patched kernels, and the
series' declared expected effect holds.  Then the same work as two CI shards (ci/gha-shard.sh, the
workflow's shard step) merged by ci/gha-merge.sh gives the same checks and verdicts."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from ktest.judge.verdict import REGRESSIONS

pytestmark = pytest.mark.kernel
ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def unsharded(tmp_path_factory):
    reports = tmp_path_factory.mktemp("e2e") / "reports"
    # the planned rounds only, as the CI shards boot: their merge must equal this run
    p = subprocess.run([sys.executable, "-m", "ktest", "run", "patches/linkwatch", "--reports", str(reports),
                        "--max-rounds", "2"],
                       cwd=ROOT, capture_output=True, text=True, timeout=3600, env=dict(os.environ))
    return p, reports


def test_run_linkwatch_series_expected_effect_holds(unsharded):
    p, reports = unsharded
    assert p.returncode in (0, 3), p.stderr[-3000:]
    result = json.loads((reports / "latest" / "result.json").read_text())
    assert result["checkout"]["valid"] is True
    assert result["settings"]["check_areas"] == ["linkwatch"]
    exp = result["expected"]
    v = result["verdict"]
    assert p.returncode == v["exit_code"] in (0, 3) and not v["regressions"], v
    assert (v["exit_code"] == 3) == bool(v["undecided"]), v
    # the series' declared improvements are decided, and hold, at 2 boots a side
    changes = [e for e in exp if e["change"] != "none"]
    assert changes and all(e["held"] is True for e in changes), json.dumps(exp, indent=1)
    # 2 boots a side (as the CI shards boot, with no extra rounds): under ktest-rule/3 a control whose
    # boots spread more than its floor allows stays in doubt (seen in CI: veth_control's p90 4.9 -> 14.3 ms
    # at 2+2 boots, a 50 ms harm not ruled out).  Then it is named undecided and the run exits 3, never 0.
    for e in exp:
        if e["change"] == "none" and e["held"] is not True:
            assert e["held"] is None and e.get("undecided"), json.dumps(e, indent=1)
            assert v["exit_code"] == 3 and any(u.startswith(f"{e['check']}/{e['metric']}:")
                                               for u in v["undecided"]), v
    for f in ("index.html", "junit.xml", "kcidb.json", "summary.md"):
        assert (reports / "latest" / f).exists()


def test_two_ci_shards_merged_give_the_unsharded_verdicts(unsharded, tmp_path):
    p, reports = unsharded
    whole = json.loads((reports / "latest" / "result.json").read_text())
    for i in (1, 2):
        s = subprocess.run(["bash", "ci/gha-shard.sh", "6.12", "patches/linkwatch", f"{i}/2"], cwd=ROOT,
                           capture_output=True, text=True, timeout=3600,
                           env={**os.environ, "KTEST_REPORTS": str(tmp_path / f"ktest-6.12-linkwatch-{i}")})
        assert s.returncode in (0, 3), s.stdout[-2000:] + s.stderr[-3000:]
        assert "kvm: " in s.stdout, "the shard step ran the functional KVM probe"
    summary = tmp_path / "summary.md"
    m = subprocess.run(["bash", "ci/gha-merge.sh", str(tmp_path), str(tmp_path / "merged")], cwd=ROOT,
                       capture_output=True, text=True, env={**os.environ, "GITHUB_STEP_SUMMARY": str(summary)})
    assert m.returncode in (0, 3), m.stdout + m.stderr
    (run,) = json.loads((tmp_path / "merged" / "merge.json").read_text())["runs"]
    merged = json.loads((tmp_path / "merged" / run["dir"] / "result.json").read_text())
    assert run["shards"] == 2 and run["exit_code"] in (0, 3)
    assert ("no regression" if run["exit_code"] == 0 else "undecided") in summary.read_text()
    assert [c["path"] for c in merged["checks"]] == [c["path"] for c in whole["checks"]]
    vw = {c["path"]: c["verdict"] for c in whole["checks"]}
    vm = {c["path"]: c["verdict"] for c in merged["checks"]}
    # The shards boot kernels of their own: a check that flaked in either set of boots (a host-link
    # precondition lost under load, say) cannot be expected to flake alike in the other.  Every other
    # check must agree, verdict and sample count; none may be a regression.
    # Likewise a check in doubt ("undecided") in one set of boots and not in the other, or one whose
    # setup failed in some boot (left out, and retried: it then has more boots in that set).
    # Likewise a check with a metric in doubt either way in either run: an improvement not yet decided
    # at 2 boots a side ("unchanged", its metric inconclusive) may be decided in the other set of boots.
    unsteady = {c["path"] for r in (whole, merged) for c in r["checks"]
                if c["base"].get("infra_errors") or c["patched"].get("infra_errors")
                or any(m.get("needs_boots") for m in c["metrics"])}
    steady = [p for p in vw if not {"flaky", "undecided"} & {vw[p], vm[p]} and p not in unsteady]
    # not a vacuous comparison: at least half the checks
    assert len(steady) >= len(vw) // 2, (vw, vm)
    assert {p: vm[p] for p in steady} == {p: vw[p] for p in steady}
    assert not any(v in REGRESSIONS for v in vm.values()), vm
    # an expectation of a steady check holds alike; one of an unsteady check may be decided in one set of
    # boots and not yet in the other (seen: gap_0_5s's patched p90s 3 and 69 ms against 511 and 521, a
    # tail whose harm two boots cannot rule out on the log scale), but never the other way round
    held = {r_: {e["check"]: e["held"] for e in r["expected"]} for r_, r in (("whole", whole), ("merged", merged))}
    assert list(held["whole"]) == list(held["merged"])
    for check, h in held["whole"].items():
        if check in steady:
            assert held["merged"][check] == h, (check, held)
        else:
            assert False not in (h, held["merged"][check]), (check, held)
    n = {c["path"]: [m["n_base"] for m in c["metrics"]] for c in merged["checks"] if c["path"] in steady}
    assert n == {c["path"]: [m["n_base"] for m in c["metrics"]] for c in whole["checks"] if c["path"] in steady}, \
        "same number of samples"


def test_ci_shard_that_cannot_apply_is_could_not_run_after_merge(tmp_path):
    """A series that does not apply to 6.12: the shard step still leaves a result (exit 2), and the merge
    step says "could not run", not "regression" nor "shard missing"."""
    series = tmp_path / "bad"
    series.mkdir()
    (series / "0001-net-nothing.patch").write_text(
        "From 0000000000000000000000000000000000000000 Mon Sep 17 00:00:00 2001\n"
        "From: A U Thor <a@example.org>\nDate: Mon, 1 Jan 2024 00:00:00 +0000\n"
        "Subject: [PATCH] net: change a line that is not there\n\n---\n"
        " net/core/link_watch.c | 2 +-\n 1 file changed, 1 insertion(+), 1 deletion(-)\n\n"
        "diff --git a/net/core/link_watch.c b/net/core/link_watch.c\n"
        "--- a/net/core/link_watch.c\n+++ b/net/core/link_watch.c\n"
        "@@ -1,3 +1,3 @@\n no such line one\n-no such line two\n+a replacement\n no such line three\n-- \n2.39.5\n")
    for i in (1, 2):
        s = subprocess.run(["bash", "ci/gha-shard.sh", "6.12", str(series), f"{i}/2"], cwd=ROOT, capture_output=True,
                           text=True, timeout=1800, env={**os.environ, "KTEST_REPORTS": str(tmp_path / f"art-{i}")})
        assert s.returncode == 2 and "[patch-does-not-apply]" in s.stderr, s.stderr[-2000:]
    m = subprocess.run(["bash", "ci/gha-merge.sh", str(tmp_path), str(tmp_path / "merged")], cwd=ROOT,
                       capture_output=True, text=True, env={**os.environ, "GITHUB_STEP_SUMMARY": str(tmp_path / "s.md")})
    assert m.returncode == 2 and "::error title=ktest: could not run::" in m.stdout, m.stdout + m.stderr
    (run,) = json.loads((tmp_path / "merged" / "merge.json").read_text())["runs"]
    assert run["status"] == "could not run" and "does not apply" in run["error"]
