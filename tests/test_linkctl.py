"""Host link control (ktest.boot.linkctl): the QMP client and the request/ack agent, against a small QMP
server on a unix socket that speaks the protocol's greeting, capabilities and set_link.  The real
QEMU path is covered by the linkwatch host-link checks in real boots."""

import json
import os
import socket
import threading
import time

import pytest

from ktest.boot.linkctl import QMP, LinkAgent, QMPError, handle


class FakeQMP:
    def __init__(self, path, fail=False):
        self.path, self.fail, self.calls = path, fail, []
        self.srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.srv.bind(str(path))
        self.srv.listen(1)
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        """As QEMU 7.2 speaks it: its greeting, then after capabilities an event before each reply, each
        reply with its command's id."""
        conn, _ = self.srv.accept()
        f = conn.makefile("rwb")
        f.write(b'{"QMP": {"version": {"qemu": {"micro": 22, "minor": 2, "major": 7}, "package": "Debian"}, '
                b'"capabilities": ["oob"]}}\n')
        f.flush()
        try:
            for msg in self._messages(conn):
                self.calls.append(msg)
                ident = {"id": msg["id"]} if "id" in msg else {}
                if msg["execute"] != "qmp_capabilities":     # QEMU sends events once out of capabilities mode
                    f.write(b'{"timestamp": {"seconds": 1, "microseconds": 2}, "event": "NIC_RX_FILTER_CHANGED", '
                            b'"data": {"path": "/machine/peripheral-anon/device[0]/virtio-backend"}}\n')   # skipped
                if self.fail and msg["execute"] == "set_link":
                    f.write(json.dumps({"error": {"class": "DeviceNotFound", "desc": "Device 'n7' not found"},
                                        **ident}).encode() + b"\n")
                else:
                    f.write(json.dumps({"return": {}, **ident}).encode() + b"\n")
                f.flush()
        except (BrokenPipeError, ConnectionResetError):
            pass                    # the client hung up

    @staticmethod
    def _messages(conn):
        """JSON objects as QEMU reads them: a stream, with or without newlines between them."""
        dec, buf = json.JSONDecoder(), ""
        while chunk := conn.recv(65536):
            buf += chunk.decode()
            while buf.strip():
                try:
                    msg, end = dec.raw_decode(buf.lstrip())
                except ValueError:
                    break               # the rest of the object is still on its way
                buf = buf.lstrip()[end:]
                yield msg


def test_qmp_negotiates_then_sets_the_link(tmp_path):
    srv = FakeQMP(tmp_path / "q.sock")
    qmp = QMP(tmp_path / "q.sock")
    assert handle({"netdev": "n1", "up": False}, qmp)["ok"] is True
    assert [c["execute"] for c in srv.calls] == ["qmp_capabilities", "set_link"]
    assert srv.calls[1]["arguments"] == {"name": "n1", "up": False}
    qmp.close()


def test_a_bad_request_or_a_qemu_error_is_an_answer_not_an_exception(tmp_path):
    FakeQMP(tmp_path / "q.sock", fail=True)
    qmp = QMP(tmp_path / "q.sock")
    for bad in ({"netdev": "n1; quit", "up": False}, {"netdev": "n1", "up": "no"}, {}):
        assert handle(bad, qmp)["ok"] is False and "bad request" in handle(bad, qmp)["error"]
    ans = handle({"netdev": "n7", "up": True}, qmp)
    assert ans == {"ok": False, "error": "host link control: set_link: Device 'n7' not found"}
    qmp.close()


def test_a_monitor_socket_that_cannot_be_opened_says_so(tmp_path):
    qmp = QMP(tmp_path / "none.sock", connect_timeout=0.2)
    with pytest.raises(QMPError, match="cannot open QEMU's monitor socket"):
        qmp.connect()


def _request(d, n, req: dict) -> None:
    """A request as the guest writes it (ktest.guest.lib.host_set_link): whole, by rename, so that the
    agent never reads a file half written."""
    d.mkdir(exist_ok=True)
    tmp = d / f"{n}.tmp"
    tmp.write_text(json.dumps(req))
    os.replace(tmp, d / f"{n}.req")


def test_the_agent_answers_each_request_file_with_an_ack(tmp_path):
    FakeQMP(tmp_path / "q.sock")
    agent = LinkAgent(tmp_path / "q.sock", tmp_path / "link").start()
    try:
        for n, up in ((1, False), (2, True)):
            _request(tmp_path / "link", n, {"netdev": "n0", "up": up})
        acks = [tmp_path / "link" / f"{n}.ack" for n in (1, 2)]
        for _ in range(500):
            if all(a.exists() for a in acks):
                break
            time.sleep(0.01)
        got = [json.loads(a.read_text()) for a in acks]
        assert [(g["ok"], g["up"]) for g in got] == [(True, False), (True, True)]
        assert not list((tmp_path / "link").glob("*.req")), "requests are consumed"
    finally:
        agent.close()
    assert not agent.thread.is_alive()


def test_an_unopenable_monitor_is_the_machines_fault_on_record(tmp_path):
    """The guest's check gets an answer (it reports ERROR, "infrastructure: ..."), and the agent keeps
    the first such error for the boot's record and ktest's one warning line."""
    agent = LinkAgent(tmp_path / "none.sock", tmp_path / "link")
    agent.qmp.connect_timeout = 0.2
    agent.start()
    try:
        _request(tmp_path / "link", 1, {"netdev": "n1", "up": False})
        ack = tmp_path / "link" / "1.ack"
        for _ in range(500):
            if ack.exists():
                break
            time.sleep(0.01)
        ans = json.loads(ack.read_text())
        assert ans["ok"] is False and ans["infra"] is True and "cannot open QEMU's monitor socket" in ans["error"]
        assert agent.infra_error == ans["error"]
    finally:
        agent.close()
    bad = handle({"netdev": "eth0", "up": True}, QMP(tmp_path / "none.sock", connect_timeout=0.2))
    assert bad["ok"] is False and "infra" not in bad, "a bad request is the guest's, not the machine's"
