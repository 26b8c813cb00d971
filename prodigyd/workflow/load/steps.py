"""Steps, wherever they appear: one parser and one schema for a top-level step, a handler,
a foreach body, a validation or merge command and every MapReduce phase (the original had
two).

A step has exactly one command key (`shell:`, `claude:`, `write_file:`, `foreach:`,
`goal_seek:`, and the deprecated ones), which decides its kind, and any of the keys every
step shares. The nested
ones that hold steps (on_failure in all its eight shapes, reference §2.6; validate with
on_incomplete, §2.8; on_success; on_exit_code) are here too, since a step holds them and
they hold steps; retry.py and legacy.py read the others.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any, Literal, TypeVar

from pydantic import BaseModel

from prodigyd import errorcodes
from prodigyd.closest import closest
from prodigyd.errors import WorkflowError
from prodigyd.workflow.expr import ExpressionError, check_when
from prodigyd.workflow.load.diagnostics import SHAPES_HINT, Context, build_model, shown
from prodigyd.workflow.load.goal_seek import SCORER_KEYS, goal_seek_body, scorer
from prodigyd.workflow.load.keys import known_entries, model_keys, unknown_key
from prodigyd.workflow.load.legacy import (
    IGNORED_STEP_KEYS,
    is_legacy_command,
    legacy_command_step,
    legacy_outputs,
    slash,
)
from prodigyd.workflow.load.nodes import At, Map, Seq, plain
from prodigyd.workflow.load.retry import retry_spec
from prodigyd.workflow.model import (
    Budget,
    CaptureStreams,
    ForeachSpec,
    OnFailure,
    OnIncomplete,
    Step,
    ValidateSpec,
    WriteFileSpec,
)

_M = TypeVar("_M", bound=BaseModel)

_MAX_DEPTH = 40


_REFUSED_STEP_KEYS = {
    "handler": ("handler: steps are not supported", "use shell: or claude:"),
    "step_validate": ("step_validate is not supported yet", "use validate:"),
}


def step_list(raw: object, at: At, ctx: Context, *, top: bool = False) -> tuple[Step, ...]:
    if not isinstance(raw, Seq):
        ctx.problem(f"expected a list of steps, got {shown(raw)}", at)
        return ()
    if top and not raw:
        ctx.problem("the workflow has no steps", at, hint=SHAPES_HINT)
    steps = []
    for index, item in enumerate(raw):
        item_at = at.index(raw, index)
        if top:
            item_at = At(item_at.path, item_at.mark, f"step {index + 1}", item_at.depth)
        step = parse_step(item, item_at, ctx)
        if step is not None:
            steps.append(step)
    return tuple(steps)


def parse_step(raw: object, at: At, ctx: Context) -> Step | None:
    """Any step, wherever it appears: one parser, one schema (the original had two)."""
    if ctx.deadline.expired():
        raise WorkflowError(ctx.deadline.problem, location=at.location(ctx.source))
    if at.depth > _MAX_DEPTH:
        ctx.problem(f"steps are nested more than {_MAX_DEPTH} levels deep", at)
        return None
    if isinstance(raw, str):  # legacy: a bare Claude command name
        return text_step("claude", slash(raw), at, ctx)
    if not isinstance(raw, Map):
        ctx.problem(f"expected a step such as {{shell: ...}}, got {shown(raw)}", at)
        return None
    for key, (message, hint) in _REFUSED_STEP_KEYS.items():
        if key in raw:
            ctx.problem(message, at.key(raw, key), hint=hint)
            return None
    found = [key for key in COMMAND_KEYS if key in raw]
    if not found and is_legacy_command(raw):
        return legacy_command_step(raw, at, ctx)
    if not found:  # `- {}`, `- when: x`, or a misspelled command (`shel:`: E1002)
        misspelled = _misspelled_command(raw)
        ctx.problem(
            "this step has no command: add one of "
            f"{', '.join(f'{key}:' for key in COMMAND_KEYS[:_OFFERED])}",
            at,
            hint=misspelled or 'for example: - shell: "cargo test"',
            code=errorcodes.UNKNOWN_FIELD if misspelled else errorcodes.INVALID_VALUE,
        )
        return None
    if len(found) > 1:
        ctx.problem(
            f"a step has one command, this one has {len(found)}: {', '.join(found)}",
            at,
            hint="split them into separate steps",
            code=errorcodes.INVALID_VALUE,
        )
        return None
    return _step_of_kind(found[0], raw, at, ctx)


def _misspelled_command(raw: Map) -> str | None:
    """`did you mean 'shell' instead of 'shel'?` for a key close to a command's."""
    for key in raw:
        close = closest(str(key), COMMAND_KEYS)
        if close:
            return f"did you mean '{close}' instead of '{key}'?"
    return None


