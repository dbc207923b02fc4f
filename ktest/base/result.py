"""The run's result, ktest.result/1, as a typed model: what `ktest run`, `merge` and `compare` write as
result.json, and what `ktest report`, `compare`, `merge` and the history read back.

Every record is a dataclass with `from_json` and `to_json`.  A stored document round-trips exactly:
a field the document did not have is not written back (unless the code set it since), and a key the
model does not know (a newer writer's) is kept in `extra` and written back as it was.  Statuses, sides
and outcomes are enums; they are `str` enums, so their JSON is the same strings as before.

`Result.read` is the one way in from a file (safeio, then the schema: the document may come from a
fork's artifact), `Result.write` the one way out.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field, fields, replace
from enum import StrEnum
from importlib import resources
from pathlib import Path
from typing import Any, ClassVar, Self

from ktest.base.records import Build, Warning_, relative_path

SCHEMA = "ktest.result/1"
Json = dict[str, Any]                 # a JSON object as Python reads it


class Side(StrEnum):
    BASE = "base"
    PATCHED = "patched"


class Status(StrEnum):
    """A check's status on one side, KCIDB's words, plus FLAKY for a side whose boots disagree.
    STATUS_ORDER is worst first: FAIL > ERROR > MISS > PASS > DONE > SKIP."""
    FAIL = "FAIL"
    ERROR = "ERROR"
    MISS = "MISS"
    PASS = "PASS"
    DONE = "DONE"
    SKIP = "SKIP"
    FLAKY = "FLAKY"

    @property
    def failed(self) -> bool:
        return self in (Status.FAIL, Status.ERROR)


STATUS_ORDER = (Status.FAIL, Status.ERROR, Status.MISS, Status.PASS, Status.DONE, Status.SKIP)


class Outcome(StrEnum):
    """The run's claim.  Its exit code: 0 no regression, 1 regression, 2 could not run, 3 undecided,
    130 interrupted (no claim: the run stopped before it judged)."""
    NO_REGRESSION = "no regression"
    REGRESSION = "regression"
    COULD_NOT_RUN = "could not run"
    UNDECIDED = "undecided"
    INTERRUPTED = "interrupted"
    UNKNOWN = "no verdict"        # a stored result without one (a run cut short before ktest said so)

    @property
    def exit_code(self) -> int:
        return {"no regression": 0, "regression": 1, "could not run": 2, "undecided": 3, "interrupted": 130,
                "no verdict": 2}[self.value]


class Doc:
    """What every record of the model shares: from_json/to_json with unknown keys kept in `extra`, and
    fields the document lacked left out again on the way back (`_absent`).  A subclass names how its
    fields read: `_nested` (field -> record class, or a one-item list for a list of records) and
    `_enums` (field -> enum, or a one-item list for a list of them)."""

    _nested: ClassVar[dict[str, Any]] = {}
    _enums: ClassVar[dict[str, Any]] = {}
    _drop_none: ClassVar[tuple[str, ...]] = ()      # fields a record made here leaves out when None
    _absent: frozenset[str]                          # set by from_json: the fields its document lacked

    @classmethod
    def from_json(cls, d: Json) -> Self:
        known = {f.name: f for f in fields(cls) if f.init and f.name not in ("extra", "_absent")}  # type: ignore[arg-type]
        kw: dict[str, Any] = {}
        for name, v in d.items():
            if name not in known:
                continue
            kw[name] = _read(v, cls._nested.get(name), cls._enums.get(name))
        obj = cls(**kw, extra={k: v for k, v in d.items() if k not in known})  # type: ignore[call-arg]
        obj._absent = frozenset(n for n in known if n not in d)
        return obj

    def to_json(self) -> Json:
        out: dict[str, Any] = {}
        absent: frozenset[str] = getattr(self, "_absent", frozenset())
        for f in fields(self):  # type: ignore[arg-type]
            if f.name in ("extra", "_absent"):
                continue
            v = getattr(self, f.name)
            if f.name in absent and v == _default(f):
                continue
            if v is None and f.name in self._drop_none and not hasattr(self, "_absent"):
                continue            # a record made here leaves out what it has not got
            out[f.name] = _write(v)
        out.update(self.extra)  # type: ignore[attr-defined]
        return out


def _default(f: dataclasses.Field[Any]) -> Any:
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return dataclasses.MISSING


def _read(v: Any, nested: Any, enum: Any) -> Any:
    if v is None:
        return None
    if nested is not None:
        if isinstance(nested, list):
            return [nested[0].from_json(x) for x in v]
        return nested.from_json(v)
    if enum is not None:
        if isinstance(enum, list):
            return [_enum(enum[0], x) for x in v]
        return _enum(enum, v)
    return v


def _enum(enum: Any, v: Any) -> Any:
    try:
        return enum(v)
    except ValueError:
        return v          # a newer writer's word: kept as the string it is


def _write(v: Any) -> Any:
    if isinstance(v, Doc):
        return v.to_json()
    if isinstance(v, StrEnum):
        return v.value
    if isinstance(v, list):
        return [_write(x) for x in v]
    return v


def _extra() -> Any:
    return field(default_factory=dict, kw_only=True, repr=False, compare=False)


# --- the records -------------------------------------------------------------------------------------

@dataclass
class TreeRef(Doc):
    """result["tree"]: the kernel tree the run was made on (records.Tree.to_json)."""
    name: str
    base_rev: str
    base: str | None = None
    kind: str | None = None
    version: str | None = None
    repo: str | None = None
    shadow: str | None = None
    extra: Json = _extra()


@dataclass
class PatchRef(Doc):
    index: int
    subject: str
    name: str | None = None
    author: str | None = None
    date: str | None = None
    sha256: str | None = None
    commit: str | None = None
    extra: Json = _extra()


@dataclass
class SeriesRef(Doc):
    """result["series"]: what was applied (records.Series.to_json)."""
    _nested = {"patches": [PatchRef]}
    name: str
    patches: list[PatchRef] = field(default_factory=list)
    path: str | None = None
    cover: str | None = None
    patchset_hash: str | None = None
    expected: Json | None = None
    range: Json | None = None
    extra: Json = _extra()


@dataclass
class Shard(Doc):
    index: int
    count: int
    extra: Json = _extra()


@dataclass
class Settings(Doc):
    """result["settings"]: how the run was asked for; what every shard of one run must share."""
    _nested = {"shard": Shard}
    rounds: int
    reps: int
    max_rounds: int | None = None
    vms: int | None = None
    expr: str | None = None
    kconfig_areas: list[str] = field(default_factory=list)
    kconfig_add: Json | None = None
    known_issues: str | None = None
    accel: str | None = None
    bisect: bool | None = None
    rerun_of: str | None = None
    check_areas: list[str] = field(default_factory=list)
    check_areas_why: str | None = None
    testcases: list[str] = field(default_factory=list)
    shard: Shard | None = None
    slow_checks: Json | None = None          # {checks: node ids, own_guest}: round 1 only, a guest each
    check_guests: list[Json] | None = None   # per batch of rounds: guests a side's other checks ran on
    merged_from: list[Json] | None = None
    extra: Json = _extra()


@dataclass
class BuildRecord(Doc):
    """One entry of result["builds"]: the base or a patch, built (PASS) or not (FAIL, with the error)."""
    _enums = {"status": Status}
    label: str                       # "base", "patch 2/3"
    commit: str | None
    status: Status                   # PASS | FAIL
    cached: bool = False
    duration_s: float | None = None
    key: str | None = None           # the artifact's key, for `ktest boot --build KEY`
    n_warnings: int | None = None
    new_warnings: list[Json] = field(default_factory=list)
    error: str | None = None
    extra: Json = _extra()

    @classmethod
    def of(cls, label: str, b: Build, new: list[Warning_] | None = None) -> "BuildRecord":
        """From a host.build Build (and the warnings this build added over its parent)."""
        return cls(label, b.commit, Status.PASS, b.cached, round(b.duration_s, 1), b.key, len(b.warnings),
                   [dataclasses.asdict(w) for w in new or []])

    @classmethod
    def failed(cls, label: str, commit: str | None, error: str) -> "BuildRecord":
        return cls(label, commit, Status.FAIL, error=error)


@dataclass
class Culprit(Doc):
    """result["culprit"]: the patch a regression (or a failure to apply or build) is laid to."""
    _drop_none = ("error",)
    patch: int | None
    subject: str | None
    why: str
    error: str | None = None
    extra: Json = _extra()


@dataclass
class Verdict(Doc):
    """result["verdict"]: the run's claim and its exit code (0 no regression, 1 regression, 2 could
    not run, 3 undecided: still in doubt after the run's last round), with what it rests on.  A run that
    could not run says at which stage and why."""
    _enums = {"status": Outcome}
    _drop_none = ("stage", "error", "rule")
    status: Outcome
    exit_code: int
    regressions: list[str] = field(default_factory=list)
    improvements: list[str] = field(default_factory=list)
    flaky: list[str] = field(default_factory=list)
    inconclusive: list[str] = field(default_factory=list)
    undecided: list[str] = field(default_factory=list)     # what keeps the run from a claim: checks, metrics
    not_run: list[str] = field(default_factory=list)
    not_compared: list[str] = field(default_factory=list)   # ran on one side only (skipped on the other)
    rule: str | None = None
    crash: Json | None = None
    stage: str | None = None         # where a run that could not run (or a build regression) stopped
    error: str | None = None
    extra: Json = _extra()

    @classmethod
    def could_not_run(cls, stage: str, error: str, exit_code: int = 2, **kw: Any) -> "Verdict":
        return cls(Outcome.COULD_NOT_RUN, exit_code, stage=stage, error=error, **kw)

    @classmethod
    def interrupted(cls, stage: str, error: str) -> "Verdict":
        """Ctrl-C or SIGTERM during `stage`: what was booted is kept, nothing is judged."""
        return cls(Outcome.INTERRUPTED, Outcome.INTERRUPTED.exit_code, stage=stage, error=error)

    def cannot_run(self, stage: str | None, error: str, exit_code: int = 2) -> "Verdict":
        """This verdict, but the run could not run after all (its lists stay, for the reader)."""
        return replace(self, status=Outcome.COULD_NOT_RUN, stage=stage, error=error, exit_code=exit_code,
                       extra=dict(self.extra))

    @classmethod
    def read(cls, d: "Json | Verdict | None") -> "Verdict":
        """A stored result's verdict; a result without one (a run cut short) reads as "no verdict", exit 2."""
        if isinstance(d, Verdict):
            return d
        return cls.from_json(d) if d else cls(Outcome.UNKNOWN, 2)


