"""Check areas as data: one TOML file per area in this package (linkwatch.toml, bonding.toml), as a
tuxmake target is one file.  An area names the source paths whose change selects it, its kconfig
fragment, its testcases directory and the tree's own selftests that it runs, each with its cost.
Adding an area means adding a file and a testcases/<name>/ directory.

A series touching none of the areas' paths gets every area; the smoke checks always run."""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path

from ktest.base.records import Series

from ktest.base.home import SMOKE, TESTCASES  # noqa: E402,F401  (one place knows where the checks are)
SELFTESTS = "tools/testing/selftests"
DIFF_FILE = re.compile(r"^diff --git a/(\S+) b/(\S+)$", re.M)


@dataclass(frozen=True)
class Selftest:
    """One upstream selftest program (a TEST_PROG of its directory's Makefile), or one group of it."""

    dir: str                 # under tools/testing/selftests
    script: str
    cost: int                # measured seconds under TCG (balances shards and guests)
    tests: str | None = None  # the script's TESTS= group, when its groups run apart
    behaviour: str | None = None              # what it tests, in a few words
    covers: tuple[str, ...] = ()              # ktest check paths (or prefixes) that test the same

    @property
    def id(self) -> str:
        """The check's parameter id: bond_options.sh:prio, dev_addr_lists.sh."""
        return f"{self.script}:{self.tests}" if self.tests else self.script


@dataclass(frozen=True)
class Area:
    name: str
    description: str
    paths: tuple[str, ...]
    testcases: str
    kconfig: str
    kconfig_where_available: str = ""     # merged too; a tree whose Kconfig cannot grant it still builds
    exports: tuple[str, ...] = ()
    selftests: tuple[Selftest, ...] = ()
    control: str | None = None            # "check path/metric": a kernel-clock path with no rate limit
    max_rounds: int | None = None         # default --max-rounds for a run of this area (the evidence: the file)

    @property
    def testcases_dir(self) -> Path:
        return TESTCASES / self.testcases


class AreaFileError(ValueError):
    pass


def _parse(name: str, text: str) -> Area:
    d = tomllib.loads(text)
    need = {"description", "paths", "testcases", "kconfig"}
    allowed = need | {"exports", "selftests", "kconfig_where_available", "control", "max_rounds"}
    if missing := need - d.keys():
        raise AreaFileError(f"area {name}: missing {', '.join(sorted(missing))}")
    if extra := d.keys() - allowed:
        raise AreaFileError(f"area {name}: unknown key(s) {', '.join(sorted(extra))}")
    mr = d.get("max_rounds")
    if mr is not None and (type(mr) is not int or not 2 <= mr <= 50):
        raise AreaFileError(f"area {name}: max_rounds must be a whole number from 2 to 50, not {mr!r}")
    tests = []
    for st in d.get("selftests", []):
        if set(st) - {"dir", "script", "cost", "tests", "behaviour", "covers"} or not {"dir", "script", "cost"} <= set(st):
            raise AreaFileError(f"area {name}: a selftest needs dir, script and cost (and may have tests, "
                                f"behaviour, covers): {st}")
        tests.append(Selftest(dir=st["dir"], script=st["script"], cost=int(st["cost"]), tests=st.get("tests"),
                              behaviour=st.get("behaviour"), covers=tuple(st.get("covers", ()))))
    ids = [t.id for t in tests]
    if len(set(ids)) != len(ids):
        raise AreaFileError(f"area {name}: a selftest is listed twice")
    return Area(name=name, description=d["description"], paths=tuple(d["paths"]), testcases=d["testcases"],
                kconfig=d["kconfig"].lstrip("\n"),
                kconfig_where_available=d.get("kconfig_where_available", "").lstrip("\n"), exports=tuple(d.get("exports", ())), selftests=tuple(tests),
                control=d.get("control"), max_rounds=mr)


@cache
def all_areas() -> dict[str, Area]:
    pkg = resources.files(__name__)
    files = sorted((f for f in pkg.iterdir() if f.name.endswith(".toml")), key=lambda f: f.name)
    return {f.name[:-5]: _parse(f.name[:-5], f.read_text()) for f in files}


DEFAULT_MAX_ROUNDS = 6      # boots a side at most while metrics are in doubt, for an area without its own


def default_max_rounds(chosen: list[str] | tuple[str, ...], fallback: int = DEFAULT_MAX_ROUNDS) -> int:
    """A run's default --max-rounds: the largest of its areas' (an area without one, or no area: `fallback`)."""
    return max([a.max_rounds or fallback for n in chosen if (a := all_areas().get(n))] or [fallback])


def names() -> tuple[str, ...]:
    return tuple(all_areas())


def get(name: str) -> Area:
    from ktest.base.errors import UnknownArea

    try:
        return all_areas()[name]
    except KeyError:
        raise UnknownArea(name=name, known=", ".join(names())) from None


def selftest_exports() -> list[str]:
    """What a build exports from the tree for the guest: every area's paths, under tools/testing/selftests."""
    out: list[str] = []
    for a in all_areas().values():
        out += [f"{SELFTESTS}/{p}" for p in a.exports if f"{SELFTESTS}/{p}" not in out]
    return out


def touched_files(series: Series) -> list[str]:
    out: list[str] = []
    for p in series.patches:
        for a, b in DIFF_FILE.findall(p.text):
            for f in (a, b):
                if f not in out:
                    out.append(f)
    return out


def select(series: Series) -> tuple[list[str], str]:
    files = touched_files(series)
    chosen = [a.name for a in all_areas().values() if any(f.startswith(a.paths) for f in files)]
    if not chosen:
        return list(names()), "the series touches no area's files: all areas"
    return chosen, "touched: " + ", ".join(files[:6]) + (" ..." if len(files) > 6 else "")


def testcases_for(chosen: list[str]) -> list[Path]:
    return [SMOKE] + [get(a).testcases_dir for a in chosen]


def of_testcases(paths: list[Path]) -> list[str]:
    """The areas whose checks --testcases names (a file or node id under an area's folder, the folder
    itself, or a folder above it): their calibration and selftest agreement apply to the run."""
    out = []
    for a in all_areas().values():
        d = a.testcases_dir.resolve()
        for p in paths:
            q = Path(str(p).partition("::")[0]).resolve()
            if q == d or d in q.parents or q in d.parents:
                out.append(a.name)
                break
    return out
