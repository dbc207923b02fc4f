"""Host-side link control: pull a guest's virtio-net cable from QEMU, as a cable pull or a switch port
going down would, on the guest's request.

Every guest gets a QMP socket (`-qmp unix:PATH,server=on,wait=off`).  A check in the guest writes a
request file into its rwdir (`link/N.req`: {"netdev": "n0", "up": false}); the host's LinkAgent thread
runs QMP `set_link` and answers with `link/N.ack` ({"ok": true, "host_ms": ...}).  The guest then sees
virtio's config-change interrupt and netif_carrier_off/on, and observes the rest passively.  The
request-to-ack time is context for the reader; checks time the kernel's reaction in the guest."""

from __future__ import annotations

import json
import os
import re
import socket
import threading
import time
from pathlib import Path

NETDEV = re.compile(r"^n\d{1,2}$")       # vng --network loop: n0, n1, ...


class QMPError(Exception):
    pass


class MonitorUnavailable(QMPError):
    """QEMU's monitor socket cannot be opened (or greets wrongly): the machine's problem, not a check's."""


class QMP:
    """A minimal QMP client over a unix socket: greeting, qmp_capabilities, then one command at a time."""

    def __init__(self, path: Path, connect_timeout: float = 20.0):
        self.path, self.connect_timeout = path, connect_timeout
        self.sock: socket.socket | None = None
        self.buf = b""

    def _line(self, deadline: float) -> dict:
        while b"\n" not in self.buf:
            self.sock.settimeout(max(0.05, deadline - time.monotonic()))
            try:
                chunk = self.sock.recv(65536)
            except socket.timeout:
                raise QMPError("QEMU's monitor did not answer") from None
            if not chunk:
                raise QMPError("QEMU closed its monitor socket")
            self.buf += chunk
        line, _, self.buf = self.buf.partition(b"\n")
        return json.loads(line)

    def _reply(self, deadline: float) -> dict:
        while True:
            msg = self._line(deadline)
            if "return" in msg or "error" in msg:
                return msg            # asynchronous "event" messages are skipped

    def connect(self) -> None:
        deadline = time.monotonic() + self.connect_timeout
        last = None
        while time.monotonic() < deadline:
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                s.connect(str(self.path))
                self.sock = s
                break
            except OSError as e:
                last = e
                s.close()
                time.sleep(0.05)
        if self.sock is None:
            raise MonitorUnavailable(f"cannot open QEMU's monitor socket {self.path}: {last}")
        deadline = time.monotonic() + 10
        try:
            greeting = self._line(deadline)
        except (QMPError, ValueError) as e:
            raise MonitorUnavailable(f"no QMP greeting on the monitor socket {self.path}: {e}") from None
        if "QMP" not in greeting:
            raise MonitorUnavailable(f"no QMP greeting on the monitor socket {self.path}")
        self.execute("qmp_capabilities")

    def execute(self, command: str, **arguments) -> dict:
        if self.sock is None:
            self.connect()
        msg = {"execute": command, **({"arguments": arguments} if arguments else {})}
        self.sock.sendall(json.dumps(msg).encode() + b"\n")
        reply = self._reply(time.monotonic() + 10)
        if "error" in reply:
            raise QMPError(f"{command}: {reply['error'].get('desc', reply['error'])}")
        return reply["return"]

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
            self.sock = None


def handle(req: dict, qmp: QMP) -> dict:
    """One request -> its answer (never raises: a bad request or a dead monitor is an answer too)."""
    netdev, up = req.get("netdev"), req.get("up")
    if not isinstance(netdev, str) or not NETDEV.match(netdev) or not isinstance(up, bool):
        return {"ok": False, "error": f"bad request: {json.dumps(req)[:200]}"}
    t0 = time.monotonic()
    try:
        qmp.execute("set_link", name=netdev, up=up)
    except MonitorUnavailable as e:
        return {"ok": False, "error": f"host link control: {e}", "infra": True}
    except (QMPError, OSError, ValueError) as e:
        return {"ok": False, "error": f"host link control: {e}"}
    return {"ok": True, "netdev": netdev, "up": up, "host_ms": round((time.monotonic() - t0) * 1000, 3)}


class LinkAgent:
    """Watches `reqdir` for N.req files and answers each with N.ack, in the order of N."""

    POLL_S = 0.001          # right after a request (a check often sends the next one soon)
    IDLE_POLL_S = 0.005     # otherwise: every guest has an agent, and the host's cores run the guests

    def __init__(self, qmp_path: Path, reqdir: Path):
        self.qmp = QMP(qmp_path)
        self.reqdir = reqdir
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._loop, name="ktest-linkctl", daemon=True)
        self.handled = 0
        self.infra_error: str | None = None     # the first answer that was the machine's fault

    def start(self) -> "LinkAgent":
        self.reqdir.mkdir(parents=True, exist_ok=True)
        self.thread.start()
        return self

    def _loop(self) -> None:
        while not self.stop.is_set():
            reqs = sorted(self.reqdir.glob("*.req"), key=lambda p: (len(p.stem), p.stem))
            for r in reqs:
                try:
                    req = json.loads(r.read_text())
                except (OSError, ValueError):
                    req = {}
                ans = handle(req if isinstance(req, dict) else {}, self.qmp)
                if ans.get("infra") and self.infra_error is None:
                    self.infra_error = ans["error"]
                tmp = r.with_suffix(".ack.tmp")
                tmp.write_text(json.dumps(ans) + "\n")
                os.replace(tmp, r.with_suffix(".ack"))
                r.unlink(missing_ok=True)
                self.handled += 1
            self.stop.wait(self.POLL_S if reqs else self.IDLE_POLL_S)

    def close(self) -> None:
        self.stop.set()
        if self.thread.ident is not None:
            self.thread.join(timeout=5)
        self.qmp.close()
