"""Property-based fuzz of the JSON-RPC server: generated envelopes and params, sent to a real
prodigyd over its socket, must each get a well-formed JSON-RPC 2.0 reply (or, for a valid
notification, none), never -32603, never a dropped connection; the daemon must stay up and
its log free of tracebacks.

Kept fast for the suite (FUZZ_EXAMPLES per test); `PRODIGY_FUZZ_EXAMPLES=10000` runs a long
fuzz with the same oracle.

What is not fuzzed, and why (the daemon's home is the test's own, so anything confined to
it is fair game):

- `daemon.stop` is never sent (it would stop the daemon under test), not even as a random
  method name.
- `jobs.submit` could start a job in a repository: its `cwd` and `repo`, when strings, are
  pinned to an empty folder that is no repository (other types still go through), and the
  daemon runs from that folder, so a relative path resolves there too. Every other method
  reads, or writes only under PRODIGY_HOME (the DLQ, the worktree pool, sessions: all
  empty here).
"""

from __future__ import annotations

import json
import os
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from prodigyd import protocol
from prodigyd.api.handlers import HANDLERS
from prodigyd.api.schemas import SubscribeParams
from tests.cli import ctl

FUZZ_EXAMPLES = int(os.environ.get("PRODIGY_FUZZ_EXAMPLES", "150"))
SETTINGS = settings(
    max_examples=FUZZ_EXAMPLES,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

#: Every method the daemon serves, with its params model; daemon.stop left out (see above).
MODELS = {
    **{method: model for method, (model, _) in HANDLERS.items()},
    protocol.EVENTS_SUBSCRIBE: SubscribeParams,
}
METHODS = sorted(MODELS)
PINNED = {protocol.JOBS_SUBMIT: ("cwd", "repo"), protocol.WATCH_ADD: ("path",)}

scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20)
)
json_values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
#: Values a field might plausibly take, to get past the type check now and then.
plausible = (
    st.sampled_from(
        [
            "all",
            "auto",
            "ask",
            "never",
            "workflow",
            "day",
            "2026-01-01T00:00:00",
            "workflow-1-abc",
            "job-1",
            "item-0",
            "",
            ".",
            "..",
            "/",
            "\u0000",
            "a\u0000b",
            "\ud800",
            "x\udfff",
        ]
    )
    | st.integers(min_value=-2, max_value=2000)
    | st.booleans()
    | st.dictionaries(st.text(max_size=6), st.text(max_size=6), max_size=3)
    | st.lists(st.text(max_size=6), max_size=3)
)


@st.composite
def method_params(draw: st.DrawFn, method: str) -> dict[str, Any]:
    """Params for `method`: some of its fields (and perhaps a stranger), each a plausible
    or an arbitrary value."""
    fields = list(MODELS[method].model_fields)
    keys = draw(st.lists(st.sampled_from(fields), unique=True)) if fields else []
    keys += draw(st.lists(st.text(max_size=8), max_size=1))
    return {key: draw(plausible | json_values) for key in keys}


@st.composite
def envelopes(draw: st.DrawFn) -> dict[str, Any]:
    """A request object, each member right, wrong in type, or missing."""
    any_method = st.sampled_from(METHODS) | st.text(max_size=12) | json_values
    method = draw(any_method.filter(lambda name: name != protocol.DAEMON_STOP))
    message: dict[str, Any] = {}
    if draw(st.integers(0, 9)):
        message["jsonrpc"] = draw(st.just("2.0") | json_values)
    if draw(st.integers(0, 9)):
        message["id"] = draw(st.integers() | st.text(max_size=8) | json_values)
    if draw(st.integers(0, 9)):
        message["method"] = method
    if draw(st.integers(0, 5)):
        known = isinstance(method, str) and method in MODELS
        message["params"] = draw(method_params(method) if known else json_values)
    return message


def pinned(message: Any, nowhere: Path) -> Any:
    """The message with jobs.submit's cwd and repo (and watch.add's path), when strings,
    pointing nowhere."""
    if not isinstance(message, dict):
        return message
    method, params = message.get("method"), message.get("params")
    if isinstance(method, str) and method in PINNED and isinstance(params, dict):
        for key in PINNED[method]:
            if isinstance(params.get(key), str):
                params[key] = str(nowhere)
    return message


def valid_id(message: dict[str, Any]) -> bool:
    value = message.get("id")
    return value is None or (isinstance(value, str | int | float) and not isinstance(value, bool))


def expectation(message: Any) -> tuple[bool, Any, set[int] | None]:
    """(a reply is due, its id, the error codes it may carry; None: any but -32603)."""
    if not isinstance(message, dict) or not valid_id(message):
        return True, None, {protocol.INVALID_REQUEST}
    msg_id = message.get("id")
    method, params = message.get("method"), message.get("params", {})
    if message.get("jsonrpc") != "2.0" or not isinstance(method, str):
        return True, msg_id, {protocol.INVALID_REQUEST}
    if not isinstance(params, dict | list):
        return True, msg_id, {protocol.INVALID_REQUEST}
    due = "id" in message  # a valid notification is never answered
    if method not in MODELS:
        return due, msg_id, {protocol.METHOD_NOT_FOUND}
    if isinstance(params, list):
        return due, msg_id, {protocol.INVALID_PARAMS}
    return due, msg_id, None


