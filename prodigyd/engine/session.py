"""A session from submission to merge (reference §4.1, §4.7, §4.10).

`prepare()` validates everything a user can get wrong *before* the job is acknowledged (the
workflow file, the repository, the branch), so those errors reach `prodigyctl run` as usage
errors. `Session.run()` creates the worktree, runs the phase with a checkpoint per step and
records the outcome; `Session.merge()` brings a successful session back.

Decisions:
- Changes a workflow left uncommitted in its worktree are committed before the merge
  ("prodigy: uncommitted changes from <workflow>"): removing the worktree must never lose
  work, and users expect files a workflow wrote to land on their branch.
- A custom `merge:` workflow runs first, in the worktree, with the `${merge.*}` variables;
  it may merge by itself. Prodigy then finishes the job with a plain, verified
  `git merge --no-ff` if the branch is not merged yet.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from prodigyd import paths
from prodigyd.agents.claude import resolve_binary as resolve_claude
from prodigyd.engine import env as job_env
from prodigyd.engine.context import EngineSettings, EventSink, RunContext
from prodigyd.engine.gitvars import GitTracker, references_git_variables
from prodigyd.engine.journal import CheckpointLog, RunJournal
from prodigyd.engine.mapreduce import REDUCE, SETUP, run_dlq_retry, run_mapreduce
from prodigyd.engine.mask import Masker
from prodigyd.engine.phase import Checkpoint, PhaseOutcome, StepHook, no_checkpoint, run_sequential
from prodigyd.engine.step import StepRunner
from prodigyd.errors import (
    Conflict,
    GitError,
    Location,
    MergeRefused,
    ProdigyError,
    StoreError,
    WorkflowError,
)
from prodigyd.git import merge as git_merge
from prodigyd.git import repo as git_repo
from prodigyd.git import worktree as git_worktree
from prodigyd.git.cli import SESSION_VAR
from prodigyd.git.pool import WorktreePool
from prodigyd.proc import kill_processes_in
from prodigyd.store import checkpoints
from prodigyd.store.atomic import read_json
from prodigyd.store.ids import new_session_id
from prodigyd.store.sessions import DlqRetry, SessionRecord, Status, now_iso
from prodigyd.watch.variables import variables as trigger_variables
from prodigyd.workflow.interpolate import VariableStore
from prodigyd.workflow.load import LoadedWorkflow, load_workflow_async
from prodigyd.workflow.model import Step, Workflow

log = logging.getLogger("prodigyd.session")

MergeLock = Callable[[str], contextlib.AbstractAsyncContextManager[None]]


@dataclass
class RunRequest:
    """What a client submits: resolved paths plus the caller's environment."""

    workflow: str
    cwd: str
    env: dict[str, str]
    repo: str | None = None
    args: tuple[str, ...] = ()
    profile: str | None = None
    merge_policy: str = "ask"
    strict: bool = False
    dlq_retry: DlqRetry | None = None  # re-run dead letters of another job (dlq retry)
    branch: str | None = None  # into this branch, not the one checked out (dlq retry, triggers)
    triggered_by: str | None = None  # the git event behind it, for people reading the record
    start_commit: str | None = None  # start here (a commit id), not at the branch's tip


