"""`sub_workflows:` — other workflow files run in the session's worktree (docs/workflows.md,
"Sub-workflows"; the loader side is prodigyd.workflow.compose.subflows).

One step runs one sub-workflow, or several consecutive `parallel: true` ones at once. Each
runs its steps through the full step pipeline in a child scope of the session's variables,
with its parameters (declared by its file, given by the entry's `parameters:`, checked as
the workflow's own are) and its `inputs:`, both interpolated in the parent's scope. Its
steps also get `PRODIGY_OUTPUT`, a file where a line `NAME=value` sets the output NAME, as
the original's book shows. When it succeeds, each of its `outputs:` (from that file, else a
variable the sub-workflow set) becomes `${SUB.NAME}` in the session, and `${SUB.success}`
tells whether it succeeded. A failure fails the step unless the entry says
`continue_on_error: true`.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

from prodigyd import paths
from prodigyd.engine.commands.base import Invocation
from prodigyd.engine.context import CommandResult, StepStopped
from prodigyd.engine.gitvars import GitTracker
from prodigyd.errors import ProdigyError
from prodigyd.workflow.compose import params
from prodigyd.workflow.interpolate import MISSING, VariableStore
from prodigyd.workflow.model import Step, SubWorkflow

OUTPUT_VAR = "PRODIGY_OUTPUT"


async def run(step: Step, inv: Invocation) -> CommandResult:
    started = time.monotonic()
    outcomes = await asyncio.gather(*(_one(sub, inv) for sub in step.sub_workflows))
    lines, failed = [], []
    for sub, problem in zip(step.sub_workflows, outcomes, strict=True):
        inv.store.set(f"{sub.name}.success", problem is None)
        if problem is None:
            lines.append(f"sub-workflow {sub.name}: completed")
        elif sub.continue_on_error:
            lines.append(f"sub-workflow {sub.name}: failed (continue_on_error): {problem}")
        else:
            lines.append(f"sub-workflow {sub.name}: failed: {problem}")
            failed.append(f"sub-workflow {sub.name} failed: {problem}")
    return CommandResult(
        success=not failed,
        exit_code=1 if failed else 0,
        stdout="\n".join(lines) + "\n",
        duration=time.monotonic() - started,
        error="; ".join(failed) or None,
    )


async def _one(sub: SubWorkflow, inv: Invocation) -> str | None:
    """Run one sub-workflow; None when it succeeded, else why it failed."""
    from prodigyd.engine.step import StepRunner  # the pipeline runs this kind: no cycle

    store = inv.store.child()
    output_file = _output_file(inv, sub)
    try:
        given = {name: _interpolated(value, inv) for name, value in sub.values.items()}
        store.update(params.resolve(sub.parameters, {}, given, where=f"sub-workflow {sub.name}"))
        store.update({name: _interpolated(value, inv) for name, value in sub.inputs.items()})
    except ProdigyError as exc:
        return exc.message
    runner = StepRunner(inv.ctx, GitTracker(inv.ctx.worktree, None, track=False))
    try:
        async with asyncio.timeout(sub.timeout):
            for number, sub_step in enumerate(sub.steps, start=1):
                env = {**sub_step.env, OUTPUT_VAR: str(output_file)}
                label = f"{inv.label}.{sub.name}.{number}"
                report = await runner.run(
                    sub_step.model_copy(update={"env": env}), label=label, store=store
                )
                if not report.success:
                    return report.error or f"step {number} failed"
    except TimeoutError:
        return f"timed out after {sub.timeout:g} seconds"
    except StepStopped:
        raise
    return _collect(sub, store, output_file, inv.store)


def _collect(
    sub: SubWorkflow, store: VariableStore, output_file: Path, parent: VariableStore
) -> str | None:
    """Copy the declared outputs into the parent scope; a missing one fails the sub-workflow."""
    written = _read_outputs(output_file)
    for name in sub.outputs:
        value = written.get(name, store.own(name))
        if value is MISSING:
            return (
                f"it did not set its output {name!r} (capture: {name} in a step, or "
                f'echo "{name}=..." >> ${OUTPUT_VAR})'
            )
        parent.set(f"{sub.name}.{name}", value)
    return None


def _output_file(inv: Invocation, sub: SubWorkflow) -> Path:
    """A fresh `$PRODIGY_OUTPUT` file of this run of `sub`, in the session's state folder
    (never in the worktree, whose files are committed)."""
    folder = paths.state_dir(inv.ctx.session_id) / "sub_workflows"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{inv.label}.{sub.name}.out"
    path.write_text("")
    return path


def _read_outputs(path: Path) -> dict[str, str]:
    """`NAME=value` lines (the last one of a name wins); other lines are ignored."""
    found = {}
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return {}
    for line in text.splitlines():
        name, sep, value = line.partition("=")
        if sep and name.strip():
            found[name.strip()] = value
    return found


def _interpolated(value: Any, inv: Invocation) -> Any:
    """Text with the parent's variables substituted; other values as they are."""
    return inv.ctx.interpolate(value, inv.store) if isinstance(value, str) else value