class Client:
    """One connection; `exchange` sends a line, then a ping, and returns what came back
    for the line (None when nothing did), skipping event notifications."""

    def __init__(self, home: Path) -> None:
        self.sock = socket.socket(socket.AF_UNIX)
        self.sock.settimeout(30)  # a hang fails the test
        self.sock.connect(str(home / "prodigyd.sock"))
        self.reader = self.sock.makefile("rb")
        self.sent = 0

    def exchange(self, line: bytes, due: bool) -> dict[str, Any] | None:
        self.sent += 1
        sync = f"sync-{self.sent}"
        ping = {"jsonrpc": "2.0", "id": sync, "method": "ping"}
        self.sock.sendall(line + b"\n" + json.dumps(ping).encode() + b"\n")
        reply, synced = None, False
        while not synced or (due and reply is None):  # a spawned reply may follow the ping's
            raw = self.reader.readline()
            assert raw, f"the daemon hung up after {line[:200]!r}"
            message = json.loads(raw)
            if message.get("method") == protocol.EVENT_NOTIFICATION:
                continue
            if message.get("id") == sync and "result" in message:
                synced = True
                continue
            assert reply is None, f"two replies to {line[:200]!r}: {reply}, {message}"
            reply = message
        return reply

    def close(self) -> None:
        self.reader.close()
        self.sock.close()


def check_reply(reply: dict[str, Any], msg_id: Any, codes: set[int] | None) -> None:
    assert reply["jsonrpc"] == "2.0" and "id" in reply, reply
    assert ("result" in reply) != ("error" in reply), reply
    assert reply["id"] == msg_id, reply
    if "error" in reply:
        error = reply["error"]
        assert isinstance(error["code"], int) and isinstance(error["message"], str), reply
        assert error["code"] != protocol.INTERNAL_ERROR, reply
        assert codes is None or error["code"] in codes, reply
    else:
        assert codes is None, reply


@pytest.fixture
def fuzzed(isolated: Path, tmp_path: Path) -> Iterator[tuple[Path, Path]]:
    """A daemon running from an empty folder that is no repository; (home, that folder)."""
    nowhere = tmp_path / "nowhere"
    nowhere.mkdir()
    ctl("daemon", "start", cwd=nowhere, check=True)
    yield isolated, nowhere
    ctl("daemon", "stop", check=True)
    logs = [isolated / "logs" / name for name in ("prodigyd.log", "prodigyd.out")]
    text = "".join(path.read_text(errors="replace") for path in logs if path.exists())
    assert "Traceback" not in text and "Logging error" not in text, text[-5000:]


def fuzz(home: Path, nowhere: Path, strategy: st.SearchStrategy[Any]) -> None:
    client = Client(home)

    @SETTINGS
    @given(strategy)
    def one(message: Any) -> None:
        message = pinned(message, nowhere)
        due, msg_id, codes = expectation(message)
        reply = client.exchange(json.dumps(message).encode(), due)
        assert (reply is not None) == due, (message, reply)
        if reply is not None:
            check_reply(reply, msg_id, codes)

    try:
        one()
    finally:
        client.close()
        print(f"fuzz: {client.sent} lines sent")  # seen with -s, for a long run
    assert ctl("daemon", "status", check=True).returncode == 0  # still up


def test_fuzzed_envelopes(fuzzed: tuple[Path, Path]):
    fuzz(*fuzzed, envelopes())


def test_fuzzed_params_of_every_method(fuzzed: tuple[Path, Path]):
    requests = st.sampled_from(METHODS).flatmap(
        lambda method: st.fixed_dictionaries(
            {
                "jsonrpc": st.just("2.0"),
                "id": st.integers(0, 10**6),
                "method": st.just(method),
                "params": method_params(method),
            }
        )
    )
    fuzz(*fuzzed, requests)


def test_fuzzed_bytes(fuzzed: tuple[Path, Path]):
    """Any line at all: not UTF-8, not JSON, truncated, deeply nested."""
    home, _ = fuzzed
    client = Client(home)
    nested = st.integers(1, 3000).map(lambda depth: b"[" * depth + b"]" * depth)
    lines = st.binary(max_size=64) | nested | envelopes().map(lambda m: json.dumps(m).encode()[:-1])

    @SETTINGS
    @given(lines.map(lambda line: line.replace(b"\n", b"")))
    def one(line: bytes) -> None:
        due = bool(line.strip())  # a blank line is skipped
        reply = client.exchange(line, due)
        if reply is not None:
            assert reply["id"] is None and "error" in reply, reply
            assert reply["error"]["code"] in (protocol.PARSE_ERROR, protocol.INVALID_REQUEST)

    try:
        one()
    finally:
        client.close()
        print(f"fuzz: {client.sent} lines sent")  # seen with -s, for a long run
