#!/usr/bin/env python3
"""Count string-key lookups in the package: `x["key"]`, `x.get("key")` and `x.setdefault("key")` with a
literal key, and how many of them use a key of the result document (ktest/schema/result-1.json).  A
measure of how much of the code reads and writes the result as an untyped dict (issue: one engine and a
typed result); run it before and after a change to the result's model.

    python3 ci/count_result_keys.py [--by-file] [--json]
"""

from __future__ import annotations

import argparse
import ast
import json
import sys
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def schema_keys(schema: dict) -> set[str]:
    """Every property name anywhere in the JSON schema."""
    keys: set[str] = set()

    def walk(node):
        if isinstance(node, dict):
            for k, v in node.items():
                if k == "properties" and isinstance(v, dict):
                    keys.update(v)
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)
    walk(schema)
    return keys


def lookups(source: str) -> list[str]:
    """The literal string keys looked up in this module's code."""
    out = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Subscript) and isinstance(node.slice, ast.Constant) and isinstance(node.slice.value, str):
            out.append(node.slice.value)
        elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
              and node.func.attr in ("get", "setdefault", "pop") and node.args
              and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str)):
            out.append(node.args[0].value)
    return out


def count(package: Path, schema: Path) -> dict:
    known = schema_keys(json.loads(schema.read_text()))
    files = {}
    for py in sorted(package.rglob("*.py")):
        keys = lookups(py.read_text())
        files[str(py.relative_to(package.parent))] = {"lookups": len(keys),
                                                      "result_keys": sum(k in known for k in keys)}
    total = Counter()
    for v in files.values():
        total.update(v)
    return {"lookups": total["lookups"], "result_keys": total["result_keys"], "files": files}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--by-file", action="store_true", help="one line per module, most lookups first")
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args(argv)
    c = count(ROOT / "ktest", ROOT / "ktest" / "schema" / "result-1.json")
    if a.json:
        json.dump(c, sys.stdout, indent=1)
        print()
        return 0
    print(f"string-key lookups in ktest/: {c['lookups']}, of which on the result schema's keys: {c['result_keys']}")
    if a.by_file:
        for f, v in sorted(c["files"].items(), key=lambda kv: -kv[1]["lookups"]):
            if v["lookups"]:
                print(f"  {v['lookups']:5d} {v['result_keys']:5d}  {f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
