"""Result documents for tests: the smallest ktest.result/1 a test can build on, and a document judged
by verdict.conclude (which works on the typed Result) handed back as JSON for the test to read."""

from ktest.base.result import Result


def minimal(**over) -> dict:
    """The fields every result has, with `over` on top (e.g. series=..., settings=..., known_checks=...)."""
    doc = {"schema": "ktest.result/1", "run_id": "test-run", "created": "2026-12-05T00:00:00Z", "command": "ktest run x",
           "tree": {"name": "linux-test", "base_rev": "v0", "base": "0" * 40}, "series": {"name": "test", "patches": []},
           "checkout": {"valid": True}, "settings": {"rounds": 1, "reps": 1}, "builds": [], "boots": [], "checks": [],
           "splats": {"base": [], "patched": [], "new": []}, "expected": [], "culprit": None, "verdict": None}
    return {**doc, **over}


def judged(doc: dict, base: list[dict], patched: list[dict], **kw) -> dict:
    """`doc` concluded from the two sides' guest runs, as the JSON document ktest writes."""
    from ktest.judge.verdict import conclude

    r = Result.from_json(doc)
    conclude(r, base, patched, **kw)
    return r.to_json()
