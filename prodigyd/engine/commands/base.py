"""The contract every step kind satisfies.

A kind is one module with `async def run(step, inv) -> CommandResult`. It interpolates its
own fields (only it knows which of them are text), runs, and reports; it never decides what
a failure means for the workflow: that is the step pipeline's job (`engine/step.py`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from prodigyd.engine.context import CommandResult, RunContext
from prodigyd.workflow.interpolate import VariableStore
from prodigyd.workflow.model import Step


@dataclass
class Invocation:
    """One execution of one step: where, with what environment and variables."""

    ctx: RunContext
    store: VariableStore
    env: dict[str, str]
    cwd: Path
    timeout: float | None
    label: str  # "3" for step 3; "3.on_failure.1" for its first handler: names logs and events

    def line_sink(self, stream: str) -> Callable[[str], None]:
        """Forward a child's output lines as live `step_output` events (masked by the sink)."""
        emit = self.ctx.events.emit
        label = self.label

        def sink(line: str) -> None:
            emit("step_output", step=label, stream=stream, line=line)

        return sink


class StepCommand(Protocol):
    async def __call__(self, step: Step, inv: Invocation) -> CommandResult:
        """Run the step's command once; never raise for an ordinary failure."""
        ...
