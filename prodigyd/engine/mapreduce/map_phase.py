"""The map phase: every work item through `agent_template`, at most `max_parallel` at once.

Items are computed once (input → json_path → filter → sort_by → distinct → offset →
max_items) and written to the phase's journal before any agent starts, so a resumed phase
works on exactly the same list. Each item's final result is appended (fsync'd) as soon as
it is known, by ResultLog, while the worker that ran it takes its next item: a resumed
phase never runs a finished item again, and runs again the ones that were in flight or
whose record was not yet on disk. An agent whose merge reached the parent before a crash
could record it is recognised by its merge commit and not run twice.

The error policy (workflow `error_policy:`, see model.ErrorPolicy) decides what a failure
does: a dead-letter queue entry, another attempt, nothing, or the end of dispatching; its
stopping rules are policy.py. Each attempt goes to the session's AgentRunner (runner.py),
so nothing here knows where an agent runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

from prodigyd import paths, proc
from prodigyd.clock import now_iso
from prodigyd.engine import retry as retry_policy
from prodigyd.engine.budget import spent_by
from prodigyd.engine.commands.shell import sh
from prodigyd.engine.context import RunContext, StepStopped
from prodigyd.engine.gitvars import references_git_variables
from prodigyd.engine.journal import CheckpointLog
from prodigyd.engine.mapreduce.agent import AgentJob, AgentResult, AgentSpec, WorkItem
from prodigyd.engine.mapreduce.host import PhaseHost
from prodigyd.engine.mapreduce.merge_queue import MERGED_ITEM, MergeQueue
from prodigyd.engine.mapreduce.policy import Breaker, FailureLimits
from prodigyd.engine.mapreduce.runner import report_end, run_agent
from prodigyd.engine.mapreduce.settings import number_from, seconds_from
from prodigyd.engine.mask import Masker
from prodigyd.engine.plan import MAP
from prodigyd.errors import ProdigyError, WorkflowError
from prodigyd.eventtypes import EventType
from prodigyd.failure import FailureReason
from prodigyd.git.merge import merged_item_ids, settle_interrupted_merge
from prodigyd.workflow.items import items_from_output, spec_items, why_none
from prodigyd.workflow.model import ErrorPolicy, MapSpec

#: How long a map `input:` command may run (the original's fixed limit).
INPUT_COMMAND_TIMEOUT = 300.0


@dataclass
class MapOutcome:
    total: int
    results: list[AgentResult]  # item order; items never dispatched have none
    ok: bool = True
    stopped: bool = False
    error: str | None = None

    @property
    def successful(self) -> int:
        return sum(1 for r in self.results if r.success)

    def variables(self) -> dict[str, Any]:
        """`${map.*}` for the reduce phase. `map.results` is for interpolation only: it is
        never exported into a child's environment (the original hit E2BIG that way)."""
        successful = self.successful
        rate = round(100.0 * successful / self.total, 1) if self.total else 100.0
        results = [r.as_dict() for r in self.results]
        return {
            "map.results": results,
            "map.results_json": results,  # the original's alias (its book documents both)
            "map.successful": successful,
            "map.failed": len(self.results) - successful,
            "map.total": self.total,
            "map.success_rate": rate,
        }


