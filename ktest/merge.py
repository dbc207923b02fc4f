"""`ktest merge DIR...`: combine the reports of `ktest run --shard I/N` into the report of the whole run.

Shards of one run (same series, tree, settings and kernels) are pooled: their boots are put together
and the verdicts are computed by the same code as an unsharded run (verdict.conclude), so the merged
report has the same checks and verdicts as one machine running all of them.  Before pooling, the
shards must be complete (each of 1..N once), agree on what they ran, and their check selections must be
disjoint and cover the collection.  Unsharded runs pass through as runs of one shard.

Several runs (for example a kernel x series matrix) merge into one output directory: one full report
per run, and on top an overview index.html, one junit.xml, one summary.md and merge.json.
"""

from __future__ import annotations

import copy
import json
import time
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ktest import __version__
from ktest.base import safeio
from ktest.base.cache import Cache, write_json_atomic
from ktest.base.errors import EXIT_COULD_NOT_RUN, NoResults, ShardsDisagree, ShardsIncomplete, worst_exit
from ktest.host.gitutil import ktest_version
from ktest.host.pipeline import new_run_id
from ktest.base.result import Outcome, Result
from ktest.judge.verdict import conclude

# what every shard of one run must share (dotted paths into result.json)
MUST_AGREE = ("series.patchset_hash", "tree.base", "settings.rounds", "settings.reps", "settings.kconfig_areas",
              "settings.kconfig_add", "settings.expr", "settings.testcases", "settings.check_areas")


def find_results(paths: list[Path]) -> list[Path]:
    """result.json files: each path is a run directory, a result.json, or a directory holding run
    directories at any depth (a downloaded artifact tree).  `latest` links are not followed twice, and
    a result.json that is a symlink out of the folder given is not taken (it is refused when read)."""
    found: dict[Path, Path] = {}
    for p in paths:
        p = Path(p)
        cands = [p] if p.is_file() else ([p / "result.json"] if (p / "result.json").is_file()
                                         else sorted(p.rglob("result.json")) if p.is_dir() else [])
        for c in cands:
            found.setdefault(c.resolve() if c == p else c.parent.resolve() / c.name, c)
    if not found:
        raise NoResults(paths=", ".join(map(str, paths)))
    return list(found.values())


def _get(d: object, dotted: str) -> object:
    for k in dotted.split("."):
        d = d.get(k) if isinstance(d, dict) else None
    return d


@dataclass
class Shard:
    """A stored run given to merge: its result and the folder it was read from."""
    result: Result
    dir: Path

    @property
    def index(self) -> int:
        return self.result.shard_of[0]


def _load(path: Path, inputs: list[Path]) -> Shard:
    """A result.json through Result.read (safeio: a regular file, bounded, no symlink out of the folder
    given on the command line; validated)."""
    root = next((p for p in inputs if Path(p).is_dir() and Path(path).is_relative_to(p)), None)
    return Shard(Result.read(path, root), path.parent)


def group(results: list[Shard]) -> "OrderedDict[tuple[str, str, str | None], list[Shard]]":
    """Runs of the same series on the same tree belong together; validate() says whether they fit."""
    out: OrderedDict[tuple[str, str, str | None], list[Shard]] = OrderedDict()
    for sh in sorted(results, key=lambda sh: (sh.result.series.name, sh.result.tree.name, sh.result.shard_of)):
        r = sh.result
        out.setdefault((r.series.name, r.tree.name, r.tree.base), []).append(sh)
    return out


def validate(shards: list[Shard]) -> None:
    rs = [sh.result for sh in shards]
    what = f"{rs[0].series.name} on {rs[0].tree.name}"
    counts = {r.shard_of[1] for r in rs}
    if len(counts) > 1:
        raise ShardsDisagree(what=what, field="shard count", a=min(counts), b=max(counts))
    n = counts.pop()
    seen = [r.shard_of[0] for r in rs]
    dup = sorted({i for i in seen if seen.count(i) > 1})
    if dup:
        runs = [r.run_id for r in rs if r.shard_of[0] == dup[0]]
        raise ShardsIncomplete(what=what, why=f"shard {dup[0]}/{n} given {seen.count(dup[0])} times "
                                              f"(runs {', '.join(runs)})")
    missing = [i for i in range(1, n + 1) if i not in seen]
    if missing:
        more = f" and {len(missing) - 5} more" if len(missing) > 5 else ""
        raise ShardsIncomplete(what=what, why=f"shard(s) {', '.join(f'{i}/{n}' for i in missing[:5])}{more} missing")
    docs = [r.to_json() for r in rs]
    for key in MUST_AGREE:
        vals = [json.dumps(_get(d, key), sort_keys=True) for d in docs]
        if len(set(vals)) > 1:
            raise ShardsDisagree(what=what, field=key, a=vals[0], b=next(v for v in vals if v != vals[0]))
    keys = [[b.key for b in r.builds] for r in rs if r.builds]
    if any(k != keys[0] for k in keys):
        raise ShardsDisagree(what=what, field="kernel builds", a=keys[0], b=next(k for k in keys if k != keys[0]))
    _check_cover(what, rs)


