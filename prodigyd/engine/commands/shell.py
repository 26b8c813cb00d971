"""`shell:` — `sh -c <script>` in the worktree, in its own process group."""

from __future__ import annotations

from collections.abc import Mapping

from prodigyd import proc
from prodigyd.engine.commands.base import Invocation
from prodigyd.engine.context import CommandResult
from prodigyd.engine.mask import Masker
from prodigyd.workflow.model import Step

#: How a script holding a secret runs: from the environment variable SCRIPT_VARIABLE.
SCRIPT_VARIABLE = "PRODIGY_SCRIPT"
_FROM_ENVIRONMENT = f'eval "${SCRIPT_VARIABLE}"'


def sh(script: str, env: Mapping[str, str], masker: Masker) -> tuple[list[str], Mapping[str, str]]:
    """The argv and environment that run `script` with `sh -c`. A process's command line
    is readable by every user of the machine (`ps`, /proc/PID/cmdline), its environment by
    its own user only: a script holding a secret is handed over in the environment. The
    shell runs the same text, so it behaves the same, but for `eval:` in its errors."""
    if masker.finds(script):
        return ["sh", "-c", _FROM_ENVIRONMENT], {**env, SCRIPT_VARIABLE: script}
    return ["sh", "-c", script], env


async def run(step: Step, inv: Invocation) -> CommandResult:
    script = inv.ctx.interpolate(step.command or "", inv.store)
    argv, env = sh(script, inv.env, inv.ctx.masker)
    done = await proc.run(
        argv,
        cwd=inv.cwd,
        env=env,
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
