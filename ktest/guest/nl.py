"""A minimal rtnetlink client for passive link timing, with no third-party magic in the way.

Why not `ip` or a library call that might look the device up first: a single-device RTM_GETLINK
forces linkwatch_sync_dev() and hides the very delay being measured.  This module only ever sends
RTM_NEWLINK (set flags / carrier) by ifindex, and listens to RTM_NEWLINK multicasts (RTMGRP_LINK),
which are passive.  Timestamps are CLOCK_MONOTONIC in this one process.
"""

from __future__ import annotations

import os
import select
import socket
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

NETLINK_ROUTE = 0
RTMGRP_LINK = 1
RTM_NEWLINK, RTM_DELLINK = 16, 17
NLMSG_ERROR, NLMSG_DONE = 2, 3
NLM_F_REQUEST, NLM_F_ACK = 1, 4
IFLA_IFNAME, IFLA_OPERSTATE, IFLA_LINKMODE, IFLA_CARRIER, IFLA_EVENT = 3, 16, 17, 33, 44
IFLA_EVENTS = {1: "REBOOT", 2: "FEATURES", 3: "BONDING_FAILOVER", 4: "NOTIFY_PEERS", 5: "IGMP_RESEND",
               6: "BONDING_OPTIONS"}
IFF_UP, IFF_RUNNING, IFF_LOWER_UP = 0x1, 0x40, 0x10000
OPER = {0: "UNKNOWN", 1: "NOTPRESENT", 2: "DOWN", 3: "LOWERLAYERDOWN", 4: "TESTING", 5: "DORMANT", 6: "UP"}
NLMSGHDR = struct.Struct("=IHHII")
IFINFOMSG = struct.Struct("=BxHiII")


def now_ms() -> float:
    return time.clock_gettime(time.CLOCK_MONOTONIC) * 1000.0


@dataclass
class LinkEvent:
    t_ms: float          # CLOCK_MONOTONIC when received
    kind: str            # NEWLINK | DELLINK
    index: int
    name: str | None
    flags: int
    operstate: str | None
    ifla_event: str | None = None   # e.g. BONDING_FAILOVER (IFLA_EVENT)

    @property
    def running(self) -> bool:
        return bool(self.flags & IFF_RUNNING)

    def to_json(self, t0: float = 0.0) -> dict[str, Any]:
        names = [n for bit, n in ((IFF_UP, "UP"), (IFF_LOWER_UP, "LOWER_UP"), (IFF_RUNNING, "RUNNING"))
                 if self.flags & bit]
        return {"t_ms": round(self.t_ms - t0, 3), "event": self.kind, "dev": self.name, "flags": names,
                "operstate": self.operstate}


def _attrs(buf: bytes, off: int, end: int) -> dict[int, bytes]:
    out = {}
    while off + 4 <= end:
        alen, atype = struct.unpack_from("=HH", buf, off)
        if alen < 4:
            break
        out[atype & 0x3FFF] = buf[off + 4: off + alen]
        off += (alen + 3) & ~3
    return out


def parse_links(buf: bytes, t_ms: float) -> list[LinkEvent]:
    out, off = [], 0
    while off + NLMSGHDR.size <= len(buf):
        ln, typ, _flags, _seq, _pid = NLMSGHDR.unpack_from(buf, off)
        if ln < NLMSGHDR.size:
            break
        if typ in (RTM_NEWLINK, RTM_DELLINK):
            _fam, _type, index, flags, _chg = IFINFOMSG.unpack_from(buf, off + NLMSGHDR.size)
            a = _attrs(buf, off + NLMSGHDR.size + IFINFOMSG.size, off + ln)
            name = a[IFLA_IFNAME].rstrip(b"\0").decode() if IFLA_IFNAME in a else None
            oper = OPER.get(a[IFLA_OPERSTATE][0]) if IFLA_OPERSTATE in a else None
            ev = IFLA_EVENTS.get(struct.unpack_from("=I", a[IFLA_EVENT])[0]) if len(a.get(IFLA_EVENT, b"")) >= 4 else None
            out.append(LinkEvent(t_ms, "NEWLINK" if typ == RTM_NEWLINK else "DELLINK", index, name, flags, oper, ev))
        off += (ln + 3) & ~3
    return out


