"""Typed records that flow between the stages (tree -> series -> build -> boot -> results)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from pathlib import Path


@dataclass
class Tree:
    """A kernel source tree at a base commit.  `repo` is where its objects live (never written to);
    `shadow` is ktest's own bare repo in the cache that borrows them and receives applied series."""

    name: str            # "linux-6.12.117" or the user's path
    kind: str            # "debian" | "user"
    repo: Path
    shadow: Path
    base: str            # full commit sha
    base_rev: str        # what the user asked for ("v6.12.117", "HEAD", ...)
    version: str         # "6.12.117" from the Makefile

    def to_json(self) -> dict:
        d = asdict(self)
        d["repo"], d["shadow"] = str(self.repo), str(self.shadow)
        return d


@dataclass
class Patch:
    index: int           # 1-based position in the series
    name: str            # file name (or "mbox#N")
    subject: str
    author: str
    date: str
    sha256: str          # of the patch text as given
    text: str = field(repr=False)
    commit: str | None = None   # set once applied

    def to_json(self) -> dict:
        d = asdict(self)
        d.pop("text")
        return d


@dataclass
class Series:
    name: str
    path: Path
    patches: list[Patch]
    cover: str | None = None          # cover letter subject, if one was recognised
    expected: dict | None = None      # the series' declared expected effect (expected.json)
    range: dict | None = None         # a revision range as the series: spec, repo, start, end (full shas)

    @property
    def patchset_hash(self) -> str:
        """KCIDB: sha256 over the newline-terminated sha256 of each patch, in order."""
        import hashlib

        return hashlib.sha256("".join(p.sha256 + "\n" for p in self.patches).encode()).hexdigest()

    def applying(self, tree_name: str, base_rev: str) -> str:
        """What the apply stage does, in words: a range is built as it is on its start (nothing is
        applied); patches are applied to the tree's base."""
        n = len(self.patches)
        if self.range:
            return f"[{self.name}] {n} commit{'s' if n != 1 else ''} of {tree_name} {self.range['start'][:12]}, " \
                   "built as they are"
        return f"[{self.name}] applying {n} patch{'es' if n != 1 else ''} to {tree_name} {base_rev}"

    def to_json(self) -> dict:
        return {
            "name": self.name,
            "path": str(self.path),
            "cover": self.cover,
            "patchset_hash": self.patchset_hash,
            "patches": [p.to_json() for p in self.patches],
            "expected": self.expected,
            "range": self.range,
        }


@dataclass
class Warning_:
    file: str
    line: int
    message: str

    def key(self) -> tuple[str, str]:
        # Line numbers move when a patch adds lines above; compare on file + message.
        return (self.file, self.message)


@dataclass
class Build:
    commit: str
    config_key: str
    key: str
    dir: Path
    status: str                      # "PASS" | "FAIL"
    cached: bool
    duration_s: float
    warnings: list[Warning_] = field(default_factory=list)
    error: str | None = None

    @property
    def bzimage(self) -> Path:
        return self.dir / "bzImage"

    @property
    def config(self) -> Path:
        return self.dir / "config"

    @property
    def log(self) -> Path:
        return self.dir / "build.log"

    def to_json(self) -> dict:
        return {
            "commit": self.commit,
            "config_key": self.config_key,
            "key": self.key,
            "dir": str(self.dir),
            "status": self.status,
            "cached": self.cached,
            "duration_s": round(self.duration_s, 2),
            "warnings": [asdict(w) for w in self.warnings],
            "error": self.error,
        }


# --- the run's result (ktest.result/1): records the stages write, serialised by to_json -------------