def check_expression(text: str, at: At, ctx: Context) -> None:
    """A `when`-language expression's syntax, checked at load with its position."""
    try:
        check_when(text)
    except ExpressionError as exc:
        ctx.problem(exc.message, at, hint=exc.hint, details=exc.details, code=exc.code)


def _step_of_kind(key: str, raw: Map, at: At, ctx: Context) -> Step | None:
    count = len(ctx.problems)
    fields = known_entries(raw, (key, *STEP_KEYS), at, ctx, ignored=IGNORED_STEP_KEYS)
    body = _BODIES[key](fields[key], at.key(raw, key), ctx)
    common, renames = _step_fields(fields, raw, str(body["kind"]), at, ctx)
    if "on_failure" in body and "on_failure" in common:
        ctx.problem(
            "on_failure is given both under test: and on the step", at.key(raw, "on_failure")
        )
    if ctx.failed_since(count):
        return None
    data = {**body, **common, "line": at.line}
    return build_model(Step, data, at, raw, ctx, renames={"command": key, **renames})


def _step_fields(
    fields: dict[str, Any], raw: Map, kind: str, at: At, ctx: Context
) -> tuple[dict[str, Any], dict[str, str]]:
    """The fields every step kind shares, and which YAML key each came from."""
    data = {name: fields[name] for name in _PLAIN_STEP_FIELDS if name in fields}
    renames = dict(_STEP_SPELLING)
    if "continue_on_error" in fields:
        if "allow_failure" in fields:
            ctx.problem(
                "give allow_failure or continue_on_error, not both",
                at.key(raw, "continue_on_error"),
            )
        data["allow_failure"] = fields["continue_on_error"]
        renames["allow_failure"] = "continue_on_error"
    for key, (name, build) in _NESTED_STEP_FIELDS.items():
        if fields.get(key) is not None:
            data[name] = build(fields[key], at.key(raw, key), ctx)
    if fields.get("retry_config") is not None:  # the original book's name for retry:
        if "retry" in fields:
            ctx.problem("give retry or retry_config, not both", at.key(raw, "retry_config"))
        data["retry"] = retry_spec(fields["retry_config"], at.key(raw, "retry_config"), ctx)
        renames["retry"] = "retry_config"
    if isinstance(fields.get("when"), str):
        check_expression(fields["when"], at.key(raw, "when"), ctx)
    if fields.get("temporary") is False:
        del data["temporary"]
        ctx.problem(
            "temporary: false is not supported: a step's env: always applies to that step "
            "only, and the environment is restored after it",
            at.key(raw, "temporary"),
            hint="set a value every later step needs in the workflow's env:",
        )
    if fields.get("on_failure") is not None:
        data["on_failure"] = _on_failure(fields["on_failure"], kind, at.key(raw, "on_failure"), ctx)
    return data, renames


def from_steps(model: type[_M], name: str, raw: Seq, at: At, ctx: Context) -> _M | None:
    """A model that is just a list of steps; not judged when a step already failed, so a
    broken step is one problem, not also "needs at least one step"."""
    count = len(ctx.problems)
    steps = step_list(raw, at, ctx)
    if ctx.failed_since(count):
        return None
    return build_model(model, {name: steps}, at, raw, ctx)


