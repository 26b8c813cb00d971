"""The wire contract between prodigyd and its clients: JSON-RPC 2.0, one JSON object a line.

Both sides import this module, so it stays stdlib-only (the client must start fast; the
pydantic models that validate params live daemon-side in `prodigyd.api.schemas`): of
prodigyd it imports only `eventtypes` and `errorcodes`, stdlib-only too.

Framing: each message is UTF-8 JSON followed by `\\n`; a message may not exceed
`MAX_MESSAGE_BYTES`. Requests carry an `id`; notifications (no `id`) flow from the daemon to
a client that subscribed to a session's events:

    {"jsonrpc": "2.0", "method": "event", "params": {"subscription": 1, "event": {...}}}

docs/protocol.md lists every method with its params, results and errors.
"""

from __future__ import annotations

import json
import math
from typing import Any, NamedTuple

from prodigyd import errorcodes
from prodigyd.eventtypes import EventType

#: What `ping` reports. 2: `jobs.submit` takes `follow`, `sessions.list` a list of
#: statuses; 1 had neither. A client meeting an older daemon asks the user to restart it.
PROTOCOL_VERSION = 2

#: One message (a line) may not exceed this; larger ones are refused with INVALID_REQUEST.
MAX_MESSAGE_BYTES = 8 * 1024 * 1024
#: The most sessions one `sessions.list` returns (its `limit`).
MAX_LIST = 10_000

# Method names. The prefix is the noun shared by the client command and the daemon module.
PING = "ping"
JOBS_SUBMIT = "jobs.submit"
JOBS_CANCEL = "jobs.cancel"
SESSIONS_LIST = "sessions.list"
SESSIONS_SHOW = "sessions.show"
CHECKPOINTS_LIST = "checkpoints.list"
CHECKPOINTS_SHOW = "checkpoints.show"
CHECKPOINTS_DELETE = "checkpoints.delete"
SESSIONS_RESUME = "sessions.resume"
SESSIONS_MERGE = "sessions.merge"
EVENTS_SUBSCRIBE = "events.subscribe"
EVENTS_LIST = "events.list"
EVENTS_STATS = "events.stats"
DLQ_LIST = "dlq.list"
DLQ_SHOW = "dlq.show"
DLQ_STATS = "dlq.stats"
DLQ_PURGE = "dlq.purge"
DLQ_RETRY = "dlq.retry"
WORKTREES_LIST = "worktrees.list"
WORKTREES_CLEAN = "worktrees.clean"
WORKTREES_GC = "worktrees.gc"
TRIGGERS_LIST = "triggers.list"
WATCH_ADD = "watch.add"
WATCH_REMOVE = "watch.remove"
WATCH_LIST = "watch.list"
ANALYTICS_SUMMARY = "analytics.summary"
RETENTION_CLEAN = "retention.clean"
DAEMON_STATUS = "daemon.status"
DAEMON_STOP = "daemon.stop"
EVENT_NOTIFICATION = "event"

# JSON-RPC 2.0 error codes, and prodigy's own in the -32000..-32099 server range.
# prodigyctl/exitcodes.py maps them to the client's exit codes.
PARSE_ERROR = -32700
INVALID_REQUEST = -32600
METHOD_NOT_FOUND = -32601
INVALID_PARAMS = -32602
INTERNAL_ERROR = -32603
PRODIGY_ERROR = -32000  # a generic expected failure (message is for the user)
WORKFLOW_ERROR = -32001  # the workflow file cannot be loaded
GIT_ERROR = -32002  # not a repo, detached HEAD, git failed
NOT_FOUND = -32003  # no such session
CONFLICT = -32004  # lock held, already running, wrong state
MERGE_REFUSED = -32005  # the merge would touch uncommitted work or conflicts
SHUTTING_DOWN = -32006  # the daemon is stopping and accepts no new work
NO_SPACE = -32007  # a file the request needs written does not fit: the disk is full
ENVIRONMENT_ERROR = -32008  # what a job needs on this machine is missing (the claude binary)

#: ProdigyError.kind → error code; kinds not listed map to PRODIGY_ERROR.
CODE_FOR_KIND = {
    "workflow": WORKFLOW_ERROR,
    "git": GIT_ERROR,
    "not_found": NOT_FOUND,
    "conflict": CONFLICT,
    "merge_refused": MERGE_REFUSED,
    "shutting_down": SHUTTING_DOWN,
    "no_space": NO_SPACE,
    "claude_not_found": ENVIRONMENT_ERROR,
}

