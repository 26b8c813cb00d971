"""A MapReduce session's phases: setup → map → reduce, in the parent (session) worktree.

The same engine as a standard workflow: setup and reduce are sequential phases with their
own checkpoint journals (so completed steps never run twice), the map phase fans the work
items out to agents (engine/mapphase.py). The session merges the parent worktree into the
user's branch afterwards, as for any workflow.

Decisions where the reference is silent or surprising:
- Changes setup leaves uncommitted are committed once setup is done: agents branch from the
  parent's commit, so that is how they see what setup wrote (the original's agents did not
  see uncommitted setup files), and the parent stays clean for the agents' merges.
- `map.input` is used as written. The original silently switched it to any new file named
  `*work-items.json` that setup created; that surprise is not kept.
- With no work items the map phase reports "No work items to process" and reduce is
  skipped, as in the original.
- A `capture_outputs` value the pattern or JSON path cannot find, with no `default:`, fails
  setup with a message naming it, instead of quietly leaving the variable empty.
"""

from __future__ import annotations

import asyncio
import json
import re
from typing import TYPE_CHECKING, Any

from prodigyd import paths
from prodigyd.engine.agent import AgentHost
from prodigyd.engine.context import RunContext
from prodigyd.engine.gitvars import GitTracker, references_git_variables
from prodigyd.engine.mapphase import MAP, MapOutcome, MapPhase, agent_timeout
from prodigyd.engine.mask import Masker
from prodigyd.engine.phase import PhaseOutcome, StepHook
from prodigyd.engine.step import StepReport
from prodigyd.errors import ProdigyError
from prodigyd.git.repo import commit_all
from prodigyd.store.sessions import DlqRetry
from prodigyd.workflow import jsonpath
from prodigyd.workflow.model import CaptureOutput, ErrorPolicy, MapSpec, SetupSpec

if TYPE_CHECKING:
    from prodigyd.engine.session import Session

SETUP, REDUCE = "setup", "reduce"


async def run_mapreduce(session: Session, ctx: RunContext, git: GitTracker) -> PhaseOutcome:
    workflow = session.loaded.workflow
    assert workflow.map is not None
    if workflow.setup is not None:
        outcome = await _setup(session, workflow.setup, ctx, git)
        if not outcome.ok:
            return outcome
    mapped = await _map(session, ctx, workflow.map, workflow.error_policy)
    if mapped.stopped:
        return PhaseOutcome(False, stopped=True)
    if not mapped.ok:
        return PhaseOutcome(False, error=mapped.error)
    if not workflow.reduce:
        return PhaseOutcome(True)
    if mapped.total == 0:
        ctx.events.emit("phase_skipped", phase=REDUCE, reason="no work items")
        return PhaseOutcome(True)
    session.enter_phase(REDUCE)
    return await session.sequential(REDUCE, workflow.reduce, ctx, git)


async def run_dlq_retry(
    session: Session, ctx: RunContext, git: GitTracker, retry: DlqRetry
) -> PhaseOutcome:
    """Re-run dead letters of `retry.job_id` as this job's map phase: with the original
    job's setup variables, no setup and no reduce. The original job's DLQ entries are
    updated: an item that succeeds leaves the queue, one that fails gets another attempt.
    The job completes (and merges what succeeded) however many fail again, like any
    MapReduce job whose failures went to the DLQ."""
    workflow = session.loaded.workflow
    assert workflow.map is not None
    saved = session.journal.checkpoint(retry.job_id, SETUP) or {}
    ctx.variables.update(ctx.masker.restore(saved.get("variable_state") or {}))
    items = []
    for item_id in retry.item_ids:
        entry = session.journal.dead_letter_entry(retry.job_id, item_id)
        if entry is not None:  # purged meanwhile: nothing to retry
            items.append((int(item_id.removeprefix("item_")), entry["item_data"]))
    spec = workflow.map
    if retry.max_parallel is not None:
        spec = spec.model_copy(update={"max_parallel": retry.max_parallel})
    policy = ErrorPolicy(on_item_failure="retry", retry_attempts=retry.attempts)
    mapped = await _map(session, ctx, spec, policy, fixed_items=items, dlq_job=retry.job_id)
    # items that failed again are back in the DLQ; what succeeded is merged
    return PhaseOutcome(not mapped.stopped, stopped=mapped.stopped)


