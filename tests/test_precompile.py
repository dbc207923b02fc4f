"""The guest's root is read-only: the host writes the bytecode the guest's Python and pytest would
otherwise compile in every boot under TCG, including pytest's assertion-rewritten check modules."""

import sys

from ktest.boot import checks


def test_check_modules_are_assertion_rewritten_on_the_host(tmp_path, monkeypatch):
    monkeypatch.setenv("PYTHONDONTWRITEBYTECODE", "1")      # as in the guest: the host must write anyway
    d = tmp_path / "checks"
    d.mkdir()
    (d / "conftest.py").write_text("import pytest\n")
    (d / "test_x.py").write_text("def test_x():\n    assert 1 + 1 == 2\n")
    (d / "helper.py").write_text("X = 1\n")
    checks._precompile([d])
    cache = d / "__pycache__"
    tag = sys.implementation.cache_tag
    names = sorted(p.name for p in cache.iterdir())
    assert any(n.startswith(f"test_x.{tag}-pytest-") for n in names), names
    assert any(n.startswith(f"conftest.{tag}-pytest-") for n in names), names
    assert f"helper.{tag}.pyc" in names and not any(n.startswith(f"helper.{tag}-pytest-") for n in names), \
        "a helper module is compiled, not rewritten (pytest does not rewrite it either)"