@dataclass
class MapPhase:
    spec: MapSpec
    policy: ErrorPolicy
    host: PhaseHost
    parent: RunContext  # the session's, after setup: its worktree, variables, events
    fixed_items: list[tuple[int, Any]] | None = None  # (index, item): a DLQ retry's items
    dlq_job: str | None = None  # the job whose DLQ entries this phase updates (a retry's)
    results: dict[str, AgentResult] = field(default_factory=dict)
    none_because: str | None = None  # no item: why, when it can be told (`why_none`)

    def __post_init__(self) -> None:
        self.journal = self.host.journal
        self.queue = MergeQueue(self.parent, self.host.branch, self.host.repo)
        self.log_dir = paths.agent_logs_dir(self.session_id)

    @property
    def session_id(self) -> str:
        return self.host.session_id

    @property
    def _dlq_job(self) -> str:
        return self.dlq_job or self.session_id

    @property
    def _masker(self) -> Masker:
        return self.parent.masker

    def _agents(self) -> AgentSpec:
        """What every agent of the phase runs with: the parent's state after setup."""
        parent, workflow = self.parent, self.host.workflow
        return AgentSpec(
            session_id=self.session_id,
            workflow_name=workflow.name,
            template=self.spec.agent_template,
            variables=parent.variables.snapshot(),
            env=parent.env,
            secrets=parent.masker.secrets(),
            settings=parent.settings,
            timeout=seconds_from(self.spec.agent_timeout_secs, parent, "agent_timeout_secs"),
            budget=self.spec.budget,
            track_git=references_git_variables(workflow),
            strict_variables=parent.strict_variables,
            keep_failed=self.host.keep_failed,
            retry_defaults=parent.retry_defaults,
            dynamic_env=parent.dynamic_env,
        )

    async def run(self) -> MapOutcome:
        writer = self.journal.checkpoint_log(self.session_id, MAP)
        try:
            return await self._run(writer)
        finally:
            await writer.close()

    async def _run(self, writer: CheckpointLog) -> MapOutcome:
        agents = self._agents()  # a bad agent_timeout_secs fails the phase before any item
        items, base = await self._items(writer)
        total = len(items)
        pending = [
            WorkItem(i, value, total) for i, value in items if f"item_{i}" not in self.results
        ]
        events = self.parent.events
        if not items:
            events.emit(
                EventType.MAP_PHASE_COMPLETED,
                total=0,
                successful=0,
                failed=0,
                message="No work items to process"
                + (f": {self.none_because}" if self.none_because else ""),
            )
            return MapOutcome(0, [])
        pending = await self._recover(pending, base, writer)
        limits = FailureLimits(self.policy, total)
        limits.failed = sum(1 for r in self.results.values() if not r.success)
        self.host.map_progress(total, len(self.results), limits.failed)
        started = time.monotonic()
        if pending:
            results = ResultLog(
                writer,
                lambda unwritten: self.host.map_progress(
                    total,
                    len(self.results) - len(unwritten),
                    limits.failed - sum(not r["result"]["success"] for r in unwritten),
                ),
            )
            try:
                await self._dispatch(pending, agents, limits, results, total)
            finally:
                await self.host.runner.finish(self.queue)
        ordered = [self.results[f"item_{i}"] for i, _ in items if f"item_{i}" in self.results]
        outcome = MapOutcome(total, ordered)
        stop = self.host.stop_event
        spent = self._budget_spent(items)
        outcome.stopped = (
            stop.is_set() and len(ordered) < total and not limits.reason and spent is None
        )
        if limits.reason:
            outcome.ok, outcome.error = False, f"map phase stopped: {limits.reason}"
        elif spent is not None:
            outcome.ok, outcome.error = False, f"map phase stopped: {spent}"
        if not outcome.stopped:
            successful = outcome.successful
            events.emit(
                EventType.MAP_PHASE_COMPLETED,
                total=total,
                successful=successful,
                failed=len(ordered) - successful,
                duration=round(time.monotonic() - started, 3),
                error=outcome.error,
                dlq=self.policy.on_item_failure != "skip",
                dlq_job=self._dlq_job,  # a DLQ retry's failures go back to its job's queue
            )
        return outcome

    def _budget_spent(self, items: list[tuple[int, Any]]) -> str | None:
        """When the job's budget ran out with items unfinished: why, and which (reported in
        a `budget_exceeded` event). They have no result, so a resume (with a larger
        budget) runs them: the budget failed, not the items, and no DLQ entry would help."""
        reason = self.parent.budget.exceeded()
        unfinished = [f"item_{i}" for i, _ in items if f"item_{i}" not in self.results]
        if reason is None or not unfinished:
            return None
        self.parent.events.emit(EventType.BUDGET_EXCEEDED, reason=reason, unfinished=unfinished)
        return f"{reason}; {len(unfinished)} of {len(items)} items unfinished (a resume runs them)"

    # -- items ----------------------------------------------------------------------------

    async def _items(self, writer: CheckpointLog) -> tuple[list[tuple[int, Any]], str | None]:
        """(index, item) pairs (from the journal when resuming), and the parent HEAD the
        phase began at."""
        journal = self.journal.checkpoint_records(self.session_id, MAP)
        header = next((r for r in journal if r.get("kind") == "items"), None)
        for record in journal:
            if record.get("kind") == "result":
                result = AgentResult.from_dict(self._masker.restore(record["result"]))
                self.results[result.item_id] = result
        if header is not None:
            values = self._masker.restore(header["items"])
            indexes = header.get("indexes") or range(len(values))
            return list(zip(indexes, values, strict=True)), header.get("base")
        if self.fixed_items is not None:
            indexes, values = [i for i, _ in self.fixed_items], [v for _, v in self.fixed_items]
        else:
            values, self.none_because = await load_items(self.spec, self.parent)
            indexes = list(range(len(values)))
        base = await self.queue.head()
        header = {
            "kind": "items",
            "items": values,
            "indexes": indexes,
            "base": base,
            "created_at": now_iso(),
        }
        await writer.write(self._masker.protect(header))
        return list(zip(indexes, values, strict=True)), base

    async def _recover(
        self, pending: list[WorkItem], base: str | None, writer: CheckpointLog
    ) -> list[WorkItem]:
        """After a crash: settle a merge into the parent it cut off, and record the agents
        whose merge landed before it. (An agent run again re-adopts its worktree, which
        kills what the cut-off run left there: see WorktreePool.acquire.)"""
        if base is None:
            return pending
        await settle_interrupted_merge(self.parent.worktree)
        merged = await merged_item_ids(self.parent.worktree, base, MERGED_ITEM)
        still = []
        for item in pending:
            if item.item_id not in merged:
                still.append(item)
                continue
            result = AgentResult(
                item.item_id,
                item.index,
                item.value,
                "success",
                output="(merged before prodigyd stopped)",
            )
            await self._record(result, writer)
        return still

    def _parallelism(self) -> int:
        value = self.spec.max_parallel
        if isinstance(value, int):
            return value
        return number_from(value, self.parent, "max_parallel")

    # -- dispatching ------------------------------------------------------------------------

    async def _dispatch(
        self,
        pending: list[WorkItem],
        agents: AgentSpec,
        limits: FailureLimits,
        results: ResultLog,
        total: int,
    ) -> None:
        parallel = min(self._parallelism(), len(pending))
        self.parent.events.emit(
            EventType.MAP_PHASE_STARTED,
            total_items=total,
            pending=len(pending),
            max_parallel=parallel,
            resumed=len(pending) < total,
        )
        self.log_dir.mkdir(parents=True, exist_ok=True)  # once, not per attempt (run_agent)
        waiting = deque(pending)
        breaker = Breaker(self.policy.circuit_breaker) if self.policy.circuit_breaker else None
        workers = [
            asyncio.create_task(self._worker(waiting, agents, limits, breaker, results, worker))
            for worker in range(parallel)
        ]
        try:
            await asyncio.gather(*workers)
        except BaseException:
            for task in workers:
                task.cancel()
            # what stopped the phase (a cancel, a worker's error) stands: a result the flush
            # cannot write (a full disk) was shown to nobody and runs again on resume
            with contextlib.suppress(Exception):
                await results.flush()
            raise
        await results.flush()  # the phase ends once every result is durable

    async def _worker(
        self,
        waiting: deque[WorkItem],
        agents: AgentSpec,
        limits: FailureLimits,
        breaker: Breaker | None,
        results: ResultLog,
        worker: int,
    ) -> None:
        """Run items one after another until none is left: one of `max_parallel` such
        workers, numbered from 0 (`${worker.id}` of its agents)."""
        stop, budget = self.host.stop_event, self.parent.budget
        while waiting and limits.reason is None and not stop.is_set():
            results.check()  # the journal cannot be written (a full disk): start no item
            if budget.exceeded() is not None:  # the job's budget is spent: start no agent
                return
            if breaker is not None:
                wait = breaker.wait_time()
                if wait > 0:
                    await _sleep_unless(stop, wait)
                    continue
            item = waiting.popleft()
            ended = await self._run_item(item, agents, worker)
            if ended is None:  # stopped mid-item: it runs again on resume
                return
            job, result = ended
            end = partial(report_end, self.parent.events, job, result)  # shown once durable
            results.add(self._result_record(result), end)
            limits.record(result.success)
            if result.status == "timeout" and self.spec.timeout_action == "fail":
                limits.reason = f"{result.item_id} timed out and timeout_action is fail"
            if breaker is not None:
                breaker.record(result.success)

    async def _run_item(
        self, item: WorkItem, agents: AgentSpec, worker: int
    ) -> tuple[AgentJob, AgentResult] | None:
        """All attempts of one item, and the last (its end is for the caller to report);
        failures go to the DLQ as they happen. Each attempt starts at the parent's commit
        of the moment, with every merge before it."""
        started = time.monotonic()
        attempt = 1
        while True:
            job = AgentJob(agents, item, attempt, start=await self.queue.head(), worker=worker)
            result = await run_agent(
                self.host.runner, job, self.queue, self.log_dir, self.host.stop_event
            )
            if result is None:
                return None
            if (
                result.failure_reason is FailureReason.BUDGET_EXCEEDED
                and not spent_by(result.error or "", "agent")  # its own budget: it failed
                and self.parent.budget.exceeded() is not None
            ):
                report_end(self.parent.events, job, result)
                return None  # stopped by the job's budget: unfinished, not failed
            if result.success:
                if attempt > 1 or self.dlq_job is not None:
                    self.journal.remove_dead_letters(self._dlq_job, [item.item_id])
                return job, result
            timeout_action = self.spec.timeout_action if result.status == "timeout" else "dlq"
            delay = None
            if self.policy.on_item_failure == "retry" and timeout_action == "dlq":
                error, elapsed = result.error or "", time.monotonic() - started
                delay = retry_policy.next_wait(self.policy.retry_config, attempt, error, elapsed)
            if delay is not None:  # not the item's end: this attempt's is shown now
                report_end(self.parent.events, job, result)
            if timeout_action != "skip":
                self._dead_letter(item, result)
            if delay is None:
                return job, result
            attempt += 1
            self.parent.events.emit(EventType.AGENT_RETRYING, item_id=item.item_id, attempt=attempt)
            try:
                await self.parent.pause(delay)
            except StepStopped:
                return None  # stopped while waiting: the item runs again on resume

    def _dead_letter(self, item: WorkItem, result: AgentResult) -> None:
        if self.policy.on_item_failure == "skip":
            return
        assert result.failure_reason is not None  # set with every failure
        artifacts = None
        if result.branch_name:
            artifacts = {"worktree_path": result.worktree_path, "branch_name": result.branch_name}
        mask = self._masker.mask_obj
        entry = self.journal.dead_letter(
            self._dlq_job,
            item.item_id,
            item=mask(item.value),
            repo=str(self.host.repo),
            workflow=self.host.workflow.name,
            reason=result.failure_reason,
            artifacts=artifacts,
            attempt={
                "timestamp": result.completed_at or now_iso(),
                "error_message": mask(result.error or "failed"),
                "exit_code": result.exit_code,
                "duration_ms": int(result.duration * 1000),
                "log_path": result.log_path,
                "agent_id": f"{self.session_id}_agent_{item.index}",
                # the original's field: the step, else what failed around the steps
                "step_failed": result.failed_step or _where_failed(result.failure_reason),
            },
        )
        self.parent.events.emit(
            EventType.DLQ_ITEM_ADDED,
            item_id=item.item_id,
            error_type=entry["error_type"],
            error_signature=entry["error_signature"],
            failure_count=entry["failure_count"],
        )

    async def _record(self, result: AgentResult, writer: CheckpointLog) -> None:
        await writer.write(self._result_record(result))

    def _result_record(self, result: AgentResult) -> dict[str, Any]:
        """The item's result, kept, and its journal record (secrets as placeholders)."""
        self.results[result.item_id] = result
        return {"kind": "result", "result": self._masker.protect(result.as_dict())}