def text_step(kind: Literal["shell", "claude"], text: object, at: At, ctx: Context) -> Step | None:
    """A step given as bare text: legacy commands, handler strings, validation commands."""
    if not isinstance(text, str) or not text.strip():
        ctx.problem(f"expected a command, got {shown(text)}", at)
        return None
    return Step(kind=kind, command=text, line=at.line)


# --- kind-specific bodies: each returns the Step fields for its kind


def _claude_body(value: object, at: At, ctx: Context) -> dict[str, object]:
    return {"kind": "claude", "command": value}


def _shell_body(value: object, at: At, ctx: Context) -> dict[str, object]:
    return {"kind": "shell", "command": value}


def _command_body(value: object, at: At, ctx: Context) -> dict[str, object]:
    ctx.warn("`command:` is deprecated; use `claude:`", at)
    return {"kind": "claude", "command": slash(value) if isinstance(value, str) else value}


def _analyze_body(value: object, at: At, ctx: Context) -> dict[str, object]:
    ctx.warn("`analyze:` was removed from prodigy; this step does nothing", at)
    return {"kind": "analyze"}


def _test_body(value: object, at: At, ctx: Context) -> dict[str, object]:
    """Deprecated `test: {command, on_failure}`: a shell step with the same debug loop."""
    ctx.warn("`test:` is deprecated; use `shell:`", at)
    if not isinstance(value, Map):
        return {"kind": "shell", "command": value}
    fields = known_entries(value, ("command", "on_failure"), at, ctx)
    if "command" not in fields:
        ctx.problem("test: needs command:", at)
    body: dict[str, object] = {"kind": "shell", "command": fields.get("command")}
    if fields.get("on_failure") is not None:
        body["on_failure"] = _on_failure(
            fields["on_failure"], "shell", at.key(value, "on_failure"), ctx
        )
    return body


def _write_file_body(value: object, at: At, ctx: Context) -> dict[str, object]:
    if not isinstance(value, Map):
        ctx.problem(f"expected a mapping with path: and content:, got {shown(value)}", at)
        return {"kind": "write_file"}
    fields = known_entries(value, _WRITE_FILE_KEYS, at, ctx)
    spec = build_model(WriteFileSpec, fields, at, value, ctx)
    return {"kind": "write_file", "write_file": spec}


_WRITE_FILE_KEYS = model_keys(WriteFileSpec)


def _foreach_body(value: object, at: At, ctx: Context) -> dict[str, object]:
    if not isinstance(value, Map):
        ctx.problem(f"expected a mapping with foreach: and do:, got {shown(value)}", at)
        return {"kind": "foreach"}
    count = len(ctx.problems)
    fields = known_entries(value, _FOREACH_KEYS, at, ctx)
    source = "input" if "input" in fields else "foreach"
    if "input" in fields and "foreach" in fields:
        ctx.problem("give the items as foreach: or input:, not both", at.key(value, "input"))
    if source not in fields:
        ctx.problem("foreach needs its items: foreach: <command or list>", at)
    data = {name: fields[name] for name in fields if name not in ("foreach", "input", "do")}
    data["items"] = plain(fields.get(source))
    data["do"] = step_list(fields["do"], at.key(value, "do"), ctx) if "do" in fields else ()
    if ctx.failed_since(count):
        return {"kind": "foreach"}
    spec = build_model(ForeachSpec, data, at, value, ctx, renames={"items": source})
    return {"kind": "foreach", "foreach": spec}


#: The items are `foreach:` (or `input:`), the rest ForeachSpec's own fields.
_FOREACH_KEYS = model_keys(ForeachSpec, spelled={"items": "foreach"}, extra=("input",))

