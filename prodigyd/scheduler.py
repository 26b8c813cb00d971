"""The daemon's scheduler: a durable queue of jobs, run as asyncio tasks up to a limit.

Jobs (= sessions) live in the journal (store/journal.py). `submit` commits a `queued` job
before replying; the scheduler starts queued jobs, highest priority first and FIFO within a
priority, whenever fewer than `max_concurrent_jobs` run. It is event-driven: a submission,
a resume or a finished job wakes it; nothing polls.

Stopping (SIGTERM or `daemon.stop`): new work is refused; each running session finishes
the step it is in (up to `shutdown_grace_seconds`) and stops before the next one,
checkpointed and `interrupted`, marked to resume when the daemon starts again (when
`auto_resume` is on); stragglers are cancelled after the grace period. `drain` instead
lets every queued and running job finish first.

Each session also has an EventHub (eventhub.py), kept here while the session may still
emit or be followed.

A full disk (store/space.py) stops nothing that runs and loses nothing acknowledged:
submissions and client-asked changes are refused with NoSpace at once (but a running job
asked to stop stops: its end is recorded like any other); queued jobs wait (they could
not record their start); a running session that cannot record a change goes on and one
that cannot record its end is still reported to its followers, its record kept in memory
(store/sessions.py), and the scheduler does not start it again. The mender then tries
again every `MEND_SECONDS` until all of it is written, and wakes the scheduler: nothing
needs a restart once space is freed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import defaultdict
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from prodigyd import errorcodes, paths, systemd
from prodigyd.clock import now_iso
from prodigyd.config import ExecutorConfig
from prodigyd.engine.mapreduce.executors import Executors
from prodigyd.errors import Conflict, NoSpace, ProdigyError, ShuttingDown, StoreError
from prodigyd.eventhub import QUEUED_SEQ, EventHub
from prodigyd.eventtypes import EventType
from prodigyd.pool import WorktreePool
from prodigyd.store import aside, checkpoints, claude_invocations, journal, locks, space, spares
from prodigyd.store import sessions as session_store
from prodigyd.store.atomic import write_bytes_atomic
from prodigyd.store.locks import SessionLock
from prodigyd.store.sessions import SessionRecord, Status

if TYPE_CHECKING:
    from prodigyd.engine.admission import RunRequest
    from prodigyd.engine.context import EngineSettings
    from prodigyd.engine.session import Session
    from prodigyd.workflow.load import LoadedWorkflow
    from prodigyd.workflow.model import Budget

log = logging.getLogger("prodigyd.scheduler")

#: How long `cancel` waits for a job to checkpoint and stop after its processes are killed.
CANCEL_WAIT_SECONDS = 10.0

#: How often the mender tries to write what a full disk held back (only while there is some),
#: and looks for a quiet moment to scrub the journal (`_scrub_when_due`).
MEND_SECONDS = 2.0
#: The longest a dropped environment stays in the journal's write-ahead log while jobs keep
#: starting (`_scrub_when_due`).
SCRUB_AT_MOST_SECONDS = 60.0


def session_live(session_id: str) -> bool:
    """Whether a session still needs its worktree and branch (the pool's `Live`)."""
    row = journal.get(session_id)
    return row is not None and Status(row["status"]).keeps_worktree


#: Hubs kept for sessions that are not running and have no subscriber; beyond this the
#: oldest are dropped (and made again, from the log, if anyone asks).
IDLE_HUBS = 64
#: ... once this many more are idle: the oldest go a batch at a time, not one as each
#: session is submitted, whose start then paid for a sweep of the hubs and a log closed
#: (~0.15 ms on an idle daemon, between the submission's reply and the start).
IDLE_HUBS_SLACK = 16


@dataclass(frozen=True)
class Admitted:
    """A job this daemon just admitted and stored, as the journal holds it: its workflow
    as admission read it, its record and its private part (`Scheduler._start`)."""

    loaded: LoadedWorkflow
    record: SessionRecord
    env: dict[str, str]
    args: list[str]


@dataclass(frozen=True)
class SchedulerSettings:
    max_concurrent_jobs: int = 4
    auto_resume: bool = True
    shutdown_grace_seconds: float = 30.0
    executor: ExecutorConfig = field(default_factory=ExecutorConfig)  # unless a job says


class Scheduler:
    def __init__(
        self, engine: EngineSettings, settings: SchedulerSettings, pool: WorktreePool
    ) -> None:
        self.engine = engine
        self.settings = settings
        self.pool = pool
        self.executors = Executors(pool, settings.executor)
        self.hubs: dict[str, EventHub] = {}
        self.watchers: set[asyncio.Queue[dict[str, Any]]] = set()  # live events of every session
        self.running: dict[str, tuple[Session, asyncio.Task[None]]] = {}
        self._merge_locks: defaultdict[str, asyncio.Lock] = defaultdict(asyncio.Lock)
        self._wake = asyncio.Event()
        self._idle = asyncio.Event()
        self._scheduler: asyncio.Task[None] | None = None
        self._collector: asyncio.Task[None] | None = None
        self._mender: asyncio.Task[None] | None = None
        #: Each job submitted since the scheduler last woke, as it was admitted and stored,
        #: handed to the dispatch that wake runs (see `_start`).
        self._admitted: dict[str, Admitted] = {}
        #: The jobs just submitted whose hub is not made yet (`_announce`), with their priority.
        self._unannounced: dict[str, int] = {}
        self._syncing: asyncio.Task[None] | None = None  # `_sync_when_idle`'s
        self._eviction_due = False  # idle hubs are dropped after the current request
        self._starts = 0  # sessions started so far
        self._starts_at_tick = 0  # ... as the mender last counted them
        self.recovered = False  # the journal's running jobs were recovered at start
        self.held_back = False  # a queued job could not record its start (a full disk)
        self.writes_to_retry: list[Callable[[], None]] = []  # raise NoSpace until they fit
        self.accepting = True
        self.draining = False

    # -- lifecycle ----------------------------------------------------------------------

    def start(self) -> None:
        self._recover_or_wait()
        self._scheduler = asyncio.create_task(self._schedule(), name="scheduler")
        self._collector = asyncio.create_task(self._collect(), name="worktree collector")
        self._mender = asyncio.create_task(self._mend(), name="store mender")
        self._wake.set()

    def _recover_or_wait(self) -> None:
        """Recover, or (the journal cannot even be opened on a full disk) leave it to the
        mender: the daemon starts and answers all the same."""
        try:
            self.recover()
        except NoSpace as exc:
            log.warning("recovery waits for disk space: %s", exc.message)
            return
        self.recovered = True

    def store_problem(self) -> str | None:
        """What the daemon cannot write now (a full disk), or a journal it set aside, for
        `daemon.status`."""
        problem = space.current()
        if problem is not None:
            return problem.message
        for session_id in session_store.unsaved_ids():
            return session_store.unsaved(session_id)
        return aside.problem()

    def _needs_mending(self) -> bool:
        return (
            space.current() is not None
            or not self.recovered
            or self.held_back
            or bool(self.writes_to_retry)
            or bool(session_store.unsaved_ids())
            or claude_invocations.pending()
            or journal.degraded()
            or any(hub.log.pending for hub in self.hubs.values())
        )

    async def _mend(self) -> None:
        """While something could not be written (a full disk), try again now and then;
        once all of it fits, say so and let queued jobs start. And scrub the journal when
        it is due. Nothing either raises ends this task: what it mends would wait for good."""
        while True:
            await asyncio.sleep(MEND_SECONDS)
            try:
                self._scrub_when_due()
                if self._needs_mending():
                    self.mend()
            except Exception:
                log.exception("mending the store failed")

    def _scrub_when_due(self) -> None:
        """Empty the journal's write-ahead log of the environments dropped as jobs ended
        (journal.scrub, ~1 ms on the loop) once the daemon is quiet: no job runs and none
        started since the mender's last tick (so within 4 s of the last job's end); while
        jobs keep starting, SCRUB_AT_MOST_SECONDS after the first drop. Not as each job
        ends: that delayed each job's `session_finished` by ~1.5 ms (an interleaved A/B,
        2026-12-04, 90 jobs a side), and an emptied log grows again (see store/journal.py).
        A daemon that stops empties it too (SQLite, closing the journal); one killed leaves
        it to the next (journal._connect)."""
        since = journal.scrub_owed_since()
        quiet = not self.running and self._starts == self._starts_at_tick
        self._starts_at_tick = self._starts
        if since is not None and (quiet or time.monotonic() - since >= SCRUB_AT_MOST_SECONDS):
            journal.scrub()

    def mend(self) -> bool:
        """One try at writing everything held back; True when nothing is left."""
        try:
            journal.settle()
            if not self.recovered:
                self._recover_or_wait()
            if not session_store.flush_unsaved() or not claude_invocations.flush_unsaved():
                return False
            for hub in list(self.hubs.values()):
                hub.log.flush()
            while self.writes_to_retry:
                self.writes_to_retry[0]()
                self.writes_to_retry.pop(0)
            probe = paths.space_probe_file()
            write_bytes_atomic(probe, b"ok\n", durable=False)  # room for a new file, too?
            probe.unlink()
        except NoSpace:
            return False
        if not self.recovered:
            return False
        space.clear()
        self.held_back = False
        self._wake.set()
        return True

    async def _collect(self) -> None:
        """Collect worktree garbage after start (a crash may have left some) and then every
        `gc_interval`; in the background, so it never delays readiness or a job."""
        while True:
            try:
                report = await self.pool.gc(session_live)
                if any(report.as_dict().values()):
                    log.info("worktree gc: %s", report.as_dict())
            except Exception:
                log.exception("worktree gc failed")
            if self.pool.settings.gc_interval is None:
                return
            await asyncio.sleep(self.pool.settings.gc_interval)

    def recover(self) -> list[str]:
        """Jobs a dead daemon left `running` become `interrupted`, and (with auto_resume)
        every job interrupted by a daemon stop is queued to resume. Queued jobs just wait
        for the scheduler. Reads only active rows: startup cost does not grow with history.
        On a full disk these changes are kept in memory (session_store.save `defer`) and
        written by the mender; the jobs queued to resume start once they are.
        """
        recovered = []
        cleared = locks.clear_all()  # a kill -9 leaves its locks behind
        if cleared:
            log.info("removed the locks a stopped daemon left of %s", ", ".join(cleared))
        if journal.found_version() < journal.ENV_DROPPED_SINCE:
            dropped = session_store.forget_finished_environments()
            log.info("dropped the environment of %d finished jobs (journal upgrade)", dropped)
        for row in journal.with_status(Status.RUNNING.value):
            record = session_store.load(row["id"])
            if record.status is not Status.RUNNING:
                continue  # an earlier try already recovered it; not written yet
            record.status = Status.INTERRUPTED
            record.error = "prodigyd stopped while this session ran"
            # its record trails its journals: steps are counted at its start and end only,
            # items at most once a second
            done = checkpoints.steps_done(record.id)
            record.completed_steps = record.completed_steps if done is None else done
            counted = checkpoints.item_counts(record.id) if record.mode == "mapreduce" else None
            if counted is not None:
                record.processed_items, record.failed_items = counted
            session_store.save(record, defer=True, resume_on_start=1)
            self.hub(record).emit(
                EventType.SESSION_FINISHED,
                status="interrupted",
                error=record.error,
                **({"resumes": True} if self.settings.auto_resume else {}),
            )
            recovered.append(record.id)
        if self.settings.auto_resume:
            waiting = journal.to_resume(Status.INTERRUPTED.value)
            for session_id in dict.fromkeys([*recovered, *waiting]):
                record = session_store.load(session_id)
                damaged = _damaged_checkpoints(record)
                if damaged is not None:  # as `prodigyctl resume` refuses it: failed, saying why
                    record.status, record.error = Status.FAILED, damaged.render()
                    session_store.save(record, defer=True, resume_on_start=0)
                    self.hub(record).emit(
                        EventType.SESSION_FINISHED, status="failed", error=record.error
                    )
                    continue
                record.status, record.error = Status.QUEUED, None
                session_store.save(record, defer=True, action="resume", resume_on_start=0)
                log.info("session %s queued to resume", record.id)
        return recovered

    async def shutdown(self, *, drain: bool = False) -> None:
        """Refuse new work; drain or interrupt what runs (see the module docstring)."""
        self.accepting = False
        if drain:
            self.draining = True
            self._wake.set()
            while self.draining and (self.running or session_store.next_queued() is not None):
                self._idle.clear()
                await self._idle.wait()
        self.draining = False  # drained, or cut short (`cut_drain_short`): stop what runs
        await self._interrupt_all()
        for task in (self._scheduler, self._collector, self._mender):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        await self.executors.close()
        await self.pool.close()  # a spare worktree being made is cancelled and removed
        session_store.flush_unsaved()  # a last try: what still does not fit is recovered
        claude_invocations.flush_unsaved()  # (or lost: the records of invocations)
        for hub in self.hubs.values():  # as after a crash by the next daemon
            hub.log.close()

    def cut_drain_short(self) -> bool:
        """A plain stop asked during a drain: stop as it would have, running jobs interrupted
        (they resume at the next start) and queued ones left queued. False when no drain
        is under way."""
        if not self.draining:
            return False
        self.draining = False
        self._idle.set()
        return True

    def backlog(self) -> tuple[int, int]:
        """(running, queued) jobs: what a drain waits for. A job being started is running
        here and still `queued` in the journal (`_start`)."""
        starting = sum(1 for s, _ in self.running.values() if s.record.status is Status.QUEUED)
        queued = session_store.counts().get(Status.QUEUED.value, 0) - starting
        return len(self.running), queued

    async def _interrupt_all(self) -> None:
        sessions = [session for session, _ in self.running.values()]
        for session in sessions:
            session.stop_after_step(Status.INTERRUPTED, resume_on_start=self.settings.auto_resume)
        tasks = [task for _, task in self.running.values()]
        if tasks:
            _, pending = await asyncio.wait(tasks, timeout=self.settings.shutdown_grace_seconds)
            for task in pending:
                log.warning("%s did not stop within the grace period: cancelling", task.get_name())
                task.cancel()
            if pending:
                await asyncio.wait(pending, timeout=CANCEL_WAIT_SECONDS)

    # -- requests -----------------------------------------------------------------------

    def live(self, record: SessionRecord) -> SessionRecord:
        """`record` as its session holds it while it runs: the journal's copy is saved at
        the start and the end, not at every step, so `ps` showed a running job's progress
        as 0 (its checkpoint is the durable account of its steps)."""
        entry = self.running.get(record.id)
        return entry[0].record if entry is not None else record

    async def submit(
        self,
        request: RunRequest,
        *,
        priority: int = 0,
        idempotency_key: str | None = None,
        follow: bool = False,
    ) -> SessionRecord:
        """Admit and durably store a job. Its event hub and `session_queued` are made once
        the reply is on its way (`_announce`), unless `follow`: a client that subscribes
        in the same request needs the hub first (server.py, `_submit_following`)."""
        from prodigyd.engine.admission import prepare

        self._check_accepting()
        record, loaded = await prepare(request, claude_bin=self.engine.claude_bin)
        record.executor = self._executor(record, request.executor)
        stored = session_store.create(
            record,
            request.env,
            request.args,
            priority=priority,
            idempotency_key=idempotency_key,
        )
        if stored.id == record.id:
            self._admitted[record.id] = Admitted(
                loaded, record, dict(request.env), list(request.args)
            )
            self._unannounced[record.id] = priority
            if follow:
                self.hub(record)
            else:
                asyncio.get_running_loop().call_soon(self._announce, record)
            self._wake.set()
        return stored

    def _announce(self, record: SessionRecord) -> None:
        """Make a just-submitted job's hub, which tells its `session_queued` to those who
        watch every session, unless something asked for the hub already (`hub`). Run once
        the submission is answered: the reply waits for the journal's commit alone, not also
        for a hub (~0.15 ms on an idle daemon), and a watcher is told of the job after its
        submitter, never before."""
        if record.id in self._unannounced:
            self.hub(record)

    async def resume(
        self,
        session_id: str,
        *,
        force: bool,
        merge_policy: str | None,
        env: dict[str, str] | None = None,
        budget: Budget | None = None,
        from_step: str | None = None,
        executor: ExecutorConfig | None = None,
    ) -> SessionRecord:
        """Queue a failed or interrupted session to continue; `env` (the resuming client's
        environment) replaces the one it was submitted with, so a fixed variable counts;
        `budget`'s fields replace those of the job's budget (a larger one, after it ran out);
        `from_step` (a step's number or name) runs again from that step on; `executor`
        replaces the one its map agents ran on."""
        from prodigyd.engine.admission import check_environment, check_resumable, step_index
        from prodigyd.engine.plan import run_count, total_steps
        from prodigyd.workflow.load import load_workflow_async
        from prodigyd.workflow.model import Budget

        self._check_accepting()
        record = session_store.load(session_id)
        if record.status.active:
            raise Conflict(
                f"session {session_id} is already {record.status.value}",
                code=errorcodes.WRONG_STATE,
            )
        loaded = await load_workflow_async(record.workflow, strict=record.strict)
        check_resumable(record, loaded, force=force, pool=self.pool)
        if from_step is not None and run_count(record) > 1:
            raise Conflict(
                f"session {session_id} runs its steps {run_count(record)} times (-n, --map): "
                "resume --from applies to a session that runs them once",
                hint=f"prodigyctl resume {session_id} continues where it stopped",
            )
        _, args = session_store.load_private(session_id)
        if env is not None:
            await check_environment(loaded.workflow, record, env, args, self.engine.claude_bin)
            session_store.save_private(session_id, env, args)
        if force:
            record.workflow_sha256 = loaded.sha256
            record.total_steps = total_steps(loaded.workflow, record.dlq_retry, run_count(record))
        if merge_policy:
            record.merge_policy = merge_policy
        if budget is not None:
            record.budget = (record.budget or Budget()).merged(budget)
        if executor is not None:
            record.executor = self._executor(record, executor)
        if from_step is not None:
            checkpoints.rewind(session_id, step_index(loaded.workflow, from_step))
        record.status, record.error = Status.QUEUED, None
        session_store.save(record, durable=True, action="resume", resume_on_start=0)
        self.hub(record).emit(EventType.SESSION_QUEUED, workflow=record.workflow, resumed=True)
        self._wake.set()
        return record

    async def merge(self, session_id: str) -> SessionRecord:
        from prodigyd.workflow.load import load_workflow_async

        record = session_store.load(session_id)
        if record.status is not Status.AWAITING_MERGE:
            raise Conflict(
                f"session {session_id} is {record.status.value}, not awaiting_merge",
                code=errorcodes.WRONG_STATE,
            )
        loaded = await load_workflow_async(record.workflow, strict=record.strict)
        session = self._session(record, loaded)
        with SessionLock(session_id):
            return await session.merge()

    async def cancel(self, session_id: str, *, resumable: bool) -> SessionRecord:
        """Stop a job: `interrupted` (resumable, for Ctrl-C) or `cancelled` (for good)."""
        status = Status.INTERRUPTED if resumable else Status.CANCELLED
        entry = self.running.get(session_id)
        if entry is not None:
            session, task = entry
            session.cancel(status)
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, TimeoutError):
                await asyncio.wait_for(asyncio.shield(task), CANCEL_WAIT_SECONDS)
            record = session_store.load(session_id)
            if task.done():  # else its end still uses the worktree; gc takes it later
                await self._give_back(record)
            return record
        record = session_store.load(session_id)
        if record.status in (Status.COMPLETED, Status.CANCELLED) or (
            resumable and record.status is not Status.QUEUED
        ):
            raise Conflict(
                f"session {session_id} is {record.status.value}: nothing to cancel",
                code=errorcodes.WRONG_STATE,
            )
        record.status = status  # queued, failed, interrupted or awaiting_merge: closed for good
        record.completed_at = now_iso() if status is Status.CANCELLED else None
        session_store.save(record, durable=True)
        if status is Status.CANCELLED:  # as Session._finish: nothing resumes it now
            from prodigyd.engine.claude_sessions import prune_session
            from prodigyd.engine.journal import StoreJournal

            prune_session(StoreJournal(), session_id)
        self.hub(record).emit(EventType.SESSION_FINISHED, status=status.value, error=None)
        await self._give_back(record)
        return record

    async def _give_back(self, record: SessionRecord) -> None:
        """A session cancelled for good needs its worktree no more: it goes back to the
        pool now, not at the next gc, with its leftovers committed on its branch (kept)."""
        if record.status is not Status.CANCELLED or not record.worktree:
            return
        path = Path(record.worktree)
        if not self.pool.holds(record.id, path):
            return
        try:
            await self.pool.reclaim(path, record.id)
        except ProdigyError as exc:  # the collector tries again later
            log.warning("session %s: cannot give its worktree back: %s", record.id, exc.message)

    def _sync_when_idle(self) -> None:
        """No job runs: sync the journal's log in a worker thread (journal.sync_log), so the
        next submission's durable commit does not sync what the jobs before it wrote."""
        if self._syncing is None or self._syncing.done():
            self._syncing = asyncio.create_task(asyncio.to_thread(journal.sync_log))

    def _check_accepting(self) -> None:
        if not self.accepting:
            raise ShuttingDown(
                "prodigyd is shutting down and accepts no new work",
                hint="run the command again in a moment: a new daemon will start",
            )

    # -- scheduling ---------------------------------------------------------------------

    async def _schedule(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            admitted, self._admitted = self._admitted, {}  # for this dispatch only
            if self.accepting or self.draining:
                await self._dispatch(admitted)
            if not self.running:
                self._idle.set()
                self._sync_when_idle()
                spares.top_up()

    async def _dispatch(self, admitted: dict[str, Admitted] | None = None) -> None:
        if not self.recovered or self.held_back:
            return  # the mender wakes us when the disk has room
        waiting: list[str] = []  # triggered runs whose twin runs (`_twin_runs`)
        while len(self.running) < self.settings.max_concurrent_jobs:
            row = session_store.next_queued(also_skip=waiting)
            if row is None:
                return
            if self._twin_runs(row["id"]):
                waiting.append(row["id"])
                continue
            try:
                mine = admitted.pop(row["id"], None) if admitted else None
                if not await self._start(
                    row["id"], resume=row["action"] == "resume", admitted=mine
                ):
                    return
            except NoSpace as exc:
                log.warning("queued jobs wait for disk space: %s", exc.message)
                self.held_back = True  # still queued: it starts once its start fits
                return

    def _twin_runs(self, session_id: str) -> bool:
        """Whether the queued `session_id` is a run a trigger started whose workflow runs,
        triggered, on the same branch: it waits for that run to end, and meanwhile takes
        each newer event of its trigger in its place (watch/gate.py), so a burst of
        commits makes one run and one more, from the newest tip, where each started its
        own from the same tip (with `merge: auto`, their merges conflicted). A tag's run
        has no branch of its own: it waits for none. (Read only while a triggered run
        runs: no other dispatch pays for it.)"""
        from prodigyd.watch.gate import coalesces

        busy = {
            (session.record.workflow, session.record.original_branch)
            for session, _ in self.running.values()
            if session.record.triggered_by is not None and coalesces(session.record.id)
        }
        if not busy or not coalesces(session_id):  # a tag's run waits for nothing
            return False
        record = session_store.load(session_id)
        return (record.workflow, record.original_branch) in busy

    async def _start(
        self, session_id: str, *, resume: bool, admitted: Admitted | None = None
    ) -> bool:
        """Start a queued session; False when the daemon began stopping meanwhile. It stays
        `queued` in the journal until its worktree is ready: the session stores its start
        then (Session.run), one save where two were (~0.3 ms each), and until then its lock
        (held from here) keeps it from being handed out twice (sessions.next_queued). When
        that save does not fit, it stays queued (a job that runs while the journal says
        `queued` could start twice) and the queue waits for disk space (`_run`).

        Its workflow is read in a worker thread (it may have been edited since it was
        submitted), and much can happen during that wait: the session may be cancelled,
        the daemon may stop. So the record is read again, and nothing starts late. A job
        started by the dispatch its own submission woke (nothing made it wait) is given
        what its admission read and stored a moment before (`admitted`): its workflow,
        record, environment and arguments. Reading them again would cost that start a
        worker thread's round trip and two journal reads (~0.25 ms) and find the same: the
        dispatch found the job still queued (sessions.next_queued) with no wait since.
        """
        from prodigyd.workflow.load import load_workflow_async

        error: ProdigyError | None = None
        if admitted is not None:
            record, loaded = admitted.record, admitted.loaded
        else:
            record = session_store.load(session_id)
            loaded = None
            try:
                loaded = await load_workflow_async(record.workflow, strict=record.strict)
            except ProdigyError as exc:
                error = exc
            if not (self.accepting or self.draining):
                return False  # it stays queued for the next daemon
            record = session_store.load(session_id)
            if record.status is not Status.QUEUED:
                return True  # cancelled while its workflow was read
        try:
            if error is not None:
                raise error
            self._executor(record, record.executor)  # refused when it cannot work now
            lock = SessionLock(record.id, file=resume)  # (store/locks.py)
        except NoSpace:
            raise
        except ProdigyError as exc:
            self._fail_before_start(record, exc, resume=resume)
            return True
        assert loaded is not None  # None only with an error, raised above
        record.workflow_sha256 = loaded.sha256 if not resume else record.workflow_sha256
        session = self._session(record, loaded, admitted)
        task = asyncio.create_task(self._run(session, lock, resume), name=f"session {record.id}")
        self.running[record.id] = (session, task)
        self._starts += 1
        self._report()
        return True

    def _executor(
        self, record: SessionRecord, chosen: ExecutorConfig | None
    ) -> ExecutorConfig | None:
        """Where a MapReduce job's agents run: `chosen` over `[executor]`, resolved, to be
        kept with the job (its resume and DLQ retries run there too); None for a job
        without map agents. A ProdigyError when it cannot work."""
        if record.mode != "mapreduce":
            if chosen is not None and (chosen.kind != "local" or chosen.address is not None):
                record.warnings.append(
                    "--executor and --executor-address apply to a MapReduce workflow's map "
                    "agents; this workflow has none, so it runs in the daemon"
                )
            return None
        return self.executors.resolve(chosen)

    def _fail_before_start(
        self, record: SessionRecord, exc: ProdigyError, *, resume: bool = False
    ) -> None:
        """A job that cannot start fails, to be resumed once its cause is fixed; but a run
        a trigger queued, never started, whose workflow file is gone by then (deleted,
        renamed, its branch no longer checked out there) is not run, nor left failed: the
        workflow that asked for it is not there. A resume is never dropped so: a run that
        started has work of its own, which its resume finishes once the file is back."""
        if (
            record.triggered_by is not None
            and not resume
            and exc.code == errorcodes.WORKFLOW_NOT_FOUND
            and not Path(record.workflow).exists()
        ):
            status = Status.CANCELLED
            record.error = (
                f"not run: its workflow {record.workflow} was gone when it was to start "
                "(deleted, renamed, or not in the branch checked out there)"
            )
        else:
            status, record.error = Status.FAILED, exc.render()
        record.status = status
        session_store.save(record, defer=True)
        self.hub(record).emit(EventType.SESSION_FINISHED, status=status.value, error=record.error)

    async def _run(self, session: Session, lock: SessionLock, resume: bool) -> None:
        from prodigyd.engine.journal import NotStarted

        record = session.record
        try:
            await session.run(resume=resume)
        except NotStarted as exc:  # still queued: it starts once its start fits
            log.warning("queued jobs wait for disk space: %s", exc.reason.message)
            self.held_back = True
        except asyncio.CancelledError:
            log.info("session %s stopped", record.id)
        except Exception:
            log.exception("session %s crashed", record.id)
            record.status, record.error = Status.FAILED, f"internal error; see {paths.daemon_log()}"
            session_store.save(record, defer=True)
            self.hub(record).emit(EventType.SESSION_FINISHED, status="failed", error=record.error)
        else:  # one line a job in the daemon's log (after its end was told: no one waits)
            log.info("session %s (%s) %s", record.id, record.workflow_name, record.status.value)
        finally:
            lock.release()
            self.running.pop(record.id, None)
            self._report()
            if session.resume_on_start:
                session_store.save(record, defer=True, resume_on_start=1)
            self._wake.set()

    def _session(
        self, record: SessionRecord, loaded: Any, admitted: Admitted | None = None
    ) -> Session:
        # The engine is imported by the first job, not by the daemon's start (its `ready`).
        from prodigyd.engine.journal import StoreJournal
        from prodigyd.engine.session import Session

        if admitted is not None:  # what was stored a moment ago (`_start`)
            env, args = admitted.env, admitted.args
        else:
            env, args = session_store.load_private(record.id)
        return Session(
            record,
            loaded,
            env=env,
            args=args,
            events=self.hub(record),
            settings=self.engine,
            merge_lock=self._merge_lock,
            pool=self.pool,
            runner=self.executors.runner(record.executor)
            if record.mode == "mapreduce"
            else self.executors.local,
            journal=StoreJournal(),
        )

    @contextlib.asynccontextmanager
    async def _merge_lock(self, repo: str) -> AsyncIterator[None]:
        """Merges into one checkout run one at a time."""
        async with self._merge_locks[repo]:
            yield

    def _report(self) -> None:
        """Tell systemd (when it supervises us) what we are doing: `systemctl status` shows it.
        Not supervised, nothing is counted: a count reads every job, at each start and end."""
        if not systemd.supervised():
            return
        running, queued = self.backlog()
        systemd.status(f"{running} running, {queued} queued")

    # -- views --------------------------------------------------------------------------

    def hub(self, record: SessionRecord) -> EventHub:
        """The session's hub, made when it has none: its log read back, or, for a job just
        submitted (nothing to read back), with its `session_queued` (`submit`)."""
        hub = self.hubs.get(record.id)
        if hub is None:
            self._evict_soon()
            priority = self._unannounced.pop(record.id, None)
            new = priority is not None
            hub = self.hubs[record.id] = EventHub(record, self.watchers, new=new)
            if priority is not None:
                hub.queued(record, priority)
        return hub

    def event_seq(self, record: SessionRecord) -> int:
        """The number of the session's newest event (a follower subscribes after it),
        without making the hub of a job just submitted: its `session_queued`'s."""
        if record.id in self._unannounced:
            return QUEUED_SEQ
        return self.hub(record).seq

    def _evict_soon(self) -> None:
        """Drop idle hubs once the current request is answered (closing one writes its log:
        a new session's held first line, a folder and a file made, which a submission's
        acknowledgement need not wait for), and only once IDLE_HUBS_SLACK more than
        IDLE_HUBS are idle."""
        if self._eviction_due or len(self.hubs) - len(self.running) < IDLE_HUBS + IDLE_HUBS_SLACK:
            return  # (the hub about to be made is not counted yet)
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # no loop (a test driving the scheduler): at once
            self._evict_idle_hubs()
            return
        self._eviction_due = True
        loop.call_soon(self._evict_idle_hubs)

    def _evict_idle_hubs(self) -> None:
        """Drop the oldest idle hubs beyond IDLE_HUBS; never one whose log has lines waiting
        for disk space (the mender writes them; dropped, they would be lost)."""
        self._eviction_due = False
        idle = [
            sid
            for sid, hub in self.hubs.items()
            if sid not in self.running and not hub.subscribers and not hub.log.pending
        ]
        for session_id in idle[: max(0, len(idle) - IDLE_HUBS)]:  # oldest first (dict order)
            self.hubs.pop(session_id).log.close()

    def forget(self, session_id: str) -> None:
        """Drop what is kept of a session the retention policy removed (its event hub)."""
        hub = self.hubs.pop(session_id, None)
        if hub is not None:
            hub.log.close()

    @contextlib.contextmanager
    def watch_all(self) -> Any:
        """A queue receiving every session's events from now on."""
        queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.watchers.add(queue)
        try:
            yield [], queue
        finally:
            self.watchers.discard(queue)

    def status(self) -> dict[str, Any]:
        return {
            "running_sessions": sorted(self.running),
            "jobs": session_store.counts(),
            "max_concurrent_jobs": self.settings.max_concurrent_jobs,
            "accepting": self.accepting,
            "store_problem": self.store_problem(),
            "unsaved_sessions": session_store.unsaved_ids(),
        }


def _damaged_checkpoints(record: SessionRecord) -> ProdigyError | None:
    """Why an interrupted job must not resume by itself: its checkpoints lost steps it had
    done, which would run again (engine/admission.py); None when nothing stops it here (a
    workflow that no longer loads is said by its start)."""
    from prodigyd.engine.admission import refuse_damaged_checkpoints
    from prodigyd.workflow.load import load_workflow

    try:
        loaded = load_workflow(record.workflow, strict=record.strict)
    except ProdigyError:
        return None
    try:
        refuse_damaged_checkpoints(record, loaded.workflow)
    except StoreError as exc:
        return exc
    return None