async def prepare(
    request: RunRequest, *, claude_bin: str | None = None
) -> tuple[SessionRecord, LoadedWorkflow]:
    """Validate a submission and build its session record (nothing is written yet).

    Everything a user can get wrong is checked here, before the job is acknowledged: the
    workflow file, the repository and branch, the environment (profile, env files, secrets)
    and the claude executable when a step needs it. `record.args` comes back masked.
    """
    workflow_path = Path(request.cwd, request.workflow).expanduser()
    loaded = await load_workflow_async(workflow_path, strict=request.strict)
    where = Path(request.cwd, request.repo or ".").expanduser()
    if request.branch:  # a DLQ retry goes back into its job's branch, checked out or not
        repo, branch = await git_repo.repo_root(where), request.branch
    else:
        repo, branch = await git_repo.root_and_branch(where)
    if request.branch and not await git_repo.branch_exists(repo, request.branch):
        raise GitError(f"branch {request.branch!r} no longer exists in {repo}")
    if request.dlq_retry is not None and loaded.workflow.map is None:
        raise WorkflowError(
            f"{loaded.path} is no longer a MapReduce workflow: its dead letters cannot be re-run",
            location=Location(str(loaded.path)),
        )
    session_id = new_session_id(loaded.workflow.mode)
    rid = paths.repo_id(repo)
    record = SessionRecord(
        id=session_id,
        workflow=str(loaded.path),
        workflow_name=loaded.workflow.name,
        workflow_sha256=loaded.sha256,
        repo=str(repo),
        repo_id=rid,
        original_branch=branch,
        worktree="",  # assigned from the worktree pool when the session starts
        branch=f"prodigy-{session_id}",
        cwd=request.cwd,
        args=list(request.args),
        profile=request.profile,
        merge_policy=request.merge_policy,
        strict=request.strict,
        mode=loaded.workflow.mode,
        total_steps=total_steps(loaded.workflow, request.dlq_retry),
        dlq_retry=request.dlq_retry,
        triggered_by=request.triggered_by,
        start_commit=request.start_commit,
        warnings=loaded.warnings,
    )
    masker = check_environment(loaded.workflow, record, request.env, request.args, claude_bin)
    record.args = masker.mask_obj(list(request.args))
    return record, loaded


def check_environment(
    workflow: Workflow,
    record: SessionRecord,
    env: Mapping[str, str],
    args: Sequence[str],
    claude_bin: str | None,
) -> Masker:
    """Compose the job environment once, as the run will, so its errors surface now."""
    masker = Masker()
    store = VariableStore()
    store.update(_builtin_variables(record, Path(record.worktree), args))
    store.update(trigger_variables(env))
    job_env.compose(
        workflow,
        inherited=env,
        profile=record.profile,
        files_root=Path(record.repo),
        store=store,
        masker=masker,
    )
    if any(step.kind == "claude" for step in _all_steps(workflow.phase_steps)):
        resolve_claude(claude_bin, env)
    return masker


def _all_steps(steps: tuple[Step, ...]) -> list[Step]:
    found = []
    for step in steps:
        found.append(step)
        nested = [step.on_success, *step.on_exit_code.values()]
        if step.foreach:
            nested.extend(step.foreach.do)
        if step.on_failure:
            nested.extend(step.on_failure.handlers)
        if step.validation:
            nested.extend(step.validation.commands)
            if step.validation.on_incomplete:
                nested.extend(step.validation.on_incomplete.commands)
        found.extend(_all_steps(tuple(s for s in nested if s is not None)))
    return found