#: What each command key makes of a step; a step has exactly one of them.
_BODIES: dict[str, Callable[[object, At, Context], dict[str, object]]] = {
    "claude": _claude_body,
    "shell": _shell_body,
    "write_file": _write_file_body,
    "foreach": _foreach_body,
    "goal_seek": goal_seek_body,
    "analyze": _analyze_body,
    "test": _test_body,
    "command": _command_body,
}
COMMAND_KEYS = tuple(_BODIES)
#: The kinds a step without one is told to add: the first ones, not the original's
#: analyze:, test:, command: (read, not offered).
_OFFERED = 5


# --- nested step fields


def _commit_message(raw: object, at: At, ctx: Context) -> object:
    if not isinstance(raw, Map):
        ctx.problem(f"expected a mapping with message_template:, got {shown(raw)}", at)
        return None
    return known_entries(raw, ("message_template",), at, ctx).get("message_template")


_STREAM_WORDS = {"stdout": (True, False), "stderr": (False, True), "both": (True, True)}


def _capture_streams(raw: object, at: At, ctx: Context) -> object:
    """`"stdout"|"stderr"|"both"` (standard schema), the per-stream mapping (step schema),
    or a comma list of the mapping's keys (`"stdout,stderr,exit_code"`, as the book's
    examples write it): the streams it names are captured; exit_code, success and duration
    are, named or not (they cost nothing)."""
    if isinstance(raw, str) and raw in _STREAM_WORDS:
        stdout, stderr = _STREAM_WORDS[raw]
        return {"stdout": stdout, "stderr": stderr}
    if isinstance(raw, Map):
        return known_entries(raw, _STREAM_KEYS, at, ctx)
    if isinstance(raw, str) and "," in raw:
        named = {word.strip() for word in raw.split(",")} - {""}
        unknown = sorted(named - set(_STREAM_KEYS))
        if not unknown:
            return {"stdout": "stdout" in named, "stderr": "stderr" in named}
        ctx.problem(
            f"unknown stream {unknown[0]!r}: expected some of {', '.join(_STREAM_KEYS)}", at
        )
        return None
    ctx.problem(
        f"expected stdout, stderr, both, a comma list such as 'stdout,stderr' or a mapping "
        f"of streams, got {shown(raw)}",
        at,
    )
    return None


_STREAM_KEYS = model_keys(CaptureStreams)


def budget_fields(raw: object, at: At, ctx: Context) -> object:
    """`budget: {cost_usd, tokens, time}` of a step, a map phase or a workflow."""
    if not isinstance(raw, Map):
        ctx.problem(f"expected a mapping of cost_usd, tokens and time, got {shown(raw)}", at)
        return None
    return known_entries(raw, _BUDGET_KEYS, at, ctx)


_BUDGET_KEYS = model_keys(Budget)


def _exit_code_steps(raw: object, at: At, ctx: Context) -> dict[int, Step]:
    if not isinstance(raw, Map):
        ctx.problem(f"expected a mapping of exit code: step, got {shown(raw)}", at)
        return {}
    steps = {}
    for code, value in raw.items():
        here = at.key(raw, code)
        if isinstance(code, bool) or not re.fullmatch(r"-?\d+", str(code)):
            ctx.problem(f"exit codes must be whole numbers, got {shown(code)}", here)
            continue
        step = parse_step(value, here, ctx)
        if step is not None:
            steps[int(code)] = step
    return steps


#: OnFailure fields the YAML gives as they are. The rest follow from its shape: the
#: handlers, `ignore`, the re-runs (_retry_counts); and `timeout`, which only the detailed
#: form has (anywhere else it is the handler step's own).
_HANDLER_OPTIONS = model_keys(
    OnFailure,
    unwritten=("handlers", "ignore", "debug_loop", "max_retries", "max_attempts", "timeout"),
)
CONTROL_KEYS = (*_HANDLER_OPTIONS, "max_retries", "max_attempts", "retry_original")
_DETAILED_KEYS = (*CONTROL_KEYS, "commands", "timeout")


