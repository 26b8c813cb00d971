"""The step pipeline (reference §4.2), the same for every phase and every nesting level.

Order: `when` → run the command (with `retry`) → `commit_required` → git variables →
capture/`output_file` → `on_failure` or `on_success` → `on_exit_code` → `allow_failure`.
Handlers are steps too and go through this same pipeline, so every field works everywhere
(the original dropped most of them outside one code path; reference §10).

Decisions where the reference is silent:
- `${shell.output}`/`${claude.output}`/`${last.output}`/`${last.exit_code}` are set after
  every step, captured or not: they are cheap and users reach for them.
- `${step.index}` is 1-based, like the "step i/n" progress lines.
- `${step.files_*}` etc. describe the step that ran last; a step's own handlers see its
  changes.
"""

from __future__ import annotations

import asyncio
import fnmatch
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from prodigyd import errorcodes, proc
from prodigyd.engine import retry as retry_policy
from prodigyd.engine import validation
from prodigyd.engine.attempts import AttemptLog
from prodigyd.engine.budget import Meter
from prodigyd.engine.capture import CaptureError, parse_capture
from prodigyd.engine.claude_sessions import Conversations
from prodigyd.engine.commands import KINDS, Invocation
from prodigyd.engine.commands.base import StepCommand
from prodigyd.engine.context import CommandResult, RunContext
from prodigyd.engine.gitvars import GitTracker
from prodigyd.errors import ProdigyError
from prodigyd.eventtypes import EventType
from prodigyd.failure import FailureReason
from prodigyd.files import failure_reason
from prodigyd.workflow.expr import evaluate
from prodigyd.workflow.interpolate import VariableStore
from prodigyd.workflow.model import OnFailure, RetrySpec, Step, ValidateSpec

#: Above this size the debug loop hands `${shell.output}` over as a temp-file path (§2.6).
DEBUG_OUTPUT_INLINE_LIMIT = 10_000

#: How much of a failing command's output its error message ends with.
FAILURE_OUTPUT_CHARS = 2000

#: The debug loop's first run sees attempt 1 like every later one (`test:` used TEST_ATTEMPT).
_ATTEMPT_ONE = {"SHELL_ATTEMPT": "1", "TEST_ATTEMPT": "1"}

CONTINUE_NOTE = "[Note: Command failed but workflow continues due to on_failure configuration]"


@dataclass
class StepReport:
    """How a step ended, as far as the workflow is concerned."""

    success: bool  # False stops the workflow
    result: CommandResult
    skipped: bool = False
    note: str | None = None
    error: str | None = None  # the workflow-stopping message when not successful
    reason: FailureReason | None = None  # set when it is not the command's own failure
    code: str | None = None  # the error code of a ProdigyError that stopped it

    @property
    def failure(self) -> FailureReason:
        """Why the step failed (meaningful only when it did)."""
        return self.reason or self.result.failure

    @property
    def error_code(self) -> str | None:
        """The error code of a failure prodigy itself stopped the step for (a refused path,
        a spent budget); None for a command's own failure, which is the workflow's."""
        code = self.code or self.result.code
        if code is None and self.failure is FailureReason.BUDGET_EXCEEDED:
            return errorcodes.BUDGET_EXCEEDED
        return code