def _selection(r: Result) -> dict[str, Any] | None:
    return next((b["selection"] for b in r.boots if b.get("selection")), None)


def _check_cover(what: str, rs: list[Result]) -> None:
    """Every round boot of a shard ran the same part (a retry or culprit boot runs just the checks in
    question, by node id); the shards' parts are disjoint and cover the collection."""
    for r in rs:
        parts = {json.dumps(b["selection"]["selected"]) for b in r.boots
                 if b.get("selection") and b.get("purpose", "round") == "round"}
        if len(parts) > 1:
            raise ShardsDisagree(what=what, field=f"the checks of shard {r.shard_of[0]} from boot to boot",
                                 a=f"{len(json.loads(min(parts)))} checks", b=f"{len(json.loads(max(parts)))}")
    sels = [(r, s) for r in rs if (s := _selection(r))]
    if len(sels) < 2:
        return
    collected = [c["id"] for c in sels[0][1]["collected"]]
    owner: dict[str, int] = {}
    for r, s in sels:
        if [c["id"] for c in s["collected"]] != collected:
            raise ShardsDisagree(what=what, field="collected checks", a=f"{len(collected)} checks",
                                 b=f"{len(s['collected'])} in shard {r.shard_of[0]}")
        for nid in s["selected"]:
            if nid in owner:
                raise ShardsIncomplete(what=what, why=f"{nid} ran in shards {owner[nid]} and {r.shard_of[0]}")
            owner[nid] = r.shard_of[0]
    if len(sels) == len(rs):
        lost = [nid for nid in collected if nid not in owner]
        if lost:
            raise ShardsIncomplete(what=what, why=f"{len(lost)} check(s) ran in no shard, e.g. {lost[0]}")


def merge_group(shards: list[Shard], outdir: Path) -> Result:
    """Pool the validated shards of one run into a result for outdir (logs are copied under
    shard-I/)."""
    shards = sorted(shards, key=lambda sh: sh.index)
    n = shards[0].result.shard_of[1]
    m = Result.from_json(copy.deepcopy(shards[0].result.to_json()))
    m.run_id, m.ktest_version = new_run_id(), ktest_version(__version__)
    m.created = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    m.boots, m.culprit = [], None
    m.command = "ktest merge " + " ".join(str(sh.dir) for sh in shards)
    m.settings.shard = None
    m.settings.merged_from = [
        {"shard": f"{sh.index}/{n}", "run_id": sh.result.run_id, "dir": str(sh.dir), "duration_s": sh.result.duration_s,
         "accel": (sh.result.env or {}).get("accel"), "verdict": str(sh.result.verdict.status) if sh.result.verdict else None}
        for sh in shards]
    outdir.mkdir(parents=True, exist_ok=True)
    for sh in shards:
        i = sh.index
        prefix = f"shard-{i}" if n > 1 else "."
        src = sh.dir / "boots"
        if src.is_dir() and not src.is_symlink():
            # a run directory may come from anywhere: no symlink is followed (a link to /etc would copy
            # the host's files into the report), no FIFO or device is read, no file is unbounded
            skipped = safeio.copy_tree(src, outdir / prefix / "boots", root=sh.dir)
            if skipped:
                m.settings.extra.setdefault("merge_skipped", []).extend(f"shard {i}: boots/{s}" for s in skipped)
        for b in sh.result.boots:
            b = copy.deepcopy(b)
            if n > 1:
                b["shard"] = i
                for k in ("console_log", "stdout_log"):
                    if b["boot"].get(k):
                        b["boot"][k] = f"{prefix}/{b['boot'][k]}"
            m.boots.append(b)
    m.env = next((sh.result.env for sh in shards if sh.result.env), None)
    m.duration_s = max((sh.result.duration_s or 0.0) for sh in shards)
    m.extra["machine_s"] = round(sum((sh.result.duration_s or 0.0) for sh in shards), 1)
    conclude(m, m.boots_of("base"), m.boots_of("patched"))

    failed = [sh for sh in shards if sh.result.outcome.status == Outcome.COULD_NOT_RUN]
    if failed:
        v = failed[0].result.outcome
        m.verdict = m.outcome.cannot_run(v.stage, f"shard {failed[0].index}/{n}: {v.error}",
                                         max(EXIT_COULD_NOT_RUN, v.exit_code))
    culprits = [c for sh in shards if (c := sh.result.culprit)]
    if culprits and (failed or m.outcome.exit_code == 1):
        # each shard searched with its own regressions; the whole run's first bad patch is the earliest
        m.culprit = min(culprits, key=lambda c: c.patch or 0)
    return m