def _on_failure(raw: object, kind: str, at: At, ctx: Context) -> OnFailure | None:
    """Every accepted shape onto one OnFailure; `kind` is the failing step's kind, because the
    same YAML means a debug loop on a shell step and handler-then-retry elsewhere."""
    if isinstance(raw, bool):
        return OnFailure(ignore=True) if raw else None
    if isinstance(raw, str):
        handler = _handler(raw, at, ctx)
        return None if handler is None else OnFailure(handlers=(handler,))
    if isinstance(raw, Seq):
        handlers = _handlers(raw, at, ctx)
        if handlers is None:
            return None
        return build_model(OnFailure, {"handlers": handlers}, at, raw, ctx)
    if isinstance(raw, Map):
        if "commands" in raw:
            return _detailed_on_failure(raw, at, ctx)
        return _single_on_failure(raw, kind, at, ctx)
    ctx.problem(f"expected true, false, a command, a list or a mapping, got {shown(raw)}", at)
    return None


def _handler(raw: object, at: At, ctx: Context) -> Step | None:
    """A handler string starting with `/` is a Claude command, anything else shell."""
    if isinstance(raw, str):
        return text_step("claude" if raw.strip().startswith("/") else "shell", raw, at, ctx)
    return parse_step(raw, at, ctx)


def _handlers(raw: object, at: At, ctx: Context) -> tuple[Step, ...] | None:
    if not isinstance(raw, Seq) or not raw:
        ctx.problem(f"expected a list of handler commands, got {shown(raw)}", at)
        return None
    count = len(ctx.problems)
    handlers = tuple(_handler(item, at.index(raw, index), ctx) for index, item in enumerate(raw))
    if ctx.failed_since(count):
        return None
    return tuple(handler for handler in handlers if handler is not None)


def _detailed_on_failure(raw: Map, at: At, ctx: Context) -> OnFailure | None:
    """`{commands: [...], strategy, timeout, fail_workflow, handler_failure_fatal}`."""
    ignored = {"capture": "capturing handler output is not supported yet"}
    fields = known_entries(raw, _DETAILED_KEYS, at, ctx, ignored=ignored)
    handlers = _handlers(fields["commands"], at.key(raw, "commands"), ctx)
    if handlers is None:
        return None
    data = {key: fields[key] for key in (*_HANDLER_OPTIONS, "timeout") if key in fields}
    counts = _retry_counts(fields, raw, at, ctx, handler=None, debug_loop=False)
    return build_model(OnFailure, {"handlers": handlers, **data, **counts}, at, raw, ctx)


def _single_on_failure(raw: Map, kind: str, at: At, ctx: Context) -> OnFailure | None:
    """A handler step plus control keys (the "advanced" and standard-schema forms), or
    control keys alone (`{fail_workflow: true}`)."""
    control = {key: raw[key] for key in CONTROL_KEYS if key in raw}
    step_part = Map(raw.mark, raw.source)
    for key in raw:
        if _misspelt_control(key):
            here = at.key(raw, key)
            unknown_key(key, _ON_FAILURE_KEYS, here, at.name, ctx, strict=_MISSPELT_CONTROL)
        elif key not in CONTROL_KEYS:
            step_part.copy_entry(raw, key)
    data = {key: control[key] for key in _HANDLER_OPTIONS if key in control}
    if not any(key in step_part for key in COMMAND_KEYS) and not is_legacy_command(step_part):
        for key in step_part:
            unknown_key(key, (*CONTROL_KEYS, "claude", "shell"), at.key(raw, key), at.name, ctx)
        ignore = control.get("fail_workflow") in (False, None)
        return build_model(OnFailure, {**data, "ignore": ignore}, at, raw, ctx)
    handler = parse_step(step_part, at, ctx)
    if handler is None:
        return None
    if handler.kind == "goal_seek":  # its fail_on_incomplete decides, as in the original
        data.setdefault("handler_failure_fatal", True)
    counts = _retry_counts(control, raw, at, ctx, handler=handler, debug_loop=kind == "shell")
    return build_model(OnFailure, {"handlers": (handler,), **data, **counts}, at, raw, ctx)


