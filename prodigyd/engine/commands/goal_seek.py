"""`goal_seek:` — run a command, score the result, repeat until the goal is reached.

Each attempt runs the `claude:`/`shell:` command as a nested step, then the validator
(engine/scorers.py). It stops when the score reaches `threshold` (success), when the last
three scores are within 2 points (converged), when `timeout_seconds` have passed, or when
`max_attempts` have run; the last three leave the goal incomplete, which fails the step
unless `fail_on_incomplete: false`. A validator that gives no score stops it with an
error whatever `fail_on_incomplete` says: it is a broken workflow, not a missed goal.

Each attempt sees the ones before: `${goal.attempt}`, `${goal.last_score}`, `${goal.gaps}`
(and more, below) and the same as `PRODIGY_GOAL_*` environment variables, plus the
original's `PRODIGY_VALIDATION_SCORE|OUTPUT|GAPS` from the second attempt on.

Fixed from the original: its timeout was only looked at between attempts (a hung attempt
ran for ever); here the running command is killed when the time is up. Its claude attempts
ran `claude <prompt>` as a shell command; here they are claude steps like any other.

Every completed attempt is checkpointed (engine/attempts.py): after a crash, a daemon
restart or `prodigyctl resume`, the step continues from the next attempt with the same
history, and its time budget counts the time already spent.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any

from prodigyd.engine.commands.base import Invocation
from prodigyd.engine.context import CommandResult, StepStopped
from prodigyd.engine.gitvars import GitTracker
from prodigyd.engine.score import format_score
from prodigyd.engine.scorers import score
from prodigyd.errors import ProdigyError
from prodigyd.eventtypes import EventType
from prodigyd.failure import FailureReason
from prodigyd.workflow.interpolate import VariableStore
from prodigyd.workflow.model import GoalSeekSpec, Step

#: How much of a validator's output an attempt keeps (its end): for the next attempt's
#: `${goal.last_output}` and environment (Linux refuses a variable over 128 KiB) and the
#: checkpoint.
OUTPUT_CHARS = 20_000

#: Converged: the last CONVERGE_WINDOW scores lie within CONVERGE_POINTS of each other.
CONVERGE_WINDOW = 3
CONVERGE_POINTS = 2.0

REACHED, EXHAUSTED, TIMEOUT, CONVERGED, ERROR = (
    "threshold_reached",
    "attempts_exhausted",
    "timeout",
    "converged",
    "error",
)


@dataclass
class Attempt:
    """One completed attempt, as checkpointed."""

    number: int
    score: float
    gaps: list[Any] = field(default_factory=list)
    output: str = ""
    command_success: bool = True
    elapsed: float = 0.0  # seconds since the goal seek began, when this attempt ended


async def run(step: Step, inv: Invocation) -> CommandResult:
    assert step.goal_seek is not None
    return await _GoalSeek(step, step.goal_seek, inv).run()


class _GoalSeek:
    def __init__(self, step: Step, spec: GoalSeekSpec, inv: Invocation):
        self.step, self.spec, self.inv = step, spec, inv
        self.git = GitTracker(inv.ctx.worktree, None, track=False)
        masker = inv.ctx.masker
        earlier = inv.attempts.earlier(inv.label) if inv.attempts else []
        known = {f.name for f in fields(Attempt)}
        self.history = [
            Attempt(**{k: v for k, v in masker.restore(record).items() if k in known})
            for record in earlier
        ]
        self.began = time.monotonic() - (self.history[-1].elapsed if self.history else 0.0)
        self.error: str | None = None

    async def run(self) -> CommandResult:
        reason = self._verdict()  # a resume may find the loop already decided
        while reason is None:
            if self.inv.ctx.stop.is_set():  # a daemon stop: the next attempt runs on resume
                raise StepStopped
            reason = await self._attempt(len(self.history) + 1) or self._verdict()
        if self.inv.attempts is not None:
            await self.inv.attempts.close(self.inv.label)
        return self._finish(reason)

    async def _attempt(self, number: int) -> str | None:
        """Run attempt `number`; a stop reason when it could not complete."""
        from prodigyd.engine.step import StepRunner  # the pipeline runs this kind: no cycle

        label = f"{self.inv.label}.goal.{number}"
        scope, env = self._context(number)
        # the attempt's environment, not its step's `env:` (whose `$NAME`s the step's own
        # text would take as its values: a JSON list would lose its quotes in a shell line)
        runner = StepRunner(replace(self.inv.ctx, env={**self.inv.ctx.env, **env}), self.git)
        command = self.spec.attempt.model_copy(
            update={
                "env": self.step.env,
                "working_dir": self.step.working_dir,
                "timeout": _earliest(self.inv.timeout, self._remaining()),
            }
        )
        report = await runner.run(command, label=label, store=scope)
        if self._out_of_time():
            return TIMEOUT
        try:
            found = await score(
                self.spec.scorer,
                runner,
                label=f"{label}.validate",
                store=scope,
                env={**self.step.env, "PRODIGY_VALIDATION": "true"},
                working_dir=self.step.working_dir,
                timeout=self._remaining(),
            )
        except ProdigyError as exc:
            if self._out_of_time():
                return TIMEOUT
            self.error = exc.render()
            return ERROR
        attempt = Attempt(
            number=number,
            score=found.value,
            gaps=found.gaps,
            output=found.output[-OUTPUT_CHARS:],
            command_success=report.success,
            elapsed=round(time.monotonic() - self.began, 3),
        )
        self.history.append(attempt)
        if self.inv.attempts is not None:
            protected = self.inv.ctx.masker.protect(asdict(attempt))
            await self.inv.attempts.record(self.inv.label, protected)
        self.inv.ctx.events.emit(
            EventType.GOAL_ATTEMPT,
            step=self.inv.label,
            attempt=number,
            max_attempts=self.spec.max_attempts,
            score=_number(attempt.score),
            threshold=_number(self.spec.threshold),
            gaps=attempt.gaps,
            command_success=attempt.command_success,
            elapsed=attempt.elapsed,
        )
        return None

    def _context(self, number: int) -> tuple[VariableStore, dict[str, str]]:
        """What attempt `number` sees of the ones before: variables and environment."""
        last = self.history[-1] if self.history else None
        scores = [_number(a.score) for a in self.history]
        values: dict[str, Any] = {
            "attempt": number,
            "max_attempts": self.spec.max_attempts,
            "threshold": _number(self.spec.threshold),
            "last_score": _number(last.score) if last else "",
            "gaps": last.gaps if last else [],
            "last_output": last.output if last else "",
            "scores": scores,
        }
        scope = self.inv.store.child()
        scope.update({f"goal.{name}": value for name, value in values.items()})
        env = {
            "PRODIGY_GOAL": self.spec.goal,
            **{f"PRODIGY_GOAL_{name.upper()}": _env_text(value) for name, value in values.items()},
        }
        if last is not None:  # the original's names
            env["PRODIGY_VALIDATION_SCORE"] = format_score(last.score)
            env["PRODIGY_VALIDATION_OUTPUT"] = last.output
            if last.gaps:
                env["PRODIGY_VALIDATION_GAPS"] = json.dumps(last.gaps)
        return scope, env

    def _verdict(self) -> str | None:
        """Why the loop stops now, or None to run another attempt."""
        if self.history and self.history[-1].score >= self.spec.threshold:
            return REACHED
        recent = [a.score for a in self.history[-CONVERGE_WINDOW:]]
        if len(recent) == CONVERGE_WINDOW and max(recent) - min(recent) <= CONVERGE_POINTS:
            return CONVERGED
        if self._out_of_time():
            return TIMEOUT
        if len(self.history) >= self.spec.max_attempts:
            return EXHAUSTED
        return None

    def _remaining(self) -> float | None:
        limit = self.spec.timeout_seconds
        return None if limit is None else limit - (time.monotonic() - self.began)

    def _out_of_time(self) -> bool:
        remaining = self._remaining()
        return remaining is not None and remaining <= 0

    def _finish(self, reason: str) -> CommandResult:
        spec, history = self.spec, self.history
        scores = [_number(a.score) for a in history]
        listed = ", ".join(format_score(a.score) for a in history) or "none"
        last = history[-1].score if history else None
        best = max((a.score for a in history), default=None)
        if reason == REACHED:
            assert last is not None
            message = (
                f"Goal reached: score {format_score(last)} ≥ {format_score(spec.threshold)} "
                f"after {_attempts(len(history))} (scores: {listed})"
            )
        elif reason == ERROR:
            message = f"Goal seek stopped at attempt {len(history) + 1}: {self.error}"
        else:
            shown_best = "none" if best is None else format_score(best)
            message = (
                f"Goal not reached: {self._why(reason)}; best score {shown_best}, "
                f"threshold {format_score(spec.threshold)} (scores: {listed})"
            )
        success = reason == REACHED or (reason != ERROR and not spec.fail_on_incomplete)
        self.inv.ctx.events.emit(
            EventType.GOAL_FINISHED,
            step=self.inv.label,
            goal=spec.goal,
            reason=reason,
            success=reason == REACHED,
            attempts=len(history),
            score=None if last is None else _number(last),
            best_score=None if best is None else _number(best),
            scores=scores,
            threshold=_number(spec.threshold),
            message=message,
        )
        failure = FailureReason.TIMEOUT if reason == TIMEOUT else FailureReason.VALIDATION_FAILED
        return CommandResult(
            success=success,
            exit_code=0 if success else 1,
            stdout=message + "\n",
            duration=time.monotonic() - self.began,
            error=None if success else message,
            reason=None if success else failure,
            details={"goal": {"reason": reason, "scores": scores}},
        )

    def _why(self, reason: str) -> str:
        if reason == TIMEOUT:
            return f"timed out after {format_score(self.spec.timeout_seconds or 0)}s"
        if reason == CONVERGED:
            window, points = CONVERGE_WINDOW, CONVERGE_POINTS
            return f"converged (the last {window} scores are within {points:g} points)"
        return f"{_attempts(len(self.history))} used"


def _attempts(count: int) -> str:
    return f"{count} attempt{'s' if count != 1 else ''}"


def _earliest(*timeouts: float | None) -> float | None:
    given = [t for t in timeouts if t is not None]
    return max(min(given), 0.001) if given else None


def _number(value: float) -> float | int:
    """90.0 as 90: what `${goal.last_score}` renders and events show."""
    return int(value) if float(value).is_integer() else value


def _env_text(value: object) -> str:
    if isinstance(value, list | dict):
        return json.dumps(value)
    return str(value)
