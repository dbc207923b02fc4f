"""The GitHub Actions workflow and the ci/ scripts its steps call: linters, the plan step on a real
git history, and the merge step's exit codes, annotations and job summary on recorded shard reports."""

import json
import os
import shutil
import subprocess
from pathlib import Path

import yaml

from fakekernel import make_series
from ktest.base.progress import Silent
from ktest.run import RunOptions, run_series
from ktest.host.tree import user_tree
from replay import canned, replay

PROJECT = Path(__file__).resolve().parent.parent
WORKFLOW = PROJECT / ".github" / "workflows" / "ktest.yml"
VENV_BIN = Path(os.sys.executable).parent


def _tool(name: str) -> str:
    path = shutil.which(name) or shutil.which(name, path=str(VENV_BIN))
    assert path, f"{name} is not installed: run ci/setup.sh"
    return path


def test_actionlint_passes():
    p = subprocess.run([_tool("actionlint"), "-shellcheck", _tool("shellcheck"), str(WORKFLOW)],
                       capture_output=True, text=True)
    assert p.returncode == 0, p.stdout + p.stderr


def test_zizmor_passes_pedantic():
    p = subprocess.run([_tool("zizmor"), "--offline", "--persona=pedantic", str(WORKFLOW)],
                       capture_output=True, text=True)
    assert p.returncode == 0 and "No findings" in p.stdout, p.stdout + p.stderr


def test_ci_scripts_pass_shellcheck():
    scripts = sorted(str(p) for p in (PROJECT / "ci").glob("*.sh")) + [str(PROJECT / ".ci" / "run")]
    p = subprocess.run([_tool("shellcheck"), *scripts], capture_output=True, text=True)
    assert p.returncode == 0, p.stdout


def test_workflow_runs_the_matrix_through_the_ci_scripts():
    wf = yaml.safe_load(WORKFLOW.read_text())
    on = wf[True]   # YAML 1.1 reads the key `on` as a boolean
    assert on["pull_request"]["paths"] == ["patches/**"] and "series" in on["workflow_dispatch"]["inputs"]
    assert wf["permissions"] == {}
    shard = wf["jobs"]["shard"]
    assert shard["strategy"]["matrix"]["kernel"] == ["6.12", "6.1"]
    assert shard["strategy"]["fail-fast"] is False
    runs = [s.get("run", "") for j in wf["jobs"].values() for s in j["steps"]]
    called = {w for r in runs for w in r.split() if w.startswith("ci/")}
    assert {"ci/gha-plan.sh", "ci/gha-kvm.sh", "ci/gha-debian.sh", "ci/gha-shard.sh", "ci/gha-merge.sh"} <= called
    assert all((PROJECT / c).is_file() for c in called)
    assert "ci/setup.sh" in (PROJECT / "ci" / "gha-shard.sh").read_text(), "the same set-up as .ci/run"
    merge = wf["jobs"]["merge"]
    assert set(merge["needs"]) == {"plan", "shard"} and "!cancelled()" in merge["if"]
    for job in wf["jobs"].values():
        for s in job["steps"]:
            if "uses" in s:
                assert len(s["uses"].split("@")[1]) == 40, f"{s['uses']} is not pinned to a commit"


def _plan(repo: Path, **env) -> dict:
    out = repo / "out.txt"
    out.unlink(missing_ok=True)
    p = subprocess.run(["bash", "ci/gha-plan.sh"], cwd=repo, capture_output=True, text=True,
                       env={"PATH": os.environ["PATH"], "GITHUB_OUTPUT": str(out), **env})
    if p.returncode:
        return {"rc": p.returncode, "stdout": p.stdout}
    return {"rc": 0, **dict(l.split("=", 1) for l in out.read_text().splitlines())}