class SessionSink:
    """Masks every event before it leaves the engine, and totals Claude cost and tokens."""

    def __init__(self, inner: EventSink, masker: Masker, record: SessionRecord) -> None:
        self.inner = inner
        self.masker = masker
        self.record = record

    def emit(self, event_type: str, /, **fields: Any) -> None:
        if event_type == "claude_result":
            self.record.cost_usd += float(fields.get("total_cost_usd") or 0)
            self.record.input_tokens += int(fields.get("input_tokens") or 0)
            self.record.output_tokens += int(fields.get("output_tokens") or 0)
        self.inner.emit(event_type, **self.masker.mask_obj(fields))


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
        journal: RunJournal,
    ) -> None:
        self.record = record
        self.pool = pool
        self.journal = journal
        self.loaded = loaded
        self.inherited = dict(env)
        self.args = list(args)  # verbatim: record.args is the masked copy clients see
        self.masker = Masker()
        self.events = SessionSink(events, self.masker, record)
        self.settings = settings
        self.merge_lock = merge_lock
        self.stop_status = Status.INTERRUPTED  # what a cancellation records
        self.resume_on_start = False  # stopped by a daemon shutdown: resume at next start
        self._stop = asyncio.Event()  # set: finish the current step, then stop
        self.worktree_reused = False  # the pool handed out a used slot (session_started)
        self._progress_saved = 0.0  # when map_progress last saved the record

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
        try:
            if resume:
                resume = await self._prepare_resume()
            # the journals, not a record a kill -9 may have cut off, say how far it got
            record.total_steps = total_steps(self.loaded.workflow, record.dlq_retry)
            record.completed_steps = (
                _checkpointed_steps(self.journal, record, self.loaded.workflow) if resume else 0
            )
            if not resume:
                await self._create_worktree()
            ctx = self._context(resume)
            self._update(status=Status.RUNNING, error=None, completed_at=None)
            self.events.emit(
                "session_started",
                workflow=record.workflow,
                worktree=record.worktree,
                branch=record.branch,
                total_steps=record.total_steps,
                resumed=resume,
                worktree_reused=self.worktree_reused,
            )
            git = GitTracker(
                self.worktree,
                record.base_commit or self._legacy_base_commit(),
                track=references_git_variables(self.loaded.workflow),
            )
            outcome = await self._run_phases(ctx, git)
        except asyncio.CancelledError:
            self._finish(self.stop_status, self._stopped_message())
            raise
        except ProdigyError as exc:
            self._finish(Status.FAILED, exc.render())
            return record
        if outcome.stopped:
            self._finish(self.stop_status, self._stopped_message())
            return record
        if not outcome.ok:
            self._finish(Status.FAILED, outcome.error or "a step failed")
            return record
        if record.merge_policy == "auto":
            with contextlib.suppress(ProdigyError):  # a refusal leaves it awaiting_merge
                await self.merge()
            if record.status is Status.RUNNING:  # never leave a finished run marked running
                self._finish(Status.AWAITING_MERGE, record.error)
            return record
        self._finish(Status.AWAITING_MERGE, None)
        return record

    async def _run_phases(self, ctx: RunContext, git: GitTracker) -> PhaseOutcome:
        workflow = self.loaded.workflow
        if self.record.dlq_retry is not None:
            return await run_dlq_retry(self, ctx, git, self.record.dlq_retry)
        if workflow.mode == "mapreduce":
            return await run_mapreduce(self, ctx, git)
        return await self.sequential(checkpoints.MAIN, workflow.steps, ctx, git)

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
        completed (in an earlier run of this session) are skipped."""
        saved = self.journal.checkpoint(self.record.id, phase) or {}
        completed = list(saved.get("completed_steps") or [])
        writer = self.journal.checkpoint_log(self.record.id, phase)
        try:
            return await run_sequential(
                steps,
                StepRunner(ctx, git),
                ctx.variables,
                completed=completed,
                checkpoint=self._checkpointer(ctx, writer, phase, len(steps), len(completed)),
                stop=self._stop,
                prefix="" if phase == checkpoints.MAIN else f"{phase}.",
                on_completed=on_completed,
            )
        finally:
            await writer.close()

    @property
    def repo(self) -> Path:
        return Path(self.record.repo)

    @property
    def stop_event(self) -> asyncio.Event:
        """Set when the session must stop at the next step boundary (daemon shutdown)."""
        return self._stop

    def enter_phase(self, phase: str) -> None:
        self.record.phase = phase
        self.events.emit("phase_started", phase=phase)

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
            await self._cleanup()
            self._finish(Status.COMPLETED, None)
            return record
        if record.start_commit:  # `on: files`: merging would commit the user's unfinished edits
            raise Conflict(
                f"session {record.id} started from a snapshot of uncommitted files "
                f"({record.start_commit[:12]}): it is never merged",
                hint=f"its result is on branch {record.branch}: cherry-pick or diff what you want",
            )
        self.events.emit("merge_started", source=record.branch, target=record.original_branch)
        try:
            async with self.merge_lock(record.repo):
                outcome = await self._merge_locked()
        except asyncio.CancelledError:
            self._finish(
                Status.AWAITING_MERGE, f"merge interrupted; run `prodigyctl merge {record.id}`"
            )
            raise
        except ProdigyError as exc:
            if exc.hint:
                exc.hint = exc.hint.replace("<session>", record.id)
            self._update(status=Status.AWAITING_MERGE, error=exc.render())
            self.events.emit("merge_failed", error=self.record.error)
            self._finish(Status.AWAITING_MERGE, self.record.error)
            raise
        self._update(merged=outcome.merged, merge_commit=outcome.commit, merge_done=True)
        self.events.emit(
            "merge_completed", merged=outcome.merged, commit=outcome.commit, message=outcome.message
        )
        await self._cleanup()
        self._finish(Status.COMPLETED, None)
        return record

    def _stopped_message(self) -> str | None:
        if self.stop_status is Status.CANCELLED:
            return "cancelled"
        return f"interrupted; resume with `prodigyctl resume {self.record.id}`"

    def _finish(self, status: Status, error: str | None) -> None:
        done = status in (Status.COMPLETED, Status.CANCELLED)
        self._update(status=status, error=error, completed_at=now_iso() if done else None)
        not_recorded = self.journal.unsaved(self.record.id)  # told now, recorded later
        self.events.emit(
            "session_finished",
            status=status.value,
            error=self.record.error,
            merged=self.record.merged,
            worktree=self.record.worktree,
            branch=self.record.original_branch,
            **({"not_recorded": not_recorded} if not_recorded else {}),
        )

    async def _prepare_resume(self) -> bool:
        """Make a stopped session's worktree safe to continue in; False: start afresh.

        A daemon killed with -9 leaves its children running: they are killed first, and
        the git locks they held released. A session that never finished a step (stopped
        while its worktree was being made, say) is simply started again.
        """
        held = self._holds_worktree()
        if held:
            if kill_processes_in(self.worktree):
                log.warning("killed processes a stopped run left in %s", self.worktree)
            git_worktree.clear_stale_locks(self.worktree, self.record.branch)
        if not self.journal.has_checkpoints(self.record.id):
            return False
        if not held and not _all_steps_done(self.journal, self.record, self.loaded.workflow):
            raise Conflict(
                f"the worktree of session {self.record.id} is gone ({self.record.worktree})",
                hint="the session cannot be resumed; start a new run",
            )
        return True

    def _holds_worktree(self) -> bool:
        """Whether the session still has its worktree. After its clean-up the slot may
        serve another session: the pool's record of the owner decides, not the folder."""
        return bool(self.record.worktree) and self.pool.holds(self.record.id, self.worktree)

    async def _create_worktree(self) -> None:
        """Take a worktree from the pool, on the session branch at the target's tip (or
        at `start_commit`: an `on: files` run starts from its snapshot of the files).

        Also the way back after a stop before the first checkpoint: the pool hands the
        session its own worktree again, reset, so a half-made start never lingers.
        """
        record = self.record
        repo = Path(record.repo)
        if not await git_repo.branch_exists(repo, record.original_branch):  # deleted meanwhile
            raise GitError(
                f"branch {record.original_branch!r} no longer exists in {repo}: there is "
                "nothing to start from, and nothing to merge into",
                hint=f"recreate it (`git branch {record.original_branch} <commit>`) and run "
                f"`prodigyctl resume {record.id}`",
            )
        lease = await self.pool.acquire(
            repo,
            owner=record.id,
            session_id=record.id,
            start=record.start_commit or f"{git_repo.HEADS}{record.original_branch}",
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
            meta = read_json(paths.checkpoints_dir(self.record.id).parent / "worktree.json")
            return str(meta.get("base_commit"))
        except (FileNotFoundError, StoreError, AttributeError):
            return None

    def _context(self, resume: bool) -> RunContext:
        record, workflow = self.record, self.loaded.workflow
        store = VariableStore()
        store.update(_builtin_variables(record, self.worktree, self.args))
        store.update(trigger_variables(self.inherited))
        composed = job_env.compose(
            workflow,
            inherited=self.inherited,
            profile=record.profile,
            files_root=Path(record.repo),
            store=store,
            masker=self.masker,
        )
        if resume:  # secrets come back from their placeholders (see Masker.protect)
            store.update(self.masker.restore(_latest_variables(self.journal, record.id)))
        store.update(composed.workflow_values)
        env = {**composed.env, SESSION_VAR: record.id, "PRODIGY_WORKTREE": record.worktree}
        if self.args:
            env.setdefault("PRODIGY_ARG", self.args[0])
        ctx = RunContext(
            session_id=record.id,
            workflow=workflow,
            worktree=self.worktree,
            variables=store,
            env=env,
            masker=self.masker,
            events=self.events,
            settings=self.settings,
            strict_variables=record.strict,
            stop=self._stop,  # a step waiting out a retry backoff wakes on a stop request
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
        before = _steps_before(loaded.workflow, phase)  # steps of earlier phases

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
                        "current_iteration": 1,
                        "total_iterations": 1,
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

    async def _merge_locked(self) -> git_merge.MergeOutcome:
        record = self.record
        repo = Path(record.repo)
        if not await git_repo.branch_exists(repo, record.original_branch):
            raise MergeRefused(
                f"target branch {record.original_branch!r} no longer exists",
                hint=f"recreate it (`git branch {record.original_branch} <commit>`) or merge "
                f"{record.branch} yourself; the worktree {record.worktree} is kept",
            )
        held = self._holds_worktree()
        if not held and not await git_repo.branch_exists(repo, record.branch):
            # prodigy deletes a session branch only after a verified merge (or when it had
            # nothing to merge): a stop after that left only the final bookkeeping undone
            return git_merge.MergeOutcome(False, None, "already merged and cleaned up")
        if held:
            await self._check_worktree_head()
            await git_repo.commit_all(
                self.worktree, f"prodigy: uncommitted changes from {record.workflow_name}"
            )
            if self.loaded.workflow.merge is not None:
                await self._run_merge_workflow(repo)
        # else: a run stopped during its clean-up: the branch alone carries the result (it
        # may be merged already, which merge_branch reports as nothing to merge)
        return await git_merge.merge_branch(
            repo,
            record.branch,
            record.original_branch,
            message=f"{git_merge.PRODIGY_MERGE_PREFIX}{record.id} ({record.workflow_name})",
        )

    async def _check_worktree_head(self) -> None:
        """A workflow that left its branch (detached HEAD, other branch) would lose those
        commits in the cleanup: refuse and keep the worktree instead."""
        record = self.record
        try:
            branch = await git_repo.current_branch(self.worktree)
        except ProdigyError:
            branch = None
        if branch != record.branch:
            where = f"on branch {branch!r}" if branch else "detached"
            raise MergeRefused(
                f"the session worktree is {where}, not on {record.branch}: its commits would "
                "be lost",
                hint=f"check out {record.branch} in {record.worktree} (keeping the commits you "
                f"want), then run `prodigyctl merge {record.id}`",
            )

    async def _run_merge_workflow(self, repo: Path) -> None:
        record = self.record
        merge_spec = self.loaded.workflow.merge
        assert merge_spec is not None
        ctx = self._context(resume=False)
        ctx.stop = asyncio.Event()  # a merge workflow runs to its end (or its timeout)
        ctx.variables.update(
            await git_merge.merge_variables(
                repo,
                record.branch,
                record.original_branch,
                worktree=self.worktree,
                session_id=record.id,
            )
        )
        runner = StepRunner(ctx, GitTracker(self.worktree, None, track=False))
        phase = run_sequential(
            merge_spec.steps, runner, ctx.variables, completed=[], checkpoint=no_checkpoint
        )
        try:
            outcome = await asyncio.wait_for(phase, merge_spec.timeout)
        except TimeoutError:
            raise MergeRefused(
                f"merge workflow timed out after {merge_spec.timeout:g} seconds"
            ) from None
        if not outcome.ok:
            raise MergeRefused(f"merge workflow failed: {outcome.error}")

    async def _cleanup(self) -> None:
        """Give the worktree back to the pool and delete the branch, once the merge is
        verified (`cleanup_on_complete = false` keeps both, to look at).

        The merge is done by now, so a failure here (a concurrent git operation, a file
        still open) is reported, not fatal: the session still completes, and what is left
        is named in a `cleanup_failed` event and the daemon log (the pool's collector
        reclaims it later).
        """
        record = self.record
        repo = Path(record.repo)
        keep = not self.pool.settings.cleanup_on_complete
        try:
            if self._holds_worktree():  # parked where the next run of this branch starts
                park = f"{git_repo.HEADS}{record.original_branch}"
                await self.pool.release(self.worktree, keep=keep, park_at=park)
            if (
                not keep
                and await git_repo.branch_exists(repo, record.branch)
                and (
                    record.merged
                    or not await git_merge.commits_ahead(
                        repo, record.original_branch, record.branch
                    )
                )
            ):
                await git_worktree.delete_branch(repo, record.branch)
        except ProdigyError as exc:
            log.warning("session %s: clean-up failed: %s", record.id, exc.message)
            self.events.emit("cleanup_failed", worktree=record.worktree, error=exc.render())
            return
        self.events.emit("worktree_cleaned", worktree=record.worktree, branch=record.branch)


#: How often map-phase item counts are saved to the session record (at most).
PROGRESS_SAVE_SECONDS = 1.0


def _latest_variables(journal: RunJournal, session_id: str) -> dict[str, Any]:
    """The variables of the newest checkpoint: reduce's (it has everything before it),
    else setup's, else the standard workflow's."""
    for phase in (REDUCE, SETUP, checkpoints.MAIN):
        saved = journal.checkpoint(session_id, phase)
        if saved is not None:
            return dict(saved.get("variable_state") or {})
    return {}


def _phases(
    workflow: Workflow, retry: DlqRetry | None = None
) -> list[tuple[str, tuple[Step, ...]]]:
    """The sequential phases of a session, in order, with their steps (a DLQ retry has
    none: it is a map phase alone)."""
    if retry is not None:
        return []
    if workflow.mode == "standard":
        return [(checkpoints.MAIN, workflow.steps)]
    setup = workflow.setup.steps if workflow.setup else ()
    return [(SETUP, setup), (REDUCE, workflow.reduce)]


def total_steps(workflow: Workflow, retry: DlqRetry | None = None) -> int:
    """The steps `sessions ls` counts: those of the sequential phases (MapReduce: setup and
    reduce; the map phase counts items instead)."""
    return sum(len(steps) for _, steps in _phases(workflow, retry))


def _progress(
    journal: RunJournal, record: SessionRecord, workflow: Workflow
) -> list[tuple[int, int]]:
    """(steps checkpointed as completed, steps) of each sequential phase, from its journal."""
    found = []
    for phase, steps in _phases(workflow, record.dlq_retry):
        saved = journal.checkpoint(record.id, phase) or {}
        found.append((len(saved.get("completed_steps") or []), len(steps)))
    return found


def _checkpointed_steps(journal: RunJournal, record: SessionRecord, workflow: Workflow) -> int:
    """How many sequential steps the session's journals record as completed."""
    return sum(done for done, _ in _progress(journal, record, workflow))


def _steps_before(workflow: Workflow, phase: str) -> int:
    count = 0
    for name, steps in _phases(workflow):  # a DLQ retry never checkpoints a step
        if name == phase:
            break
        count += len(steps)
    return count


def _all_steps_done(journal: RunJournal, record: SessionRecord, workflow: Workflow) -> bool:
    """Whether every sequential step is checkpointed as completed (only the merge is left)."""
    return all(done >= total for done, total in _progress(journal, record, workflow))


def _builtin_variables(
    record: SessionRecord, worktree: Path, args: Sequence[str]
) -> dict[str, Any]:
    values: dict[str, Any] = {
        "workflow.name": record.workflow_name,
        "workflow.id": record.id,
        "workflow.iteration": 1,
        "ITERATION": 1,
        "PROJECT_ROOT": str(worktree),
        "WORKTREE": worktree.name,
        "SESSION_ID": record.id,
    }
    if args:
        values["ARG"] = args[0]
    for number, value in enumerate(args, start=1):
        values[f"ARG_{number}"] = value
        values[str(number)] = value
    return values


def check_resumable(
    record: SessionRecord, loaded: LoadedWorkflow, *, force: bool, pool: WorktreePool
) -> None:
    """Refuse resumes that cannot be right: finished sessions, changed workflows, a
    worktree that is gone (a session that never got one simply starts afresh)."""
    if record.status.active:
        raise Conflict(f"session {record.id} is {record.status.value}")
    if not record.status.resumable:
        raise Conflict(
            f"session {record.id} is {record.status.value} and cannot be resumed",
            hint="`prodigyctl merge ID` finishes an awaiting_merge session"
            if record.status is Status.AWAITING_MERGE
            else None,
        )
    if loaded.sha256 != record.workflow_sha256 and not force:
        raise Conflict(
            f"the workflow file {record.workflow} changed since session {record.id} started",
            hint="resume with --force to run the remaining steps of the edited file",
        )
    if record.worktree and not pool.holds(record.id, Path(record.worktree)):
        raise Conflict(
            f"the worktree of session {record.id} is gone ({record.worktree})",
            hint="the session cannot be resumed; start a new run",
        )


def describe(record: SessionRecord) -> dict[str, Any]:
    """`sessions show` details: the record plus its checkpoint's step list."""
    data = record.model_dump(mode="json")
    saved = checkpoints.load(record.id) or {}
    data["completed"] = [
        {k: entry.get(k) for k in ("step_index", "command", "duration", "completed_at")}
        for entry in saved.get("completed_steps") or []
    ]
    return data
