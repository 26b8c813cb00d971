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

from prodigyd.engine.attempts import AttemptLog
from prodigyd.engine.claude_sessions import Conversations
from prodigyd.engine.context import CommandResult, RunContext
from prodigyd.eventtypes import EventType
from prodigyd.workflow.interpolate import VariableStore
from prodigyd.workflow.model import Step

#: Live output lines per stream and invocation sent as events (see Invocation.line_sink).
MAX_LIVE_LINES = 2000


@dataclass
class Invocation:
    """One execution of one step: where, with what environment and variables."""

    ctx: RunContext
    store: VariableStore
    env: dict[str, str]
    cwd: Path
    timeout: float | None
    label: str  # "3" for step 3; "3.on_failure.1" for its first handler: names logs and events
    attempts: AttemptLog | None = None  # where a goal_seek checkpoints its attempts, if anywhere
    conversations: Conversations | None = None  # where Claude runs may be resumed (None: never)
    before: str | None = None  # HEAD as the step started, when the pipeline read it

    def line_sink(self, stream: str) -> Callable[[str], None]:
        """Forward a child's output lines as live `step_output` events (masked by the sink).

        At most MAX_LIVE_LINES per stream become events, then one `step_output_truncated`:
        a chatty build must not flood the event log and every follower. The whole output
        still reaches the step's result, `output_file` and variables.
        """
        emit = self.ctx.events.emit
        label = self.label
        count = 0

        def sink(line: str) -> None:
            nonlocal count
            count += 1
            if count <= MAX_LIVE_LINES:
                emit(EventType.STEP_OUTPUT, step=label, stream=stream, line=line)
            elif count == MAX_LIVE_LINES + 1:
                emit(
                    EventType.STEP_OUTPUT_TRUNCATED, step=label, stream=stream, after=MAX_LIVE_LINES
                )

        return sink


class StepCommand(Protocol):
    async def __call__(self, step: Step, inv: Invocation) -> CommandResult:
        """Run the step's command once; never raise for an ordinary failure."""
        ...
