"""A local stand-in for the Anthropic Messages API, for running the real `claude` CLI in tests.

Stdlib only: a threading HTTP server on 127.0.0.1 that answers `POST /v1/messages` (SSE
streaming or one JSON body, as the request asks) from a script, and logs every request it
receives as one JSON line so a test can read what the CLI sent (the conversation on a
resume, the model, the tools). Anything else it is asked gets a 404 and is logged too.

The script (JSON) picks a reply by the request's conversation, not by arrival order, so the
CLI's side requests (titles, quota checks) and its retries cannot shift the answers:

    {"conversations": [
       {"match": "regex searched in the first user message",
        "turns": [                      # turn n answers a request with n assistant messages
          {"content": [{"type": "text", "text": "committing"},
                       {"type": "tool_use", "name": "Bash",
                        "input": {"command": "git commit -qam x"}}],
           "usage": {"input_tokens": 100, "output_tokens": 20,
                     "cache_read_input_tokens": 9000, "cache_creation_input_tokens": 0}},
          {"error": {"status": 529, "type": "overloaded_error", "message": "Overloaded"},
           "times": 2},                 # fail twice, then answer with the rest of the turn
          {"hang": true},               # accept, then never send a byte
          {"stall_after": 3, ...},      # send 3 SSE events of the reply, then go quiet
          {"content": [{"type": "text", "text": "done"}], "delay": 0.5}
        ]}],
     "default": {"content": [{"type": "text", "text": "ok"}]}}

A turn past the end of its conversation's list, a request no conversation matches, and
requests without tools (the CLI's side calls) get `default`. Counters for `times` live in
the server, keyed by conversation and turn. Run as a program (`python -m
tests.claude_api.standin --script S --port-file P --log L [--netns]`) so it can live in a
network namespace of its own: with `--netns` it unshares the network, brings `lo` up and
serves there, and the CLI reaches it through `nsenter` (see `tests/claude_api/harness.py`).
"""

from __future__ import annotations

import argparse
import ctypes
import fcntl
import json
import os
import re
import socket
import struct
import sys
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

MODEL = "claude-standin-1"
DEFAULT_TURN: dict[str, Any] = {"content": [{"type": "text", "text": "ok"}]}


class Script:
    """The scripted replies and the per-turn `times` counters (shared by all threads)."""

    def __init__(self, data: dict[str, Any]) -> None:
        self.conversations: list[dict[str, Any]] = list(data.get("conversations", []))
        self.default: dict[str, Any] = data.get("default", DEFAULT_TURN)
        self._used: dict[tuple[int, int], int] = {}
        self._lock = threading.Lock()

    def reply_for(self, body: dict[str, Any]) -> dict[str, Any]:
        """The turn that answers `body`; an `error` turn whose `times` ran out drops its
        error (and `hang`/`stall_after`) and answers with the rest."""
        messages = body.get("messages") or []
        if not body.get("tools"):
            return self.default
        first = _text_of(messages[0]) if messages else ""
        turn_no = sum(1 for m in messages if m.get("role") == "assistant")
        for index, conv in enumerate(self.conversations):
            if not re.search(conv.get("match", ""), first):
                continue
            turns = conv.get("turns", [])
            if turn_no >= len(turns):
                return self.default
            turn = dict(turns[turn_no])
            limit = turn.get("times")
            if limit is not None:
                with self._lock:
                    used = self._used.get((index, turn_no), 0)
                    self._used[(index, turn_no)] = used + 1
                if used >= limit:
                    for key in ("error", "hang", "stall_after"):
                        turn.pop(key, None)
            return turn
        return self.default


def _text_of(message: dict[str, Any]) -> str:
    """All text of a message, whether its content is a string or a list of blocks."""
    content = message.get("content")
    if isinstance(content, str):
        return content
    parts = []
    for block in content or []:
        if isinstance(block, dict) and isinstance(block.get("text"), str):
            parts.append(block["text"])
    return "\n".join(parts)


