"""A MapReduce job's phases: setup → map → reduce, in the parent (session) worktree.

The same engine as a standard workflow: setup and reduce are sequential phases with their
own checkpoint journals (so completed steps never run twice), the map phase fans the work
items out to agents (map_phase.py). The session merges the parent worktree into the user's
branch afterwards, as for any workflow. A DLQ retry is a map phase alone.

Decisions where the reference is silent or surprising:
- `map.input` is used as written. The original silently switched it to any new file named
  `*work-items.json` that setup created; that surprise is not kept.
- With no work items the map phase reports "No work items to process" and reduce is
  skipped, as in the original.
"""

from __future__ import annotations

from typing import Any

from prodigyd.engine.context import RunContext
from prodigyd.engine.gitvars import GitTracker
from prodigyd.engine.mapreduce.host import PhaseHost
from prodigyd.engine.mapreduce.map_phase import MapOutcome, MapPhase
from prodigyd.engine.mapreduce.setup import run_setup
from prodigyd.engine.phase import PhaseOutcome
from prodigyd.engine.plan import MAP, REDUCE, SETUP
from prodigyd.eventtypes import EventType
from prodigyd.git.merge import cut_off_merge, settle_interrupted_merge
from prodigyd.store.sessions import DlqRetry
from prodigyd.workflow.model import ErrorPolicy, MapSpec, RetrySpec


async def run_mapreduce(host: PhaseHost, ctx: RunContext, git: GitTracker) -> PhaseOutcome:
    workflow = host.workflow
    assert workflow.map is not None
    if cut_off_merge(ctx.worktree):  # an agent's, a crash or a full disk cut off: before
        await settle_interrupted_merge(ctx.worktree)  # setup's commit took it as its own
    if workflow.setup is not None:
        outcome = await run_setup(host, workflow.setup, ctx, git)
        if not outcome.ok:
            return outcome
    mapped = await _map(host, ctx, workflow.map, workflow.error_policy)
    if mapped.stopped:
        return PhaseOutcome(False, stopped=True)
    if not mapped.ok:
        return PhaseOutcome(False, error=mapped.error)
    if mapped.total and not mapped.successful:
        then = "the reduce phase did not run"
        if workflow.error_policy.on_item_failure != "skip":  # a resume has nothing left to run
            then += f"; `prodigyctl dlq retry {host.session_id}` runs the failed items again"
        return PhaseOutcome(False, error=all_failed(mapped, then))
    if not workflow.reduce:
        return PhaseOutcome(True)
    if mapped.total == 0:
        ctx.events.emit(EventType.PHASE_SKIPPED, phase=REDUCE, reason="no work items")
        return PhaseOutcome(True)
    host.enter_phase(REDUCE)
    return await host.sequential(REDUCE, workflow.reduce, ctx, git)


async def run_dlq_retry(host: PhaseHost, ctx: RunContext, retry: DlqRetry) -> PhaseOutcome:
    """Re-run dead letters of `retry.job_id` as this job's map phase: with the original
    job's setup variables, no setup and no reduce. The original job's DLQ entries are
    updated: an item that succeeds leaves the queue, one that fails gets another attempt.
    The job completes (and merges what succeeded) however many fail again, like any
    MapReduce job whose failures went to the DLQ; when every item failed again it fails,
    a dead end (nothing of its own to resume: the next try is another `dlq retry`)."""
    workflow = host.workflow
    assert workflow.map is not None
    saved = host.journal.checkpoint(retry.job_id, SETUP) or {}
    ctx.variables.update(ctx.masker.restore(saved.get("variable_state") or {}))
    items = []
    for item_id in retry.item_ids:
        entry = host.journal.dead_letter_entry(retry.job_id, item_id)
        if entry is not None:  # purged meanwhile: nothing to retry
            items.append((int(item_id.removeprefix("item_")), entry["item_data"]))
    spec = workflow.map
    if retry.max_parallel is not None:
        spec = spec.model_copy(update={"max_parallel": retry.max_parallel})
    policy = ErrorPolicy(
        on_item_failure="retry", retry_config=RetrySpec(attempts=retry.attempts, initial_delay=0)
    )
    mapped = await _map(host, ctx, spec, policy, fixed_items=items, dlq_job=retry.job_id)
    # items that failed again are back in the DLQ; what succeeded is merged
    if not mapped.ok and not mapped.stopped:  # the budget ran out: the rest were not run
        return PhaseOutcome(False, error=mapped.error)
    if mapped.total and not mapped.successful and not mapped.stopped:
        back = "it is" if mapped.total == 1 else "they are"
        return PhaseOutcome(  # what to run next is about the job whose DLQ holds them
            False,
            dead_end=True,
            error=all_failed(
                mapped,
                f"{back} back in the DLQ of {retry.job_id}: `prodigyctl dlq retry "
                f"{retry.job_id}` runs {back.split()[0]} again once the cause is fixed",
            ),
        )
    return PhaseOutcome(not mapped.stopped, stopped=mapped.stopped)


def all_failed(mapped: MapOutcome, then: str) -> str:
    """The error of a map phase in which no item succeeded: such a job did not complete,
    however its error policy let the phase run to the end (a batch whose every file failed
    reported "completed" before)."""
    failed = "its only item" if mapped.total == 1 else f"all {mapped.total} items"
    return f"the map phase failed: {failed} failed; {then}"


async def _map(
    host: PhaseHost, ctx: RunContext, spec: MapSpec, policy: ErrorPolicy, **options: Any
) -> MapOutcome:
    """The map phase of `spec`, with its `${map.*}` variables set when it ran to the end;
    `options` go to MapPhase (a DLQ retry's fixed items)."""
    host.enter_phase(MAP)
    mapped = await MapPhase(spec, policy, host, ctx, **options).run()
    if not mapped.stopped:
        ctx.variables.update(mapped.variables())
    return mapped
