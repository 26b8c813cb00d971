"""The top level of a workflow file: its shape, its mode, and the keys both modes share.

A workflow is a list of steps, or a mapping with `commands:` (or `steps:`); that is a
standard workflow, built here. A MapReduce one (mapreduce.py) shares the rest of the top
level, read here for both: name, env (plain, secret, or refused by name when it is a form
not supported yet), secrets, env_files, profiles, merge and the `on:` triggers. Unknown
modes are refused up front, by name, rather than half run. A composed workflow (imports,
extends, templates, sub-workflows) reaches these parsers already resolved into one
document (prodigyd.workflow.compose).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any, TypeVar, get_args

from pydantic import BaseModel

from prodigyd import errorcodes
from prodigyd.errors import Location, WorkflowError
from prodigyd.workflow.load.diagnostics import SHAPES_HINT, Context, build_model, shown
from prodigyd.workflow.load.keys import did_you_mean, known_entries, model_keys
from prodigyd.workflow.load.nodes import At, Map, Seq
from prodigyd.workflow.load.retry import retry_spec
from prodigyd.workflow.load.steps import (
    COMMAND_KEYS,
    budget_fields,
    check_expression,
    from_steps,
    step_list,
)
from prodigyd.workflow.model import (
    EnvFile,
    EnvValue,
    MergeSpec,
    Profile,
    RetrySpec,
    SecretSpec,
    Step,
    Trigger,
    TriggerEvent,
    Workflow,
    every_step,
)

_M = TypeVar("_M", bound=BaseModel)

#: What only a MapReduce workflow has (mapreduce.py reads it).
MAPREDUCE_PHASES = ("setup", "map", "reduce", "error_policy")
#: A standard workflow's keys; `source` is the loader's own, `steps:` is also `commands:`.
TOP_KEYS = model_keys(Workflow, unwritten=("source", *MAPREDUCE_PHASES), extra=("commands",))


def standard_workflow(doc: object, ctx: Context, *, lead: tuple[Step, ...] = ()) -> Workflow:
    """A list of steps, or a mapping with `commands:` (or `steps:`) and the shared keys;
    `lead` (its sub-workflows) runs before its own steps, which it may then do without."""
    if doc is None:
        raise empty_error(ctx.source)
    steps_raw: object  # checked by step_list
    if isinstance(doc, Seq):
        fields: dict[str, Any] = {}
        steps_raw, steps_at = doc, At("commands", doc.mark)
    elif isinstance(doc, Map):
        fields = known_entries(doc, TOP_KEYS, At("", doc.mark), ctx)
        if lead and "commands" not in doc and "steps" not in doc:
            return built_workflow(
                {**workflow_fields(fields, doc, At("", doc.mark), ctx), "steps": lead},
                At("", doc.mark),
                doc,
                ctx,
            )
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
    return built_workflow({**data, "steps": (*lead, *steps)}, root, doc, ctx)


def built_workflow(data: dict[str, Any], root: At, doc: object, ctx: Context) -> Workflow:
    """The Workflow of the parsed parts. The problems found in them are raised first: a
    broken step is one problem, not also "a standard workflow needs at least one step"."""
    ctx.raise_problems()
    workflow = build_model(Workflow, {**data, "source": ctx.source}, root, doc, ctx)
    ctx.raise_problems()
    assert workflow is not None  # build_model returns None only after recording a problem
    _secrets_come_last(workflow, doc, root, ctx)
    ctx.raise_problems()
    return workflow


def _secrets_come_last(workflow: Workflow, doc: object, root: At, ctx: Context) -> None:
    """A `secrets:` entry is applied after every other value (env.py), so another value of
    the same name would never be seen: that is a mistake to report, not to run."""
    names = set(workflow.secrets)
    if not names or not isinstance(doc, Map):
        return
    hint = "secrets are applied last; rename one of them"
    blocks: list[tuple[Map, At]] = []
    if isinstance(doc.get("env"), Map):
        blocks.append((doc["env"], root.key(doc, "env")))
    profiles = doc.get("profiles")
    if isinstance(profiles, Map):
        for name, profile in profiles.items():
            if isinstance(profile, Map):
                blocks.append((profile, root.key(doc, "profiles").key(profiles, name)))
    for block, at in blocks:
        for name in names.intersection(block):
            ctx.problem(
                f"{name} is also a secret, which replaces it", at.key(block, name), hint=hint
            )
    merge = workflow.merge.steps if workflow.merge else ()
    for step in every_step((*workflow.phase_steps, *merge)):
        for name in sorted(names.intersection(step.env)):
            here = At(f"env.{name}", (step.line, 1) if step.line else None)
            message = f"{name} is also a secret, which replaces this step's value"
            ctx.problem(message, here, hint=hint)


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
        _misspelt_steps(doc, root, ctx)
        raise WorkflowError(
            "the workflow has no steps (expected commands: or steps:)",
            location=root.location(ctx.source),
            hint=_no_steps_hint(doc),
        )
    return doc[key], root.key(doc, key)


def _misspelt_steps(doc: Map, root: At, ctx: Context) -> None:
    """A misspelt `comands:` is why there are no steps: the error says so, at that key. Its
    unknown-key warning alone would never be seen, as the load fails."""
    for key in doc:
        suggestion = "" if key in _MEANT_AS_WRITTEN else did_you_mean(key, _STEPS_KEYS)
        if suggestion:
            raise WorkflowError(
                f"the workflow has no steps: unknown key '{key}'{suggestion}",
                location=root.key(doc, key).location(ctx.source),
                hint="the steps go in a list under commands: (or steps:)",
                code=errorcodes.UNKNOWN_FIELD,
            )


_STEPS_KEYS = ("commands", "steps")
#: Keys that are no misspelling: known ones, a MapReduce phase, and a step's own (`command:`,
#: `shell:`: _no_steps_hint tells that a single step still goes in a list).
_MEANT_AS_WRITTEN = frozenset((*TOP_KEYS, *MAPREDUCE_PHASES, *COMMAND_KEYS))


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
    """`KEY: text`, `{value, secret}`, `{command, cache}`, `{condition, when_true,
    when_false}`, or per-profile `{default: X, prod: Y}` (a mapping of none of those keys)."""
    if isinstance(raw, str | int | float):
        return EnvValue.model_validate({"value": raw})  # numbers and booleans become text
    if not isinstance(raw, Map):
        ctx.problem(f"expected a string or {{value: ..., secret: true}}, got {shown(raw)}", at)
        return None
    if not any(key in raw for key in _ENV_FORMS):
        return _per_profile(raw, at, ctx)
    fields = known_entries(raw, _ENV_VALUE_KEYS, at, ctx)
    if isinstance(fields.get("condition"), str):
        check_expression(fields["condition"], at.key(raw, "condition"), ctx)
    return build_model(EnvValue, fields, at, raw, ctx)


def _per_profile(raw: Map, at: At, ctx: Context) -> EnvValue | None:
    """`{default: X, prod: Y}`; `secret: true` beside them, or a profile's value written
    `{secret: true, value: ...}`, makes the value a secret."""
    values: dict[str, object] = {}
    secret = raw.get("secret") is True
    for name, value in raw.items():
        here = at.key(raw, name)
        if name == "secret":
            continue
        if isinstance(value, Map) and "value" in value:
            fields = known_entries(value, ("value", "secret"), here, ctx)
            secret = secret or fields.get("secret") is True
            value = fields["value"]
        if isinstance(value, str | int | float):  # booleans too
            values[str(name)] = value
        else:
            ctx.problem(f"expected the text for profile {name}, got {shown(value)}", here)
    return build_model(EnvValue, {"by_profile": values, "secret": secret}, at, raw, ctx)


#: The keys that make a mapping one of the other forms, not a per-profile one.
_ENV_FORMS = ("value", "command", "condition", "when_true", "when_false", "cache")
_ENV_VALUE_KEYS = model_keys(EnvValue, unwritten=("by_profile",))


def _secrets(raw: object, at: At, ctx: Context) -> dict[str, SecretSpec]:
    return named(raw, at, ctx, "secret", _secret)


#: A secret given as text names the variable holding it: NAME, $NAME, ${NAME}, ${env:NAME}.
_SECRET_REFERENCE = re.compile(
    r"(?P<bare>[A-Za-z_][A-Za-z0-9_]*)|\$(?P<plain>[A-Za-z_][A-Za-z0-9_]*)"
    r"|\$\{(?:env[:.])?(?P<braced>[A-Za-z_][A-Za-z0-9_]*)\}"
)
_PROVIDER_REFERENCE = re.compile(r"\$\{(?P<provider>[A-Za-z_]+):.*\}")


def _secret(raw: object, at: At, ctx: Context) -> SecretSpec | None:
    if isinstance(raw, str):
        return _secret_reference(raw, at, ctx)
    if not isinstance(raw, Map):
        ctx.problem(f"expected a string or {{provider: env, key: NAME}}, got {shown(raw)}", at)
        return None
    if "provider" not in raw:  # {secret: true, value: ...}: an inline value
        fields = known_entries(raw, ("secret", "value"), at, ctx)
        fields.pop("secret", None)
    elif raw["provider"] in ("env", "file", "literal"):
        fields = known_entries(raw, _SECRET_KEYS, at, ctx)
    else:
        _unsupported_provider(raw["provider"], at.key(raw, "provider"), ctx)
        return None
    return build_model(SecretSpec, fields, at, raw, ctx)


def _secret_reference(text: str, at: At, ctx: Context) -> SecretSpec | None:
    """The original's `secrets: {KEY: ENV_NAME}`: the value is that environment variable's."""
    match = _SECRET_REFERENCE.fullmatch(text.strip())
    if match is not None:
        return SecretSpec(provider="env", key=match["bare"] or match["plain"] or match["braced"])
    provider = _PROVIDER_REFERENCE.fullmatch(text.strip())
    if provider is not None:
        _unsupported_provider(provider["provider"], at, ctx)
        return None
    ctx.problem(
        f"a secret given as text names the environment variable holding it, got {shown(text)}",
        at,
        hint="write the variable's name (MY_TOKEN or ${env:MY_TOKEN}), or an inline value "
        'as {value: "..."}',
    )
    return None


def _unsupported_provider(name: object, at: At, ctx: Context) -> None:
    ctx.problem(
        f"secret provider {shown(name)} is not supported; only env, file and literal are",
        at,
        hint="export the secret into the environment and name it: {provider: env, key: NAME}",
    )


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


def _env_files(raw: object, at: At, ctx: Context) -> tuple[EnvFile, ...]:
    """A path, a list of paths, or `{path, required}` entries."""
    entries = [(raw, at)] if isinstance(raw, str) else None
    if isinstance(raw, Seq):
        entries = [(item, at.index(raw, index)) for index, item in enumerate(raw)]
    if entries is None:
        ctx.problem(f"expected a path or a list of paths, got {shown(raw)}", at)
        return ()
    files = []
    for item, here in entries:
        fields: dict[str, Any] = {"path": item}
        if isinstance(item, Map):
            fields = known_entries(item, _ENV_FILE_KEYS, here, ctx)
        elif not isinstance(item, str):
            ctx.problem(
                f"expected a path or {{path: ..., required: true}}, got {shown(item)}", here
            )
            continue
        built = build_model(EnvFile, fields, here, item, ctx)
        if built is not None:
            files.append(built)
    return tuple(files)


_ENV_FILE_KEYS = model_keys(EnvFile)


def _retry_defaults(raw: object, at: At, ctx: Context) -> RetrySpec | None:
    return retry_spec(raw, at, ctx)


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
    if not raw_items:  # `on: []`, `on: {}`: a trigger section that fires on nothing
        ctx.problem(
            f"expected at least one event (events: {', '.join(_TRIGGER_EVENTS)}); leave on: "
            "out for a workflow no git event runs",
            at,
        )
        return ()
    triggers = []
    seen: set[object] = set()
    for event, options, here in raw_items:
        if event not in _TRIGGER_EVENTS:
            ctx.problem(
                f"unknown event {shown(event)} (events: {', '.join(_TRIGGER_EVENTS)})", here
            )
            continue
        if event in seen:  # `on: [commit, commit]`: one run, listed twice
            ctx.problem(f"{event} is given twice: give each event once, with all its options", here)
            continue
        seen.add(event)
        fields: dict[str, Any] = {}
        if isinstance(options, Map):
            fields = known_entries(options, _TRIGGER_KEYS, here, ctx, strict=_TRIGGER_STRICT)
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
#: An unknown key in a trigger is an error, never a warning: a trigger fires on what its
#: options do not rule out, so one misspelt (`pathz:`, `branchs:`) would run the workflow
#: on every commit. (`on:` is prodigy's own: no original workflow has one.)
_TRIGGER_STRICT = (
    f"a trigger's options are {', '.join(_TRIGGER_KEYS)}; one ignored would let it fire "
    "on more than you meant"
)
_GLOB_LISTS = tuple(
    name for name, info in Trigger.model_fields.items() if info.annotation == tuple[str, ...]
)

_TOP_BUILDERS: dict[str, Callable[[object, At, Context], object]] = {
    "env": _env_map,
    "secrets": _secrets,
    "profiles": _profiles,
    "env_files": _env_files,
    "retry_defaults": _retry_defaults,
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
