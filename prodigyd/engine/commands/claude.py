"""`claude:` — Claude Code in headless stream-json mode (reference §7, deps-probe §5).

The raw stream of every invocation is kept (masked) under the claude log folder; each line
is parsed by its `type` into events (session, tool uses, tokens, cost); `${claude.output}`
is the final `result` text, and `is_error: true` fails the step even when the exit code is 0.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import IO

from prodigyd import paths, proc
from prodigyd.claude import cli
from prodigyd.engine.commands.base import Invocation
from prodigyd.engine.context import CommandResult
from prodigyd.engine.env import is_root
from prodigyd.errors import ProdigyError
from prodigyd.store.atomic import create_unique
from prodigyd.workflow.model import Step


async def run(step: Step, inv: Invocation) -> CommandResult:
    ctx = inv.ctx
    prompt = ctx.interpolate(step.command or "", inv.store)
    settings = ctx.settings
    skip = settings.claude_skip_permissions and _enabled(inv.env.get(SKIP_PERMISSIONS_ENV))
    try:
        binary = cli.resolve_binary(settings.claude_bin, inv.env)
    except ProdigyError as exc:
        return CommandResult(success=False, exit_code=127, stderr=exc.render(), error=exc.message)
    _require_worktree(inv)
    argv = cli.build_argv(
        binary,
        prompt,
        skip_permissions=skip,
        model=settings.claude_model,
        extra_args=settings.claude_extra_args,
    )
    env = cli.build_env(
        inv.env, skip_permissions=settings.claude_skip_permissions, is_root=is_root()
    )
    if inv.timeout is not None:
        env["PRODIGY_COMMAND_TIMEOUT"] = f"{inv.timeout:g}"
    parser = cli.StreamParser()
    log_path, log = _open_log(inv)
    with log or contextlib.nullcontext():

        def on_line(line: str) -> None:
            if log is not None:
                log.write(ctx.masker.mask(line) + "\n")
            for event in parser.feed(line):
                if "session_id" in event:  # Claude's own id; `session_id` is prodigy's
                    event["claude_session_id"] = event.pop("session_id")
                ctx.events.emit(event.pop("event_type"), step=inv.label, **event)

        done = await proc.run(
            argv,
            cwd=inv.cwd,
            env=env,
            timeout=inv.timeout,
            on_stdout_line=on_line,
            on_stderr_line=inv.line_sink("stderr"),
        )
    return _outcome(done, parser.finish(), prompt, log_path, inv.timeout)


def _outcome(
    done: proc.Completed,
    result: cli.ClaudeResult,
    prompt: str,
    log_path: Path | None,
    timeout: float | None,
) -> CommandResult:
    details = {
        "session_id": result.session_id,
        "cost_usd": result.total_cost_usd,
        "input_tokens": result.input_tokens,
        "output_tokens": result.output_tokens,
        "num_turns": result.num_turns,
        "tools": [tool.name for tool in result.tool_uses],
        "log": str(log_path) if log_path else None,
    }
    ok = done.ok and result.saw_result and not result.is_error
    error = None
    stderr = done.stderr
    if done.timed_out:
        error = f"timed out after {timeout:g} seconds (process group killed)"
        stderr += f"Command timed out after {timeout:g} seconds\n"
    elif not ok:
        reason = done.stderr.strip() or result.error_text()
        error = f"Claude command '{prompt}' failed: {reason}"
        if log_path:
            error += f" (full log: {log_path})"
    return CommandResult(
        success=ok,
        exit_code=1 if done.ok and not ok else done.returncode,
        stdout=done.stdout,
        stderr=stderr,
        duration=done.duration,
        timed_out=done.timed_out,
        error=error,
        output=result.result_text,
        details=details,
    )


#: Set to false/0/no in the job environment to run Claude with its own permission prompts
#: (`--dangerously-skip-permissions` is dropped; unattended steps may then stall or fail).
SKIP_PERMISSIONS_ENV = "PRODIGY_CLAUDE_SKIP_PERMISSIONS"


def _enabled(value: str | None) -> bool:
    return value is None or value.strip().lower() not in ("0", "false", "no", "off")


def _require_worktree(inv: Invocation) -> None:
    """Skip-permissions is only ever granted inside a prodigy-managed worktree."""
    cwd = inv.cwd.resolve()
    if not cwd.is_relative_to(inv.ctx.worktree.resolve()):
        raise ProdigyError(
            f"refusing to run claude outside the session worktree (cwd {cwd})",
            hint="working_dir of a claude step must stay inside the worktree",
        )


def _open_log(inv: Invocation) -> tuple[Path | None, IO[str] | None]:
    """A new raw-stream log file (None when the host keeps no Claude logs), its own for
    each attempt: a retry within the same second must not overwrite the failure it retries."""
    folder = inv.ctx.settings.claude_log_dir
    if folder is None:
        return None, None
    label = inv.label.replace("/", "-")  # a map agent's step is `item_3/1`
    path, fd = create_unique(
        folder, f"{paths.claude_log_prefix(inv.ctx.session_id)}{label}", ".jsonl"
    )
    return path, os.fdopen(fd, "w", encoding="utf-8")
