"""The step kinds, in one explicit registry typed against the StepCommand protocol."""

from __future__ import annotations

from prodigyd.engine.commands import (
    analyze,
    claude,
    foreach,
    goal_seek,
    shell,
    sub_workflow,
    write_file,
)
from prodigyd.engine.commands.base import Invocation, StepCommand

#: Every runnable step kind.
KINDS: dict[str, StepCommand] = {
    "shell": shell.run,  # sh -c in the worktree
    "claude": claude.run,  # Claude Code, headless stream-json
    "write_file": write_file.run,  # write interpolated content inside the worktree
    "foreach": foreach.run,  # `do` steps once per item, in the worktree, `parallel` at a time
    "goal_seek": goal_seek.run,  # the command, scored, again until the goal is reached
    "analyze": analyze.run,  # removed upstream; accepted and skipped
    "sub_workflow": sub_workflow.run,  # other workflow files, in a child scope of this one
}

__all__ = ["KINDS", "Invocation", "StepCommand"]