@dataclass
class BootRecord:
    """One entry of result["boots"]: a guest run (checks.GuestRun.to_json()) with its place in the run:
    side, round (0 for a retry or a culprit boot) and purpose; log paths relative to the run dir."""
    run: Json
    side: str                        # "base", "patched", "patch 2"
    round: int
    purpose: str = "round"           # "round" | "retry" | "bisect"

    def to_json(self, outdir: Path | None = None) -> Json:
        d = {**self.run, "boot": dict(self.run["boot"]), "side": self.side, "round": self.round,
             "purpose": self.purpose}
        if outdir is not None:
            for k in ("console_log", "stdout_log"):
                d["boot"][k] = relative_path(Path(d["boot"][k]), outdir)
        return d


@dataclass
class SideResult(Doc):
    """One side of a check: its status over the side's boots, and each boot's."""
    _enums = {"status": Status, "statuses": [Status]}
    status: Status
    statuses: list[Status] = field(default_factory=list)
    infra_errors: int | None = None
    extra: Json = _extra()


@dataclass
class MetricResult(Doc):
    """One metric of a check compared: the centre and the tail a side, the verdict and why."""
    metric: str
    unit: str | None = None
    verdict: str | None = None       # "regressed" | "improved" | "unchanged" | "inconclusive" | ...
    reason: str | None = None
    base_median: float | None = None
    patched_median: float | None = None
    base_p90: float | None = None
    patched_p90: float | None = None
    n_base: int | None = None
    n_patched: int | None = None
    base_samples: list[float] = field(default_factory=list)
    patched_samples: list[float] = field(default_factory=list)
    noise_floor: float | None = None
    p_value: float | None = None
    delta: float | None = None
    lower_is_better: bool | None = None
    doubt: str | None = None         # "harm": a harmful change this run could not settle
    boots_base: int | None = None
    boots_patched: int | None = None
    floor_source: str | None = None  # declared | calibrated | estimated
    tail_floor: float | None = None
    q_value: float | None = None
    q_tail: float | None = None
    decisions: Json = field(default_factory=dict)   # aspect -> DIFFERENT | SAME | UNKNOWN
    mde: float | None = None         # the smallest harmful centre shift this run could detect
    noise: str | None = None         # whose between-boot variance: run | calibrated | history
    resolution: float | None = None  # the median within-boot IQR of the base
    replicated: Json | None = None   # an older rule's "holds in every boot", per aspect
    extra: Json = _extra()