def test_plan_picks_the_series_a_pull_request_touches(tmp_path):
    repo = tmp_path / "repo"
    (repo / "ci").mkdir(parents=True)
    shutil.copy(PROJECT / "ci" / "gha-plan.sh", repo / "ci")
    for s in ("linkwatch", "bonding", "gone"):
        (repo / "patches" / s).mkdir(parents=True)
        (repo / "patches" / s / "0001-x.patch").write_text(f"{s}\n")
    g = lambda *a: subprocess.run(["git", "-C", str(repo), *a], check=True, capture_output=True, text=True).stdout
    g("init", "-q")
    g("-c", "user.email=t@t", "-c", "user.name=t", "add", "-A")
    g("-c", "user.email=t@t", "-c", "user.name=t", "commit", "-qm", "base")
    base = g("rev-parse", "HEAD").strip()
    (repo / "patches" / "bonding" / "0002-y.patch").write_text("y\n")
    (repo / "patches" / "linkwatch" / "0001-x.patch").write_text("changed\n")
    shutil.rmtree(repo / "patches" / "gone")
    (repo / "README").write_text("not a series\n")
    g("-c", "user.email=t@t", "-c", "user.name=t", "add", "-A")
    g("-c", "user.email=t@t", "-c", "user.name=t", "commit", "-qm", "pr")
    head = g("rev-parse", "HEAD").strip()

    pr = _plan(repo, EVENT_NAME="pull_request", BASE_SHA=base, HEAD_SHA=head)
    assert json.loads(pr["series"]) == ["patches/bonding", "patches/linkwatch"], "deleted series dropped"
    assert json.loads(pr["shards"]) == [1, 2] and pr["shard_count"] == "2"
    d = _plan(repo, EVENT_NAME="workflow_dispatch", INPUT_SERIES="patches/linkwatch", INPUT_SHARDS="3")
    assert json.loads(d["series"]) == ["patches/linkwatch"] and json.loads(d["shards"]) == [1, 2, 3]
    bad = _plan(repo, EVENT_NAME="workflow_dispatch", INPUT_SERIES="patches/nope")
    assert bad["rc"] == 2 and "::error" in bad["stdout"]
    assert _plan(repo, EVENT_NAME="workflow_dispatch", INPUT_SERIES="x", INPUT_SHARDS="0")["rc"] == 2


def _shards(tmp_path, fake_tree, cache, monkeypatch, fake, n=2) -> Path:
    """Shard reports as the shard jobs leave them, one artifact dir per shard."""
    series = make_series(fake_tree, tmp_path / "series", [("net/core/dev.c", "int x;\n", "net: change")])
    runner = fake
    t = user_tree(cache, fake_tree)
    for i in range(1, n + 1):
        opts = RunOptions(rounds=2, reps=5, reports=tmp_path / "artifacts" / f"ktest-6.12-s-{i}",
                          testcases=[Path("testcases")], shard=(i, n), db=tmp_path / "h.sqlite")
        run_series(cache, t, str(series), opts, Silent(), runner=runner)
        latest = opts.reports / "latest"   # an artifact upload may store the link as a copy
        target = latest.resolve()
        latest.unlink()
        shutil.copytree(target, latest)
    return tmp_path / "artifacts"


def _merge_step(tmp_path, shards: Path):
    summary = tmp_path / "step-summary.md"
    summary.write_text("")
    p = subprocess.run(["bash", str(PROJECT / "ci" / "gha-merge.sh"), str(shards), str(tmp_path / "merged")],
                       capture_output=True, text=True, env={**os.environ, "GITHUB_STEP_SUMMARY": str(summary),
                                                            "KTEST_CACHE": str(tmp_path / "cache")})
    return p, summary.read_text()


def test_merge_step_no_regression(tmp_path, fake_tree, cache, monkeypatch):
    ids = [f"testcases/x/test_x.py::{n}" for n in "abcd"]
    fake = canned(lambda label: [(i, "PASS") for i in ids])
    p, summary = _merge_step(tmp_path, _shards(tmp_path, fake_tree, cache, monkeypatch, fake))
    assert p.returncode == 0, p.stdout + p.stderr
    assert "::error" not in p.stdout and "::warning" not in p.stdout
    assert "no regression" in summary and "| 2 |" in summary
    assert (tmp_path / "merged" / "junit.xml").is_file() and (tmp_path / "merged" / "index.html").is_file()