class StepRunner:
    """Runs steps of one session; holds what all steps share (context, git tracking, and
    in a checkpointed phase the Claude conversations its steps may resume)."""

    def __init__(
        self,
        ctx: RunContext,
        git: GitTracker,
        attempts: AttemptLog | None = None,
        conversations: Conversations | None = None,
    ) -> None:
        self.ctx = ctx
        self.git = git
        self.attempts = attempts  # the phase's: its top-level steps checkpoint attempts there
        self.conversations = conversations  # the phase's: where Claude runs may be resumed

    async def run(
        self,
        step: Step,
        *,
        label: str,
        store: VariableStore,
        display: str | None = None,
        position: tuple[int, int] | None = None,
        settle: Callable[[StepReport], Awaitable[None]] | None = None,
    ) -> StepReport:
        """Run one step through the pipeline; `position` (i, n) marks a top-level step.

        `settle` (a phase's checkpoint) runs before `step_completed`/`step_failed` is
        emitted: what a follower is shown as done is already durable.
        """
        ctx = self.ctx
        refresh_failed = None
        if ctx.dynamic_env:  # first: the step's header shows the values it runs with
            try:
                await ctx.refresh_dynamic()
            except ProdigyError as exc:  # reported as the step's, once it has started
                refresh_failed = exc
            display = None  # one made before the refresh shows the values of the step before
        display = display or self.display(step, store)
        where = {"index": position[0], "total": position[1]} if position else {}
        ctx.events.emit(
            EventType.STEP_STARTED, step=label, display=display, kind=step.kind, **where
        )
        await asyncio.sleep(0)  # followers are sent it now: the step's spawn holds the loop
        try:
            if refresh_failed is not None:
                raise refresh_failed
            report = await self._run(step, label, store, display)
        except ProdigyError as exc:  # a refused path, an unresolved variable: name the step
            message = f"Step '{display}' could not run: {exc.render()}"
            result = CommandResult(False, 1, error=message)
            report = StepReport(False, result, error=message, code=exc.code)
        except (OSError, ValueError) as exc:  # a bad working_dir, output_file or env value
            message = f"Step '{display}' could not run: {failure_reason(exc, with_path=True)}"
            report = StepReport(False, CommandResult(False, 1, error=message), error=message)
        if settle is not None:
            await settle(report)
        ctx.events.emit(
            EventType.STEP_COMPLETED if report.success else "step_failed",
            **where,
            step=label,
            display=display,
            success=report.success,
            skipped=report.skipped,
            exit_code=report.result.exit_code,
            duration=round(report.result.duration, 6),
            note=report.note,
            error=report.error,
        )
        return report

    def display(self, step: Step, store: VariableStore) -> str:
        """The step's label with its variables (and its own `env:`) substituted, and masked
        before `Step.display` cuts it to one short line: a secret cut first would no longer
        be recognised, and its first characters would be shown."""
        scope = self._scope(step, store)

        def render(text: str) -> str:
            try:
                text = self.ctx.interpolate(text, scope)
            except ProdigyError:
                pass
            return self.ctx.masker.mask(text)

        return step.display(render)

    def _scope(
        self, step: Step, store: VariableStore, env: dict[str, str] | None = None
    ) -> VariableStore:
        """Variables as the step sees them: its `env:` shadows names while it runs, so
        `$MODE` in its text means the step's MODE, as in the shell."""
        if not step.env:
            return store
        env = env if env is not None else self.ctx.step_env(step.env, store)
        scope = store.child()
        scope.update({key: env[key] for key in step.env})
        return scope

    async def _run(self, step: Step, label: str, store: VariableStore, display: str) -> StepReport:
        if step.when and not evaluate(step.when, store):
            result = CommandResult(True, 0, stdout="Skipped due to when condition\n")
            return StepReport(True, result, skipped=True, note="skipped: when condition is false")
        before = await self.git.before_step(step)  # this call's own: see GitTracker
        first = _ATTEMPT_ONE if step.on_failure and step.on_failure.debug_loop else None
        result = await self.execute(step, label, store, first, before=before, refreshed=True)
        before = result.since or before  # a resumed conversation's step began before this run
        if result.success and step.commit_required:
            result = await self._check_commit(step, result, display, before)
        await self.git.after_step(store, before)
        self._record(step, result, store)
        if result.success and step.outputs:
            await self._publish_outputs(step, store)
        if result.success and step.validation is not None:
            verdict = await self._validate(step.validation, label, store)
            if verdict is not None:
                error, reason = f"Step '{display}': {verdict}", FailureReason.VALIDATION_FAILED
                return _allowed(step, StepReport(False, result, error=error, reason=reason))
        if result.success:
            report = await self._on_success(step, result, label, store)
        else:
            report = await self._on_failure(step, result, label, store, display)
        return _allowed(step, await self._on_exit_code(step, report, label, store))

    async def execute(
        self,
        step: Step,
        label: str,
        store: VariableStore,
        extra_env: dict[str, str] | None = None,
        *,
        before: str | None = None,
        refreshed: bool = False,
    ) -> CommandResult:
        """Run the command once, or as often as its `retry:` allows (`before`: HEAD as the
        step started, when read; `refreshed`: `run` has just run the dynamic env values)."""
        if self.ctx.dynamic_env and not refreshed:
            await self.ctx.refresh_dynamic()
        env = {**self.ctx.step_env(step.env, store), **(extra_env or {})}
        store = self._scope(step, store, env)
        ctx = self.ctx
        if step.budget is not None and not step.budget.empty:
            meter = Meter("step", step.budget, session_id=ctx.session_id)
            ctx = replace(ctx, budget=ctx.budget.plus(meter))
        inv = Invocation(
            ctx=ctx,
            store=store,
            env=env,
            cwd=self.ctx.resolve_dir(step.working_dir, store),
            timeout=step.timeout,
            label=label,
            attempts=self.attempts,
            conversations=self.conversations,
            before=before,
        )
        command = KINDS.get(step.kind)
        if command is None:
            raise ProdigyError(
                f"step kind {step.kind!r} is not supported yet", code=errorcodes.STEP
            )
        attempt = 1
        started = time.monotonic()
        spec = self._retry(step)
        while True:
            result = await self._attempt(command, step, inv)
            if result.success or spec is None:
                return result
            if result.reason is FailureReason.BUDGET_EXCEEDED:
                return result  # another attempt would find the budget spent too
            error = f"{result.error}\n{result.stderr}"
            elapsed = time.monotonic() - started
            delay = retry_policy.next_wait(spec, attempt, error, elapsed, kind=result.kind)
            if delay is None:
                return result
            self.ctx.events.emit(
                EventType.STEP_RETRYING, step=label, attempt=attempt + 1, delay=delay
            )
            await self.ctx.pause(delay)  # a stop request ends the wait: StepStopped
            attempt += 1

    async def _attempt(self, command: StepCommand, step: Step, inv: Invocation) -> CommandResult:
        """One run of the command within its budgets (engine/budget.py): refused when one
        is spent, its timeout cut to the time they have left, a timeout that cut reported
        as the budget's. Only Claude spends money; every step spends time."""
        ledger = inv.ctx.budget
        spent = ledger.exceeded(money=step.kind == "claude")
        if spent is not None:
            return CommandResult(False, 1, error=spent, reason=FailureReason.BUDGET_EXCEEDED)
        left = ledger.remaining_seconds()
        cut = left is not None and (inv.timeout is None or left < inv.timeout)
        result = await command(step, replace(inv, timeout=left) if cut else inv)
        if result.timed_out and cut:
            result.error = ledger.exceeded(money=False) or result.error
            result.reason = FailureReason.BUDGET_EXCEEDED
        return result

    async def _check_commit(
        self, step: Step, result: CommandResult, display: str, before: str | None
    ) -> CommandResult:
        if self.ctx.env.get("PRODIGY_NO_COMMIT_VALIDATION") == "true":
            return result
        # masked: a commit message is in the repository's history for good
        message = self.ctx.masker.mask(
            self.ctx.interpolate(step.commit_message or f"prodigy: {display}")
        )
        if await self.git.step_committed(step, message, before):
            return result
        # a warning (Claude denied its `git commit`) is most often the why: first line
        why = "".join(f"; {warning}" for warning in result.warnings)
        message = (
            f"No changes were committed by {display}{why}\n"
            "The command executed successfully but did not create any git commits.\n"
            "Set commit_required: false if the step may legitimately change nothing, or run "
            "with PRODIGY_NO_COMMIT_VALIDATION=true to skip this check."
        )
        result.success = False
        result.error = message
        result.reason = FailureReason.COMMIT_VALIDATION_FAILED
        return result

    def _failure_message(self, display: str, result: CommandResult) -> str:
        """`Step '<display>' failed ...` plus the tail of what the command printed (masked
        before it is cut, so no part of a secret survives the cut)."""
        if result.error and not result.error.startswith("exit code"):
            head = f"Step '{display}' failed: {result.error}"
        else:
            head = f"Step '{display}' failed with exit code {result.exit_code}"
        head += "".join(f"\n{w}" for w in result.warnings if w not in head)
        for title, text in (("stderr", result.stderr), ("output", result.text)):
            if text.strip() and text.strip() not in head:  # a goal_seek's output is its error
                tail = self.ctx.masker.mask(text.strip())[-FAILURE_OUTPUT_CHARS:]
                return f"{head}\n=== Error Output ({title}) ===\n{tail}"
        return head

    def _record(self, step: Step, result: CommandResult, store: VariableStore) -> None:
        """Publish the step's outputs as variables (like `$(...)`, without the final newline)
        and files (byte for byte)."""
        text = _chomp(result.text)
        store.set(f"{step.kind}.output", text)
        store.set(f"{step.kind}.exit_code", result.exit_code)
        store.set("last.output", text)
        store.set("last.exit_code", result.exit_code)
        if step.id:
            store.update(
                {
                    f"{step.id}.output": text,
                    f"{step.id}.exit_code": result.exit_code,
                    f"{step.id}.success": result.success,
                }
            )
        if step.capture_output:
            store.set("CAPTURED_OUTPUT", text)
        for name in _captures(step):
            self._capture(step, name, result, store)
        if step.output_file and result.success:
            base = self.ctx.resolve_dir(step.working_dir, store)
            target = self.ctx.inside_worktree(base / self.ctx.interpolate(step.output_file, store))
            proc.write_as_user(target, result.stdout.encode())

    def _capture(self, step: Step, name: str, result: CommandResult, store: VariableStore) -> None:
        streams = step.capture_streams
        parts = [result.text] if streams.stdout else []
        if streams.stderr:
            parts.append(result.stderr)
        try:
            value = parse_capture(
                "".join(parts),
                step.capture_format,
                success=result.success,
                mask=self.ctx.masker.mask,
            )
            store.set(name, value)
        except CaptureError as exc:
            result.success = False
            result.error = f"capture {name}: {exc.message}"
            if exc.details:  # the excerpt of the output the message refers to
                result.error += f": {exc.details}"
        if streams.exit_code:
            store.set(f"{name}.exit_code", result.exit_code)
        if streams.success:
            store.set(f"{name}.success", result.success)
        if streams.duration:
            store.set(f"{name}.duration", round(result.duration, 6))
        if streams.stderr:
            store.set(f"{name}.stderr", _chomp(result.stderr))

    async def _on_success(
        self, step: Step, result: CommandResult, label: str, store: VariableStore
    ) -> StepReport:
        if step.on_success is None:
            return StepReport(True, result)
        nested = await self.run(step.on_success, label=f"{label}.on_success", store=store)
        if not nested.success:
            error = f"on_success handler failed: {nested.error}"
            return StepReport(False, result, error=error, reason=nested.failure)
        return StepReport(True, result)

    async def _on_exit_code(
        self, step: Step, report: StepReport, label: str, store: VariableStore
    ) -> StepReport:
        handler = step.on_exit_code.get(report.result.exit_code)
        if handler is None or report.skipped:
            return report
        nested = await self.run(handler, label=f"{label}.on_exit_code", store=store)
        if not nested.success:
            error = f"on_exit_code handler failed: {nested.error}"
            return StepReport(False, report.result, error=error, reason=nested.failure)
        return report

    async def _on_failure(
        self, step: Step, result: CommandResult, label: str, store: VariableStore, display: str
    ) -> StepReport:
        exhausted = await self._retry_exhausted(step, result, label, store)
        if exhausted is not None:
            return exhausted
        policy = step.on_failure
        if policy is None:
            return StepReport(False, result, error=self._failure_message(display, result))
        if policy.ignore:
            return StepReport(True, result, note=CONTINUE_NOTE)
        if policy.debug_loop:
            return await self._debug_loop(step, policy, result, label, store, display)
        handler_store = store.child()
        handler_store.update(_error_variables(result, display))
        problem = await self._run_handlers(policy, label, handler_store)
        handlers_ok = problem is None
        if problem is not None and policy.handler_failure_fatal:
            error = f"Handler failure is fatal: {display}: {problem}"
            return StepReport(False, result, error=error)
        for attempt in range(policy.max_retries):
            self.ctx.events.emit(EventType.STEP_RETRYING, step=label, attempt=attempt + 2, delay=0)
            result = await self.execute(step, label, store)
            if result.success:
                self._record(step, result, store)
                return StepReport(True, result, note="recovered by re-running after on_failure")
        if policy.fail_workflow:
            return StepReport(False, result, error=self._failure_message(display, result))
        note = "recovered" if policy.strategy == "recovery" and handlers_ok else CONTINUE_NOTE
        return StepReport(True, result, note=note)

    def _retry(self, step: Step) -> RetrySpec | None:
        """The step's own `retry:`, else the workflow's `retry_defaults:`."""
        return step.retry or self.ctx.retry_defaults

    async def _retry_exhausted(
        self, step: Step, result: CommandResult, label: str, store: VariableStore
    ) -> StepReport | None:
        """`retry.on_failure`: what to do once every retry failed (None: go on as usual)."""
        spec = self._retry(step)
        if spec is None or spec.on_exhausted == "stop":
            return None
        if spec.on_exhausted == "continue":
            return StepReport(True, result, note="retries exhausted; continuing (retry.on_failure)")
        # run once: retry_defaults must not retry it, nor fall back from it, again and again
        fallback = Step(kind="shell", command=spec.fallback or "false", retry=RetrySpec(attempts=1))
        report = await self.run(fallback, label=f"{label}.fallback", store=store)
        if report.success:
            return StepReport(True, report.result, note="retries exhausted; fallback succeeded")
        return None

    async def _publish_outputs(self, step: Step, store: VariableStore) -> None:
        """Legacy `id` + `outputs`: `${<id>.<name>}` = first file of the last commit matching."""
        changed = await self.git.last_commit_files()
        for name, pattern in step.outputs.items():
            match = next((f for f in changed if fnmatch.fnmatchcase(f, pattern)), None)
            if match is None:
                match = next((f for f in changed if fnmatch.fnmatchcase(Path(f).name, pattern)), "")
            store.set(f"{step.id or step.kind}.{name}", match)

    async def _validate(self, spec: ValidateSpec, label: str, store: VariableStore) -> str | None:
        """§2.8: check completeness, run `on_incomplete` until it passes; None when it did."""
        incomplete = spec.on_incomplete
        attempts = incomplete.max_attempts if incomplete else 0
        for attempt in range(attempts + 1):
            store.set("validation.attempt_number", attempt + 1)
            verdict = await validation.check(self, spec, label, store)
            self.ctx.events.emit(EventType.VALIDATION, step=label, **verdict.event())
            if verdict.passed:
                return None
            if incomplete is None or attempt == attempts:
                break
            for number, command in enumerate(incomplete.commands, start=1):
                if incomplete.commit_required:
                    command = command.model_copy(update={"commit_required": True})
                report = await self.run(
                    command, label=f"{label}.on_incomplete.{number}", store=store
                )
                if not report.success:
                    return f"on_incomplete command failed: {report.error}"
        if incomplete is not None and not incomplete.fail_workflow:
            return None
        return verdict.message()

    async def _run_handlers(
        self, policy: OnFailure, label: str, store: VariableStore
    ) -> str | None:
        """Run the handlers in order; None when all succeeded, else why not. `timeout`
        bounds the whole list: the running handler is cancelled, which kills its process
        group, and the list counts as failed."""
        current: list[tuple[str, str]] = []  # (label, display) of the handler running

        async def run_all() -> str | None:
            for number, handler in enumerate(policy.handlers, start=1):
                handler_label = f"{label}.on_failure.{number}"
                current[:] = [(handler_label, self.display(handler, store))]
                report = await self.run(handler, label=handler_label, store=store)
                if not report.success:
                    return f"on_failure handler {number} failed: {report.error}"
            return None

        try:
            return await asyncio.wait_for(run_all(), policy.timeout)
        except TimeoutError:
            assert policy.timeout is not None
            error = (
                f"on_failure handlers timed out after {policy.timeout:g}s (process group killed)"
            )
            for handler_label, display in current:  # close its step_started
                self.ctx.events.emit(
                    EventType.STEP_FAILED,
                    step=handler_label,
                    display=display,
                    success=False,
                    skipped=False,
                    exit_code=-1,
                    duration=policy.timeout,
                    note=None,
                    error=error,
                )
            return error

    async def _debug_loop(
        self,
        step: Step,
        policy: OnFailure,
        result: CommandResult,
        label: str,
        store: VariableStore,
        display: str,
    ) -> StepReport:
        """Shell fails → run the handler (usually Claude) with the output → re-run the shell."""
        attempt = 1
        while not result.success and attempt < policy.max_attempts:
            store.set("shell.output", _debug_output(result))
            store.set("shell.exit_code", result.exit_code)
            store.set("shell.attempt", attempt)
            if await self._run_handlers(policy, label, store) is not None:
                break
            attempt += 1
            attempt_env = {"SHELL_ATTEMPT": str(attempt), "TEST_ATTEMPT": str(attempt)}
            result = await self.execute(step, label, store, attempt_env)
            self._record(step, result, store)
        if result.success:
            return StepReport(True, result, note=f"succeeded on attempt {attempt}")
        if policy.fail_workflow:
            error = f"Shell command failed after {attempt} attempts and fail_workflow is true"
            return StepReport(
                False, result, error=f"{error}\n{self._failure_message(display, result)}"
            )
        return StepReport(True, result, note=CONTINUE_NOTE)