async def _map(
    session: Session, ctx: RunContext, spec: MapSpec, policy: ErrorPolicy, **options: Any
) -> MapOutcome:
    """The map phase of `spec`, with its `${map.*}` variables set when it ran to the end;
    `options` go to MapPhase (a DLQ retry's fixed items)."""
    session.enter_phase(MAP)
    host = AgentHost(
        parent=ctx,
        parent_branch=session.record.branch,
        repo=session.repo,
        pool=session.pool,
        template=spec.agent_template,
        timeout=agent_timeout(spec, ctx),
        track_git=references_git_variables(session.loaded.workflow),
        stop=session.stop_event,
        keep_failed=session.pool.settings.keep_failed,
        log_dir=paths.agent_logs_dir(session.record.id),
    )
    workflow = session.loaded.workflow.name
    mapped = await MapPhase(
        spec, policy, host, session.journal, workflow, session.map_progress, **options
    ).run()
    if not mapped.stopped:
        ctx.variables.update(mapped.variables())
    return mapped


async def _setup(
    session: Session, spec: SetupSpec, ctx: RunContext, git: GitTracker
) -> PhaseOutcome:
    session.enter_phase(SETUP)
    phase = session.sequential(SETUP, spec.steps, ctx, git, on_completed=_captures(spec, ctx))
    try:
        outcome = await asyncio.wait_for(phase, spec.timeout)
    except TimeoutError:
        return PhaseOutcome(False, error=f"setup timed out after {spec.timeout:g} seconds")
    if outcome.ok:
        await commit_all(ctx.worktree, f"prodigy: setup of {session.record.workflow_name}")
    return outcome


def _captures(spec: SetupSpec, ctx: RunContext) -> StepHook | None:
    """Set each `capture_outputs` variable right after its command succeeds, before the
    step's checkpoint: a resumed run gets it from the checkpoint without re-running."""
    if not spec.capture_outputs:
        return None

    def hook(index: int, report: StepReport) -> None:
        for name, capture in spec.capture_outputs.items():
            if capture.command_index == index:
                ctx.variables.set(name, captured_value(name, capture, report, ctx.masker))

    return hook


def captured_value(name: str, capture: CaptureOutput, report: StepReport, masker: Masker) -> Any:
    """One `capture_outputs` value from a finished setup command (reference §2.3); cut at
    `max_size` without splitting a secret (Masker.cut)."""
    result = report.result
    streams = {
        "stdout": result.text,
        "stderr": result.stderr,
        "both": result.text + result.stderr,
        "combined": result.text + result.stderr,
    }
    text = masker.cut(streams[capture.source], capture.max_size)
    if capture.pattern is not None:
        match = re.search(capture.pattern, text, re.MULTILINE)
        found = (match.group(1) if match.groups() else match.group(0)) if match else None
        text = found if found is not None else _missing(name, capture, "pattern")
    if capture.json_path is not None:
        try:
            values = jsonpath.select(json.loads(text), capture.json_path)
        except ValueError:
            values = []
        if not values:
            return _missing(name, capture, "json_path")
        return values[0] if len(values) == 1 else values
    return _shape(text, capture.multiline)


def _missing(name: str, capture: CaptureOutput, what: str) -> str:
    if capture.default is not None:
        return capture.default
    raise ProdigyError(
        f"capture_outputs.{name}: the {what} found nothing in the output of setup command "
        f"{capture.command_index + 1}",
        hint="fix the pattern, or give a default:",
    )


def _shape(text: str, multiline: str) -> Any:
    lines = text.rstrip("\n").splitlines()
    if multiline == "join":
        return " ".join(line.strip() for line in lines)
    if multiline == "first_line":
        return lines[0] if lines else ""
    if multiline == "last_line":
        return lines[-1] if lines else ""
    if multiline == "array":
        return lines
    return text.removesuffix("\n")