def test_merge_step_undecided_is_exit_3_and_a_warning(tmp_path, fake_tree, cache, monkeypatch):
    """The recorded linkwatch run has 2 boots a side; under ktest-rule/3 one of its metrics stays in doubt
    at that many (virtio_first_up_after_probe, 3.2 -> 5.1 ms against a 5 ms floor): undecided, not green."""
    recorded = json.loads((PROJECT / "tests" / "fixtures" / "result-linkwatch.json").read_text())
    p, summary = _merge_step(tmp_path, _shards(tmp_path, fake_tree, cache, monkeypatch, replay(recorded)))
    assert p.returncode == 3, p.stdout + p.stderr
    assert "::warning title=ktest: undecided::" in p.stdout and "::error" not in p.stdout
    assert "undecided" in summary and "virtio_first_up_after_probe" in summary


def test_merge_step_regression_is_exit_1_and_says_so(tmp_path, fake_tree, cache, monkeypatch):
    ids = [f"testcases/x/test_x.py::{n}" for n in "abcd"]
    fake = canned(lambda label: [(i, "FAIL" if i.endswith("::b") and label.startswith("patched") else "PASS")
                                 for i in ids])
    p, summary = _merge_step(tmp_path, _shards(tmp_path, fake_tree, cache, monkeypatch, fake))
    assert p.returncode == 1, p.stdout + p.stderr
    assert "::error title=ktest: regression::" in p.stdout and "could not run" not in p.stdout
    assert "regression" in summary and "| b |" in summary


def test_merge_step_missing_shard_is_could_not_run(tmp_path, fake_tree, cache, monkeypatch):
    recorded = json.loads((PROJECT / "tests" / "fixtures" / "result-linkwatch.json").read_text())
    shards = _shards(tmp_path, fake_tree, cache, monkeypatch, replay(recorded))
    shutil.rmtree(shards / "ktest-6.12-s-2")   # that shard job died before uploading
    p, summary = _merge_step(tmp_path, shards)
    assert p.returncode == 2 and "::error title=ktest: could not run::" in p.stdout
    assert "[shards-incomplete]" in p.stderr and "shard(s) 2/2 missing" in p.stderr
    assert "could not be merged" in summary


def _cache_steps() -> dict[str, dict]:


    wf = yaml.safe_load(WORKFLOW.read_text())
    steps = [s for job in wf["jobs"].values() for s in job.get("steps", [])]
    return {s["name"]: s["with"] for s in steps if str(s.get("uses", "")).startswith("actions/cache@")}


def _hashed(expr: str) -> set[Path]:
    """The files a key's hashFiles(...) patterns match in this checkout."""
    import re as _re

    files: set[Path] = set()
    for args in _re.findall(r"hashFiles\(([^)]*)\)", expr):
        for pat in _re.findall(r"'([^']+)'", args):
            files |= {p for p in PROJECT.glob(pat) if p.is_file()}
    return files


def test_cache_keys_hash_every_file_that_shapes_what_they_cache():
    steps = _cache_steps()
    tree, ccache = steps["Cache the prepared tree"], steps["Cache ccache"]
    k = PROJECT / "ktest"
    # the prepared tree: the code that extracts and commits it
    assert {k / "host" / "tree.py", k / "host" / "gitutil.py"} <= _hashed(tree["key"])
    # ccache: every kconfig fragment (the base one and each area's), and the code that assembles the
    # config and runs make; a new fragment file is matched without editing the workflow
    shaping = {*k.glob("kconfig/*"), *k.glob("areas/*.toml"), k / "host" / "kconfig.py", k / "host" / "build.py"}
    shaping = {p for p in shaping if p.is_file()}
    assert len(list(k.glob("areas/*.toml"))) >= 2
    missing = shaping - _hashed(ccache["key"])
    assert not missing, f"ccache key does not hash {sorted(str(p.relative_to(PROJECT)) for p in missing)}"
    # the first restore key is the key without the run id: the same inputs' newest entry comes first
    first = ccache["restore-keys"].splitlines()[0]
    assert ccache["key"].startswith(first) and ccache["key"][len(first):] == "${{ github.run_id }}"
