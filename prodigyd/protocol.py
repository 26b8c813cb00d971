"""The wire contract between prodigyd and its clients: JSON-RPC 2.0, one JSON object a line.

Both sides import this module, so it stays stdlib-only (the client must start fast; the
pydantic models that validate params live daemon-side in `prodigyd.api.schemas`).

Framing: each message is UTF-8 JSON followed by `\\n`; a message may not exceed
`MAX_MESSAGE_BYTES`. Requests carry an `id`; notifications (no `id`) flow from the daemon to
a client that subscribed to a session's events:

    {"jsonrpc": "2.0", "method": "event", "params": {"subscription": 1, "event": {...}}}

docs/protocol.md lists every method with its params, results and errors.
"""

from __future__ import annotations

import json
from typing import Any

PROTOCOL_VERSION = 1

#: One message (a line) may not exceed this; larger ones are refused with INVALID_REQUEST.
MAX_MESSAGE_BYTES = 8 * 1024 * 1024

# Method names. The prefix is the noun shared by the client command and the daemon module.
PING = "ping"
JOBS_SUBMIT = "jobs.submit"
JOBS_CANCEL = "jobs.cancel"
SESSIONS_LIST = "sessions.list"
SESSIONS_SHOW = "sessions.show"
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
ANALYTICS_SUMMARY = "analytics.summary"
DAEMON_STATUS = "daemon.status"
DAEMON_STOP = "daemon.stop"
EVENT_NOTIFICATION = "event"

# JSON-RPC 2.0 error codes, and prodigy's own in the -32000..-32099 server range.
PARSE_ERROR = -32700
INVALID_REQUEST = -32600
METHOD_NOT_FOUND = -32601
INVALID_PARAMS = -32602
INTERNAL_ERROR = -32603
PRODIGY_ERROR = -32000  # a generic expected failure (message is for the user)
WORKFLOW_ERROR = -32001  # the workflow file cannot be loaded (client exits 2)
GIT_ERROR = -32002  # not a repo, detached HEAD, git failed (client exits 2)
NOT_FOUND = -32003  # no such session (client exits 3)
CONFLICT = -32004  # lock held, already running, wrong state (client exits 4)
MERGE_REFUSED = -32005  # the merge would touch uncommitted work or conflicts (client exits 4)
SHUTTING_DOWN = -32006  # the daemon is stopping and accepts no new work
NO_SPACE = -32007  # a file the request needs written does not fit: the disk is full (exits 6)

#: ProdigyError.kind → error code; kinds not listed map to PRODIGY_ERROR.
CODE_FOR_KIND = {
    "workflow": WORKFLOW_ERROR,
    "git": GIT_ERROR,
    "not_found": NOT_FOUND,
    "conflict": CONFLICT,
    "merge_refused": MERGE_REFUSED,
    "shutting_down": SHUTTING_DOWN,
    "no_space": NO_SPACE,
}

#: Terminal statuses of a session, as sent in `session_finished` events.
TERMINAL_EVENT = "session_finished"


def encode(message: dict[str, Any]) -> bytes:
    return json.dumps(message, ensure_ascii=False, separators=(",", ":")).encode() + b"\n"


def request(msg_id: int, method: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": msg_id, "method": method, "params": params or {}}


def result(msg_id: Any, value: Any) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": msg_id, "result": value}


def error(msg_id: Any, code: int, message: str, data: Any = None) -> dict[str, Any]:
    err: dict[str, Any] = {"code": code, "message": message}
    if data is not None:
        err["data"] = data
    return {"jsonrpc": "2.0", "id": msg_id, "error": err}


def notification(method: str, params: dict[str, Any]) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "method": method, "params": params}
