"""The confusion table of `ci/bench-sensitivity.sh`: read each mutant's full `ktest run` (result.json,
exit code, seconds) from the bench's output directory, print the table and write it, machine-readable,
to OUT/confusion.json (and the printed table to OUT/confusion.txt).

Usage: bench_confusion.py OUT MUTANT...   (run from the repository root; meta from the environment:
KTEST_BENCH_STARTED, KTEST_BENCH_RUN_OPTS).  Exit 0 if every positive was caught and every negative came
out clean with no improvement called, else 1.

A positive (expect "regression") is *caught* when the run exited 1 and every check of its `catch` list
was called a regression; else it is *red elsewhere* (exit 1, but by other checks while its own were left
undecided or passed: the run is red, the attribution is not the one declared), *undecided* (exit 3: in
doubt after the last round, never green), *could not run* (exit 2, or no result) or *missed* (exit 0, a
false green).  Only "caught" counts as caught.
A negative (expect "none", a behaviour-preserving refactor) is *clean* (exit 0), *flagged* (exit 1),
*undecided* (exit 3) or *could not run*.  Mutants carry no expected.json, so any improvement called is
a false one, for either kind."""

import argparse
import datetime as dt
import json
import os
import subprocess
import sys
from pathlib import Path

MUTANTS = Path("tests/data/mutants")
REGRESSIONS = ("regression", "metric regression", "still failing, worse")   # ktest/judge/verdict.py
COUNTED = ("round", "retry")   # boots that are a side's evidence (ktest/compare.py)


