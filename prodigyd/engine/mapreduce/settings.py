"""Numbers a MapReduce workflow may give as `$VAR` (`max_parallel`, `agent_timeout_secs`,
setup's `timeout`): the book's `max_parallel: "${MAX_WORKERS}"`. Read when the phase
starts, from the workflow's variables (setup's captures included), else the job's
environment; the model keeps the reference as written (workflow/model.py).
"""

from __future__ import annotations

from prodigyd.engine.context import RunContext
from prodigyd.errors import WorkflowError
from prodigyd.workflow.interpolate import MISSING


def number_from(text: str, ctx: RunContext, what: str) -> int:
    """`$VAR` / `${VAR}` as a whole number of at least 1; `what` names the field."""
    name = text.strip("${}")
    value = ctx.variables.lookup(name)
    if value is MISSING or value is None:
        value = ctx.env.get(name)
    try:
        number = int(str(value).strip())
    except (TypeError, ValueError):
        raise WorkflowError(
            f"{what}: {text} is {value!r}, not a whole number"
            if value is not None
            else f"{what}: {text} is not set"
        ) from None
    if number < 1:
        raise WorkflowError(f"{what}: {text} is {number}; it must be at least 1")
    return number


def seconds_from(value: float | str | None, ctx: RunContext, what: str) -> float | None:
    """A timeout: as the model has it (seconds, or None for none), or a `$VAR` of seconds."""
    if isinstance(value, str):
        return float(number_from(value, ctx, what))
    return value