class ResultLog:
    """The finished items' results into the phase's journal, in the order they finished,
    without holding up the workers that ran them: a worker takes its next item while its
    last result is synced, with those of the agents that finished meanwhile (group commit).
    A crash before a record is durable runs that item again on resume, as a crash a moment
    earlier would. Nothing about a result is shown before it is durable: each record's
    `then` (its `agent_completed` event) runs once it is, and `on_durable` hears after each
    append the records still unwritten (the session's progress counts the others)."""

    def __init__(
        self, writer: CheckpointLog, on_durable: Callable[[list[dict[str, Any]]], None]
    ) -> None:
        self.writer = writer
        self.on_durable = on_durable
        self.unwritten: deque[tuple[dict[str, Any], Callable[[], None]]] = deque()
        self._task: asyncio.Task[None] | None = None

    def add(self, record: dict[str, Any], then: Callable[[], None]) -> None:
        self.check()
        self.unwritten.append((record, then))
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._write_all(), name="map results")

    def check(self) -> None:
        """Raise what stopped the writing (a full disk, say), if anything did."""
        if self._task is not None and self._task.done():
            self._task.result()

    async def flush(self) -> None:
        """Return once every record added is durable; raise what stopped one. The writing
        goes on if the caller is cancelled meanwhile (a daemon stop): those items are done."""
        if self._task is not None:
            await asyncio.shield(self._task)

    async def _write_all(self) -> None:
        """Whatever has come meanwhile goes in one append and one sync: the writing keeps
        up with any number of agents finishing at once."""
        while self.unwritten:
            batch = list(self.unwritten)
            await self.writer.write_all([record for record, _ in batch])
            for _, then in batch:
                self.unwritten.popleft()
                then()
            self.on_durable([record for record, _ in self.unwritten])