def _usage(turn: dict[str, Any]) -> dict[str, int]:
    usage = {
        "input_tokens": 10,
        "output_tokens": 5,
        "cache_read_input_tokens": 0,
        "cache_creation_input_tokens": 0,
    }
    usage.update(turn.get("usage", {}))
    return usage


def _blocks(turn: dict[str, Any]) -> list[dict[str, Any]]:
    """The turn's content blocks with ids filled in (tool_use needs one)."""
    blocks = []
    for block in turn.get("content", []):
        block = dict(block)
        if block.get("type") == "tool_use":
            block.setdefault("id", "toolu_" + uuid.uuid4().hex[:24])
            block.setdefault("input", {})
        blocks.append(block)
    return blocks


def _stop_reason(blocks: list[dict[str, Any]]) -> str:
    return "tool_use" if any(b.get("type") == "tool_use" for b in blocks) else "end_turn"


def message_json(turn: dict[str, Any], model: str) -> dict[str, Any]:
    """The whole reply as one non-streaming Messages API body."""
    blocks = _blocks(turn)
    return {
        "id": "msg_" + uuid.uuid4().hex[:24],
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": blocks,
        "stop_reason": _stop_reason(blocks),
        "stop_sequence": None,
        "usage": _usage(turn),
    }


def sse_events(turn: dict[str, Any], model: str) -> list[tuple[str, dict[str, Any]]]:
    """The reply as the Messages API's server-sent events, in the API's order."""
    blocks = _blocks(turn)
    usage = _usage(turn)
    start_usage = dict(usage, output_tokens=1)  # the API's placeholder until message_delta
    message = message_json(turn, model)
    message.update(content=[], stop_reason=None, usage=start_usage)
    events: list[tuple[str, dict[str, Any]]] = [
        ("message_start", {"type": "message_start", "message": message})
    ]
    for index, block in enumerate(blocks):
        kind = block.get("type")
        if kind == "tool_use":
            start = {"type": "tool_use", "id": block["id"], "name": block["name"], "input": {}}
            delta = {"type": "input_json_delta", "partial_json": json.dumps(block["input"])}
        elif kind == "thinking":
            start = {"type": "thinking", "thinking": "", "signature": ""}
            delta = {"type": "thinking_delta", "thinking": block.get("thinking", "")}
        else:
            start = {"type": "text", "text": ""}
            delta = {"type": "text_delta", "text": block.get("text", "")}
        events.append(
            (
                "content_block_start",
                {"type": "content_block_start", "index": index, "content_block": start},
            )
        )
        events.append(
            ("content_block_delta", {"type": "content_block_delta", "index": index, "delta": delta})
        )
        if kind == "thinking":
            sig = {"type": "signature_delta", "signature": "standin-signature"}
            events.append(
                (
                    "content_block_delta",
                    {"type": "content_block_delta", "index": index, "delta": sig},
                )
            )
        events.append(("content_block_stop", {"type": "content_block_stop", "index": index}))
    events.append(
        (
            "message_delta",
            {
                "type": "message_delta",
                "delta": {"stop_reason": _stop_reason(blocks), "stop_sequence": None},
                "usage": {"output_tokens": usage["output_tokens"]},
            },
        )
    )
    events.append(("message_stop", {"type": "message_stop"}))
    return events


