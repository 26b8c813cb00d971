"""A session's lifecycle, from its worktree to its end (reference §4.1, §4.7, §4.10).

`Session.run()` takes a worktree from the pool, runs the workflow's phases (one for a
standard workflow, setup → map → reduce for MapReduce: mapreduce/phases.py) with a
checkpoint per step, and records the outcome; a resumed run continues from the journals.
`Session.merge()` brings a successful session back (finish.py does the git work) under
the repository's merge lock; an `on: files` run, never merged, completes with its result
on its branch instead (`finish.end_unmerged`). Admission (what is checked before a job is
acknowledged) is admission.py; which phases a session has and how far they got, plan.py.

Everything the session records goes through the RunJournal it is given, every event
through `SessionSink`, which masks it: the session never writes the store or a socket
itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from prodigyd import paths
from prodigyd.clock import now_iso
from prodigyd.engine import finish
from prodigyd.engine.admission import compose_environment
from prodigyd.engine.attempts import JournalAttempts
from prodigyd.engine.budget import Ledger, Meter, Spend
from prodigyd.engine.claude_sessions import Conversations, prune_session
from prodigyd.engine.context import EngineSettings, EventSink, RunContext
from prodigyd.engine.gitvars import GitTracker, references_git_variables
from prodigyd.engine.journal import CheckpointLog, RunJournal
from prodigyd.engine.mapreduce.phases import run_dlq_retry, run_mapreduce
from prodigyd.engine.mapreduce.runner import AgentRunner
from prodigyd.engine.mapreduce.setup import input_file
from prodigyd.engine.mask import Masker
from prodigyd.engine.phase import Checkpoint, PhaseOutcome, StepHook, run_sequential
from prodigyd.engine.plan import (
    all_steps_done,
    checkpointed_steps,
    latest_variables,
    run_count,
    steps_before,
    total_steps,
)
from prodigyd.engine.runs import iteration_of, run_all
from prodigyd.engine.step import StepRunner
from prodigyd.errors import Conflict, GitError, ProdigyError, StoreError
from prodigyd.eventtypes import EventType
from prodigyd.git import repo as git_repo
from prodigyd.git import worktree as git_worktree
from prodigyd.git.cli import SESSION_VAR
from prodigyd.pool import WorktreePool
from prodigyd.proc import kill_processes_in
from prodigyd.store import checkpoints
from prodigyd.store.atomic import read_json
from prodigyd.store.checkpoints import MAIN
from prodigyd.store.sessions import BudgetUse, SessionRecord, Status
from prodigyd.workflow.load import LoadedWorkflow
from prodigyd.workflow.model import Budget, Step, Workflow

log = logging.getLogger("prodigyd.session")

MergeLock = Callable[[str], contextlib.AbstractAsyncContextManager[None]]

#: How often map-phase item counts are saved to the session record (at most).
PROGRESS_SAVE_SECONDS = 1.0


class SessionSink:
    """Masks every event before it leaves the engine; stores each Claude invocation's
    record (the `claude_invocation` event, from a step or a map agent) and totals its cost
    and tokens, those of an invocation stopped before its result line too."""

    def __init__(
        self, inner: EventSink, masker: Masker, record: SessionRecord, journal: RunJournal
    ) -> None:
        self.inner = inner
        self.masker = masker
        self.record = record
        self.journal = journal

    def emit(self, event_type: str, /, **fields: Any) -> None:
        masked = self.masker.mask_obj(fields)
        if event_type == EventType.CLAUDE_INVOCATION:
            self.record.cost_usd += float(fields.get("cost_usd") or 0)
            self.record.input_tokens += int(fields.get("input_tokens") or 0)
            self.record.output_tokens += int(fields.get("output_tokens") or 0)
            self.record.cache_read_tokens += int(fields.get("cache_read_tokens") or 0)
            self.record.cache_creation_tokens += int(fields.get("cache_creation_tokens") or 0)
            self.journal.claude_invocation(self.record.id, masked)
        self.inner.emit(event_type, **masked)


class Session:
    """Runs one session's workflow in its worktree and merges the result."""

    def __init__(
        self,
        record: SessionRecord,
        loaded: LoadedWorkflow,
        *,
        env: Mapping[str, str],
        args: Sequence[str] = (),
        events: EventSink,
        settings: EngineSettings,
        merge_lock: MergeLock,
        pool: WorktreePool,
        runner: AgentRunner,
        journal: RunJournal,
    ) -> None:
        self.record = record
        self.pool = pool
        self.runner = runner  # where its map agents run
        self.journal = journal
        self.loaded = loaded
        self.inherited = dict(env)
        self.args = list(args)  # verbatim: record.args is the masked copy clients see
        self.masker = Masker()
        self.events = SessionSink(events, self.masker, record, journal)
        self.settings = settings
        self.merge_lock = merge_lock
        self.stop_status = Status.INTERRUPTED  # what a cancellation records
        self.resume_on_start = False  # stopped by a daemon shutdown: resume at next start
        self._stop = asyncio.Event()  # set: finish the current step, then stop
        self.worktree_reused = False  # the pool handed out a used slot (session_started)
        #: The phases begun by a first run (not a resume) of the session: a phase not among
        #: them has no checkpoint journal to read yet (`sequential`).
        self._begun: set[str] | None = None
        self._progress_saved = 0.0  # when map_progress last saved the record
        self.meter: Meter | None = None  # the job's budget while it runs (engine/budget.py)

    def stop_after_step(self, status: Status, *, resume_on_start: bool = False) -> None:
        """Let the running step finish, then stop the session (checkpointed)."""
        self.stop_status, self.resume_on_start = status, resume_on_start
        self._stop.set()

    def cancel(self, status: Status) -> None:
        """Record `status` when the task running this session is cancelled."""
        self.stop_status = status

    @property
    def worktree(self) -> Path:
        return Path(self.record.worktree)

    def _update(self, **changes: Any) -> None:
        for key, value in changes.items():
            setattr(self.record, key, value)
        if changes.get("error"):
            self.record.error = self.masker.mask(changes["error"])
        self.journal.save_record(self.record)

    async def run(self, *, resume: bool = False) -> SessionRecord:
        """Run (or resume) the workflow; returns the record in its new state."""
        record = self.record
        self._begun = None if resume else set()
        try:
            if resume:
                resume = await self._prepare_resume()
            # the journals, not a record a kill -9 may have cut off, say how far it got
            record.total_steps = total_steps(
                self.loaded.workflow, record.dlq_retry, run_count(record)
            )
            record.completed_steps = (
                checkpointed_steps(self.journal, record, self.loaded.workflow) if resume else 0
            )
            if not resume:
                await self._create_worktree()
            self.meter = self._job_meter()
            # Stopped after its clean-up gave the worktree back (every step done, or
            # `_prepare_resume` refuses): only its end is left, and the slot may be another
            # session's by now, so nothing runs there, not even its env's commands.
            ended = resume and not finish.holds_worktree(record, self.pool)
            ctx = None if ended else await self._context(resume)
            record.status, record.error, record.completed_at = Status.RUNNING, None, None
            self.journal.save_start(record)  # NotStarted: it stays queued (scheduler.py)
            self.events.emit(
                EventType.SESSION_STARTED,
                workflow=record.workflow,
                mode=record.mode,
                worktree=record.worktree,
                branch=record.branch,
                total_steps=record.total_steps,
                resumed=resume,
                worktree_reused=self.worktree_reused,
            )
            if ctx is None:
                outcome = PhaseOutcome(ok=True)
            else:
                git = GitTracker(
                    self.worktree,
                    record.base_commit or self._legacy_base_commit(),
                    track=references_git_variables(self.loaded.workflow),
                )
                outcome = await self._run_phases(ctx, git)
            if outcome.ok and record.start_commit:  # `on: files`: never merged (see merge)
                where = await finish.end_unmerged(
                    record,
                    self.pool,
                    self.events,
                    snapshot=record.start_commit,
                    leave_out=input_file(self.loaded.workflow),
                )
                self._finish(Status.COMPLETED, None, message=where)
                return record
        except asyncio.CancelledError:
            self._finish(self.stop_status, self._stopped_message())
            raise
        except ProdigyError as exc:
            self._finish(Status.FAILED, exc.render(), exc.code)
            return record
        if outcome.stopped:
            self._finish(self.stop_status, self._stopped_message())
            return record
        if not outcome.ok:
            if outcome.dead_end:  # no resume needs the worktree: given back, and said so
                await finish.clean_up(record, self.pool, self.events)
            error = outcome.error or "a step failed"
            self._finish(Status.FAILED, error, outcome.code, kept=not outcome.dead_end)
            return record
        if record.merge_policy == "auto":
            with contextlib.suppress(ProdigyError):  # a refusal leaves it awaiting_merge
                await self.merge()
            if record.status is Status.RUNNING:  # never leave a finished run marked running
                self._finish(Status.AWAITING_MERGE, record.error)
            return record
        seen = await finish.unchanged(record, self.pool, self.loaded.workflow.merge)
        if seen is not None:  # nothing awaits a merge: ended as `-y` would end it
            await finish.clean_up(record, self.pool, self.events, seen=seen)
            self._finish(Status.COMPLETED, None, message=finish.NOTHING_TO_MERGE)
            return record
        if ctx is None and not await git_repo.branch_exists(self.repo, record.branch):
            # stopped after that clean-up (which deletes the branch of such a run only)
            self._finish(Status.COMPLETED, None, message=finish.NOTHING_TO_MERGE)
            return record
        self._finish(Status.AWAITING_MERGE, None)
        return record

    async def _run_phases(self, ctx: RunContext, git: GitTracker) -> PhaseOutcome:
        workflow = self.loaded.workflow
        if self.record.dlq_retry is not None:
            return await run_dlq_retry(self, ctx, self.record.dlq_retry)
        if workflow.mode == "mapreduce":
            return await run_mapreduce(self, ctx, git)
        if self.record.runs is not None:
            return await run_all(self, ctx, git, self.record.runs, self.args)
        return await self.sequential(MAIN, workflow.steps, ctx, git)

    async def sequential(
        self,
        phase: str,
        steps: tuple[Step, ...],
        ctx: RunContext,
        git: GitTracker,
        *,
        on_completed: StepHook | None = None,
    ) -> PhaseOutcome:
        """Run one sequential phase, checkpointed in its own journal: the steps it already
        completed (in an earlier run of this session) are skipped. A first run's phase that
        has not begun before has no journal: nothing is read (~0.1 ms of a job's start)."""
        first = self._begun is not None and phase not in self._begun
        if self._begun is not None:
            self._begun.add(phase)
        records = [] if first else self.journal.checkpoint_records(self.record.id, phase)
        saved = checkpoints.summary(self.record.id, records) or {}
        completed = list(saved.get("completed_steps") or [])
        writer = self.journal.checkpoint_log(self.record.id, phase)
        attempts = JournalAttempts(writer, records)
        conversations = Conversations(writer, records)
        try:
            return await run_sequential(
                steps,
                StepRunner(ctx, git, attempts, conversations),
                ctx.variables,
                completed=completed,
                checkpoint=self._checkpointer(ctx, writer, phase, len(steps), len(completed)),
                stop=self._stop,
                prefix="" if phase == MAIN else f"{phase}.",
                on_completed=on_completed,
            )
        finally:
            await writer.close()

    @property
    def repo(self) -> Path:
        return Path(self.record.repo)

    @property
    def workflow(self) -> Workflow:
        return self.loaded.workflow

    @property
    def session_id(self) -> str:
        return self.record.id

    @property
    def branch(self) -> str:
        return self.record.branch

    @property
    def keep_failed(self) -> bool:
        return self.pool.settings.keep_failed

    @property
    def stop_event(self) -> asyncio.Event:
        """Set when the session must stop at the next step boundary (daemon shutdown)."""
        return self._stop

    def enter_phase(self, phase: str) -> None:
        self.record.phase = phase
        self.events.emit(EventType.PHASE_STARTED, phase=phase)

    def map_progress(self, total: int, processed: int, failed: int) -> None:
        """Item counts for `sessions ls/show`, saved at most once a second: the map
        journal, not the record, is the durable account of which items are done."""
        record = self.record
        record.total_items, record.processed_items, record.failed_items = total, processed, failed
        now = time.monotonic()
        if now - self._progress_saved >= PROGRESS_SAVE_SECONDS or processed == total:
            self._progress_saved = now
            self.journal.save_record(record)

    async def merge(self) -> SessionRecord:
        """Merge the session branch into the branch the user ran from, verified.

        Interrupted (Ctrl-C, daemon stop) or refused, the session stays `awaiting_merge`
        with its worktree, so `prodigyctl merge ID` can finish it later.
        """
        record = self.record
        if record.merge_done or record.merged:  # a stop interrupted the clean-up: finish it
            await finish.clean_up(record, self.pool, self.events)
            self._finish(Status.COMPLETED, None)
            return record
        if record.start_commit:  # `on: files`: merging would commit the user's unfinished edits
            # (such a run completes unmerged; one an older prodigyd left awaiting_merge is
            # closed by `cancel`, and the worktree collector takes its worktree back)
            raise Conflict(
                f"session {record.id} started from a snapshot of uncommitted files "
                f"({record.start_commit[:12]}): it is never merged",
                hint=f"its result is on branch {record.branch}: cherry-pick or diff what you "
                f"want; `prodigyctl cancel {record.id}` gives its worktree back",
            )
        self.events.emit(
            EventType.MERGE_STARTED, source=record.branch, target=record.original_branch
        )
        try:
            # Followers are sent it now, and the last step's `step_completed` with it: the
            # merge's first git spawn holds the loop (0.5-2 ms), which they waited behind.
            await asyncio.sleep(0)
            async with self.merge_lock(record.repo):
                outcome, seen = await finish.merge_branch(
                    record,
                    held=finish.holds_worktree(record, self.pool),
                    merge_spec=self.loaded.workflow.merge,
                    context=lambda: self._context(resume=False),
                    save=self.journal.save_record,
                    leave_out=input_file(self.loaded.workflow),
                )
        except asyncio.CancelledError:
            self._finish(
                Status.AWAITING_MERGE, f"merge interrupted; run `prodigyctl merge {record.id}`"
            )
            raise
        except ProdigyError as exc:
            if exc.hint:
                exc.hint = exc.hint.replace("<session>", record.id)
            self._update(status=Status.AWAITING_MERGE, error=exc.render())
            self.events.emit(EventType.MERGE_FAILED, error=self.record.error, code=exc.code)
            self._finish(Status.AWAITING_MERGE, self.record.error, exc.code)
            raise
        self._update(merged=outcome.merged, merge_commit=outcome.commit, merge_done=True)
        self.events.emit(
            EventType.MERGE_COMPLETED,
            merged=outcome.merged,
            commit=outcome.commit,
            message=outcome.message,
        )
        await finish.clean_up(record, self.pool, self.events, seen=seen)
        self._finish(Status.COMPLETED, None)
        return record

    def _stopped_message(self) -> str | None:
        if self.stop_status is Status.CANCELLED:
            return "cancelled"
        return f"interrupted; resume with `prodigyctl resume {self.record.id}`"

    def _job_meter(self) -> Meter:
        """The job's budget: the workflow's `budget:` with the command line's over it, and
        what earlier runs of the session spent. Kept even without limits, so a resume
        that sets one knows what was spent before it."""
        record = self.record
        budget = (self.loaded.workflow.budget or Budget()).merged(record.budget)
        used = record.budget_used
        spent = Spend(used.cost_usd, used.tokens)
        return Meter("workflow", budget, spent, used.seconds, session_id=record.id)

    def _finish(
        self,
        status: Status,
        error: str | None,
        code: str | None = None,
        *,
        message: str | None = None,
        kept: bool = True,
    ) -> None:
        """End the run as `status`; `code` is the error code of what stopped it, if prodigy
        did, and `message` where an unmerged result is (its `session_finished` event
        carries both); `kept`: False when its worktree was given back (a dead end)."""
        if self.meter is not None:  # the account goes on at the next resume
            total = self.meter.total()
            self.record.budget_used = BudgetUse(
                cost_usd=total.cost_usd, tokens=total.tokens, seconds=self.meter.elapsed()
            )
            self.meter = None
        done = status in (Status.COMPLETED, Status.CANCELLED)
        if status in (Status.CANCELLED, Status.INTERRUPTED):  # a stop between a step's
            # checkpoint and its count (an await apart) left the count a step short
            self.record.completed_steps = checkpointed_steps(
                self.journal, self.record, self.loaded.workflow
            )
        self._update(status=status, error=error, completed_at=now_iso() if done else None)
        if done:  # nothing can resume its Claude conversations any more
            prune_session(self.journal, self.record.id)
        not_recorded = self.journal.unsaved(self.record.id)  # told now, recorded later
        self.events.emit(
            EventType.SESSION_FINISHED,
            status=status.value,
            error=self.record.error,
            merged=self.record.merged,
            worktree=self.record.worktree if kept else None,
            branch=self.record.original_branch,
            **({"code": code} if code else {}),
            **({"message": message} if message else {}),
            **({"not_recorded": not_recorded} if not_recorded else {}),
            **({"resumes": True} if self._resumes_itself(status) else {}),
        )

    def _resumes_itself(self, status: Status) -> bool:
        """Whether the next daemon resumes this run by itself: a daemon stop interrupted
        it (its `session_finished` says so, so nobody is told to resume it by hand)."""
        return status is Status.INTERRUPTED and self.resume_on_start

    async def _prepare_resume(self) -> bool:
        """Make a stopped session's worktree safe to continue in; False: start afresh.

        A daemon killed with -9 leaves its children running: they are killed first, and
        the git locks they held released. A session whose journals record nothing (stopped
        while its worktree was being made, say) is simply started again; one that recorded
        a Claude conversation continues in its worktree, where that conversation's work is.
        """
        held = finish.holds_worktree(self.record, self.pool)
        if held:
            if kill_processes_in(self.worktree):
                log.warning("killed processes a stopped run left in %s", self.worktree)
            git_worktree.clear_stale_locks(self.worktree, self.record.branch)
        if not self.journal.has_checkpoints(self.record.id):
            return False
        if not held and not all_steps_done(self.journal, self.record, self.loaded.workflow):
            raise Conflict(
                f"the worktree of session {self.record.id} is gone ({self.record.worktree})",
                hint="the session cannot be resumed; start a new run",
            )
        return True

    async def _create_worktree(self) -> None:
        """Take a worktree from the pool, on the session branch at the target's tip (or
        at `start_commit`: an `on: files` run starts from its snapshot of the files).

        Also the way back after a stop before the first checkpoint: the pool hands the
        session its own worktree again, reset, so a half-made start never lingers.
        """
        record = self.record
        repo = Path(record.repo)
        target = f"{git_repo.HEADS}{record.original_branch}"
        try:  # the target's tip, read once: the pool is handed its id
            tip = await git_repo.commit_id(repo, target) if not record.start_commit else None
        except GitError:
            tip = None
        if tip is None and not await git_repo.branch_exists(repo, record.original_branch):
            raise GitError(  # deleted meanwhile
                f"branch {record.original_branch!r} no longer exists in {repo}: there is "
                "nothing to start from, and nothing to merge into",
                hint=f"recreate it (`git branch {record.original_branch} <commit>`) and run "
                f"`prodigyctl resume {record.id}`",
            )
        lease = await self.pool.acquire(
            repo,
            owner=record.id,
            session_id=record.id,
            start=record.start_commit or tip or target,
            branch=record.branch,
            workflow=record.workflow_name,
            name=self.loaded.workflow.worktree,
        )
        record.worktree = str(lease.path)
        record.base_commit = lease.commit  # the one id `start` was resolved to
        self.worktree_reused = lease.reused

    def _legacy_base_commit(self) -> str | None:
        """Sessions started before the pool kept their base commit in worktree.json."""
        try:
            meta = read_json(paths.legacy_worktree_file(self.record.id))
            return str(meta.get("base_commit"))
        except (FileNotFoundError, StoreError, AttributeError):
            return None

    async def _context(self, resume: bool) -> RunContext:
        record, workflow = self.record, self.loaded.workflow
        store, composed = await compose_environment(
            workflow, record, self.inherited, self.args, self.masker, self.worktree
        )
        if resume:  # secrets come back from their placeholders (see Masker.protect)
            store.update(self.masker.restore(latest_variables(self.journal, record)))
        store.update(composed.workflow_values)
        env = {**composed.env, SESSION_VAR: record.id, "PRODIGY_WORKTREE": record.worktree}
        if self.args:
            env.setdefault("PRODIGY_ARG", self.args[0])
        ctx = RunContext(
            session_id=record.id,
            worktree=self.worktree,
            variables=store,
            env=env,
            masker=self.masker,
            events=self.events,
            settings=self.settings,
            strict_variables=record.strict or workflow.strict_variables,
            retry_defaults=workflow.retry_defaults,
            dynamic_env=composed.dynamic,
            stop=self._stop,  # a step waiting out a retry backoff wakes on a stop request
            budget=Ledger().plus(self.meter),
        )
        return ctx

    def _checkpointer(
        self,
        ctx: RunContext,
        writer: CheckpointLog,
        phase: str,
        total: int,
        already: int,
    ) -> Checkpoint:
        record, loaded = self.record, self.loaded
        written = already  # completed entries already in the journal (from earlier runs)
        before = steps_before(loaded.workflow, phase, run_count(record))  # of earlier phases
        iteration, iterations = iteration_of(phase, record.runs)

        async def save(status: str, next_index: int, completed: list[dict[str, Any]]) -> None:
            nonlocal written
            new = completed[written:]
            written = len(completed)
            await writer.write(
                {
                    "execution_state": {
                        "current_step_index": next_index,
                        "total_steps": total,
                        "status": status,
                        "start_time": record.started_at,
                        "current_iteration": iteration,
                        "total_iterations": iterations,
                    },
                    "step": self.masker.mask_obj(new[-1]) if new else None,
                    "variable_state": self.masker.protect(ctx.variables.snapshot()),
                    "timestamp": now_iso(),
                    "workflow_hash": loaded.sha256,
                    "workflow_name": record.workflow_name,
                    "workflow_path": record.workflow,
                },
            )
            record.completed_steps = before + len(completed)
            record.current_step = before + next_index

        return save