def _allowed(step: Step, report: StepReport) -> StepReport:
    """A failed step's report as `allow_failure: true` (`continue_on_error`) makes it: a
    success with a note, whatever failed: the command, its handlers or its validation."""
    if report.success or not step.allow_failure:
        return report
    why = "timed out" if report.result.timed_out else "failed"
    return StepReport(True, report.result, note=f"{why}; allow_failure: true")


def _captures(step: Step) -> list[str]:
    """The variables a step's output is captured into, each parsed by `capture_format`
    with its `.exit_code`/`.success`/... fields: `capture: NAME` and `capture_output: NAME`,
    the original's spelling of the same (its book: custom-variable-capture.md)."""
    named = step.capture_output if isinstance(step.capture_output, str) else None
    return list(dict.fromkeys(name for name in (step.capture, named) if name))


def _chomp(text: str) -> str:
    """Drop one trailing newline, as the `string` capture format does."""
    return parse_capture(text, "string", success=True)


def _error_variables(result: CommandResult, display: str) -> dict[str, Any]:
    return {
        "error.message": result.stderr.strip() or result.error or "",
        "error.exit_code": result.exit_code,
        "error.step": display,
        "error.timestamp": datetime.now(UTC).isoformat(),
    }


def _debug_output(result: CommandResult) -> str:
    text = f"STDOUT:\n{result.stdout}\n\nSTDERR:\n{result.stderr}"
    if len(text) <= DEBUG_OUTPUT_INLINE_LIMIT:
        return text
    with tempfile.NamedTemporaryFile(
        "w", prefix="prodigy-shell-output-", suffix=".txt", delete=False
    ) as fh:
        fh.write(f"=== STDOUT ===\n{result.stdout}\n=== STDERR ===\n{result.stderr}")
    return str(Path(fh.name))