def _git(*args: str) -> str | None:
    try:
        return subprocess.run(["git", "-C", str(Path(__file__).resolve().parent.parent), *args],
                              capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None


def provenance() -> dict[str, object]:
    """Which ktest measured: its commit, and whether tracked files had changes."""
    return {"ktest_commit": _git("rev-parse", "HEAD"),
            "ktest_dirty": bool(_git("status", "--porcelain", "--untracked-files=no"))}


def outcome(expect: str, exit_code: int | None, caught: bool) -> str:
    if expect == "regression":
        if caught:
            return "caught"
        return {3: "undecided", 0: "missed", 1: "red elsewhere"}.get(exit_code, "could not run")
    return {0: "clean", 1: "flagged", 3: "undecided"}.get(exit_code, "could not run")


def row(out: Path, name: str) -> dict:
    spec = json.loads((MUTANTS / name / "mutant.json").read_text())
    rc_file, secs_file = out / f"{name}.rc", out / f"{name}.seconds"
    exit_code = int(rc_file.read_text()) if rc_file.exists() else None
    r = {"name": name, "area": spec["area"], "expect": spec["expect"], "catch": spec["catch"],
         "exit_code": exit_code, "seconds": int(secs_file.read_text()) if secs_file.exists() else None}
    if "effect" in spec:
        r["effect"] = spec["effect"]
    res = out / name / "latest" / "result.json"
    result = json.loads(res.read_text()) if res.exists() else None
    v = (result or {}).get("verdict") or {}
    by = {c["path"]: c for c in (result or {}).get("checks", [])}
    boots = (result or {}).get("boots", [])
    settings = (result or {}).get("settings", {})
    r.update({
        "status": v.get("status", "no result"),
        "caught": bool(spec["catch"]) and exit_code == 1
        and all(by.get(p, {}).get("verdict") in REGRESSIONS for p in spec["catch"]),
        "catch_verdicts": {p: by.get(p, {}).get("verdict", "absent") for p in spec["catch"]},
        "regressions": v.get("regressions", []),
        "false_improvements": v.get("improvements", []),
        "undecided": v.get("undecided", []),
        "flaky": v.get("flaky", []),
        "boots": {s: sum(b.get("side") == s and b.get("purpose", "round") in COUNTED for b in boots)
                  for s in ("base", "patched")},
        "check_areas": settings.get("check_areas"),
        "full_run": bool(result) and settings.get("expr") is None,
        "accel": (result or {}).get("env", {}).get("accel"),
        "kernel": (result or {}).get("tree", {}).get("name"),
        "run_id": (result or {}).get("run_id"),
    })
    r["outcome"] = outcome(spec["expect"], exit_code, r["caught"])
    return r


def totals(rows: list[dict]) -> dict:
    pos = [r for r in rows if r["expect"] == "regression"]
    neg = [r for r in rows if r["expect"] == "none"]
    count = lambda rs, o: sum(r["outcome"] == o for r in rs)   # noqa: E731
    return {
        "positives": {"total": len(pos), **{k.replace(" ", "_"): count(pos, k)
                                            for k in ("caught", "red elsewhere", "missed", "undecided",
                                                      "could not run")},
                      "false_green": sum(r["exit_code"] == 0 for r in pos)},
        "negatives": {"total": len(neg), **{k.replace(" ", "_"): count(neg, k)
                                            for k in ("clean", "flagged", "undecided", "could not run")}},
        "with_false_improvements": sum(bool(r["false_improvements"]) for r in rows),
        "not_full_runs": sum(not r["full_run"] for r in rows if r["status"] != "no result"),
    }


def table(rows: list[dict], t: dict) -> str:
    head = ("mutant", "expect", "verdict", "exit", "outcome", "boots b/p", "improvements", "s")
    body = [(r["name"], r["expect"], r["status"], str(r["exit_code"]), r["outcome"],
             f"{r['boots']['base']}/{r['boots']['patched']}",
             ", ".join(p.split(".", 1)[-1] for p in r["false_improvements"]) or "-", str(r["seconds"]))
            for r in rows]
    w = [max(len(x[i]) for x in [head, *body]) for i in range(len(head))]
    lines = ["  ".join(c.ljust(n) for c, n in zip(x, w)).rstrip() for x in [head, *body]]
    p, n = t["positives"], t["negatives"]
    lines.append(f"positives: {p['caught']}/{p['total']} caught, {p['red_elsewhere']} red by other checks, "
                 f"{p['missed']} missed "
                 f"({p['false_green']} green), {p['undecided']} undecided, {p['could_not_run']} could not run")
    lines.append(f"negatives: {n['clean']}/{n['total']} clean, {n['flagged']} flagged, "
                 f"{n['undecided']} undecided, {n['could_not_run']} could not run")
    lines.append(f"{t['with_false_improvements']} with an improvement called, "
                 f"{t['not_full_runs']} not a full run")
    return "\n".join(lines) + "\n"


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(prog="bench_confusion.py", description=__doc__.split("\n\n")[0])
    ap.add_argument("out", type=Path, help="the bench's output directory (KTEST_BENCH_OUT)")
    ap.add_argument("mutants", nargs="+", metavar="MUTANT", help=f"names under {MUTANTS}/")
    args = ap.parse_args(argv[1:])
    out, names = args.out, args.mutants
    if not out.is_dir():
        print(f"bench_confusion.py: error: {out}: not a directory", file=sys.stderr)
        return 2
    unknown = [m for m in names if not (MUTANTS / m / "mutant.json").is_file()]
    if unknown:
        print(f"bench_confusion.py: error: no mutant {', '.join(unknown)} in {MUTANTS}/ (run from the repository root)",
              file=sys.stderr)
        return 2
    rows = [row(out, m) for m in names]
    t = totals(rows)
    accels = sorted({r["accel"] for r in rows if r["accel"]})
    kernels = sorted({r["kernel"] for r in rows if r["kernel"]})
    doc = {
        "schema": "ktest.confusion/1",
        "started": os.environ.get("KTEST_BENCH_STARTED"),
        "finished": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        **provenance(),
        "accel": accels[0] if len(accels) == 1 else accels or None,
        "kernel": kernels[0] if len(kernels) == 1 else kernels or None,
        "run_opts": os.environ.get("KTEST_BENCH_RUN_OPTS", ""),
        "totals": t,
        "mutants": rows,
    }
    (out / "confusion.json").write_text(json.dumps(doc, indent=2) + "\n")
    text = table(rows, t)
    (out / "confusion.txt").write_text(text)
    sys.stdout.write(text)
    print(f"written: {out / 'confusion.json'}")
    p, n = t["positives"], t["negatives"]
    perfect = (p["caught"] == p["total"] and n["clean"] == n["total"]
               and not t["with_false_improvements"] and not t["not_full_runs"])
    return 0 if perfect else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
