"""Kernel console analysis: find splats (panic, Oops/BUG, WARNING, hung task, RCU stall, KASAN,
lockdep, UBSAN), cut out each block, and fingerprint it by its first few meaningful functions.

Pure: text in, records out.  A fingerprint ignores addresses, offsets, PIDs and timestamps, so the
same bug gives the same fingerprint on every boot and build.
"""

from __future__ import annotations

import fnmatch
import json
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, cast

TS = re.compile(r"^\s*\[\s*(\d+\.\d+)\]\s?")        # printk time prefix
# (kind, pattern) in priority order; the first match on a line starts a splat
HEADERS: list[tuple[str, re.Pattern[str]]] = [
    ("kasan", re.compile(r"BUG: KASAN: ")),
    ("kfence", re.compile(r"BUG: KFENCE: ")),
    ("ubsan", re.compile(r"UBSAN: ")),
    ("lockdep", re.compile(r"WARNING: (possible circular locking dependency|possible recursive locking|"
                           r"inconsistent lock state|suspicious RCU usage|held lock freed|"
                           r"lock held when returning to user space|possible irq lock inversion)")),
    ("hung_task", re.compile(r"INFO: task \S+ blocked for more than \d+ seconds")),
    ("rcu_stall", re.compile(r"rcu: INFO: rcu_\w+ (self-)?detected stall|"
                             r"INFO: rcu_\w+ (self-)?detected stalls? on CPU")),
    ("soft_lockup", re.compile(r"watchdog: BUG: soft lockup")),
    # a page fault in the kernel is reported as "BUG: ..." and then "Oops: ...": it is an Oops
    ("oops", re.compile(r"BUG: (kernel NULL pointer dereference|unable to handle)|Oops: |general protection fault")),
    ("bug", re.compile(r"kernel BUG at |BUG: (?!KASAN|KFENCE)")),
    ("warning", re.compile(r"WARNING: CPU: \d+ PID: \d+ at ")),
    ("panic", re.compile(r"Kernel panic - not syncing: ")),
]
END = re.compile(r"---\[ end (trace|Kernel panic)")
FUNC = re.compile(r"^\s*(\? )?([A-Za-z_][\w.]*)\+0x[0-9a-f]+/0x[0-9a-f]+")
RIP = re.compile(r"RIP: \d+:([A-Za-z_][\w.]*)\+0x")
WARN_AT = re.compile(r"WARNING: CPU: \d+ PID: \d+ at \S+ ([A-Za-z_][\w.]*)\+0x")
# Frames that say how we got to the report, not where the bug is.
NOISE = {
    "dump_stack", "dump_stack_lvl", "show_stack", "__warn", "warn_slowpath_fmt", "report_bug",
    "handle_bug", "exc_invalid_op", "asm_exc_invalid_op", "panic", "vpanic", "die", "oops_end",
    "__die", "die_body", "do_trap", "do_error_trap", "exc_page_fault", "asm_exc_page_fault",
    "page_fault_oops", "kernelmode_fixup_or_oops", "__bad_area_nosemaphore", "bad_area_nosemaphore",
    "do_user_addr_fault", "do_kern_addr_fault", "kasan_report", "print_report", "__asan_load8",
    "__asan_store8", "check_panic_on_warn", "__warn_printk", "lkdtm_do_action", "direct_entry",
    "entry_SYSCALL_64_after_hwframe", "do_syscall_64", "x64_sys_call", "ret_from_fork",
    "ret_from_fork_asm", "kthread", "worker_thread", "process_one_work", "sysrq_handle_crash",
    "exc_general_protection", "asm_exc_general_protection", "rcu_dump_cpu_stacks",
    "print_cpu_stall", "rcu_sched_clock_irq", "update_process_times", "tick_nohz_handler",
    "__hrtimer_run_queues", "hrtimer_interrupt", "__sysvec_apic_timer_interrupt",
    "sysvec_apic_timer_interrupt", "asm_sysvec_apic_timer_interrupt", "lock_acquire",
    "__lock_acquire", "validate_chain", "check_prev_add", "check_noncircular", "print_circular_bug",
    "check_hung_task", "check_hung_uninterruptible_tasks", "watchdog", "__schedule", "schedule",
}
MAX_BLOCK = 120


@dataclass
class Splat:
    kind: str
    title: str                  # the header line, without timestamp
    fingerprint: str            # kind:func1/func2/func3
    functions: list[str]
    text: str                   # the whole block
    line: int                   # 1-based line in the console log
    known: str | None = None    # reason, if a known-issues entry matched
    time_s: float | None = None  # the header line's printk timestamp (seconds since boot)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def _kind(line: str) -> str | None:
    for kind, pat in HEADERS:
        if pat.search(line):
            return kind
    return None


def _functions(block: list[str], n: int = 3) -> list[str]:
    funcs: list[str] = []
    for l in block:
        for pat in (WARN_AT, RIP):
            if m := pat.search(l):
                if m.group(1) not in NOISE and m.group(1) not in funcs:
                    funcs.append(m.group(1))
    for l in block:
        m = FUNC.match(l)
        if not m or m.group(1):        # "? func" frames are unreliable guesses
            continue
        f = m.group(2)
        if f not in NOISE and f not in funcs:
            funcs.append(f)
        if len(funcs) >= n:
            break
    return funcs[:n]


def _title_key(title: str) -> str:
    """A stable stand-in for call-trace-less splats: digits and addresses removed."""
    t = re.sub(r"0x[0-9a-f]+|\b\d+\b", "N", title)
    return re.sub(r"\s+", " ", t).strip()[:80]