@dataclass
class CheckResult(Doc):
    """One entry of result["checks"]: a check's status on both sides, its metrics and its verdict."""
    _nested = {"base": SideResult, "patched": SideResult, "metrics": [MetricResult]}
    path: str
    base: SideResult
    patched: SideResult
    verdict: str                     # "unchanged", "regression", "metric regression", "fixed", "undecided", ...
    transition: str | None = None
    metrics: list[MetricResult] = field(default_factory=list)
    messages: Json = field(default_factory=dict)
    notes: Json = field(default_factory=dict)
    timelines: Json = field(default_factory=dict)
    failures: Json | None = None     # failure counts a side, Fisher's p and the decision
    not_run: Json | None = None      # a crash kept it from running: side, fingerprint, reason, during
    known_issue: str | None = None   # a known base failure, and why
    # per side, the share of the time the check's guests waited for a host CPU, a boot each (boot.hostwait)
    host_wait: Json = field(default_factory=dict)
    extra: Json = _extra()

    def side(self, side: Side | str) -> SideResult:
        return self.base if side == Side.BASE else self.patched


@dataclass
class Expectation(Doc):
    """One entry of result["expected"]: an effect the series declared, and whether it held."""
    check: str
    held: bool | None
    metric: str | None = None
    change: str | None = None
    observed: str | None = None
    undecided: bool = False          # measured, but the rule could not decide it at these boots
    extra: Json = _extra()

    @property
    def word(self) -> str:
        """held, did not hold, undecided (measured, in doubt) or not measured."""
        if self.held is not None:
            return "held" if self.held else "did not hold"
        return "undecided" if self.undecided else "not measured"


