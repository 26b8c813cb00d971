"""`shell:` — `sh -c <script>` in the worktree, in its own process group."""

from __future__ import annotations

from prodigyd import proc
from prodigyd.engine.commands.base import Invocation
from prodigyd.engine.context import CommandResult
from prodigyd.workflow.model import Step


async def run(step: Step, inv: Invocation) -> CommandResult:
    script = inv.ctx.interpolate(step.command or "", inv.store)
    done = await proc.run(
        ["sh", "-c", script],
        cwd=inv.cwd,
        env=inv.env,
        timeout=inv.timeout,
        on_stdout_line=inv.line_sink("stdout"),
        on_stderr_line=inv.line_sink("stderr"),
    )
    return from_completed(done, inv.timeout)


def from_completed(done: proc.Completed, timeout: float | None) -> CommandResult:
    """Turn a finished process into a CommandResult with the reference's messages."""
    if done.timed_out:
        return CommandResult(
            success=False,
            exit_code=-1,
            stdout=done.stdout,
            stderr=done.stderr + f"Command timed out after {timeout:g} seconds\n",
            duration=done.duration,
            timed_out=True,
            error=f"timed out after {timeout:g} seconds (process group killed)",
        )
    error = None if done.ok else f"exit code {done.returncode}"
    return CommandResult(
        success=done.ok,
        exit_code=done.returncode,
        stdout=done.stdout,
        stderr=done.stderr,
        duration=done.duration,
        error=error,
    )