#: The stable error code (prodigyd/errorcodes.py) of the JSON-RPC errors no ProdigyError
#: gives one; every other error's `data.code` is its ProdigyError's.
ERRORCODE_FOR_CODE = {
    PARSE_ERROR: errorcodes.PROTOCOL,
    INVALID_REQUEST: errorcodes.PROTOCOL,
    METHOD_NOT_FOUND: errorcodes.PROTOCOL,
    INVALID_PARAMS: errorcodes.INVALID_PARAMS,
    INTERNAL_ERROR: errorcodes.INTERNAL,
}

#: The event that ends a run (or a resume): a follower stops at it.
TERMINAL_EVENT = EventType.SESSION_FINISHED


def encode(message: dict[str, Any]) -> bytes:
    """One message as a line. A lone surrogate (JSON may carry "\\ud800"; UTF-8 cannot)
    is sent as a JSON escape, as it came, instead of failing the reply."""
    text = json.dumps(message, ensure_ascii=False, separators=(",", ":"))
    try:
        return text.encode() + b"\n"
    except UnicodeEncodeError:
        return json.dumps(message, separators=(",", ":")).encode() + b"\n"


class RpcError(Exception):
    """A message the daemon answers with an error before any method runs."""

    def __init__(self, code: int, message: str, msg_id: Any = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.msg_id = msg_id

    def reply(self) -> dict[str, Any]:
        return error(self.msg_id, self.code, self.message)


class Request(NamedTuple):
    """A well-formed request envelope; `params` is still unchecked (the method's model
    checks it). A notification (no `id`) gets no reply, whatever happens to it.

    A NamedTuple, not a dataclass: the client imports this module for every command, and
    `dataclasses` would cost each of them about a millisecond."""

    id: str | int | float | None
    method: str
    params: dict[str, Any] | list[Any]
    notification: bool


def decode(line: bytes) -> Any:
    """One line as JSON, strictly: UTF-8 (json.loads would guess UTF-16 or -32 from the
    bytes), no NaN or Infinity and no number too large for a float (neither can be sent
    back as JSON), nesting only as deep as the parser's recursion allows."""
    try:
        text = line.decode()
    except UnicodeDecodeError as exc:
        reason = f"not UTF-8 (byte {exc.start}: {exc.reason})"
        raise RpcError(PARSE_ERROR, f"Parse error: {reason}") from None
    try:
        return json.loads(text, parse_constant=_no_constant, parse_float=_finite_float)
    except RecursionError:
        raise RpcError(INVALID_REQUEST, "Invalid Request: JSON nested too deeply") from None
    except ValueError as exc:
        raise RpcError(PARSE_ERROR, f"Parse error: {exc}") from None


def check_request(message: Any) -> Request:
    """The envelope of a decoded message, or RpcError(-32600) saying what is wrong with it.

    The `id` is checked first: the error to a message whose id is not a string, number
    or null must carry id null, not echo what cannot be an id."""
    if isinstance(message, list):
        raise RpcError(
            INVALID_REQUEST,
            "Invalid Request: batches (JSON arrays) are not "
            "supported; send one request object a line",
        )
    if not isinstance(message, dict):
        raise RpcError(INVALID_REQUEST, "Invalid Request: a request must be a JSON object")
    msg_id = message.get("id")
    if not _valid_id(msg_id):
        raise RpcError(INVALID_REQUEST, "Invalid Request: id must be a string, a number or null")
    method = message.get("method")
    if message.get("jsonrpc") != "2.0" or not isinstance(method, str):
        need = 'need "jsonrpc": "2.0" and a string "method"'
        raise RpcError(INVALID_REQUEST, f"Invalid Request: {need}", msg_id)
    params = message.get("params", {})
    if not isinstance(params, dict | list):
        raise RpcError(INVALID_REQUEST, "Invalid Request: params must be an object", msg_id)
    return Request(msg_id, method, params, notification="id" not in message)


def _valid_id(msg_id: Any) -> bool:
    return msg_id is None or (
        isinstance(msg_id, str | int | float) and not isinstance(msg_id, bool)
    )


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"number out of range: {text[:40]}")
    return value


def request(msg_id: int, method: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": msg_id, "method": method, "params": params or {}}


def result(msg_id: Any, value: Any) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": msg_id, "result": value}


def error(msg_id: Any, code: int, message: str, data: Any = None) -> dict[str, Any]:
    """An error reply; its `data.code` is the stable error code, `data`'s own if it has one."""
    data = {"code": errorcode(code), **(data or {})}
    err: dict[str, Any] = {"code": code, "message": message, "data": data}
    return {"jsonrpc": "2.0", "id": msg_id, "error": err}


def errorcode(code: int) -> str:
    """The stable error code of a JSON-RPC error nothing more specific gave one (a parse
    error; any error from a daemon older than the codes)."""
    return ERRORCODE_FOR_CODE.get(code, errorcodes.ERROR)


def notification(method: str, params: dict[str, Any]) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "method": method, "params": params}