@dataclass
class Rounds(Doc):
    """result["rounds"]: rounds planned, booted, the most allowed, and the extra ones and why."""
    _drop_none = ("stopped",)
    planned: int
    booted: int
    max: int | None = None
    extra_rounds: list[Json] = field(default_factory=list)
    stopped: str | None = None      # why no more boots, though something was in doubt (a regression decided)
    extra: Json = _extra()

    @classmethod
    def from_json(cls, d: Json) -> "Rounds":       # "extra" is the schema's word for the extra rounds
        d = dict(d)
        rounds = d.pop("extra", None)
        obj = super().from_json({**d, **({"extra_rounds": rounds} if rounds is not None else {})})
        return obj

    def to_json(self) -> Json:
        d = super().to_json()
        if "extra_rounds" in d:
            d["extra"] = d.pop("extra_rounds")
        return d


@dataclass
class Result(Doc):
    """ktest.result/1: one `ktest run` (or shard, merge, comparison) of a series against a base."""
    _nested = {"tree": TreeRef, "series": SeriesRef, "settings": Settings, "builds": [BuildRecord],
               "checks": [CheckResult], "expected": [Expectation], "culprit": Culprit, "rounds": Rounds,
               "verdict": Verdict}
    _drop_none = ("ktest_version", "duration_s", "crashes", "rounds", "judged_with", "env", "history", "compare",
                  "resolution")
    run_id: str
    created: str
    command: str
    tree: TreeRef
    series: SeriesRef
    settings: Settings
    schema: str = SCHEMA
    ktest_version: str | None = None
    duration_s: float | None = None
    checkout: Json = field(default_factory=lambda: {"valid": None})
    builds: list[BuildRecord] = field(default_factory=list)
    boots: list[Json] = field(default_factory=list)
    checks: list[CheckResult] = field(default_factory=list)
    splats: Json = field(default_factory=lambda: {"base": [], "patched": [], "new": []})
    crashes: Json | None = None
    expected: list[Expectation] = field(default_factory=list)
    culprit: Culprit | None = None
    verdict: Verdict | None = None
    rounds: Rounds | None = None
    calibration: Json | None = None
    judged_with: Json | None = None
    resolution: list[Json] | None = None     # per area, its control path's spread in each boot (verdict.control_spread)
    env: Json | None = None
    known_checks: list[Json] = field(default_factory=list)
    history: Json | None = None
    compare: Json | None = None
    extra: Json = _extra()

    # --- the edges: one way in, one way out ---------------------------------------------------------
    @classmethod
    def read(cls, path: Path, root: Path | None = None) -> "Result":
        """A result.json from anywhere, read through safeio (a regular file, bounded in size and
        nesting, no symlink out of `root`) and validated against the schema.  Missing: ResultMissing;
        else wrong: BadResult."""
        from ktest.base.errors import BadResult, ResultMissing
        from ktest.base.safeio import RESULT_LIMIT, read_json_or

        return cls.from_json(validate(read_json_or(path, RESULT_LIMIT, ResultMissing, BadResult, root), path))

    def write(self, path: Path) -> None:
        from ktest.base.cache import write_json_atomic

        write_json_atomic(path, self.to_json())

    # --- what readers ask ---------------------------------------------------------------------------
    @property
    def outcome(self) -> Verdict:
        return Verdict.read(self.verdict)

    @property
    def shard_of(self) -> tuple[int, int]:
        """(index, count); an unsharded run is shard 1 of 1."""
        s = self.settings.shard
        return (s.index, s.count) if s else (1, 1)

    def boots_of(self, side: str, purposes: tuple[str, ...] = ("round", "retry")) -> list[Json]:
        """The side's boots that count as its evidence (culprit-search boots ran other kernels)."""
        return [b for b in self.boots if b.get("side") == side and b.get("purpose", "round") in purposes]

    def boots_told(self) -> str:
        """The evidence booted so far, as a run that stopped before its verdict tells it."""
        return f"{len(self.boots_of('base'))} base and {len(self.boots_of('patched'))} patched boot(s)"

    def passed_builds(self) -> list[BuildRecord]:
        return [b for b in self.builds if b.status == Status.PASS]