async def load_items(spec: MapSpec, ctx: RunContext) -> tuple[list[Any], str | None]:
    """`map.input` as items: a JSON file of the parent worktree, else a command's output;
    and, when there are none because the filter took them all, what to say about it."""
    source = ctx.interpolate(spec.input)
    path = Path(source) if Path(source).is_absolute() else ctx.worktree / source
    if path.is_file():
        try:
            document = json.loads(path.read_text(encoding="utf-8"))
        except (ValueError, UnicodeDecodeError) as exc:
            raise WorkflowError(
                f"map input {source} is not valid JSON: {exc}",
                hint=f"for one item per line of the file, make the input a command: "
                f'input: "cat {source}"',
            ) from None
    else:
        document = await _command_items(source, ctx)
    items = spec_items(document, spec)
    return items, None if items else why_none(document, spec)


async def _command_items(command: str, ctx: RunContext) -> Any:
    argv, env = sh(command, ctx.env, ctx.masker)
    done = await proc.run(argv, cwd=ctx.worktree, env=env, timeout=INPUT_COMMAND_TIMEOUT)
    if not done.ok:
        why = "timed out" if done.timed_out else f"exited with code {done.returncode}"
        tail = ctx.masker.mask(done.stderr.strip())[-500:]  # masked before it is cut
        raise ProdigyError(
            f"map input: no file {command!r} in the worktree, and as a command it {why}",
            details=tail or None,
            hint="input: is a JSON file in the worktree (made by setup, say) or a command "
            "that prints the items",
        )
    try:
        return json.loads(done.stdout)
    except ValueError:
        return items_from_output(done.stdout)


def _where_failed(reason: FailureReason | None) -> str:
    """A DLQ attempt's `step_failed` when no step failed: the agent's merge, or the agent
    around its steps (its worktree, its commit, its own timeout)."""
    return "merge" if reason is FailureReason.MERGE_CONFLICT else "agent_execution"


async def _sleep_unless(stop: asyncio.Event, seconds: float) -> None:
    try:
        await asyncio.wait_for(stop.wait(), seconds)
    except TimeoutError:
        pass