def _misspelt_control(key: object) -> bool:
    """Whether `key`, neither a control key nor a step's, looks most like a control key
    (`fail_workfow`): it is that key misspelt, not a key of the handler step."""
    if key in CONTROL_KEYS or key in ALL_STEP_KEYS:
        return False
    return closest(str(key), (*_ON_FAILURE_KEYS, *ALL_STEP_KEYS)) in _ON_FAILURE_KEYS


#: What an on_failure mapping holds besides its handler step: the control keys, and the
#: detailed form's commands (misspelt, the rest would be read as control keys alone).
_ON_FAILURE_KEYS = (*CONTROL_KEYS, "commands")
#: Why a misspelt one is an error even without --strict (the original ignored it).
_MISSPELT_CONTROL = (
    "on_failure's keys decide whether the workflow fails and what runs again: one "
    "misspelt and ignored, a failed step could let the workflow go on"
)


def _retry_counts(
    control: Mapping[str, Any],
    raw: Map,
    at: At,
    ctx: Context,
    *,
    handler: Step | None,
    debug_loop: bool,
) -> dict[str, Any]:
    """How often the failing step runs again (see OnFailure).

    `max_retries: N` re-runs it N times after the handler. `max_attempts: N` counts every run
    of the step, the first included. A single Claude handler is the original's
    `{claude, max_attempts (3)}` shape: a debug loop on a shell step, handler-then-retry
    (max_attempts - 1 re-runs) on any other step. Other handlers re-run nothing by default.
    """
    attempts = _count(control, "max_attempts", 1, raw, at, ctx)
    retries = _count(control, "max_retries", 0, raw, at, ctx)
    if attempts is not None and retries is not None:
        ctx.problem("give max_attempts or max_retries, not both", at.key(raw, "max_retries"))
        return {}
    if retries is not None:
        return {"max_retries": retries}
    claude_handler = handler is not None and handler.kind == "claude"
    if claude_handler and debug_loop:
        return {"debug_loop": True, "max_attempts": attempts or 3}
    if attempts is None and claude_handler:
        attempts = 3
    if attempts is not None:
        return {"max_retries": attempts - 1}
    return {"max_retries": 1} if control.get("retry_original") is True else {}


def _count(
    control: Mapping[str, Any], key: str, minimum: int, raw: Map, at: At, ctx: Context
) -> int | None:
    if key not in control:
        return None
    value = control[key]
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        reason = f"expected a whole number of at least {minimum}, got {shown(value)}"
        ctx.problem(reason, at.key(raw, key))
        return None
    return value


_VALIDATE_SINGLES = ("shell", "command", "claude")  # one command each, instead of commands:
_VALIDATE_KEYS = model_keys(
    ValidateSpec, unwritten=("scorer",), extra=(*_VALIDATE_SINGLES, *SCORER_KEYS)
)
_VALIDATE_OPTIONS = model_keys(ValidateSpec, unwritten=("commands", "on_incomplete", "scorer"))
_IGNORED_VALIDATE_KEYS = {
    "expected_schema": "results are not checked against a schema yet; check them in the "
    "validation command",
}
_ON_INCOMPLETE_SINGLES = ("shell", "claude")
_ON_INCOMPLETE_KEYS = model_keys(OnIncomplete, extra=_ON_INCOMPLETE_SINGLES)
_ON_INCOMPLETE_OPTIONS = model_keys(OnIncomplete, unwritten=("commands",))


