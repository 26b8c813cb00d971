"""`analyze:` — removed from the original in 0.3.0; accepted (with a load warning) and skipped."""

from __future__ import annotations

from prodigyd.engine.commands.base import Invocation
from prodigyd.engine.context import CommandResult
from prodigyd.workflow.model import Step


async def run(step: Step, inv: Invocation) -> CommandResult:
    return CommandResult(success=True, exit_code=0, stdout="analyze step ignored\n")
