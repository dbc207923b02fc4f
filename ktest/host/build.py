"""Kernel builds: out of tree, one worktree + O= dir per (tree, kconfig) lineage, ccache, artifacts
cached by (commit, kconfig, toolchain).

An artifact directory is assembled under a temporary name and renamed into place after its
meta.json is written, so a killed build never leaves an artifact that a later run would trust.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict
from pathlib import Path
from typing import IO, Any

from ktest.host import kconfig
from ktest.areas import selftest_exports
from ktest.base.cache import Cache, short_hash, write_json_atomic
from ktest.base.errors import BuildFailed, Interrupted, MissingHostTools
from ktest.host.gitutil import add_worktree, git
from ktest.base.proc import kill_group
from ktest.base.progress import Progress
from ktest.base.records import Build, Tree, Warning_

# tool -> Debian package
HOST_TOOLS = {"gcc": "gcc", "make": "make", "flex": "flex", "bison": "bison", "bc": "bc", "perl": "perl",
              "lz4": "lz4", "git": "git", "tar": "tar", "xz": "xz-utils"}
HOST_HEADERS = {"libelf.h": "libelf-dev"}
HEADER_DIRS = ("/usr/include", "/usr/local/include")

ERROR_RE = re.compile(r"^(?P<file>[^\s:]+):(?P<line>\d+):(?:\d+:)? (?:fatal )?error: (?P<msg>.*)$", re.M)
LINK_RE = re.compile(r"^(?P<file>[^\s:]+):(?:\(\S+\)|\S*): (?P<msg>undefined reference to .*)$", re.M)
MAKE_ERR_RE = re.compile(r"^make(?:\[\d+\])?: \*\*\* (?P<msg>.*)$", re.M)
WARN_RE = re.compile(r"^(?P<file>[^\s:]+):(?P<line>\d+):(?:\d+:)? warning: (?P<msg>.*)$", re.M)
CC_RE = re.compile(r"^\s+CC\s+(\S+)\.o$", re.M)

FIXED_BUILD_ENV = {
    # Reproducible kernels: the same commit + config gives the same image, and ccache hits more.
    "KBUILD_BUILD_TIMESTAMP": "Sat Jan  1 00:00:00 UTC 2000",
    "KBUILD_BUILD_USER": "ktest",
    "KBUILD_BUILD_HOST": "ktest",
    "KBUILD_BUILD_VERSION": "1",
}


def check_host_tools(which: Callable[[str], str | None] = shutil.which,
                     header_dirs: Iterable[str] = HEADER_DIRS) -> None:
    missing = {t: pkg for t, pkg in HOST_TOOLS.items() if which(t) is None}
    for h, pkg in HOST_HEADERS.items():
        if not any(Path(d, h).exists() for d in header_dirs):
            missing[h] = pkg
    if missing:
        raise MissingHostTools(missing=", ".join(missing), packages=" ".join(sorted(set(missing.values()))))


def toolchain_id() -> str:
    try:
        p = subprocess.run(["gcc", "--version"], capture_output=True, text=True)
    except FileNotFoundError:
        return "no-gcc"
    return p.stdout.splitlines()[0] if p.returncode == 0 and p.stdout else "gcc?"


def _norm(path: str, src: Path, obj: Path) -> str:
    for prefix in (f"{src}/", f"{obj}/", "../src/", "./"):
        if path.startswith(prefix):
            return path[len(prefix):]
    return path


def first_error(log: str, src: Path, obj: Path) -> tuple[str, str]:
    """(where, message) of the first real error in a build log."""
    if m := ERROR_RE.search(log):
        return f"{_norm(m['file'], src, obj)}:{m['line']}", m["msg"].strip()
    if m := LINK_RE.search(log):
        return _norm(m["file"], src, obj), m["msg"].strip()
    if m := MAKE_ERR_RE.search(log):
        return "make", m["msg"].strip()
    tail = [l for l in log.splitlines() if l.strip()][-1:] or ["no output"]
    return "unknown", tail[0][:200]


def parse_warnings(log: str, src: Path, obj: Path) -> list[Warning_]:
    seen, out = set(), []
    for m in WARN_RE.finditer(log):
        w = Warning_(_norm(m["file"], src, obj), int(m["line"]), m["msg"].strip())
        if (w.file, w.line, w.message) not in seen:
            seen.add((w.file, w.line, w.message))
            out.append(w)
    return out


def compiled_sources(log: str) -> set[str]:
    return {f"{m}.c" for m in CC_RE.findall(log)}


def new_warnings(base: list[Warning_], patched: list[Warning_]) -> list[Warning_]:
    have = {w.key() for w in base}
    return [w for w in patched if w.key() not in have]


class Builder:
    """Builds commits of one tree with one kconfig.  Reuse one Builder for base and patches so that
    they share the lineage (and build incrementally)."""

    def __init__(self, cache: Cache, tree: Tree, areas: Iterable[str] = kconfig.AREAS, jobs: int | None = None,
                 progress: Progress | None = None, extra: kconfig.Fragment | None = None) -> None:
        self.cache, self.tree = cache, tree
        self.frags = kconfig.fragments(list(areas), extra)
        self.config_key = kconfig.config_key(self.frags)
        self.jobs = jobs or os.cpu_count() or 2
        self.progress = progress or Progress()
        self.lineage = cache.root / "lineages" / short_hash(str(tree.shadow), self.config_key)
        self._toolchain: str | None = None

    def key(self, commit: str) -> str:
        if self._toolchain is None:
            self._toolchain = toolchain_id()
        return short_hash(commit, self.config_key, str(self._toolchain), "artifact/v2", n=24)

    def cached(self, commit: str) -> Build | None:
        art = self.cache.root / "artifacts" / self.key(commit)
        meta = art / "meta.json"
        if not meta.exists() or not (art / "bzImage").exists():
            return None
        d = json.loads(meta.read_text())
        return Build(commit=commit, config_key=self.config_key, key=d["key"], dir=art, status="PASS",
                     cached=True, duration_s=0.0, warnings=[Warning_(**w) for w in d["warnings"]])

    def build(self, commit: str, label: str = "") -> Build:
        label = label or commit[:12]
        if hit := self.cached(commit):
            self.progress.info(f"build {label}: cache hit ({hit.dir})")
            return hit
        check_host_tools()
        with self.cache.lock(f"lineage-{self.lineage.name}"):
            if hit := self.cached(commit):  # built by a concurrent run while we waited
                return hit
            return self._build_locked(commit, label)

    # -- internals ------------------------------------------------------------------------------

    def _env(self) -> dict[str, Any]:
        env = dict(os.environ, **FIXED_BUILD_ENV, LC_ALL="C")
        if shutil.which("ccache"):
            env.update(CCACHE_DIR=str(self.cache.dir("ccache")), CCACHE_BASEDIR=str(self.cache.root),
                       CCACHE_NOHASHDIR="1", CCACHE_MAXSIZE=env.get("CCACHE_MAXSIZE", "5G"))
        return env

    def _make_args(self, obj: Path) -> list[str]:
        args = ["make", f"O={obj}", f"-j{self.jobs}"]
        if shutil.which("ccache"):
            args.append("CC=ccache gcc")
        return args

    def _checkout(self, src: Path, commit: str) -> None:
        if not (src / ".git").exists():
            if src.exists():
                shutil.rmtree(src)
            add_worktree(self.tree.shadow, src, commit)
        else:
            # Only files that differ are rewritten, so make rebuilds only what the commit changed.
            git("checkout", "-q", "-f", "--detach", commit, cwd=src)
            git("clean", "-q", "-fdx", cwd=src)

    def _configure(self, src: Path, obj: Path, log: IO[str]) -> None:
        stamp = obj / ".ktest-config-key"
        if stamp.exists() and stamp.read_text().strip() == self.config_key and (obj / ".config").exists():
            return  # same request; make's syncconfig picks up Kconfig changes from the commit
        self.progress.status("configuring (tinyconfig + fragments + olddefconfig)")
        paths = kconfig.write_fragments(self.frags, self.lineage / "fragments")
        env = self._env()
        steps = [
            ["make", f"O={obj}", "tinyconfig"],
            ["scripts/kconfig/merge_config.sh", "-m", "-O", str(obj), str(obj / ".config"), *map(str, paths)],
            ["make", f"O={obj}", "olddefconfig"],
        ]
        for cmd in steps:
            p = subprocess.run(cmd, cwd=src, env=env, stdout=log, stderr=subprocess.STDOUT)
            if p.returncode != 0:
                log.flush()
                where, msg = first_error(Path(log.name).read_text(errors="replace"), src, obj)
                raise BuildFailed(what=f"config ({' '.join(cmd[:2])})", where=where, first_error=msg, log=log.name)
        config = (obj / ".config").read_text()
        kconfig.verify(config, kconfig.requested(self.frags), obj / ".config")
        if ungranted := kconfig.unmet(config, kconfig.requested(self.frags, optional=True)):
            note = f"kconfig asked where available, not granted by this tree: {', '.join(ungranted)}"
            log.write(f"# ktest: {note}\n")
            self.progress.info(note)
        stamp.write_text(self.config_key + "\n")

    def _run_make(self, src: Path, obj: Path, log: IO[str], label: str) -> int:
        total_est = int((self.lineage / "objects.count").read_text()) if (self.lineage / "objects.count").exists() else 0
        proc = subprocess.Popen([*self._make_args(obj), "bzImage"], cwd=src, env=self._env(),
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                errors="replace", start_new_session=True)
        t0, n = time.monotonic(), 0
        try:
            for line in proc.stdout or ():
                log.write(line)
                if line.startswith("  CC "):
                    n += 1
                    of = f"/~{total_est}" if total_est else ""
                    self.progress.status(f"build {label}: {n}{of} objects, {time.monotonic() - t0:.0f}s, {line.split()[-1]}")
            rc = proc.wait()
        except KeyboardInterrupt:
            kill_group(proc, grace=5.0, first=signal.SIGINT)
            raise Interrupted(stage=f"build {label}") from None
        finally:
            self.progress.clear()
        if rc == 0 and n > max(total_est, 0) // 2:
            (self.lineage / "objects.count").write_text(str(n))
        return rc

    def _build_locked(self, commit: str, label: str) -> Build:
        src, obj = self.lineage / "src", self.lineage / "obj"
        obj.mkdir(parents=True, exist_ok=True)
        key = self.key(commit)
        logs = self.cache.dir("logs")
        log_path = logs / f"build-{key}.log"
        t0 = time.monotonic()
        self.progress.stage(f"building {label} ({commit[:12]}) in {self.lineage}")
        self._checkout(src, commit)
        with open(log_path, "w") as log:
            log.write(f"# ktest build {label} {commit} config {self.config_key}\n")
            log.flush()
            self._configure(src, obj, log)
            log.flush()
            rc = self._run_make(src, obj, log, label)
        text = log_path.read_text(errors="replace")
        if rc != 0:
            where, msg = first_error(text, src, obj)
            raise BuildFailed(what=f"{label} ({commit[:12]})", where=where, first_error=msg, log=log_path)
        kconfig.verify((obj / ".config").read_text(), kconfig.requested(self.frags), obj / ".config")
        warnings = self._lineage_warnings(text, src, obj)
        duration = time.monotonic() - t0
        return self._store(commit, key, obj, log_path, warnings, duration)

    def _lineage_warnings(self, log: str, src: Path, obj: Path) -> list[Warning_]:
        """Warnings of the whole image, not just of what this (incremental) build recompiled: the
        lineage keeps a map file -> warnings, refreshed for every file this build compiled."""
        path = self.lineage / "warnings.json"
        by_file: dict[str, list[dict[str, Any]]] = json.loads(path.read_text()) if path.exists() else {}
        for f in compiled_sources(log):
            by_file.pop(f, None)
        fresh: dict[str, list[dict[str, Any]]] = {}
        for w in parse_warnings(log, src, obj):
            fresh.setdefault(w.file, []).append(asdict(w))
        by_file.update(fresh)
        write_json_atomic(path, by_file)
        return [Warning_(**w) for f in sorted(by_file) for w in by_file[f]]

    # The tree's own selftests travel with the kernel they belong to (the guest runs them): what the
    # areas' files export.
    def _export_selftests(self, commit: str, dest: Path) -> None:
        gd = ["--git-dir", str(self.tree.shadow)]
        paths = [p for p in selftest_exports()
                 if git(*gd, "cat-file", "-e", f"{commit}:{p}", check=False).returncode == 0]
        dest.mkdir(parents=True)
        if not paths:
            return
        archive = subprocess.run(["git", *gd, "archive", "--format=tar", commit, *paths], capture_output=True)
        if archive.returncode == 0:
            # -m: the files get the time of extraction, not the commit's; a commit dated ahead of the host's
            # clock (the mutant corpus is) would otherwise print a warning per file on the user's terminal
            subprocess.run(["tar", "-x", "-m", "-C", str(dest)], input=archive.stdout, check=False)

    def _store(self, commit: str, key: str, obj: Path, log_path: Path, warnings: list[Warning_],
               duration: float) -> Build:
        arts = self.cache.dir("artifacts")
        final = arts / key
        staging = arts / f".tmp-{key}-{os.getpid()}"
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir()
        shutil.copy2(obj / "arch/x86/boot/bzImage", staging / "bzImage")
        shutil.copy2(obj / ".config", staging / "config")
        if (obj / "System.map").exists():
            shutil.copy2(obj / "System.map", staging / "System.map")
        shutil.copy2(log_path, staging / "build.log")
        self._export_selftests(commit, staging / "selftests")
        meta = {"key": key, "commit": commit, "config_key": self.config_key, "tree": self.tree.name,
                "toolchain": self._toolchain, "duration_s": round(duration, 2), "built_at": time.time(),
                "warnings": [asdict(w) for w in warnings]}
        write_json_atomic(staging / "meta.json", meta)
        if final.exists():
            shutil.rmtree(final)
        os.rename(staging, final)
        self.progress.info(f"built {commit[:12]} in {duration:.0f}s -> {final}/bzImage")
        return Build(commit=commit, config_key=self.config_key, key=key, dir=final, status="PASS",
                     cached=False, duration_s=duration, warnings=warnings)
