"""A fake kernel tree for unit tests: a git repo whose Makefile delegates to fakebuild.py.

The fake build prints `  CC      x.o` for every .c file, turns `#warning MSG` / `#error MSG` lines into
gcc-style diagnostics, sleeps if a file SLOW exists (for interrupt tests), writes
O/arch/x86/boot/bzImage, and appends one line per make call to $KTEST_FAKE_CALLS.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

MAKEFILE = """\
VERSION = 6
PATCHLEVEL = 12
SUBLEVEL = 99
EXTRAVERSION =
O ?= .
Makefile fakebuild.py: ;
%:
\t@python3 $(CURDIR)/fakebuild.py $@ $(O)
"""

FAKEBUILD = r'''
import os, sys, time, hashlib, pathlib
target, obj = sys.argv[1], pathlib.Path(sys.argv[2])
src = pathlib.Path(__file__).parent
calls = os.environ.get("KTEST_FAKE_CALLS")
if calls:
    with open(calls, "a") as f:
        f.write(target + "\n")
obj.mkdir(parents=True, exist_ok=True)
if target == "tinyconfig":
    (obj / ".config").write_text("CONFIG_64BIT=y\n")
    sys.exit(0)
if target == "olddefconfig":
    # a symbol named in UNMET (one per line) has dependencies this fake Kconfig cannot meet
    unmet = set((src / "UNMET").read_text().split()) if (src / "UNMET").exists() else set()
    lines = (obj / ".config").read_text().splitlines()
    (obj / ".config").write_text("".join(l + "\n" for l in lines if l.split("=")[0] not in unmet))
    sys.exit(0)
if target != "bzImage":
    sys.exit(0)
if (src / "SLOW").exists():
    print("  CC      slow.o", flush=True)
    time.sleep(60)
h = hashlib.sha256()
rc = 0
for c in sorted(src.rglob("*.c")):
    rel = c.relative_to(src)
    print(f"  CC      {str(rel)[:-2]}.o", flush=True)
    for n, line in enumerate(c.read_text().splitlines(), 1):
        if line.startswith("#warning "):
            print(f"{src}/{rel}:{n}:2: warning: {line[9:]} [-Wcpp]", file=sys.stderr)
        if line.startswith("#error "):
            print(f"{src}/{rel}:{n}:2: error: {line[7:]}", file=sys.stderr)
            rc = 2
    h.update(c.read_bytes())
if rc:
    print(f"make[4]: *** [scripts/Makefile.build:229: x.o] Error 1", file=sys.stderr)
    sys.exit(rc)
out = obj / "arch/x86/boot"
out.mkdir(parents=True, exist_ok=True)
(out / "bzImage").write_text("fake bzImage " + h.hexdigest() + "\n")
'''

MERGE = """#!/bin/sh
# fake merge_config.sh -m -O DIR BASE FRAGS...
shift; shift; dir=$1; shift; base=$1; shift
cat "$base" "$@" > "$dir/.config.new" && mv "$dir/.config.new" "$dir/.config"
"""


def git(cwd, *args):
    env = {"GIT_AUTHOR_NAME": "T", "GIT_AUTHOR_EMAIL": "t@e", "GIT_COMMITTER_NAME": "T",
           "GIT_COMMITTER_EMAIL": "t@e", "GIT_AUTHOR_DATE": "2020-01-01T00:00:00+0000",
           "GIT_COMMITTER_DATE": "2020-01-01T00:00:00+0000", "PATH": "/usr/bin:/bin", "HOME": str(cwd)}
    return subprocess.run(["git", *args], cwd=cwd, env=env, check=True, capture_output=True, text=True).stdout


def make_tree(path: Path) -> Path:
    path.mkdir(parents=True)
    (path / "Makefile").write_text(MAKEFILE)
    (path / "fakebuild.py").write_text(FAKEBUILD)
    kc = path / "scripts" / "kconfig"
    kc.mkdir(parents=True)
    (kc / "merge_config.sh").write_text(MERGE)
    (kc / "merge_config.sh").chmod(0o755)
    core = path / "net" / "core"
    core.mkdir(parents=True)
    (core / "link_watch.c").write_text("int a;\nint b;\nint c;\n")
    (core / "dev.c").write_text("int d;\n")
    git(path, "init", "-q", "-b", "master")
    git(path, "add", "-A")
    git(path, "commit", "-q", "-m", "base")
    git(path, "tag", "v6.12.99")
    return path


def make_series(tree: Path, dest: Path, edits: list[tuple[str, str, str]], cover: bool = False) -> Path:
    """Commit each (file, new_text, subject) on a scratch clone of `tree`; format-patch them to dest."""
    scratch = dest.parent / (dest.name + ".scratch")
    subprocess.run(["git", "clone", "-q", str(tree), str(scratch)], check=True)
    for f, text, subject in edits:
        (scratch / f).parent.mkdir(parents=True, exist_ok=True)
        (scratch / f).write_text(text)
        git(scratch, "add", "-A")
        git(scratch, "commit", "-q", "-m", subject)
    args = ["format-patch", "-q", "-o", str(dest), "HEAD~%d" % len(edits)]
    if cover:
        args.insert(1, "--cover-letter")
    git(scratch, *args)
    return dest


def wait_for_fake_make(cache: Path, proc, timeout: float = 120.0) -> None:
    """Until this test's fake make (the fakebuild.py under `cache`) runs; fail the test if `proc` (the
    ktest command that starts it) ends first or it never starts."""
    import time

    import pytest

    mine = ["pgrep", "-f", f"{cache}/.*fakebuild.py bzImage"]
    deadline = time.monotonic() + timeout
    while subprocess.run(mine, capture_output=True).returncode != 0:
        if time.monotonic() > deadline or proc.poll() is not None:
            proc.kill()
            pytest.fail(f"fake make never started: {proc.communicate()[1]}")
        time.sleep(0.2)
