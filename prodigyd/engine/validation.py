"""`validate:` (reference §2.8): is the step's work complete enough?

The validation commands run in order (with `PRODIGY_VALIDATION=true`); the first failing
one makes the result `failed`. The verdict is then read from `result_file` (which may be
all there is: the step wrote it), else from the last command's output: JSON
(`{"completion_percentage" or "score", "status", "missing", "gaps", "implemented"}`), or
text with a score (`score: 40`, `40%`, `40/100`, `40 out of 100`: the last one found), or
else 100% complete, since the commands succeeded. A score is never ignored: a validator
printing `score: 40` was 100% for the original, whatever it said. `${validation.*}`
variables carry the verdict into `on_incomplete` commands.
A built-in validator (`tests:`, `spec:`, `quality:`; engine/scorers.py) gives the
completion itself.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from prodigyd.engine.score import ScoreError, parse_score
from prodigyd.engine.scorers import score
from prodigyd.errors import ProdigyError
from prodigyd.files import failure_reason, read_small_text
from prodigyd.workflow.interpolate import VariableStore
from prodigyd.workflow.model import Scorer, ValidateSpec

if TYPE_CHECKING:
    from prodigyd.engine.step import StepRunner


@dataclass
class Verdict:
    completion: float
    status: str
    threshold: float
    missing: list[Any] = field(default_factory=list)
    gaps: Any = None
    implemented: list[Any] = field(default_factory=list)
    reason: str | None = None  # why the validation itself failed

    @property
    def passed(self) -> bool:
        return self.status != "failed" and self.completion >= self.threshold

    def message(self) -> str:
        if self.reason:
            return f"Validation failed: {self.reason}"
        word = "passed" if self.passed else "incomplete"
        return (
            f"Validation {word}: {self.completion:.1f}% complete (threshold: {self.threshold:.1f}%)"
        )

    def event(self) -> dict[str, Any]:
        return {
            "passed": self.passed,
            "completion": self.completion,
            "status": self.status,
            "threshold": self.threshold,
            "missing": self.missing,
            "message": self.message(),
        }


async def check(
    runner: StepRunner, spec: ValidateSpec, label: str, store: VariableStore
) -> Verdict:
    try:
        verdict = await asyncio.wait_for(_check(runner, spec, label, store), spec.timeout)
    except TimeoutError:
        verdict = Verdict(
            0.0, "failed", spec.threshold, reason=f"timed out after {spec.timeout:g}s"
        )
    _publish(store, verdict)
    return verdict


async def _check(
    runner: StepRunner, spec: ValidateSpec, label: str, store: VariableStore
) -> Verdict:
    if spec.scorer is not None:
        return await _scored(runner, spec, spec.scorer, label, store)
    text = ""
    for number, command in enumerate(spec.commands, start=1):
        marked = command.model_copy(update={"env": {**command.env, "PRODIGY_VALIDATION": "true"}})
        report = await runner.run(marked, label=f"{label}.validate.{number}", store=store)
        if not report.success:
            return Verdict(0.0, "failed", spec.threshold, reason=report.error or "command failed")
        text = report.result.text
    if spec.result_file:
        path = runner.ctx.worktree / runner.ctx.interpolate(spec.result_file, store)
        try:
            text = read_small_text(path)
        except OSError as exc:
            why = failure_reason(exc)
            return Verdict(0.0, "failed", spec.threshold, reason=f"cannot read {path}: {why}")
    return _parse(text, spec.threshold)


async def _scored(
    runner: StepRunner, spec: ValidateSpec, scorer: Scorer, label: str, store: VariableStore
) -> Verdict:
    """A built-in validator's score as the completion; its gaps (failing tests, requirements
    not referenced) as `missing` and `gaps`."""
    env = {"PRODIGY_VALIDATION": "true"}
    try:
        found = await score(scorer, runner, label=f"{label}.validate.1", store=store, env=env)
    except ProdigyError as exc:
        return Verdict(0.0, "failed", spec.threshold, reason=exc.render())
    status = "complete" if found.value >= spec.threshold else "incomplete"
    return Verdict(found.value, status, spec.threshold, found.gaps, found.gaps)


def _parse(text: str, threshold: float) -> Verdict:
    try:
        data = json.loads(text)
    except ValueError:
        data = None
    if not isinstance(data, dict):
        try:
            completion = parse_score(text).value
        except ScoreError:  # no score: the commands succeeded, so the work is complete
            completion = 100.0
        status = "complete" if completion >= threshold else "incomplete"
        return Verdict(completion, status, threshold)
    key = next((k for k in _COMPLETION_KEYS if k in data), None)
    try:
        completion = float(data[key]) if key else 100.0
    except (TypeError, ValueError):
        return Verdict(0.0, "failed", threshold, reason=f"{key} is not a number")
    missing = data.get("missing") or []
    return Verdict(
        completion=completion,
        status=str(data.get("status") or ("complete" if completion >= threshold else "incomplete")),
        threshold=threshold,
        missing=missing if isinstance(missing, list) else [missing],
        gaps=data.get("gaps"),
        implemented=data.get("implemented") or [],
    )


_COMPLETION_KEYS = ("completion_percentage", "completion", "score")


def _publish(store: VariableStore, verdict: Verdict) -> None:
    store.update(
        {
            "validation.completion": verdict.completion,
            "validation.status": verdict.status,
            "validation.missing": verdict.missing,
            "validation.gaps": verdict.gaps if verdict.gaps is not None else verdict.missing,
            "validation.missing_count": len(verdict.missing),
            "validation.implemented": verdict.implemented,
        }
    )