class Handler(BaseHTTPRequestHandler):
    """One request: log it, then answer from the script."""

    server: StandInServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        pass  # the JSON request log is the record; stderr stays quiet

    def do_GET(self) -> None:
        self._log(None)
        self._send_json(404, {"type": "error", "error": {"type": "not_found_error"}})

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            body = json.loads(raw or b"{}")
        except ValueError:
            body = {"unparsed": raw[:200].decode("utf-8", "replace")}
        path = self.path.split("?", 1)[0]
        if path != "/v1/messages":
            self._log(body)
            self._send_json(404, {"type": "error", "error": {"type": "not_found_error"}})
            return
        turn = self.server.script.reply_for(body)
        self._log(body, turn)
        if turn.get("delay"):
            time.sleep(float(turn["delay"]))
        if turn.get("hang"):
            self.server.hold()
            return
        error = turn.get("error")
        if error:
            status = int(error.get("status", 500))
            payload = {
                "type": "error",
                "error": {
                    "type": error.get("type", "api_error"),
                    "message": error.get("message", "stand-in error"),
                },
            }
            self._send_json(status, payload, retry_after=error.get("retry_after"))
            return
        model = str(body.get("model") or MODEL)
        if body.get("stream"):
            self._stream(sse_events(turn, model), turn.get("stall_after"))
        else:
            self._send_json(200, message_json(turn, model))

    def _log(self, body: dict[str, Any] | None, turn: dict[str, Any] | None = None) -> None:
        record = {
            "time": time.time(),
            "method": self.command,
            "path": self.path,
            "headers": {k.lower(): v for k, v in self.headers.items() if k.lower() != "x-api-key"},
            "body": body,
            "reply": turn,
        }
        self.server.log(record)

    def _send_json(self, status: int, payload: dict[str, Any], retry_after: Any = None) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("request-id", "req_standin_" + uuid.uuid4().hex[:12])
        if retry_after is not None:
            self.send_header("retry-after", str(retry_after))
        self.end_headers()
        self.wfile.write(data)

    def _stream(self, events: list[tuple[str, dict[str, Any]]], stall_after: Any) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("request-id", "req_standin_" + uuid.uuid4().hex[:12])
        self.send_header("Connection", "close")
        self.end_headers()
        for count, (name, data) in enumerate(events):
            if stall_after is not None and count >= int(stall_after):
                self.wfile.flush()
                self.server.hold()
                return
            self.wfile.write(f"event: {name}\ndata: {json.dumps(data)}\n\n".encode())
            self.wfile.flush()
        self.close_connection = True


class StandInServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, script: Script, log_path: Path) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.script = script
        self._log_path = log_path
        self._log_lock = threading.Lock()

    def log(self, record: dict[str, Any]) -> None:
        with self._log_lock, self._log_path.open("a", encoding="utf-8") as out:
            out.write(json.dumps(record) + "\n")

    @staticmethod
    def hold() -> None:
        """Keep the calling handler's connection open and silent (a hang or a stall): its
        thread waits, holding the connection, until the server process ends."""
        threading.Event().wait(3600)


def _bring_loopback_up() -> None:
    """`ip link set lo up`, without needing iproute2: SIOCSIFFLAGS with IFF_UP."""
    siocgifflags, siocsifflags, iff_up = 0x8913, 0x8914, 0x1
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        req = struct.pack("16sH14x", b"lo", 0)
        flags = struct.unpack("16sH14x", fcntl.ioctl(sock, siocgifflags, req))[1]
        fcntl.ioctl(sock, siocsifflags, struct.pack("16sH14x", b"lo", flags | iff_up))


def _unshare_network() -> None:
    clone_newnet = 0x40000000
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.unshare(clone_newnet) != 0:
        raise OSError(ctypes.get_errno(), "unshare(CLONE_NEWNET) failed")
    _bring_loopback_up()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--script", type=Path, required=True)
    parser.add_argument("--port-file", type=Path, required=True)
    parser.add_argument("--log", type=Path, required=True)
    parser.add_argument("--netns", action="store_true", help="serve in a new network namespace")
    args = parser.parse_args(argv)
    if args.netns:
        _unshare_network()
    script = Script(json.loads(args.script.read_text(encoding="utf-8")))
    server = StandInServer(script, args.log)
    tmp = args.port_file.with_suffix(".tmp")
    tmp.write_text(str(server.server_address[1]), encoding="utf-8")
    os.replace(tmp, args.port_file)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
