"""JSON-RPC 2.0 over the daemon's socket, spoken by hand: errors as the spec says."""

from __future__ import annotations

import json
import socket
from pathlib import Path
from typing import Any


class Raw:
    def __init__(self, home: Path) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(30)
        self.sock.connect(str(home / "prodigyd.sock"))
        self.reader = self.sock.makefile("rb")

    def send(self, raw: bytes) -> dict[str, Any]:
        self.sock.sendall(raw)
        return json.loads(self.reader.readline())

    def call(self, method: str, params: Any = None, msg_id: Any = 1) -> dict[str, Any]:
        msg = {"jsonrpc": "2.0", "id": msg_id, "method": method}
        if params is not None:
            msg["params"] = params
        return self.send(json.dumps(msg).encode() + b"\n")

    def close(self) -> None:
        self.sock.close()


def test_ping(daemon: Path):
    raw = Raw(daemon)
    reply = raw.call("ping")
    assert reply["id"] == 1 and reply["result"]["pong"] is True
    assert reply["result"]["protocol"] == 1


def test_parse_error_invalid_request_and_unknown_method(daemon: Path):
    raw = Raw(daemon)
    bad = raw.send(b"{not json\n")
    assert bad["error"]["code"] == -32700 and bad["id"] is None
    no_version = raw.send(b'{"id": 2, "method": "ping"}\n')
    assert no_version["error"]["code"] == -32600 and no_version["id"] == 2
    not_object = raw.send(b"[1, 2]\n")
    assert not_object["error"]["code"] == -32600
    unknown = raw.call("no.such.method", msg_id=3)
    assert unknown["error"]["code"] == -32601 and unknown["id"] == 3
    assert raw.call("ping", msg_id=4)["result"]["pong"]  # the connection survived it all


def test_invalid_params_name_the_field(daemon: Path):
    raw = Raw(daemon)
    reply = raw.call("sessions.list", {"limit": "many"})
    assert reply["error"]["code"] == -32602
    assert "limit" in reply["error"]["message"]
    extra = raw.call("sessions.show", {"session_id": "x", "bogus": 1})
    assert extra["error"]["code"] == -32602 and "bogus" in extra["error"]["message"]


def test_session_ids_cannot_reach_outside_the_store(daemon: Path):
    raw = Raw(daemon)
    for evil in ("../../etc/passwd", "a/b", ".hidden"):
        reply = raw.call("sessions.show", {"session_id": evil})
        assert reply["error"]["code"] == -32000, reply
        assert "invalid session id" in reply["error"]["message"]
    missing = raw.call("sessions.show", {"session_id": "workflow-1-abc"})
    assert missing["error"]["code"] == -32003


def test_a_client_sending_garbage_and_vanishing_does_not_hurt_others(daemon: Path):
    good = Raw(daemon)
    bad = Raw(daemon)
    bad.sock.sendall(b"\x00\xff garbage without newline")
    bad.close()
    assert good.call("ping")["result"]["pong"]
    half = Raw(daemon)
    half.sock.sendall(b'{"jsonrpc": "2.0", "id": 1, "meth')
    half.close()
    assert good.call("ping", msg_id=9)["result"]["pong"]
