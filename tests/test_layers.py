"""The package's layers (docs/layout.md): imports only go down.  Each module of a layer may import
modules of its own subpackage and of the layers below it, never of a layer above, so that the layout
shows the architecture and a guest-side module never pulls in the host's machinery."""

import ast
from pathlib import Path

PKG = Path(__file__).resolve().parent.parent / "ktest"
# bottom to top; the top level (the cli package -> engine -> run, merge, compare, calibrate, doctor) may
# import everything
LAYERS = ["base", "guest", "areas", "host", "judge", "boot", "report"]
TOP_PACKAGES = ["cli"]      # the command line: args, validate, commands


def layer_of(module: str) -> int:
    """ktest.X.Y -> the rank of its layer (the top level ranks above every layer)."""
    parts = module.split(".")
    if len(parts) < 2 or parts[0] != "ktest":
        return -1
    return LAYERS.index(parts[1]) if parts[1] in LAYERS else len(LAYERS)


def imports(path: Path) -> set[str]:
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.add(node.module)
            if node.module == "ktest":              # from ktest import run
                out |= {f"ktest.{a.name}" for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level:
            raise AssertionError(f"{path}: a relative import; ktest's imports are absolute")
        elif isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
    return {m for m in out if m.startswith("ktest.")}


def test_imports_only_go_down():
    up = []
    for path in sorted(PKG.rglob("*.py")):
        rel = path.relative_to(PKG.parent).with_suffix("")
        me = ".".join(rel.parts[:-1] if rel.name == "__init__" else rel.parts)
        mine = layer_of(me)
        for m in imports(path):
            theirs = layer_of(m)
            if theirs >= mine and m.split(".")[:2] != me.split(".")[:2] and mine < len(LAYERS):
                up.append(f"{me} imports {m}")
    assert not up, "imports that run back up a layer:\n" + "\n".join(up)


def test_every_module_has_a_layer():
    top = sorted(p.stem for p in PKG.glob("*.py") if p.stem not in ("__init__", "__main__"))
    assert top == ["calibrate", "compare", "doctor", "engine", "merge", "run"], \
        "a new module belongs in a layer's subpackage"
    subs = sorted(p.name for p in PKG.iterdir() if p.is_dir() and (p / "__init__.py").exists())
    assert subs == sorted(LAYERS + TOP_PACKAGES), subs


def test_the_guest_imports_only_the_base():
    """The guest side runs in the VM on the host's read-only root: it must not import the host's
    machinery (jinja2, scipy, git), which also costs import time under TCG."""
    for path in (PKG / "guest").glob("*.py"):
        for m in imports(path):
            assert m.split(".")[1] in ("base", "guest"), f"{path.name} imports {m}"


def test_the_command_line_reaches_the_operations_through_the_engine():
    """The cli package parses, validates, makes settings and renders; what it runs is an Engine
    operation.  Of the operations' modules it may take only run.RunOptions (the typed settings it
    fills), and nothing outside the cli package imports the engine or the command line."""
    ops = {"ktest.run", "ktest.merge", "ktest.compare", "ktest.calibrate"}
    taken = []
    for path in sorted((PKG / "cli").glob("*.py")):
        for n in ast.walk(ast.parse(path.read_text())):
            if isinstance(n, ast.ImportFrom) and (n.module in ops or (
                    n.module == "ktest" and {a.name for a in n.names} & {m[6:] for m in ops})):
                taken.append((path.name, n.module, [a.name for a in n.names]))
    assert taken and all(m == "ktest.run" and names == ["RunOptions"] for _, m, names in taken), taken

    def above(m: str) -> bool:
        return m == "ktest.engine" or m == "ktest.cli" or m.startswith("ktest.cli.")
    for path in sorted(PKG.rglob("*.py")):
        if path.parent == PKG / "cli" or path == PKG / "__main__.py":
            continue
        up = {m for m in imports(path) if above(m) and not (path.name == "engine.py" and m == "ktest.engine")}
        assert not up, f"{path.relative_to(PKG)} imports {up}"
