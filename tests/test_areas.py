"""Check areas as data (ktest/areas/*.toml): the shipped files, the parser's errors, and selection."""

import re
from pathlib import Path

import pytest

from ktest import areas
from ktest.host import kconfig
from ktest.base.errors import UnknownArea
from ktest.base.records import Patch, Series


def test_the_shipped_areas_parse_and_feed_kconfig_and_testcases():
    assert set(areas.names()) == {"linkwatch", "bonding"} and kconfig.AREAS == areas.names()
    for a in areas.all_areas().values():
        assert a.testcases_dir.is_dir(), a.name
        assert kconfig.parse_config(a.kconfig), f"{a.name}: an empty fragment"
        assert [f.name for f in kconfig.fragments([a.name])] == \
            ["base", a.name] + ([f"{a.name}-where-available"] if a.kconfig_where_available else [])
    assert "CONFIG_KPROBE_EVENTS=y" in areas.get("linkwatch").kconfig_where_available
    bond = areas.get("bonding")
    assert "bond_options.sh:prio" in [s.id for s in bond.selftests] and all(s.cost > 0 for s in bond.selftests)
    assert "tools/testing/selftests/kselftest" in areas.selftest_exports()
    with pytest.raises(UnknownArea):
        areas.get("wifi")


@pytest.mark.parametrize("text,why", [
    ('description="d"\npaths=[]\ntestcases="x"\n', "missing kconfig"),
    ('description="d"\npaths=[]\ntestcases="x"\nkconfig=""\ncolour="red"\n', "unknown key(s) colour"),
    ('description="d"\npaths=[]\ntestcases="x"\nkconfig=""\n[[selftests]]\ndir="d"\nscript="s.sh"\n',
     "needs dir, script and cost"),
    ('description="d"\npaths=[]\ntestcases="x"\nkconfig=""\n' + '[[selftests]]\ndir="d"\nscript="s.sh"\ncost=1\n' * 2,
     "listed twice"),
    ('description="d"\npaths=[]\ntestcases="x"\nkconfig=""\nmax_rounds=1\n', "max_rounds must be a whole number"),
    ('description="d"\npaths=[]\ntestcases="x"\nkconfig=""\nmax_rounds="8"\n', "max_rounds must be a whole number"),
])
def test_a_bad_area_file_is_refused_with_the_reason(text, why):
    with pytest.raises(areas.AreaFileError, match=re.escape(why)):
        areas._parse("x", text)


def _series(*files):
    text = "".join(f"diff --git a/{f} b/{f}\n" for f in files)
    return Series(name="s", path=Path("s"), patches=[Patch(index=1, name="p", subject="x", author="a", date="",
                                                           sha256="", text=text)])


def test_a_series_selects_the_areas_whose_paths_it_touches():
    assert areas.select(_series("drivers/net/bonding/bond_main.c"))[0] == ["bonding"]
    assert areas.select(_series("net/core/link_watch.c", "include/net/bond_3ad.h"))[0] == ["bonding", "linkwatch"]
    chosen, why = areas.select(_series("fs/ext4/inode.c"))
    assert chosen == list(areas.names()) and "no area" in why


def test_the_areas_of_given_testcases_are_those_whose_checks_they_name():
    t = areas.TESTCASES
    assert areas.of_testcases([t / "linkwatch" / "test_operstate.py"]) == ["linkwatch"]
    assert areas.of_testcases([Path(f"{t}/bonding/test_enslave.py::test_prio[a]")]) == ["bonding"]
    assert sorted(areas.of_testcases([t])) == sorted(areas.names())
    assert areas.of_testcases([areas.SMOKE]) == []


def test_a_runs_default_max_rounds_is_the_largest_of_its_areas(monkeypatch):
    lw, bond = areas.get("linkwatch").max_rounds, areas.get("bonding").max_rounds
    assert lw and bond, "each shipped area states its own (the evidence is in its file)"
    assert areas.default_max_rounds(["linkwatch"], 6) == lw and areas.default_max_rounds(["bonding"], 6) == bond
    body = 'description="d"\npaths=[]\ntestcases="x"\nkconfig=""\n'
    two = {"a": areas._parse("a", body + "max_rounds=4\n"), "b": areas._parse("b", body + "max_rounds=9\n"),
           "c": areas._parse("c", body)}
    monkeypatch.setattr(areas, "all_areas", lambda: two)
    assert areas.default_max_rounds(["a", "b"], 6) == 9 and areas.default_max_rounds(["b", "a"], 6) == 9
    assert areas.default_max_rounds(["a", "c"], 6) == 6, "an area without one counts as the fallback"
    assert areas.default_max_rounds([], 6) == 6, "smoke only: the fallback"
    assert areas._parse("x", 'description="d"\npaths=[]\ntestcases="x"\nkconfig=""\n').max_rounds is None
