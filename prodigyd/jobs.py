"""The daemon's jobs: one asyncio task per running session, and each session's event hub.

This is the in-memory scheduler of the walking skeleton: jobs start at once and run
concurrently. The durable queue (submission journal, concurrency limit, restart recovery)
replaces it in the next issue without changing the RPC surface.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import defaultdict
from collections.abc import AsyncIterator
from typing import Any

from prodigyd import paths
from prodigyd.engine.context import EngineSettings
from prodigyd.engine.session import (
    RunRequest,
    Session,
    check_resumable,
    load_environment,
    prepare,
    save_environment,
)
from prodigyd.errors import Conflict, ShuttingDown
from prodigyd.store import sessions as session_store
from prodigyd.store.events import EventLog, read_events
from prodigyd.store.locks import SessionLock
from prodigyd.store.sessions import SessionRecord, Status, now_iso
from prodigyd.workflow.load import load_workflow

log = logging.getLogger("prodigyd.jobs")

#: How long `cancel` waits for a job to checkpoint and stop after its processes are killed.
CANCEL_WAIT_SECONDS = 10.0


class EventHub:
    """One session's events: numbered, logged to disk, kept for replay, fanned out live."""

    def __init__(self, record: SessionRecord) -> None:
        self.session_id = record.id
        self.log = EventLog(record.repo_id, record.id)
        self.history: list[dict[str, Any]] = list(read_events(record.repo_id, record.id))
        self.seq = self.history[-1]["seq"] if self.history else 0
        self.subscribers: set[asyncio.Queue[dict[str, Any]]] = set()

    def emit(self, event_type: str, /, **fields: Any) -> None:
        self.seq += 1
        event = {
            "seq": self.seq,
            "timestamp": now_iso(),
            "event_type": event_type,
            "session_id": self.session_id,
            **fields,
        }
        try:
            self.log.append(event)
        except OSError:
            log.exception("cannot write event log for %s", self.session_id)
        self.history.append(event)
        for queue in self.subscribers:
            queue.put_nowait(event)

    @contextlib.contextmanager
    def subscribe(self, since: int) -> Any:
        """Yield (backlog, queue): every event after `since`, then live ones, none twice."""
        queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        backlog = [e for e in self.history if e["seq"] > since]
        self.subscribers.add(queue)
        try:
            yield backlog, queue
        finally:
            self.subscribers.discard(queue)


class JobManager:
    def __init__(self, settings: EngineSettings) -> None:
        self.settings = settings
        self.hubs: dict[str, EventHub] = {}
        self.tasks: dict[str, asyncio.Task[None]] = {}
        self._merge_locks: defaultdict[str, asyncio.Lock] = defaultdict(asyncio.Lock)
        self.accepting = True

    # -- submissions --------------------------------------------------------------------

    async def submit(self, request: RunRequest) -> SessionRecord:
        self._check_accepting()
        record, loaded = await prepare(request)
        lock = SessionLock(record.id)  # a fresh id: cannot be held, but owns the run
        save_environment(record.id, request.env)
        session_store.save(record)
        self._start(self._session(record, loaded, request.env), lock, resume=False)
        return record

    async def resume(
        self, session_id: str, *, force: bool, merge_policy: str | None
    ) -> SessionRecord:
        self._check_accepting()
        if session_id in self.tasks:
            raise Conflict(f"session {session_id} is already running")
        record = session_store.load(session_id)
        loaded = load_workflow(record.workflow, strict=record.strict)
        check_resumable(record, loaded, force=force)
        if force:
            record.workflow_sha256 = loaded.sha256
            record.total_steps = len(loaded.workflow.steps)
        if merge_policy:
            record.merge_policy = merge_policy
        lock = SessionLock(session_id)  # refuses here, before we acknowledge, if held
        try:
            session = self._session(record, loaded, load_environment(session_id))
        except BaseException:
            lock.release()
            raise
        self._start(session, lock, resume=True)
        return record

    async def merge(self, session_id: str) -> SessionRecord:
        record = session_store.load(session_id)
        if record.status is not Status.AWAITING_MERGE:
            raise Conflict(f"session {session_id} is {record.status.value}, not awaiting_merge")
        loaded = load_workflow(record.workflow, strict=record.strict)
        session = self._session(record, loaded, load_environment(session_id))
        lock = SessionLock(session_id)
        try:
            return await session.merge()
        finally:
            lock.release()

    async def cancel(self, session_id: str) -> SessionRecord:
        task = self.tasks.get(session_id)
        if task is None:
            record = session_store.load(session_id)
            raise Conflict(f"session {session_id} is not running (it is {record.status.value})")
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, TimeoutError):
            await asyncio.wait_for(asyncio.shield(task), CANCEL_WAIT_SECONDS)
        return session_store.load(session_id)

    def _check_accepting(self) -> None:
        if not self.accepting:
            raise ShuttingDown(
                "prodigyd is shutting down and accepts no new work",
                hint="run the command again in a moment: a new daemon will start",
            )

    def _session(self, record: SessionRecord, loaded: Any, env: dict[str, str]) -> Session:
        return Session(
            record,
            loaded,
            env=env,
            events=self.hub(record),
            settings=self.settings,
            merge_lock=self._merge_lock,
        )

    def _start(self, session: Session, lock: SessionLock, *, resume: bool) -> None:
        """Run the session as a task that owns (and finally releases) its lock."""
        task = asyncio.create_task(
            self._run(session, lock, resume), name=f"session {session.record.id}"
        )
        self.tasks[session.record.id] = task
        task.add_done_callback(lambda _t, sid=session.record.id: self.tasks.pop(sid, None))

    async def _run(self, session: Session, lock: SessionLock, resume: bool) -> None:
        record = session.record
        try:
            await session.run(resume=resume)
        except asyncio.CancelledError:
            log.info("session %s interrupted", record.id)
        except Exception:
            log.exception("session %s crashed", record.id)
            record.status, record.error = Status.FAILED, "internal error; see prodigyd.log"
            session_store.save(record)
            self.hub(record).emit("session_finished", status="failed", error=record.error)
        finally:
            lock.release()

    @contextlib.asynccontextmanager
    async def _merge_lock(self, repo: str) -> AsyncIterator[None]:
        """Merges into one checkout run one at a time."""
        async with self._merge_locks[repo]:
            yield

    # -- events -------------------------------------------------------------------------

    def hub(self, record: SessionRecord) -> EventHub:
        hub = self.hubs.get(record.id)
        if hub is None:
            hub = self.hubs[record.id] = EventHub(record)
        return hub

    # -- startup and shutdown -----------------------------------------------------------

    def recover(self) -> list[str]:
        """Sessions a dead daemon left `running` become `interrupted`: resumable, not stuck."""
        recovered = []
        for record in session_store.list_all():
            if record.status is Status.RUNNING:
                record.status = Status.INTERRUPTED
                record.error = (
                    "prodigyd stopped while this session ran; resume it with "
                    f"`prodigyctl resume {record.id}`"
                )
                session_store.save(record)
                self.hub(record).emit("session_finished", status="interrupted", error=record.error)
                recovered.append(record.id)
        return recovered

    async def shutdown(self) -> None:
        """Stop taking work, interrupt running sessions (resumable), close the logs."""
        self.accepting = False
        tasks = list(self.tasks.values())
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks, timeout=CANCEL_WAIT_SECONDS)
        for hub in self.hubs.values():
            hub.log.close()

    def status(self) -> dict[str, Any]:
        return {"running_sessions": sorted(self.tasks), "home": str(paths.home())}