class Monitor:
    """Listens to link multicasts.  Open it before acting, so no event is missed.  Events that arrived
    in one batch after the one wait_for() returned are kept for the next call, not dropped: a fast
    kernel reports a slave's carrier-off and the bond's failover in one read."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_ROUTE)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
        self.sock.bind((0, RTMGRP_LINK))
        self.sock.setblocking(False)
        self.pending: list[LinkEvent] = []

    def drain(self) -> None:
        self.pending = []
        while True:
            try:
                self.sock.recv(1 << 16)
            except BlockingIOError:
                return

    def events(self, timeout_ms: float) -> list[LinkEvent]:
        out, self.pending = self.pending, []
        r, _, _ = select.select([self.sock], [], [], 0.0 if out else max(0.0, timeout_ms) / 1000.0)
        if not r:
            return out
        t = now_ms()
        while True:
            try:
                out += parse_links(self.sock.recv(1 << 16), t)
            except BlockingIOError:
                return out

    def wait_for(self, pred: Callable[[LinkEvent], bool], timeout_ms: float,
                 sink: list[LinkEvent] | None = None) -> LinkEvent | None:
        deadline = now_ms() + timeout_ms
        while (left := deadline - now_ms()) > 0 or self.pending:
            evs = self.events(max(0.0, left))
            for i, ev in enumerate(evs):
                if sink is not None:
                    sink.append(ev)
                if pred(ev):
                    self.pending = evs[i + 1:] + self.pending
                    return ev
        return None

    def close(self) -> None:
        self.sock.close()


class ThreadedMonitor(Monitor):
    """A Monitor whose socket is read by a thread of its own, waiting in select: each multicast (one
    message per read) is stamped when it arrives, not when the checking code next looks, so two events
    a few ms apart (a slave's carrier-off and the bond's failover at the next miimon tick) keep their
    gap while the caller is busy (asking the host for a link change, sending a stream).  Still passive:
    it only reads what the kernel multicasts.  Resolution: the reader's wake-up latency."""

    def __init__(self) -> None:
        import queue
        import threading

        super().__init__()
        self.q: queue.Queue[LinkEvent] = queue.Queue()
        self._stop = threading.Event()
        self._th = threading.Thread(target=self._run, daemon=True)
        self._th.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            r, _, _ = select.select([self.sock], [], [], 0.05)
            if not r:
                continue
            t = now_ms()
            try:
                buf = self.sock.recv(1 << 16)
            except (BlockingIOError, OSError):
                continue
            for ev in parse_links(buf, t):
                self.q.put(ev)

    def events(self, timeout_ms: float) -> list[LinkEvent]:
        import queue

        out, self.pending = self.pending, []
        try:
            if not out:
                out.append(self.q.get(timeout=max(0.0, timeout_ms) / 1000.0))
            while True:
                out.append(self.q.get_nowait())
        except queue.Empty:
            return out

    def drain(self) -> None:
        self.events(0.0)

    def close(self) -> None:
        self._stop.set()
        self._th.join(timeout=2.0)
        super().close()


class Link:
    """Sends RTM_NEWLINK requests by ifindex and waits for the kernel's ACK."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_ROUTE)
        self.sock.bind((0, 0))
        self.seq = 0

    def set(self, index: int, up: bool | None = None, carrier: bool | None = None,
            operstate: str | None = None, linkmode_dormant: bool | None = None) -> None:
        """operstate/linkmode_dormant: RFC 2863 operstate as userspace (a supplicant) sets it."""
        self.seq += 1
        flags = IFF_UP if up else 0
        change = IFF_UP if up is not None else 0
        body = IFINFOMSG.pack(socket.AF_UNSPEC, 0, index, flags, change)
        if carrier is not None:
            body += struct.pack("=HHB3x", 5, IFLA_CARRIER, 1 if carrier else 0)
        if linkmode_dormant is not None:
            body += struct.pack("=HHB3x", 5, IFLA_LINKMODE, 1 if linkmode_dormant else 0)
        if operstate is not None:
            code = {v: k for k, v in OPER.items()}[operstate]
            body += struct.pack("=HHB3x", 5, IFLA_OPERSTATE, code)
        msg = NLMSGHDR.pack(NLMSGHDR.size + len(body), RTM_NEWLINK, NLM_F_REQUEST | NLM_F_ACK, self.seq, 0) + body
        self.sock.send(msg)
        while True:
            buf = self.sock.recv(1 << 16)
            ln, typ, _f, seq, _p = NLMSGHDR.unpack_from(buf, 0)
            if typ == NLMSG_ERROR and seq == self.seq:
                err = struct.unpack_from("=i", buf, NLMSGHDR.size)[0]
                if err:
                    raise OSError(-err, f"RTM_NEWLINK ifindex {index}: {os.strerror(-err)}")
                return

    def close(self) -> None:
        self.sock.close()


def ifindex(name: str) -> int:
    return socket.if_nametoindex(name)