@dataclass
class BuildRecord:
    """One entry of result["builds"]: the base or a patch, built (PASS) or not (FAIL, with the error)."""
    label: str                       # "base", "patch 2/3"
    commit: str | None
    status: str                      # "PASS" | "FAIL"
    cached: bool = False
    duration_s: float | None = None
    key: str | None = None           # the artifact's key, for `ktest boot --build KEY`
    n_warnings: int | None = None
    new_warnings: list[dict] = field(default_factory=list)
    error: str | None = None

    @classmethod
    def of(cls, label: str, b: Build, new: list[Warning_] | None = None) -> "BuildRecord":
        return cls(label, b.commit, "PASS", b.cached, round(b.duration_s, 1), b.key, len(b.warnings),
                   [asdict(w) for w in new or []])

    @classmethod
    def failed(cls, label: str, commit: str | None, error: str) -> "BuildRecord":
        return cls(label, commit, "FAIL", error=error)

    def to_json(self) -> dict:
        return asdict(self)


@dataclass
class Culprit:
    """result["culprit"]: the patch a regression (or a failure to apply or build) is laid to."""
    patch: int
    subject: str
    why: str
    error: str | None = None

    def to_json(self) -> dict:
        d = asdict(self)
        if self.error is None:
            del d["error"]
        return d


@dataclass
class Verdict:
    """result["verdict"]: the run's claim and its exit code (0 no regression, 1 regression, 2 could
    not run, 3 undecided: still in doubt after the run's last round), with what it rests on.  A run that
    could not run says at which stage and why."""
    status: str                      # "no regression" | "regression" | "undecided" | "could not run"
    exit_code: int
    regressions: list[str] = field(default_factory=list)
    improvements: list[str] = field(default_factory=list)
    flaky: list[str] = field(default_factory=list)
    inconclusive: list[str] = field(default_factory=list)
    undecided: list[str] = field(default_factory=list)     # what keeps the run from a claim: checks, metrics
    not_run: list[str] = field(default_factory=list)
    not_compared: list[str] = field(default_factory=list)   # ran on one side only (skipped on the other)
    rule: str | None = None
    crash: dict | None = None
    stage: str | None = None         # where a run that could not run (or a build regression) stopped
    error: str | None = None

    @classmethod
    def could_not_run(cls, stage: str, error: str, exit_code: int = 2, **kw) -> "Verdict":
        return cls("could not run", exit_code, stage=stage, error=error, **kw)

    def cannot_run(self, stage: str, error: str, exit_code: int = 2) -> "Verdict":
        """This verdict, but the run could not run after all (its lists stay, for the reader)."""
        return replace(self, status="could not run", stage=stage, error=error, exit_code=exit_code)

    @classmethod
    def read(cls, d: dict | None) -> "Verdict":
        """A stored result's verdict; a result without one (a run cut short) reads as "?", exit 2."""
        return cls.from_json(d) if d else cls("?", 2)

    @classmethod
    def from_json(cls, d: dict) -> "Verdict":
        known = {f for f in cls.__dataclass_fields__}
        return cls(**{k: v for k, v in d.items() if k in known})

    def to_json(self) -> dict:
        d = asdict(self)
        for k in ("stage", "error", "rule"):
            if d[k] is None:
                del d[k]
        return d


@dataclass
class BootRecord:
    """One entry of result["boots"]: a guest run (checks.GuestRun.to_json()) with its place in the run:
    side, round (0 for a retry or a culprit boot) and purpose; log paths relative to the run dir."""
    run: dict
    side: str                        # "base", "patched", "patch 2"
    round: int
    purpose: str = "round"           # "round" | "retry" | "bisect"

    def to_json(self, outdir: Path | None = None) -> dict:
        d = {**self.run, "boot": dict(self.run["boot"]), "side": self.side, "round": self.round,
             "purpose": self.purpose}
        if outdir is not None:
            for k in ("console_log", "stdout_log"):
                d["boot"][k] = relative_path(Path(d["boot"][k]), outdir)
        return d


def relative_path(p: Path, base: Path) -> str:
    try:
        return str(Path(p).resolve().relative_to(Path(base).resolve()))
    except ValueError:
        return str(p)
