"""A MapReduce job's setup phase: a sequential phase with its own checkpoint journal, then
its `capture_outputs` (reference §2.3).

Decisions where the reference is silent or surprising:
- Changes setup leaves uncommitted are committed once setup is done: agents branch from the
  parent's commit, so that is how they see what setup wrote (the original's agents did not
  see uncommitted setup files), and the parent stays clean for the agents' merges.
- A `capture_outputs` value the pattern or JSON path cannot find, with no `default:`, fails
  setup with a message naming it, instead of quietly leaving the variable empty.
- Each capture is set right after its command succeeds, before the step's checkpoint, so a
  resumed run gets it from the checkpoint without running the command again.
"""

from __future__ import annotations

import asyncio
import json
import posixpath
import re
from typing import Any

from prodigyd.engine.context import RunContext
from prodigyd.engine.gitvars import GitTracker
from prodigyd.engine.mapreduce.host import PhaseHost
from prodigyd.engine.mapreduce.settings import seconds_from
from prodigyd.engine.mask import Masker
from prodigyd.engine.phase import PhaseOutcome, StepHook
from prodigyd.engine.plan import SETUP
from prodigyd.engine.step import StepReport
from prodigyd.errors import ProdigyError
from prodigyd.git.repo import commit_all
from prodigyd.workflow import jsonpath
from prodigyd.workflow.model import CaptureOutput, SetupSpec, Workflow


async def run_setup(
    host: PhaseHost, spec: SetupSpec, ctx: RunContext, git: GitTracker
) -> PhaseOutcome:
    host.enter_phase(SETUP)
    timeout = seconds_from(spec.timeout, ctx, "setup.timeout")  # before the phase is made
    phase = host.sequential(SETUP, spec.steps, ctx, git, on_completed=_captures(spec, ctx))
    try:
        outcome = await asyncio.wait_for(phase, timeout)
    except TimeoutError:
        return PhaseOutcome(False, error=f"setup timed out after {timeout:g} seconds")
    if outcome.ok:
        message = f"prodigy: setup of {host.workflow.name}"
        await commit_all(ctx.worktree, message, leave_out=input_file(host.workflow))
    return outcome


def input_file(workflow: Workflow) -> tuple[str, ...]:
    """The map input when it names a file literally (`input: items.json`), as prodigy's own
    commits leave it out: a file the setup wrote for the map phase is the job's input, not
    its result, and is merged only if the workflow commits it itself. An input with
    variables or spaces (a command) names no file here, and one outside the worktree (an
    absolute path, `../x`, `~/x`) none git could leave out: given one, git refuses."""
    source = workflow.map.input if workflow.map is not None else ""
    if not source or "${" in source or any(ch.isspace() for ch in source):
        return ()
    inside = posixpath.normpath(source)
    if inside.startswith(("/", "~")) or inside == ".." or inside.startswith("../"):
        return ()
    return (inside,)


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