def _validation(raw: object, at: At, ctx: Context) -> ValidateSpec | None:
    if isinstance(raw, Seq):  # `validate: [steps]` shorthand
        return from_steps(ValidateSpec, "commands", raw, at, ctx)
    if not isinstance(raw, Map):
        ctx.problem(
            "expected a mapping with claude:, shell:, commands:, tests:, spec: or quality:, "
            f"got {shown(raw)}",
            at,
        )
        return None
    count = len(ctx.problems)
    fields = known_entries(raw, _VALIDATE_KEYS, at, ctx, ignored=_IGNORED_VALIDATE_KEYS)
    data = {key: fields[key] for key in _VALIDATE_OPTIONS if key in fields}
    data["commands"] = _commands(fields, raw, _VALIDATE_SINGLES, at, ctx)
    data["scorer"] = scorer(fields, raw, at, ctx)
    if fields.get("on_incomplete") is not None:
        data["on_incomplete"] = _on_incomplete(
            fields["on_incomplete"], at.key(raw, "on_incomplete"), ctx
        )
    if ctx.failed_since(count):
        return None
    return build_model(ValidateSpec, data, at, raw, ctx)


def _on_incomplete(raw: object, at: At, ctx: Context) -> OnIncomplete | None:
    if isinstance(raw, Seq):
        return from_steps(OnIncomplete, "commands", raw, at, ctx)
    if not isinstance(raw, Map):
        ctx.problem(f"expected a mapping with claude:, shell: or commands:, got {shown(raw)}", at)
        return None
    count = len(ctx.problems)
    fields = known_entries(raw, _ON_INCOMPLETE_KEYS, at, ctx)
    data = {key: fields[key] for key in _ON_INCOMPLETE_OPTIONS if key in fields}
    data["commands"] = _commands(fields, raw, _ON_INCOMPLETE_SINGLES, at, ctx)
    if ctx.failed_since(count):
        return None
    return build_model(OnIncomplete, data, at, raw, ctx)


def _commands(
    fields: Mapping[str, Any], raw: Map, singles: tuple[str, ...], at: At, ctx: Context
) -> tuple[Step, ...]:
    """`commands: [steps]`, or single `shell:`/`claude:` keys run in the order written (an old
    debtmap.yml gives both: capture the state, then judge it)."""
    given = [key for key in fields if key in singles]
    if "commands" not in fields:
        steps = (_single_command(key, fields[key], at.key(raw, key), ctx) for key in given)
        return tuple(step for step in steps if step is not None)
    if given:
        ctx.problem(f"give commands: or {given[0]}:, not both", at.key(raw, given[0]))
    return step_list(fields["commands"], at.key(raw, "commands"), ctx)


def _single_command(key: str, value: object, at: At, ctx: Context) -> Step | None:
    return text_step("claude" if key == "claude" else "shell", value, at, ctx)


#: Step keys whose value is read by a parser of its own: YAML key -> (Step field, parser).
_NESTED_STEP_FIELDS: dict[str, tuple[str, Callable[[object, At, Context], object]]] = {
    "commit_config": ("commit_message", _commit_message),
    "capture_streams": ("capture_streams", _capture_streams),
    "outputs": ("outputs", legacy_outputs),
    "on_success": ("on_success", parse_step),
    "on_exit_code": ("on_exit_code", _exit_code_steps),
    "retry": ("retry", retry_spec),
    "validate": ("validation", _validation),
    "budget": ("budget", budget_fields),
}
#: Step fields written under another key: commit_config: {message_template}, validate:.
_STEP_SPELLING = {name: key for key, (name, _) in _NESTED_STEP_FIELDS.items() if name != key}
#: The keys every step may have next to its command key: the Step's fields but those the
#: loader fills in (the kind and its payload come from the command key, the line from the
#: position), and `continue_on_error`, another name for allow_failure.
STEP_KEYS = model_keys(
    Step,
    unwritten=("kind", "command", "write_file", "foreach", "goal_seek", "sub_workflows", "line"),
    spelled=_STEP_SPELLING,
    extra=("continue_on_error", "retry_config"),
)
#: The keys of a step, its command's included.
ALL_STEP_KEYS = (*COMMAND_KEYS, *STEP_KEYS)
#: The step keys passed on as written.
_PLAIN_STEP_FIELDS = tuple(
    key
    for key in STEP_KEYS
    if key not in _NESTED_STEP_FIELDS
    and key not in ("on_failure", "continue_on_error", "retry_config")
)
