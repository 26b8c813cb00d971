"""`claude:` — Claude Code in headless stream-json mode (reference §7, deps-probe §5).

The raw stream of every invocation is kept (masked) under the claude log folder; each line
is parsed by its `type` into events (session, tool uses, tokens, cost); `${claude.output}`
is the final `result` text, and `is_error: true` fails the step even when the exit code is 0.

In a checkpointed phase each run is a conversation prodigy names and records first, and an
interrupted one is resumed rather than started over (engine/claude_sessions.py); a resume
the CLI cannot find falls back to a fresh start, with a `claude_resume_failed` warning.
Elsewhere the CLI is told not to save the conversation at all.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
import uuid
from pathlib import Path
from typing import IO, Any

from prodigyd import paths, proc
from prodigyd.claude import cli, invocation, prices, session_files
from prodigyd.clock import now_iso
from prodigyd.engine.budget import Spend, usd
from prodigyd.engine.claude_sessions import (
    CONTINUE_PROMPT,
    Conversation,
    Conversations,
    prompt_digest,
)
from prodigyd.engine.commands.base import Invocation
from prodigyd.engine.context import CommandResult
from prodigyd.engine.env import is_root
from prodigyd.errors import ProdigyError
from prodigyd.eventtypes import EventType
from prodigyd.failure import FailureReason
from prodigyd.store.atomic import create_unique
from prodigyd.workflow.model import Step


async def run(step: Step, inv: Invocation) -> CommandResult:
    ctx = inv.ctx
    prompt = ctx.interpolate(step.command or "", inv.store)
    try:
        binary = cli.resolve_binary(ctx.settings.claude_bin, inv.env)
    except ProdigyError as exc:
        return CommandResult(success=False, exit_code=127, stderr=exc.render(), error=exc.message)
    _require_worktree(inv)
    conversations = inv.conversations
    if conversations is None:  # nothing could resume it: the CLI saves nothing
        result, _ = await _invoke(inv, binary, prompt, cli.Conversation(persist=False))
        return result
    earlier = conversations.interrupted(inv.label)
    if earlier is not None and earlier.prompt_sha256 == prompt_digest(prompt):
        resumed = await _resume(inv, binary, prompt, earlier, conversations)
        if resumed is not None:
            return resumed
    elif earlier is not None:  # the step now asks for something else: a new task
        await conversations.finished(earlier)
    conversation = Conversation(
        step=inv.label,
        session_id=str(uuid.uuid4()),
        config_dir=str(session_files.config_dir(inv.env)),
        prompt_sha256=prompt_digest(prompt),
        # the step's work began with the interrupted run: its commits count
        base=earlier.base if earlier is not None else inv.before,
    )
    await conversations.started(conversation)  # durable before claude can do anything
    result, _ = await _invoke(inv, binary, prompt, cli.Conversation(conversation.session_id))
    if _ended_by_itself(result):
        await conversations.finished(conversation)
    result.since = conversation.base
    return result


async def _resume(
    inv: Invocation,
    binary: str,
    prompt: str,
    earlier: Conversation,
    conversations: Conversations,
) -> CommandResult | None:
    """Continue an interrupted conversation; None when the CLI no longer has it (the step
    then starts afresh, with a warning)."""
    events, label = inv.ctx.events, inv.label
    events.emit(EventType.CLAUDE_SESSION_RESUMED, step=label, claude_session_id=earlier.session_id)
    result, said = await _invoke(
        inv, binary, CONTINUE_PROMPT, cli.Conversation(resume=earlier.session_id), shown=prompt
    )
    if cli.conversation_missing(said):
        events.emit(
            EventType.CLAUDE_RESUME_FAILED,
            step=label,
            claude_session_id=earlier.session_id,
            error=said.error_text(),
        )
        await conversations.finished(earlier)
        return None
    if _ended_by_itself(result):
        await conversations.finished(earlier)
    result.since = earlier.base
    return result


def _ended_by_itself(result: CommandResult) -> bool:
    """Whether claude ended on its own (a result, an error): not killed for a timeout or a
    stop, which leaves its conversation to resume."""
    return not result.timed_out and result.exit_code >= 0


async def _invoke(
    inv: Invocation,
    binary: str,
    prompt: str,
    conversation: cli.Conversation,
    *,
    shown: str | None = None,
) -> tuple[CommandResult, cli.ClaudeResult]:
    """Run claude once, its stream parsed into events and kept in a log: the step's
    result, and what the CLI said. `shown`: the prompt errors name (the step's own when
    claude is given the continuation prompt)."""
    ctx = inv.ctx
    settings = ctx.settings
    skip = settings.claude_skip_permissions and _enabled(inv.env.get(cli.SKIP_PERMISSIONS_ENV))
    usd_left = ctx.budget.remaining_usd()
    argv = cli.build_argv(
        binary,
        skip_permissions=skip,
        model=settings.claude_model,
        extra_args=settings.claude_extra_args,
        conversation=conversation,
        max_budget_usd=usd_left,
    )
    env = cli.build_env(
        inv.env, skip_permissions=settings.claude_skip_permissions, is_root=is_root()
    )
    timeout = inv.timeout if inv.timeout is not None else settings.claude_timeout
    if timeout is not None:
        env["PRODIGY_COMMAND_TIMEOUT"] = f"{timeout:g}"
    parser = cli.StreamParser()
    log_path, log = _open_log(inv)
    started_at, started = now_iso(), time.monotonic()
    over = asyncio.Event()  # a budget this run charges is spent: stop it
    finished: list[bool] = []  # its result line came: its work is done and paid for

    def stop_run(reason: str) -> None:
        if not finished:
            over.set()

    charge = ctx.budget.charge(stop_run)
    with log or contextlib.nullcontext():

        def on_line(line: str) -> None:
            if log is not None:
                log.write(ctx.masker.mask(line) + "\n")
            events = parser.feed(line)
            kinds = {event["event_type"] for event in events}
            if EventType.CLAUDE_RESULT in kinds:
                finished.append(True)
            if ctx.budget.meters and kinds & _SPENDING:
                charge.update(_spend(parser.finish()))
            for event in events:
                if "session_id" in event:  # Claude's own id; `session_id` is prodigy's
                    event["claude_session_id"] = event.pop("session_id")
                ctx.events.emit(event.pop("event_type"), step=inv.label, **event)

        try:
            done = await proc.run(
                argv,
                cwd=inv.cwd,
                env=env,
                timeout=timeout,
                on_stdout_line=on_line,
                on_stderr_line=inv.line_sink("stderr"),
                stop=over,
                stdin_data=prompt.encode(errors="replace"),  # a lone surrogate: "?"
            )
        except asyncio.CancelledError:  # stopped with its session: what it used still counts
            elapsed = time.monotonic() - started
            stopped = parser.finish()
            record = invocation.record(
                stopped,
                status=invocation.INTERRUPTED,
                started_at=started_at,
                duration=elapsed,
                exit_code=None,
                log=log_path,
                estimate_usd=_spend(stopped).cost_usd,
            )
            _report(inv, record)
            raise
        finally:
            summary = parser.finish()
            charge.update(_spend(summary))
            charge.close()
    if not conversation.persist and summary.session_id:
        session_files.prune(session_files.config_dir(inv.env), summary.session_id)
    outcome = _outcome(
        done, summary, shown or prompt, log_path, timeout, default=inv.timeout is None
    )
    _budget_stop(inv, outcome, summary, charge.reason if done.stopped else None, usd_left, log_path)
    status = invocation.SUCCEEDED if outcome.success else invocation.FAILED
    record = invocation.record(
        summary,
        status=invocation.TIMED_OUT if done.timed_out else status,
        started_at=started_at,
        duration=done.duration,
        exit_code=done.returncode,
        log=log_path,
        estimate_usd=_spend(summary).cost_usd,
    )
    outcome.details = _report(inv, record)
    return outcome, summary


def _budget_stop(
    inv: Invocation,
    outcome: CommandResult,
    result: cli.ClaudeResult,
    stopped: str | None,
    usd_left: float | None,
    log_path: Path | None,
) -> None:
    """Make a run a budget spent into a `BudgetExceeded` failure: stopped by prodigy
    (`stopped`: why), or by the CLI at the `--max-budget-usd` it was given."""
    budget = inv.ctx.budget
    if result.subtype == cli.MAX_BUDGET_SUBTYPE:
        stopped = budget.exceeded() or (
            f"budget exceeded: Claude stopped at {usd(result.total_cost_usd)}, "
            f"with {usd(usd_left or 0)} of its budget left when it started"
        )
    if stopped is None or outcome.success:
        return
    inv.ctx.events.emit(EventType.BUDGET_EXCEEDED, step=inv.label, reason=stopped)
    outcome.error, outcome.reason = stopped, FailureReason.BUDGET_EXCEEDED
    outcome.stderr += f"{stopped}\n"
    if log_path:
        outcome.error += f" (full log: {log_path})"


def _report(inv: Invocation, record: dict[str, Any]) -> dict[str, Any]:
    """Emit the invocation's record (the session stores it); it is also the step's details."""
    inv.ctx.events.emit(EventType.CLAUDE_INVOCATION, step=inv.label, **record)
    return record


#: The events after which the run's spending is looked at again.
_SPENDING = {EventType.CLAUDE_TOKEN_USAGE, EventType.CLAUDE_RESULT}


def _spend(result: cli.ClaudeResult) -> Spend:
    """A run's spending so far: the result line's cost once it came, else an estimate from
    the token counts at the model's prices (claude/prices.py). Tokens are every token the
    API processed: input, output, cache writes and cache reads."""
    tokens = (
        result.input_tokens
        + result.output_tokens
        + result.cache_creation_tokens
        + result.cache_read_tokens
    )
    if result.saw_result:
        return Spend(result.total_cost_usd, tokens)
    estimate = prices.estimate_usd(
        result.model,
        input=result.input_tokens,
        output=result.output_tokens,
        cache_write=result.cache_creation_tokens,
        cache_read=result.cache_read_tokens,
    )
    return Spend(estimate, tokens, estimated=True)


def _outcome(
    done: proc.Completed,
    result: cli.ClaudeResult,
    prompt: str,
    log_path: Path | None,
    timeout: float | None,
    *,
    default: bool,
) -> CommandResult:
    """The step's result; `default`: the timeout is `[claude] timeout`, not the step's."""
    ok = done.ok and result.saw_result and not result.is_error
    error = None
    stderr = done.stderr
    if done.timed_out:
        error = f"timed out after {timeout:g} seconds (process group killed)"
        if default:
            error += f"; {DEFAULT_TIMEOUT_NOTE}"
        stderr += f"Command timed out after {timeout:g} seconds\n"
    elif not ok:
        error = f"Claude command '{prompt}' failed: {_reason(done, result)}"
        if log_path:
            error += f" (full log: {log_path})"
    denials = result.permission_denials
    return CommandResult(
        success=ok,
        exit_code=1 if done.ok and not ok else done.returncode,
        stdout=done.stdout,
        stderr=stderr,
        duration=done.duration,
        timed_out=done.timed_out,
        error=error,
        # after an API error the result text is the CLI's, not Claude's: no ${claude.output}
        output="" if result.api_error is not None else result.result_text,
        kind=result.error_kind,
        warnings=[cli.denials_text(denials)] if denials else [],
    )


def _reason(done: proc.Completed, result: cli.ClaudeResult) -> str:
    """Why the run failed: the result line's account when it reported an error (an API
    status, a turn limit), else what claude printed on stderr, else what it did say."""
    if result.saw_result and result.is_error:
        return result.error_text()
    return done.stderr.strip() or result.error_text()


#: Why a step without `timeout:` was stopped: the limit is the configured default.
DEFAULT_TIMEOUT_NOTE = "[claude] timeout, the default for Claude steps; a step's `timeout:` wins"


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
