"""The top level of a workflow file: its shape, its mode, and the keys both modes share.

A workflow is a list of steps, or a mapping with `commands:` (or `steps:`); that is a
standard workflow, built here. A MapReduce one (mapreduce.py) shares the rest of the top
level, read here for both: name, env (plain, secret, or refused by name when it is a form
not supported yet), secrets, env_files, profiles, merge and the `on:` triggers. Composed
workflows (imports, extends, templates) and unknown modes are refused up front, by name,
rather than half run.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, TypeVar, get_args

from pydantic import BaseModel

from prodigyd.errors import Location, WorkflowError
from prodigyd.workflow.load.diagnostics import SHAPES_HINT, Context, build_model, shown
from prodigyd.workflow.load.keys import known_entries, model_keys
from prodigyd.workflow.load.nodes import At, Map, Seq
from prodigyd.workflow.load.steps import COMMAND_KEYS, budget_fields, from_steps, step_list
from prodigyd.workflow.model import (
    EnvValue,
    MergeSpec,
    Profile,
    SecretSpec,
    Trigger,
    TriggerEvent,
    Workflow,
)

_M = TypeVar("_M", bound=BaseModel)

#: What only a MapReduce workflow has (mapreduce.py reads it).
MAPREDUCE_PHASES = ("setup", "map", "reduce", "error_policy")
#: A standard workflow's keys; `source` is the loader's own, `steps:` is also `commands:`.
_TOP_KEYS = model_keys(Workflow, unwritten=("source", *MAPREDUCE_PHASES), extra=("commands",))
_COMPOSITION_KEYS = ("imports", "extends", "template", "parameters", "workflows")
IGNORED_TOP_KEYS = {"retry_defaults": "it is not applied; give each step its own retry:"}


def standard_workflow(doc: object, ctx: Context) -> Workflow:
    """A list of steps, or a mapping with `commands:` (or `steps:`) and the shared keys."""
    if doc is None:
        raise empty_error(ctx.source)
    steps_raw: object  # checked by step_list
    if isinstance(doc, Seq):
        fields: dict[str, Any] = {}
        steps_raw, steps_at = doc, At("commands", doc.mark)
    elif isinstance(doc, Map):
        fields = known_entries(doc, _TOP_KEYS, At("", doc.mark), ctx, ignored=IGNORED_TOP_KEYS)
        steps_raw, steps_at = _steps_of(doc, ctx)
    else:
        raise WorkflowError(
            f"a workflow must be a list of steps or a mapping, got {shown(doc)}",
            location=Location(ctx.source, *ctx.root_mark),
            hint=SHAPES_HINT,
        )
    root = At("", doc.mark)
    steps = step_list(steps_raw, steps_at, ctx, top=True)
    data = workflow_fields(fields, doc, root, ctx)
    return built_workflow({**data, "steps": steps}, root, doc, ctx)


def built_workflow(data: dict[str, Any], root: At, doc: object, ctx: Context) -> Workflow:
    """The Workflow of the parsed parts. The problems found in them are raised first: a
    broken step is one problem, not also "a standard workflow needs at least one step"."""
    ctx.raise_problems()
    workflow = build_model(Workflow, {**data, "source": ctx.source}, root, doc, ctx)
    ctx.raise_problems()
    assert workflow is not None  # build_model returns None only after recording a problem
    return workflow


def empty_error(source: str) -> WorkflowError:
    return WorkflowError(
        "the workflow file is empty", location=Location(source, 1, 1), hint=SHAPES_HINT
    )


def refuse_unsupported(doc: Map, ctx: Context) -> None:
    """Modes and features that would otherwise half-run: refuse them up front, by name."""
    root = At("", doc.mark)
    mode = doc.get("mode", "standard")
    if mode not in ("standard", "mapreduce"):
        raise WorkflowError(
            f"unknown mode {shown(mode)}",
            location=root.key(doc, "mode").location(ctx.source),
            hint="mode is standard (the default) or mapreduce",
        )
    for key in _COMPOSITION_KEYS:
        if key in doc:
            raise WorkflowError(
                f"composed workflows are not supported yet (found {key}:)",
                location=root.key(doc, key).location(ctx.source),
            )


def _steps_of(doc: Map, ctx: Context) -> tuple[object, At]:
    root = At("", doc.mark)
    if "commands" in doc and "steps" in doc:
        first, second = (root.key(doc, key) for key in ("commands", "steps"))
        raise WorkflowError(
            f"both commands: (line {first.line}) and steps: (line {second.line}) are given",
            location=second.location(ctx.source),
            hint="steps: is another name for commands:; keep one list",
        )
    key = "steps" if "steps" in doc else "commands"
    if key not in doc:
        raise WorkflowError(
            "the workflow has no steps (expected commands: or steps:)",
            location=root.location(ctx.source),
            hint=_no_steps_hint(doc),
        )
    return doc[key], root.key(doc, key)


def _no_steps_hint(doc: Map) -> str:
    if any(key in doc for key in COMMAND_KEYS):
        return "a single step still goes in a list:\ncommands:\n  - shell: ..."
    return SHAPES_HINT


def workflow_fields(fields: dict[str, Any], doc: object, root: At, ctx: Context) -> dict[str, Any]:
    """The Workflow fields both modes share, from the top-level `fields`."""
    data = {key: fields[key] for key in _PLAIN_TOP_FIELDS if key in fields}
    for key, build in _TOP_BUILDERS.items():
        if fields.get(key) is not None:
            data[key] = build(fields[key], root.key(doc, key), ctx)
    return data


_T = TypeVar("_T")


def named(
    raw: object,
    at: At,
    ctx: Context,
    what: str,
    build: Callable[[object, At, Context], _T | None],
) -> dict[str, _T]:
    """A `NAME: entry` mapping, each entry built by `build`; broken entries are left out."""
    if not isinstance(raw, Map):
        ctx.problem(f"expected a mapping of NAME: {what}, got {shown(raw)}", at)
        return {}
    entries = {str(name): build(value, at.key(raw, name), ctx) for name, value in raw.items()}
    return {name: entry for name, entry in entries.items() if entry is not None}


def _env_map(raw: object, at: At, ctx: Context) -> dict[str, EnvValue]:
    return named(raw, at, ctx, "value", _env_value)


def _env_value(raw: object, at: At, ctx: Context) -> EnvValue | None:
    """`KEY: value` or `KEY: {value, secret}`; the documented dynamic forms are refused by name
    rather than dropped, so nobody runs with an env var that silently is not there."""
    if isinstance(raw, str | int | float):
        return EnvValue.model_validate({"value": raw})  # numbers and booleans become text
    if not isinstance(raw, Map):
        ctx.problem(f"expected a string or {{value: ..., secret: true}}, got {shown(raw)}", at)
        return None
    if "command" in raw:
        hint = "compute the value in a shell step with capture: NAME"
        ctx.problem("dynamic env values ({command: ...}) are not supported yet", at, hint=hint)
    elif "condition" in raw:
        ctx.problem("conditional env values ({condition: ...}) are not supported yet", at)
    elif "value" not in raw and "secret" not in raw:
        hint = "put them under profiles: <name>: instead"
        ctx.problem("per-profile env values are not supported yet", at, hint=hint)
    else:
        fields = known_entries(raw, _ENV_VALUE_KEYS, at, ctx)
        return build_model(EnvValue, fields, at, raw, ctx)
    return None


_ENV_VALUE_KEYS = model_keys(EnvValue)


def _secrets(raw: object, at: At, ctx: Context) -> dict[str, SecretSpec]:
    return named(raw, at, ctx, "secret", _secret)


def _secret(raw: object, at: At, ctx: Context) -> SecretSpec | None:
    if isinstance(raw, str):
        return SecretSpec(value=raw)
    if not isinstance(raw, Map):
        ctx.problem(f"expected a string or {{provider: env, key: NAME}}, got {shown(raw)}", at)
        return None
    if "provider" not in raw:  # {secret: true, value: ...}: an inline value
        fields = known_entries(raw, ("secret", "value"), at, ctx)
        fields.pop("secret", None)
    elif raw["provider"] in ("env", "file", "literal"):
        fields = known_entries(raw, _SECRET_KEYS, at, ctx)
    else:
        ctx.problem(
            f"secret provider {shown(raw['provider'])} is not supported; "
            "only env, file and literal are",
            at.key(raw, "provider"),
        )
        return None
    return build_model(SecretSpec, fields, at, raw, ctx)


_SECRET_KEYS = model_keys(SecretSpec)


def _profiles(raw: object, at: At, ctx: Context) -> dict[str, Profile]:
    if not isinstance(raw, Map):
        ctx.problem(f"expected a mapping of profile names, got {shown(raw)}", at)
        return {}
    entries = {str(name): _profile(value, at.key(raw, name), ctx) for name, value in raw.items()}
    return {name: entry for name, entry in entries.items() if entry is not None}


def _profile(raw: object, at: At, ctx: Context) -> Profile | None:
    """`{description, KEY: value, ...}` as the original writes it; a nested `env:` works too."""
    if not isinstance(raw, Map):
        ctx.problem(f"expected a mapping of NAME: value, got {shown(raw)}", at)
        return None
    env: dict[str, EnvValue] = {}
    for key, value in raw.items():
        if key == "env" and isinstance(value, Map):
            env.update(_env_map(value, at.key(raw, key), ctx))
        elif key != "description":
            entry = _env_value(value, at.key(raw, key), ctx)
            if entry is not None:
                env[str(key)] = entry
    return build_model(Profile, {"description": raw.get("description"), "env": env}, at, raw, ctx)


def _env_files(raw: object, at: At, ctx: Context) -> object:
    return (raw,) if isinstance(raw, str) else raw


def _merge(raw: object, at: At, ctx: Context) -> MergeSpec | None:
    """`merge:` as a list of steps, or `{commands: [...], timeout: N}`."""
    return steps_spec(MergeSpec, raw, at, ctx)


def steps_spec(
    model: type[_M],
    raw: object,
    at: At,
    ctx: Context,
    builders: Mapping[str, Callable[[object, At, Context], object]] | None = None,
) -> _M | None:
    """A phase given as a list of steps or as `{commands: [...], timeout, ...}` (merge,
    setup): the model's fields, its `steps` written `commands:`; `builders` read the fields
    that are more than a value."""
    if isinstance(raw, Seq):
        return from_steps(model, "steps", raw, at, ctx)
    if not isinstance(raw, Map):
        ctx.problem(f"expected a list of steps or {{commands: [...]}}, got {shown(raw)}", at)
        return None
    builders = builders or {}
    count = len(ctx.problems)
    fields = known_entries(raw, model_keys(model, spelled=_STEPS_AS_COMMANDS), at, ctx)
    data = {
        key: value for key, value in fields.items() if key != "commands" and key not in builders
    }
    data["steps"] = ()
    if "commands" in fields:
        data["steps"] = step_list(fields["commands"], at.key(raw, "commands"), ctx)
    for key, build in builders.items():
        if fields.get(key) is not None:
            data[key] = build(fields[key], at.key(raw, key), ctx)
    if ctx.failed_since(count):
        return None
    return build_model(model, data, at, raw, ctx, renames=_STEPS_AS_COMMANDS)


_STEPS_AS_COMMANDS = {"steps": "commands"}


def _triggers(raw: object, at: At, ctx: Context) -> tuple[Trigger, ...]:
    """`on:` as an event (`on: commit`), a list of events, or `{event: {options}}`."""
    if isinstance(raw, str):
        raw_items: list[tuple[object, object, At]] = [(raw, None, at)]
    elif isinstance(raw, Seq):
        raw_items = [(item, None, at.index(raw, i)) for i, item in enumerate(raw)]
    elif isinstance(raw, Map):
        raw_items = [(event, options, at.key(raw, event)) for event, options in raw.items()]
    else:
        ctx.problem(f"expected an event, a list of events or a mapping, got {shown(raw)}", at)
        return ()
    triggers = []
    for event, options, here in raw_items:
        if event not in _TRIGGER_EVENTS:
            ctx.problem(
                f"unknown event {shown(event)} (events: {', '.join(_TRIGGER_EVENTS)})", here
            )
            continue
        fields: dict[str, Any] = {}
        if isinstance(options, Map):
            fields = known_entries(options, _TRIGGER_KEYS, here, ctx)
            for key in _GLOB_LISTS:  # one glob may stand for a list of one
                if isinstance(fields.get(key), str):
                    fields[key] = (fields[key],)
        elif options is not None:
            ctx.problem(
                f"expected {event}: {{{', '.join(_TRIGGER_KEYS)}}}, got {shown(options)}", here
            )
            continue
        trigger = build_model(Trigger, {"event": event, **fields}, here, options, ctx)
        if trigger is not None:
            triggers.append(trigger)
    return tuple(triggers)


_TRIGGER_EVENTS = get_args(TriggerEvent)
_TRIGGER_KEYS = model_keys(Trigger, unwritten=("event",))
_GLOB_LISTS = tuple(
    name for name, info in Trigger.model_fields.items() if info.annotation == tuple[str, ...]
)

_TOP_BUILDERS: dict[str, Callable[[object, At, Context], object]] = {
    "env": _env_map,
    "secrets": _secrets,
    "profiles": _profiles,
    "env_files": _env_files,
    "merge": _merge,
    "on": _triggers,
    "budget": budget_fields,
}
#: Shared top-level fields that are just a value.
_PLAIN_TOP_FIELDS = tuple(
    key
    for key in model_keys(Workflow, unwritten=("source", "mode", "steps", *MAPREDUCE_PHASES))
    if key not in _TOP_BUILDERS
)