def _slug(r: Result, taken: set[str]) -> str:
    import re

    base = re.sub(r"[^\w.-]+", "_", f"{r.series.name}-{r.tree.version}")
    name, k = base, 2
    while name in taken:
        name, k = f"{base}-{k}", k + 1
    taken.add(name)
    return name


def merge(paths: list[Path], out: Path, cache: Cache, db: Path | None = None) -> dict[str, Any]:
    """Merge everything under `paths` into `out`; returns merge.json's content (with exit_code)."""
    from ktest.report import trends
    from ktest.report.history import History
    from ktest.report.outputs import junit_suite, junit_xml, render_summary, write_all

    loaded = [_load(f, paths) for f in find_results(paths)]
    results = list({sh.result.run_id: sh for sh in loaded}.values())   # `latest` links: a run once
    groups = group(results)
    for shards in groups.values():   # validate all before writing anything
        validate(shards)
    out.mkdir(parents=True, exist_ok=True)
    hist = History.open(db or cache.history_db)
    taken: set[str] = set()
    runs, suites, summaries, codes = [], [], [], []
    for shards in groups.values():
        sub = _slug(shards[0].result, taken)
        m = merge_group(shards, out / sub)
        m.history = {**hist.context(m), "trends": True}     # out/history.html, written below
        m.write(out / sub / "result.json")
        write_all(m, out / sub)
        hist.record(m, out / sub / "result.json")
        v = m.outcome
        codes.append(v.exit_code)
        runs.append({"dir": sub, "series": m.series.name, "tree": m.tree.name,
                     "kernel": m.tree.version, "run_id": m.run_id, "shards": len(shards),
                     "status": str(v.status), "exit_code": v.exit_code, "regressions": v.regressions,
                     "improvements": v.improvements, "error": v.error,
                     "expected": [{"check": e.check, "metric": e.metric, "change": e.change, "held": e.held,
                                   "word": e.word}
                                  for e in m.expected]})
        suites.append(junit_suite(m, name=f"ktest.{m.series.name}.{m.tree.version}"))
        summaries.append(render_summary(m))
    trends.write(hist, out / "history.html")
    exit_code = worst_exit(codes)
    merged = {"schema": "ktest.merge/1", "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
              "inputs": [str(p) for p in paths], "runs": runs, "exit_code": exit_code}
    write_json_atomic(out / "merge.json", merged)
    (out / "junit.xml").write_text(junit_xml(suites))
    (out / "summary.md").write_text(_overview_md(runs) + "\n" + "\n".join(summaries))
    (out / "index.html").write_text(_overview_html(merged))
    return merged


def _overview_md(runs: list[dict[str, Any]]) -> str:
    from ktest.base.safetext import md_text as t

    icon = {0: "✅", 1: "❌"}
    lines = ["# ktest: merged results", "", "| series | kernel | shards | verdict | regressions |", "|---|---|---|---|---|"]
    for r in runs:
        lines.append(f"| {t(r['series'])} | {t(r['kernel'])} | {t(r['shards'])} | {icon.get(r['exit_code'], '⚠️')} "
                     f"{t(r['status'])} | {t(', '.join(r['regressions'])) or '–'} |")
    return "\n".join(lines) + "\n"


def _overview_html(merged: dict[str, Any]) -> str:
    from ktest.report.outputs import template_env

    return template_env().get_template("merge.html.j2").render(m=merged)
