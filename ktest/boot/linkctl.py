"""Host-side link control: pull a guest's virtio-net cable from QEMU, as a cable pull or a switch port
going down would, on the guest's request.

Every guest gets a QMP socket (`-qmp unix:PATH,server=on,wait=off`).  A check in the guest writes a
request file into its rwdir (`link/N.req`: {"netdev": "n0", "up": false}); the host's LinkAgent thread
runs QMP `set_link` and answers with `link/N.ack` ({"ok": true, "host_ms": ...}).  The guest then sees
virtio's config-change interrupt and netif_carrier_off/on, and observes the rest passively.  The
request-to-ack time is context for the reader; checks time the kernel's reaction in the guest."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re
import threading
import time
from collections.abc import Awaitable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar, cast

if TYPE_CHECKING:
    from qemu.qmp import QMPClient

NETDEV = re.compile(r"^n\d{1,2}$")       # vng --network loop: n0, n1, ...
_T = TypeVar("_T")

# qemu.qmp logs each failed attempt at ERROR; with no handler configured Python would print those on
# ktest's stderr.  ktest reports a monitor's failure itself, once (the boot's infra_error)
logging.getLogger("qemu.qmp").addHandler(logging.NullHandler())


class QMPError(Exception):
    pass


class MonitorUnavailable(QMPError):
    """QEMU's monitor socket cannot be opened (or greets wrongly): the machine's problem, not a check's."""


class QMP:
    """A synchronous QMP client for one agent thread, on QEMU's own client library (qemu.qmp): greeting,
    qmp_capabilities, then one command at a time.  The library is asyncio; each monitor gets an event
    loop of its own, driven from the thread that uses it, with a deadline on connecting (the socket
    appears when QEMU has started), on the greeting and on each command (qemu.qmp.legacy has none on
    the greeting).  Asynchronous events are not kept: nothing reads them."""

    GREETING_S = 10.0
    COMMAND_S = 10.0

    def __init__(self, path: Path, connect_timeout: float = 20.0):
        self.path, self.connect_timeout = path, connect_timeout
        self._client: Any = None                   # qemu.qmp's QMPClient once connected
        self._loop: asyncio.AbstractEventLoop | None = None

    def _run(self, coro: Awaitable[_T], timeout: float) -> _T:
        if self._loop is None:
            self._loop = asyncio.new_event_loop()
        return self._loop.run_until_complete(asyncio.wait_for(coro, timeout))

    def connect(self) -> None:
        from qemu.qmp import QMPClient
        from qemu.qmp.protocol import ConnectError

        deadline = time.monotonic() + self.connect_timeout
        while True:
            client = QMPClient(f"ktest-linkctl:{self.path}")
            try:
                self._run(client.connect(str(self.path)), self.GREETING_S)
                self._client = client
                return
            except ConnectError as e:
                self._drop(client)
                cause = getattr(e, "exc", None)
                if isinstance(cause, OSError):           # no socket yet, or nobody listening
                    if time.monotonic() < deadline:
                        time.sleep(0.05)
                        continue
                    self.close()
                    raise MonitorUnavailable(f"cannot open QEMU's monitor socket {self.path}: {cause}") from None
                self.close()
                raise MonitorUnavailable(f"no QMP greeting on the monitor socket {self.path}: {e}") from None
            except asyncio.TimeoutError:
                self._drop(client)
                self.close()
                raise MonitorUnavailable(f"no QMP greeting on the monitor socket {self.path} "
                                         f"within {self.GREETING_S:.0f}s") from None

    def _drop(self, client: QMPClient) -> None:
        try:
            self._run(client.disconnect(), 5)
        except Exception:           # a client that never connected, or a monitor already gone
            pass

    def execute(self, command: str, **arguments: object) -> dict[str, Any]:
        from qemu.qmp import ExecuteError, QMPError as LibError

        if self._client is None:
            self.connect()
        try:
            # qemu.qmp types a command's return value `object`: set_link's is a JSON object
            return cast(dict[str, Any], self._run(self._client.execute(command, arguments or None), self.COMMAND_S))
        except ExecuteError as e:
            raise QMPError(f"{command}: {e}") from None      # the error's desc
        except asyncio.TimeoutError:
            raise QMPError("QEMU's monitor did not answer") from None
        except (LibError, EOFError, OSError) as e:
            raise QMPError(f"QEMU's monitor: {type(e).__name__}: {e}") from None
        finally:
            self._client.events.clear()     # events are never read: keep none

    def close(self) -> None:
        if self._client is not None:
            self._drop(self._client)
            self._client = None
        if self._loop is not None:
            pending = asyncio.all_tasks(self._loop)      # a half-made session's reader and writer
            for t in pending:
                t.cancel()
            if pending:
                self._loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
            self._loop.close()
            self._loop = None

    def __del__(self) -> None:
        # a monitor dropped without close(): close it, unless the garbage collector runs this inside
        # another monitor's event loop (a loop cannot be run from within a running one)
        if self._loop is not None and asyncio._get_running_loop() is None:
            try:
                self.close()
            except Exception:
                pass


def handle(req: dict[str, Any], qmp: QMP) -> dict[str, Any]:
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
