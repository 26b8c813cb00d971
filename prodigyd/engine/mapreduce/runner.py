"""Where map agents run: the AgentRunner protocol, and LocalAgentRunner, the daemon's own.

The map phase hands each attempt of an item to its session's runner, which finds the agent
a worktree, runs the portable `execute` there (agent.py) and `deliver`s the result through
the merge queue (merge_queue.py), which always runs in the daemon. LocalAgentRunner does
all of it in the daemon: a worktree from the pool (detached at the parent's current HEAD,
so it sees setup's work and every agent merged before it started), `execute` in the
daemon's event loop, and the worktree back to the pool afterwards (kept, with the work on
a branch, for a failed agent under `keep_failed`). Another runner can execute elsewhere (a
clone from a git bundle in another process or on another machine) and hand `deliver` the
commits as a bundle: the map phase, its DLQ entries, retries and resume do not know where
an agent ran.

`run_agent` is what the map phase calls: it gives the attempt its log file and tagged
events (AgentSink) and asks the runner; `report_end` is the attempt's `agent_completed` or
`agent_failed` event, which the map phase sends once the outcome is durable.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol, TextIO

from prodigyd.clock import now_iso
from prodigyd.engine.context import EventSink
from prodigyd.engine.mapreduce.agent import AgentJob, AgentResult, AgentRun, execute
from prodigyd.engine.mapreduce.merge_queue import MergeQueue
from prodigyd.engine.mask import Masker
from prodigyd.errors import ProdigyError
from prodigyd.eventtypes import EventType
from prodigyd.failure import FailureReason
from prodigyd.git.cli import git
from prodigyd.pool import Lease, WorktreePool
from prodigyd.store import space, spares

log = logging.getLogger(__name__)

#: The `worker` of an agent the daemon ran itself (a Dask runner names the worker's address).
LOCAL = "local"


class AgentRunner(Protocol):
    async def run(
        self, job: AgentJob, queue: MergeQueue, events: EventSink, stop: asyncio.Event
    ) -> AgentResult | None:
        """Execute `job` somewhere and deliver it through `queue`: the item's result, or
        None when `stop` ended it first (it runs again on resume)."""
        ...

    async def finish(self, queue: MergeQueue) -> None:
        """The phase of `queue` ran its last attempt: whatever the runner kept for it goes
        (a Dask runner's refs in the shared repository)."""
        ...


class AgentSink:
    """The parent's sink, with every event tagged by agent and item, and the agent's
    output also written to its own log file (what a DLQ entry points to).

    The log is a copy of the events, which are the record: a write that fails (a disk
    filled meanwhile) ends the copy, with a warning, not the agent (that failed the
    whole job as an internal error, its merged work with it)."""

    def __init__(
        self, inner: EventSink, agent_id: str, item_id: str, log: TextIO, masker: Masker
    ) -> None:
        self.inner, self.agent_id, self.item_id = inner, agent_id, item_id
        self.log: TextIO | None = log
        self.masker = masker
        self.started = False  # its `agent_started` went out (from here or from a worker)

    def emit(self, event_type: str, /, **fields: Any) -> None:
        if event_type == EventType.AGENT_STARTED:
            self.started = True
        elif event_type == "step_output":
            self._write(f"{fields.get('line', '')}\n")
        elif event_type in ("step_started", "step_failed"):
            self._write(f"== {event_type} {fields.get('step')}: {fields.get('display')}\n")
        self.inner.emit(event_type, agent_id=self.agent_id, item_id=self.item_id, **fields)

    def stopped(self, attempt: int) -> None:
        """The attempt was stopped with its job (a cancel, a daemon stop, the job's budget),
        unfinished: its `agent_started` gets an end, so no reader of the events takes it
        for running still."""
        if self.started:
            self.emit(EventType.AGENT_STOPPED, attempt=attempt)

    def close(self) -> None:
        if self.log is not None:
            self._failed(self.log.close)

    def _write(self, line: str) -> None:
        opened = self.log
        if opened is not None:
            self._failed(lambda: opened.write(self.masker.mask(line)))

    def _failed(self, act: Callable[[], object]) -> None:
        """Run `act` on the log; once it fails, the log is given up (said in the log)."""
        assert self.log is not None
        try:
            act()
        except OSError as exc:
            log.warning("agent log %s: %s; the rest of it is in the events", self.log.name, exc)
            with contextlib.suppress(OSError):
                self.log.close()
            self.log = None


async def run_agent(
    runner: AgentRunner, job: AgentJob, queue: MergeQueue, log_dir: Path, stop: asyncio.Event
) -> AgentResult | None:
    """One attempt of an item through `runner`, logged to its own file in `log_dir` (made
    by the caller, once a phase); None when the phase was asked to stop first (the item
    then runs again on resume)."""
    started_at, started = now_iso(), time.monotonic()
    item_id, parent = job.item.item_id, queue.parent
    log_path = log_dir / f"{item_id}.attempt-{job.attempt}.log"
    with space.guard(log_path):  # a full disk is E5001 naming the file, not a crash
        agent_log = spares.create(log_path)  # a file made ahead (AgentSink closes it)
    events = AgentSink(parent.events, job.agent_id, item_id, agent_log, parent.masker)
    try:
        result = await runner.run(job, queue, events, stop)
        if result is None:
            events.stopped(job.attempt)
    except asyncio.CancelledError:
        events.stopped(job.attempt)
        raise
    finally:
        events.close()
    if result is None:
        return None
    result.started_at, result.completed_at = started_at, now_iso()
    result.duration = round(time.monotonic() - started, 6)
    result.log_path = str(log_path)
    return result


def report_end(events: EventSink, job: AgentJob, result: AgentResult) -> None:
    """The attempt's end as an event (`agent_completed` or `agent_failed`), tagged as its
    other events are."""
    tags = {"agent_id": job.agent_id, "item_id": job.item.item_id}
    if result.success:
        events.emit(
            EventType.AGENT_COMPLETED,
            **tags,
            duration=result.duration,
            commits=result.commits,
            attempt=job.attempt,
        )
    else:
        events.emit(
            EventType.AGENT_FAILED,
            **tags,
            error=result.error,
            failure_reason=result.failure_reason,
            attempt=job.attempt,
            log_path=result.log_path,
        )


class LocalAgentRunner:
    """Agents in worktrees of the daemon's pool, executed in the daemon."""

    def __init__(self, pool: WorktreePool) -> None:
        self.pool = pool
        #: Per phase (its merge queue), the worktrees its agents left pristine and its next
        #: agents take as they are (WorktreePool.hand_over); the pool gets them at `finish`.
        self._pristine: dict[MergeQueue, list[Path]] = {}

    async def finish(self, queue: MergeQueue) -> None:
        """The worktrees the phase's last agents left pristine go back to the pool (each
        other one went back with its agent's end)."""
        for path in self._pristine.pop(queue, []):
            await self._release(path, queue.parent.events, pristine=True)

    async def run(
        self, job: AgentJob, queue: MergeQueue, events: EventSink, stop: asyncio.Event
    ) -> AgentResult | None:
        try:
            lease = await self._lease(job, queue)
        except (ProdigyError, OSError) as exc:
            error = f"could not make the agent's worktree: {exc}"
            return await queue.deliver(
                job, AgentRun.failure(error, FailureReason.WORKTREE_ERROR), events
            )
        events.emit(
            EventType.AGENT_STARTED,
            worktree=str(lease.path),
            worker=LOCAL,
            attempt=job.attempt,
            item_index=job.item.index,
            item_total=job.item.total,
        )
        run = await execute(job, str(lease.path), events, stop, queue.parent.budget)
        if run is None:
            await self._release(lease.path, queue.parent.events)
            return None
        result = await queue.deliver(job, run, events)
        result.worktree_path, result.worker = str(lease.path), LOCAL
        keep = job.spec.keep_failed and not result.success and run.head is not None
        if keep:
            try:
                await git(lease.path, "checkout", "--quiet", "-B", job.branch)
                result.branch_name = job.branch
            except ProdigyError:
                keep = False
        if result.success and run.clean and not keep:  # pristine: the next agent takes it
            self._pristine.setdefault(queue, []).append(lease.path)
        else:
            await self._release(lease.path, queue.parent.events, keep=keep)
        return result

    async def _lease(self, job: AgentJob, queue: MergeQueue) -> Lease:
        """A worktree at the agent's start: one an earlier agent of the phase left pristine,
        else one from the pool."""
        session_id = job.spec.session_id
        owner = f"{session_id}/{job.item.item_id}"
        workflow = job.spec.workflow_name
        left = self._pristine.get(queue)
        while left:
            handed = await self.pool.hand_over(
                queue.repo,
                left.pop(),
                owner=owner,
                session_id=session_id,
                start=job.start,
                workflow=workflow,
            )
            if handed is not None:
                return handed
        return await self.pool.acquire(
            queue.repo, owner=owner, session_id=session_id, start=job.start, workflow=workflow
        )

    async def _release(
        self, path: Path, events: EventSink, *, keep: bool = False, pristine: bool = False
    ) -> None:
        """Back to the pool (unscrubbed when `pristine`), or kept."""
        try:
            await self.pool.release(path, keep=keep, pristine=pristine)
        except ProdigyError as exc:  # the agent's outcome stands; the collector reclaims it later
            events.emit(EventType.CLEANUP_FAILED, worktree=str(path), error=exc.render())