def result_schema() -> Json:
    """The JSON Schema of ktest.result/1 (ktest/schema/result-1.json, shipped with the package)."""
    schema: Json = json.loads(resources.files("ktest").joinpath("schema/result-1.json").read_text())
    return schema


def validate(r: Any, path: Path) -> Json:
    """A result.json may come from anywhere (merge runs on artifacts downloaded from forks): check it
    against the ktest.result/1 schema, and that every log it names lies inside its own run directory,
    before using it.  The first violation is named by its place in the document."""
    import jsonschema

    from ktest.base.errors import BadResult

    if not isinstance(r, dict):
        raise BadResult(path=path, why=f"a JSON {type(r).__name__}, not an object")
    if r.get("schema") != SCHEMA:
        raise BadResult(path=path, why=f"schema {r.get('schema')!r}, not {SCHEMA!r}")
    err = jsonschema.exceptions.best_match(jsonschema.Draft202012Validator(result_schema()).iter_errors(r))
    if err is not None:
        where = "/".join(str(p) for p in err.absolute_path) or "the top level"
        raise BadResult(path=path, why=f"at {where}: {err.message[:200]}")
    shard = (r.get("settings") or {}).get("shard")
    if shard and shard["index"] > shard["count"]:
        raise BadResult(path=path, why=f"at settings/shard: index {shard['index']} is more than count {shard['count']}")
    root = Path(path).parent.resolve()
    for b in r["boots"]:
        for k in ("console_log", "stdout_log"):
            v = (b.get("boot") or {}).get(k) if isinstance(b, dict) else None
            if v is None:
                continue
            p = (root / str(v)).resolve()
            if not p.is_relative_to(root):
                raise BadResult(path=path, why=f"boot log {str(v)!r} lies outside the run directory")
    return r
