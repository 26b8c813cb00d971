"""The Unix-socket JSON-RPC 2.0 server.

Wire protocol: newline-delimited JSON (see `prodigyd.protocol` and docs/protocol.md). Each
accepted socket gets its own `Connection` holding its writer, its write lock and its
subscription tasks; nothing per-connection lives on the server. Each request runs in its
own task so a long call (merge) never blocks a subscription or a ping on the same socket.

Only the daemon's owner may talk to it: the socket is 0600 in a 0700 folder, and each
connection's SO_PEERCRED uid is checked as well (root included: root's files are no
protection against root, but a daemon owned by one user must not act for another).

Errors follow the spec: unparseable JSON → -32700 with id null; a malformed envelope →
-32600; an unknown method → -32601; bad params → -32602 naming the field; an expected
failure → prodigy's own code with `data` describing it; anything else → -32603 with a
reference into the daemon log, never a traceback. The first two are answered in the read
loop (`protocol.decode`, `protocol.check_request`): no input, however odd, reaches a
method unchecked or ends the connection (tests/integration/test_protocol_fuzz.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import socket
import struct
from collections.abc import Callable
from typing import Any

from pydantic import ValidationError

from prodigyd import errorcodes, paths, protocol
from prodigyd.api import schemas
from prodigyd.api.handlers import HANDLERS, DaemonState
from prodigyd.errors import ProdigyError
from prodigyd.store import journal
from prodigyd.store import sessions as session_store
from prodigyd.store.ids import check_id

log = logging.getLogger("prodigyd.server")

#: How long a client that sent an oversized message may go on sending before we close.
HANG_UP_SECONDS = 2.0


class Connection:
    def __init__(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        state: DaemonState,
        request_stop: Callable[[], None],
    ) -> None:
        self.reader = reader
        self.writer = writer
        self.state = state
        self.request_stop = request_stop
        self._write_lock = asyncio.Lock()
        self._tasks: set[asyncio.Task[None]] = set()
        self._next_subscription = 0

    async def serve(self) -> None:
        peer_uid = _peer_uid(self.writer)
        if peer_uid is not None and peer_uid != os.getuid():
            log.warning("refused a connection from uid %d (owner is %d)", peer_uid, os.getuid())
            with contextlib.suppress(ConnectionError, OSError):
                await self.send(
                    protocol.error(
                        None,
                        protocol.PRODIGY_ERROR,
                        f"permission denied: this prodigyd serves only uid {os.getuid()}",
                    )
                )
            await self._hang_up_gently()  # else its request may meet a closed socket (EPIPE)
            self.writer.close()
            return
        try:
            while True:
                try:
                    line = await self.reader.readuntil(b"\n")
                except asyncio.IncompleteReadError:
                    break  # client hung up
                except asyncio.LimitOverrunError:
                    await self.send(
                        protocol.error(
                            None,
                            protocol.INVALID_REQUEST,
                            f"message larger than {protocol.MAX_MESSAGE_BYTES} bytes",
                        )
                    )
                    await self._hang_up_gently()
                    break  # the stream cannot be resynchronised
                if not line.strip():
                    continue
                try:
                    request = protocol.check_request(protocol.decode(line))
                except protocol.RpcError as exc:  # answered here: no method runs
                    await self.send(exc.reply())
                    continue
                if request.method in INLINE_METHODS:
                    await self._handle(request)  # no task: the cheapest possible round trip
                else:
                    self._spawn(self._handle(request))
        except (ConnectionError, OSError):
            log.debug("client connection dropped")
        finally:
            for task in list(self._tasks):
                task.cancel()
            with contextlib.suppress(Exception):
                self.writer.close()

    async def _hang_up_gently(self) -> None:
        """Half-close, then discard what the client is still sending (briefly).

        Closing a socket with unread input makes the peer see a reset that can destroy the
        reply we just sent; this way the client reads its error, then end-of-stream.
        """
        with contextlib.suppress(OSError, RuntimeError):
            self.writer.write_eof()
        with contextlib.suppress(OSError, TimeoutError, asyncio.IncompleteReadError):
            async with asyncio.timeout(HANG_UP_SECONDS):
                while await self.reader.read(65536):
                    pass

    def _spawn(self, coro: Any) -> asyncio.Task[None]:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def send(self, message: dict[str, Any]) -> None:
        async with self._write_lock:
            self.writer.write(protocol.encode(message))
            await self.writer.drain()

    async def _handle(self, request: protocol.Request) -> None:
        try:
            reply = await self._call(request)
        except (ConnectionError, OSError):
            return
        if not request.notification:  # the spec: a notification is never answered
            with contextlib.suppress(ConnectionError, OSError):
                await self.send(reply)

    async def _call(self, request: protocol.Request) -> dict[str, Any]:
        msg_id, method, params = request.id, request.method, request.params
        if method not in HANDLERS and method not in SPECIAL_METHODS:
            return protocol.error(msg_id, protocol.METHOD_NOT_FOUND, f"Method not found: {method}")
        if not isinstance(params, dict):
            return protocol.error(msg_id, protocol.INVALID_PARAMS, POSITIONAL_PARAMS)
        if method == protocol.EVENTS_SUBSCRIBE:
            return await self._guarded(msg_id, lambda: self._subscribe(params))
        if method == protocol.JOBS_SUBMIT and params.get("follow") is True:
            return await self._guarded(msg_id, lambda: self._submit_following(params))
        if method == protocol.DAEMON_STOP:
            return await self._guarded(msg_id, lambda: self._stop(params))
        model, handler = HANDLERS[method]
        return await self._guarded(
            msg_id, lambda: handler(self.state, model.model_validate(params))
        )

    async def _guarded(self, msg_id: Any, call: Callable[[], Any]) -> dict[str, Any]:
        try:
            return protocol.result(msg_id, await call())
        except ValidationError as exc:
            return protocol.error(
                msg_id,
                protocol.INVALID_PARAMS,
                _params_message(exc),
                {"errors": _params_errors(exc), "code": errorcodes.for_params(exc.errors())},
            )
        except ProdigyError as exc:
            return _prodigy_error(msg_id, exc)
        except Exception as exc:
            damaged = journal.damage(exc)
            if damaged is not None:  # the user can do something about it: say what
                log.error("%s", damaged.message)
                return _prodigy_error(msg_id, damaged)
            ref = secrets.token_hex(4)
            log.exception("internal error (ref %s)", ref)
            message = f"internal error (see {paths.daemon_log()}, ref {ref})"
            return protocol.error(msg_id, protocol.INTERNAL_ERROR, message)

    async def _stop(self, params: dict[str, Any]) -> dict[str, Any]:
        """Reply first, then stop: the caller learns the stop was accepted."""
        p = schemas.StopParams.model_validate(params)
        scheduler = self.state.scheduler
        if not p.drain and scheduler.cut_drain_short():  # a stop during a drain: now
            self.state.drain = False
            return {"stopping": True, "drain": False}
        self.state.drain = p.drain
        asyncio.get_running_loop().call_soon(self.request_stop)
        running, queued = scheduler.backlog()
        return {"stopping": True, "drain": p.drain, "running": running, "queued": queued}

    async def _subscribe(self, params: dict[str, Any]) -> dict[str, Any]:
        p = schemas.SubscribeParams.model_validate(params)
        scheduler = self.state.scheduler
        if p.session_id is None:
            source = scheduler.watch_all()
        else:
            source = scheduler.hub(session_store.load(check_id(p.session_id))).subscribe(p.since)
        return {"subscription": self._open(source), "session_id": p.session_id}

    async def _submit_following(self, params: dict[str, Any]) -> dict[str, Any]:
        """`jobs.submit` with `follow`: this connection is subscribed to the job's events
        from its `event_seq` before the reply, as `events.subscribe` would be. A client
        that follows its job saves that second round trip, and the subscription exists
        before the job starts: its first events are sent as they happen, not replayed
        after the start that a later subscribe would wait behind."""
        model, handler = HANDLERS[protocol.JOBS_SUBMIT]
        record: dict[str, Any] = await handler(self.state, model.model_validate(params))
        hub = self.state.scheduler.hubs.get(record["id"])  # a new job's: made by its submit
        if hub is None:  # an earlier job's (idempotency key), its hub dropped since
            hub = self.state.scheduler.hub(session_store.load(record["id"]))
        record["subscription"] = self._open(hub.subscribe(record["event_seq"]))
        return record

    def _open(self, source: Any) -> int:
        """Forward `source`'s events on this connection; its subscription number. Entered
        here, not in the forwarding task: its backlog is taken (and live events queue)
        before the caller replies, and without a pass through the loop, where a job's
        start could run first."""
        self._next_subscription += 1
        number = self._next_subscription
        backlog, queue = source.__enter__()
        task = self._spawn(self._forward(backlog, queue, number))
        # left however it ends, cancelled before its first step included
        task.add_done_callback(lambda _: source.__exit__(None, None, None))
        return number

    async def _forward(
        self, backlog: list[dict[str, Any]], queue: asyncio.Queue[dict[str, Any]], number: int
    ) -> None:
        with contextlib.suppress(ConnectionError, OSError):
            for first in range(0, len(backlog), NOTIFY_BATCH):
                await self._notify(number, backlog[first : first + NOTIFY_BATCH])
            while True:
                events = [await queue.get()]
                while not queue.empty() and len(events) < NOTIFY_BATCH:
                    events.append(queue.get_nowait())  # what came meanwhile: the same write
                await self._notify(number, events)

    async def _notify(self, number: int, events: list[dict[str, Any]]) -> None:
        """The events as notifications, in one write: a write wakes the client, and a
        step's start often follows its session's start at once."""
        lines = b"".join(
            protocol.encode(
                protocol.notification(
                    protocol.EVENT_NOTIFICATION, {"subscription": number, "event": event}
                )
            )
            for event in events
        )
        async with self._write_lock:
            self.writer.write(lines)
            await self.writer.drain()


#: Events sent in one write at most (a replay is written, and drained, in such slices).
NOTIFY_BATCH = 256


#: Methods answered in the read loop itself: cheap and never blocking. Everything else runs
#: in its own task, so a long call (merge, submit) never holds up the connection.
INLINE_METHODS = frozenset({protocol.PING})


#: Methods served here rather than from HANDLERS: they act on the connection or the
#: daemon after their reply is written.
SPECIAL_METHODS = frozenset({protocol.EVENTS_SUBSCRIBE, protocol.DAEMON_STOP})

#: JSON-RPC allows params as an array (by position); no prodigy method takes them so.
POSITIONAL_PARAMS = "Invalid params: params must be an object (every method takes named params)"


def _peer_uid(writer: asyncio.StreamWriter) -> int | None:
    """The connecting process's uid (SO_PEERCRED), or None where the OS cannot say."""
    sock = writer.get_extra_info("socket")
    if sock is None or not hasattr(socket, "SO_PEERCRED"):
        return None
    creds = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    _pid, uid, _gid = struct.unpack("3i", creds)
    return int(uid)


def _params_errors(exc: ValidationError) -> list[dict[str, str]]:
    return [
        {"field": ".".join(str(p) for p in err["loc"]) or "params", "message": err["msg"]}
        for err in exc.errors()
    ]


def _prodigy_error(msg_id: Any, exc: ProdigyError) -> dict[str, Any]:
    code = protocol.CODE_FOR_KIND.get(exc.kind, protocol.PRODIGY_ERROR)
    return protocol.error(msg_id, code, exc.message, exc.to_dict())


def _params_message(exc: ValidationError) -> str:
    first = _params_errors(exc)[0]
    return f"Invalid params: {first['field']}: {first['message']}"