def _stamp(line: str) -> float | None:
    m = TS.match(line)
    return float(m.group(1)) if m else None


def parse(text: str) -> list[Splat]:
    raw = text.splitlines()
    lines = [TS.sub("", l.rstrip("\r")) for l in raw]
    splats: list[Splat] = []
    i = 0
    while i < len(lines):
        kind = _kind(lines[i])
        if not kind:
            i += 1
            continue
        start, j = i, i + 1
        while j < len(lines) and j - start < MAX_BLOCK:
            if END.search(lines[j]):
                j += 1
                break
            nk = _kind(lines[j])
            # "kernel BUG at"/"BUG: kernel NULL pointer dereference" are followed by their own
            # "Oops: ..." line, and lockdep reports start with a WARNING line: same splat.
            # Any other header (a panic after an oops, a second WARNING) starts a new one.
            same = (nk == "oops" and kind in ("bug", "oops") and j - start <= 4) or (kind == "lockdep" and nk == "warning")
            if nk and not same:
                break
            j += 1
        block = lines[start:j]
        funcs = _functions(block)
        title = lines[start].strip()
        fp = f"{kind}:{'/'.join(funcs) if funcs else _title_key(title)}"
        splats.append(Splat(kind=kind, title=title, fingerprint=fp, functions=funcs,
                            text="\n".join(block), line=start + 1, time_s=_stamp(raw[start])))
        i = j
    return splats


@dataclass
class KnownIssues:
    """known-issues.json: [{"fingerprint": "warning:foo/*", "reason": "..."}] for splats, and
    [{"check": "bonding.active_backup.peer_notification", "reason": "..."}] for checks the base tree is
    known to fail (the check is still compared: it can get worse); fnmatch patterns."""

    entries: list[dict[str, Any]] = field(default_factory=list)

    @classmethod
    def load(cls, path: Path | None) -> "KnownIssues":
        """The user's --known-issues file (none: no entries); a missing or malformed one is an error."""
        from ktest.base.errors import BadKnownIssues, KnownIssuesMissing

        from ktest.base.safeio import SMALL_LIMIT, read_json_or

        if not path:
            return cls()
        entries = read_json_or(path, SMALL_LIMIT, KnownIssuesMissing, BadKnownIssues)
        if why := _bad_entries(entries):
            raise BadKnownIssues(path=path, why=why)
        return cls(entries)

    @classmethod
    def for_tree(cls, tree_name: str, path: Path | None = None) -> "KnownIssues":
        """ktest's own list for a default tree (ktest/known/debian-<version>.json) plus the user's file."""
        own = Path(__file__).parent.parent / "known" / f"debian-{tree_name.removeprefix('linux-')}.json"
        entries = json.loads(own.read_text()) if own.exists() else []
        return cls(entries + cls.load(path).entries)

    def check(self, path: str) -> str | None:
        for e in self.entries:
            if "check" in e and fnmatch.fnmatchcase(path, e["check"]):
                return cast(str, e.get("reason", "known issue"))      # _bad_entries: a string
        return None

    def mark(self, splats: list[Splat]) -> list[Splat]:
        for s in splats:
            for e in self.entries:
                if "fingerprint" in e and fnmatch.fnmatchcase(s.fingerprint, e["fingerprint"]):
                    s.known = e.get("reason", "known issue")
                    break
        return splats


def _bad_entries(entries: object) -> str | None:
    """Why `entries` is not a list of {"fingerprint" or "check": PATTERN, "reason": TEXT}, or None."""
    if not isinstance(entries, list):
        return f"a JSON {type(entries).__name__}, not a list"
    for i, e in enumerate(entries):
        if not isinstance(e, dict):
            return f"entry {i} is a JSON {type(e).__name__}, not an object"
        keys = [k for k in ("fingerprint", "check") if k in e]
        if len(keys) != 1 or not isinstance(e[keys[0]], str):
            return f"entry {i} needs exactly one string 'fingerprint' or 'check'"
        if not isinstance(e.get("reason", ""), str):
            return f"entry {i}'s 'reason' is not a string"
    return None


def crashed(splats: list[Splat]) -> bool:
    """A splat that ends the guest (as opposed to a WARNING the kernel survives)."""
    return any(s.kind in ("panic",) for s in splats)


# A kernel that printed one of these is dead or dying: a panic ends it, an Oops/BUG kills the task
# that hit it (often holding a lock everyone else then waits for), and a hung task or a lockup means
# something already waits forever.  A boot that shows one and whose harness then goes quiet is ended.
FATAL = ("panic", "oops", "bug")
STUCK = ("hung_task", "soft_lockup", "rcu_stall")


def fatal_kind(line: str) -> str | None:
    """For a live console line: the kind of fatal or stuck splat it starts, else None."""
    kind = _kind(TS.sub("", line))
    return kind if kind in FATAL + STUCK else None


# Markers the guest harness writes to /dev/kmsg around each check (ktest.guest.plugin), so the console
# itself says which check ran when a splat appeared: "ktest: check start PATH" / "ktest: check end PATH STATUS"
MARKER = re.compile(r"ktest: check (start|end) (\S+)")


def markers(text: str) -> list[tuple[int, str, str]]:
    """(1-based line, "start"|"end", check path) for each harness marker on the console."""
    out = []
    for i, l in enumerate(text.splitlines(), 1):
        if "ktest: check " in l and (m := MARKER.search(l)):
            out.append((i, m.group(1), m.group(2)))
    return out
