"""A sequential phase: steps in order, a checkpoint after each, completed steps skipped.

Standard workflows are one such phase; MapReduce setup, reduce and the merge workflow will be
others (one engine, phases not modes). The checkpoint callback is the host's: the phase only
says what to record and when.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from prodigyd.clock import now_iso
from prodigyd.engine.context import StepStopped
from prodigyd.engine.mask import Masker
from prodigyd.engine.step import StepReport, StepRunner
from prodigyd.eventtypes import EventType
from prodigyd.failure import FailureReason
from prodigyd.workflow.interpolate import VariableStore
from prodigyd.workflow.model import Step

#: How much of a step's output a checkpoint keeps; the full text is in the event log.
CHECKPOINT_OUTPUT_CHARS = 2000

#: (status, next step index, completed entries): records them and returns once they are
#: durable, because the step's `step_completed` event follows it.
Checkpoint = Callable[[str, int, list[dict[str, Any]]], Awaitable[None]]


@dataclass
class PhaseOutcome:
    ok: bool
    error: str | None = None
    stopped: bool = False  # asked to stop between steps (daemon shutdown)
    exit_code: int | None = None  # of the failed step's command
    reason: FailureReason | None = None  # why it failed, when it did
    code: str | None = None  # its error code, when prodigy stopped it (StepReport.error_code)
    step: str | None = None  # the step that failed, as its events show it (`shell: make`)
    # nothing of it is left to resume: what failed went back to another job's DLQ, whose
    # retry runs it again (a DLQ retry whose every item failed again)
    dead_end: bool = False


#: Called after a step succeeded, before its checkpoint: (step index, report). The setup
#: phase takes its `capture_outputs` here, so they are in the checkpoint's variables.
StepHook = Callable[[int, StepReport], None]


async def run_sequential(
    steps: Sequence[Step],
    runner: StepRunner,
    store: VariableStore,
    *,
    completed: list[dict[str, Any]],
    checkpoint: Checkpoint,
    stop: asyncio.Event | None = None,
    prefix: str = "",
    on_completed: StepHook | None = None,
) -> PhaseOutcome:
    """Run `steps`, skipping indexes already in `completed` (which is extended in place).

    When `stop` is set, the phase ends before the next step (the last one is checkpointed).
    `prefix` starts every step label (`setup.1`, `item_3/2`), so a phase's events name it.
    """
    done = {entry["step_index"] for entry in completed}
    total = len(steps)
    events = runner.ctx.events
    for index, step in enumerate(steps):
        display = runner.display(step, store)
        if stop is not None and stop.is_set():
            return PhaseOutcome(False, stopped=True)
        label = f"{prefix}{index + 1}"
        if index in done:
            events.emit(EventType.STEP_SKIPPED, step=label, display=display, reason="completed")
            continue
        store.update({"step.index": index + 1, "step.name": step.name or display})
        try:
            report = await runner.run(
                step,
                label=label,
                store=store,
                display=display,
                position=(index + 1, total),
                settle=_recorder(
                    index, display, completed, checkpoint, on_completed, runner.ctx.masker
                ),
            )
        except StepStopped:  # asked to stop while the step waited: it runs again on resume
            events.emit(EventType.STEP_STOPPED, step=label, display=display)
            return PhaseOutcome(False, stopped=True)
        if not report.success:
            return PhaseOutcome(
                False,
                error=report.error,
                exit_code=report.result.exit_code,
                reason=report.failure,
                code=report.error_code,
                step=display,
            )
    return PhaseOutcome(True)


def _recorder(
    index: int,
    display: str,
    completed: list[dict[str, Any]],
    checkpoint: Checkpoint,
    on_completed: StepHook | None,
    masker: Masker,
) -> Callable[[StepReport], Awaitable[None]]:
    """The step's checkpoint, which the runner awaits before announcing its outcome."""

    async def record(report: StepReport) -> None:
        if not report.success:
            await checkpoint("Failed", index, completed)
            return
        if on_completed is not None:
            on_completed(index, report)
        completed.append(
            {
                "step_index": index,
                "command": display,
                "success": True,
                "skipped": report.skipped,
                # masked whole, then cut: a cut secret would not be recognised (mask.py)
                "output": masker.mask(report.result.text)[-CHECKPOINT_OUTPUT_CHARS:],
                "duration": round(report.result.duration, 6),
                "completed_at": now_iso(),
            }
        )
        await checkpoint("Running", index + 1, completed)

    return record


async def no_checkpoint(status: str, index: int, completed: list[dict[str, Any]]) -> None:
    """For phases that are re-run whole (a merge workflow, a map agent's steps)."""
