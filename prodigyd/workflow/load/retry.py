"""A `retry:` (reference §2.7): a step's, `retry_defaults:` and `error_policy.retry_config:`.

The YAML nests what the model keeps flat: a backoff strategy's option under its name
(`backoff: {exponential: {base: 2}}`), and what happens when the attempts run out under
`on_failure:` (stop, continue, or `{fallback: {command: ...}}`). The error policy's form
of the original names some options differently (`max_attempts`, `{fixed: {delay}}`,
`{exponential: {initial, multiplier}}`); both spellings are read everywhere.
"""

from __future__ import annotations

from typing import Any

from prodigyd.workflow.load.diagnostics import Context, build_model, shown
from prodigyd.workflow.load.keys import known_entries, model_keys
from prodigyd.workflow.load.nodes import At, Map
from prodigyd.workflow.model import RetrySpec

_BACKOFF_OPTIONS = {
    "fixed": ("delay",),
    "fibonacci": ("initial",),
    "linear": ("initial", "increment"),
    "exponential": ("initial", "base", "multiplier"),
    "custom": ("delays",),
}
#: Options of the error policy's spelling, and the RetrySpec field each one is.
_OPTION_FIELDS = {"delay": "initial_delay", "initial": "initial_delay", "multiplier": "base"}
#: RetrySpec fields written under another key: a strategy's option under `backoff:`, what
#: happens when the attempts run out under `on_failure:`.
_SPELLING = {
    **{
        _OPTION_FIELDS.get(option, option): "backoff"
        for options in _BACKOFF_OPTIONS.values()
        for option in options
        if option not in ("delay", "initial")  # initial_delay is also a key of its own
    },
    "on_exhausted": "on_failure",
    "fallback": "on_failure",
}
RETRY_KEYS = model_keys(RetrySpec, spelled=_SPELLING, extra=("max_attempts",))


def retry_spec(
    raw: object, at: At, ctx: Context, defaults: dict[str, Any] | None = None
) -> RetrySpec | None:
    """`defaults`: field values used where the YAML gives none (a RetrySpec's own else)."""
    if not isinstance(raw, Map):
        ctx.problem(f"expected a mapping such as {{attempts: 3}}, got {shown(raw)}", at)
        return None
    fields = known_entries(raw, RETRY_KEYS, at, ctx)
    spelling = _SPELLING
    if "max_attempts" in fields:
        if "attempts" in fields:
            ctx.problem("give attempts or max_attempts, not both", at.key(raw, "max_attempts"))
        fields["attempts"] = fields.pop("max_attempts")
        spelling = {**_SPELLING, "attempts": "max_attempts"}  # its errors point there
    data = dict(defaults or {})
    data.update((key, value) for key, value in fields.items() if key not in _NESTED)
    if "backoff" in fields:
        options, paths = _backoff(fields["backoff"], at.key(raw, "backoff"), ctx)
        data.update(options)
        spelling = {**spelling, **paths}
    if "on_failure" in fields:
        data.update(_retry_exhausted(fields["on_failure"], at.key(raw, "on_failure"), ctx))
    return build_model(RetrySpec, data, at, raw, ctx, renames=spelling)


_NESTED = ("backoff", "on_failure")


def _backoff(raw: object, at: At, ctx: Context) -> tuple[dict[str, Any], dict[str, str]]:
    """`exponential` or `{exponential: {base: 2}}`, `{linear: {increment: 5s}}`, ...: the
    RetrySpec fields, and the path of each option's key under the retry's mapping (an
    error in its value points there)."""
    if isinstance(raw, str):
        return {"backoff": raw}, {}
    under = "backoff"
    if isinstance(raw, Map) and isinstance(raw.get("type"), str):  # {type: linear, ...options}
        options = Map(raw.mark)
        options.update((key, value) for key, value in raw.items() if key != "type")
        options.key_marks.update(raw.key_marks)
        shaped = Map(raw.mark)
        shaped[raw["type"]] = options
        raw, under = shaped, "backoff."
    if isinstance(raw, Map) and len(raw) == 1:
        ((strategy, options),) = raw.items()
        if strategy in _BACKOFF_OPTIONS and isinstance(options, Map | None):
            here = at.key(raw, strategy)
            chosen = (
                known_entries(options, _BACKOFF_OPTIONS[strategy], here, ctx) if options else {}
            )
            prefix = under if under.endswith(".") else f"{under}.{strategy}."
            fields = {_OPTION_FIELDS.get(key, key): value for key, value in chosen.items()}
            paths = {_OPTION_FIELDS.get(key, key): prefix + key for key in chosen}
            return {"backoff": strategy, **fields}, paths
    ctx.problem(
        f"expected {', '.join(_BACKOFF_OPTIONS)} or e.g. {{exponential: {{base: 2}}}}, "
        f"got {shown(raw)}",
        at,
    )
    return {}, {}


def _retry_exhausted(raw: object, at: At, ctx: Context) -> dict[str, Any]:
    """`retry.on_failure`: stop | continue | {fallback: {command: ...}}."""
    if raw in ("stop", "continue"):
        return {"on_exhausted": raw}
    fallback = raw.get("fallback") if isinstance(raw, Map) and len(raw) == 1 else None
    command = fallback.get("command") if isinstance(fallback, Map) else fallback
    if isinstance(command, str):
        return {"on_exhausted": "fallback", "fallback": command}
    ctx.problem(f"expected stop, continue or {{fallback: {{command: ...}}}}, got {shown(raw)}", at)
    return {}
