#!/usr/bin/env bash
# Re-capture the console fixtures of tests/test_console.py from a real boot of the default tree's
# base kernel: a clean boot, and a boot where LKDTM provokes a WARNING, a BUG, an Oops and a panic.
set -euo pipefail
cd "$(dirname "$0")/.."
out=tests/fixtures/console
.venv/bin/python - "$out" <<'PY'
import sys
from pathlib import Path
from ktest.host.build import Builder
from ktest.base.cache import Cache
from ktest.host.tree import debian_tree
from ktest.boot.vm import BootSpec, boot, choose_accel
from ktest.base.progress import Progress

out = Path(sys.argv[1])
cache = Cache.open()
tree = debian_tree(cache)
bz = Builder(cache, tree).build(tree.base, "base").bzimage
accel = choose_accel(cache, bz, "auto", Progress())
d = "/sys/kernel/debug/provoke-crash/DIRECT"
cmds = {
    "clean-boot": "true",
    # each provocation in its own subshell: BUG and EXCEPTION kill the writing process, not the kernel
    "lkdtm": f"(echo WARNING > {d}); (echo BUG > {d}); (echo EXCEPTION > {d}); echo PANIC > {d}",
}
for name, cmd in cmds.items():
    work = cache.dir("work", f"capture-{name}")
    r = boot(BootSpec(bzimage=bz, command=cmd, rwdir=work / "rw", accel=accel, wait_started=False,
                      hard_timeout=300), work)
    dest = out / f"{name}-{tree.version}.log"
    dest.write_text(r.console_log.read_text(errors="replace"))
    print(f"{dest}: {r.outcome}")
PY
