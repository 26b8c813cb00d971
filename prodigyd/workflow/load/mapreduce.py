"""A MapReduce workflow (reference §2.3): setup, map, reduce and the error policy.

`setup:` runs once in the parent worktree and may capture variables from its commands'
output; `map:` names the work items (a JSON file or a command's output, then json_path,
filter, sort_by, distinct, offset and max_items, checked here with their position) and the
agent_template run for each; `reduce:` runs once after. The error policy may be written
under `error_policy:` or, key by key, at the top level. The rest of the top level is the
standard workflow's (document.py).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from dataclasses import field as dc_field
from typing import Any

from prodigyd.durations import parse_duration
from prodigyd.errors import ProdigyError
from prodigyd.workflow import jsonpath
from prodigyd.workflow.expr import compile_filter
from prodigyd.workflow.items import parse_sort
from prodigyd.workflow.load.diagnostics import Context, build_model, shown
from prodigyd.workflow.load.document import (
    built_workflow,
    named,
    steps_spec,
    workflow_fields,
)
from prodigyd.workflow.load.keys import known_entries, model_keys
from prodigyd.workflow.load.nodes import At, Map
from prodigyd.workflow.load.retry import retry_spec
from prodigyd.workflow.load.steps import budget_fields, step_list
from prodigyd.workflow.model import (
    CaptureOutput,
    CircuitBreaker,
    ErrorPolicy,
    MapSpec,
    SetupSpec,
    Step,
    Workflow,
)

POLICY_KEYS = model_keys(ErrorPolicy)
#: Policy keys that may also stand at the top level (`on_item_failure: dlq`): all but
#: retry_config, which is read under error_policy: only.
_POLICY_SHORTCUTS = model_keys(ErrorPolicy, unwritten=("retry_config",))
#: A MapReduce workflow's keys: the Workflow's but its steps (and `source`, the loader's own).
MAPREDUCE_KEYS = model_keys(Workflow, unwritten=("source", "steps"), extra=_POLICY_SHORTCUTS)
_IGNORED_MAPREDUCE_KEYS = {
    "error_collection": "every failure is reported as it happens and summed up at the end",
}


def is_mapreduce(doc: Map) -> bool:
    """`mode: mapreduce`, or a file with `map:` and no step list (the original's default
    mode for MapReduce files was mapreduce)."""
    mode = doc.get("mode")
    return mode == "mapreduce" or (
        mode is None and "map" in doc and "commands" not in doc and "steps" not in doc
    )


def mapreduce_workflow(doc: Map, ctx: Context) -> Workflow:
    root = At("", doc.mark)
    fields = known_entries(doc, MAPREDUCE_KEYS, root, ctx, ignored=_IGNORED_MAPREDUCE_KEYS)
    for key in ("commands", "steps"):
        if key in doc:
            ctx.problem(
                f"a MapReduce workflow has no {key}: (use setup:, map: and reduce:)",
                root.key(doc, key),
            )
    data = workflow_fields(fields, doc, root, ctx)
    data["mode"] = "mapreduce"
    if fields.get("setup") is not None:
        data["setup"] = _setup(fields["setup"], root.key(doc, "setup"), ctx)
    if "map" in fields:
        data["map"] = _map(fields["map"], root.key(doc, "map"), ctx)
    else:
        hint = "map:\n  input: items.json\n  agent_template:\n    - shell: ..."
        ctx.problem("a MapReduce workflow needs a map: phase", root, hint=hint)
    if fields.get("reduce") is not None:
        data["reduce"] = _phase_steps(fields["reduce"], root.key(doc, "reduce"), ctx)
        _warn_pasted_results(data["reduce"], fields["reduce"], root.key(doc, "reduce"), ctx)
    data["error_policy"] = _error_policy(fields, doc, root, ctx)
    return built_workflow(data, root, doc, ctx)


#: `${map.results}` (or its alias) whole, not one field of it (`${map.results[0].item_id}`).
_WHOLE_RESULTS = re.compile(r"\$\{map\.results(?:_json)?(?::[^}]*)?\}")


def _warn_pasted_results(steps: tuple[Step, ...], raw: object, at: At, ctx: Context) -> None:
    """The book's `echo '${map.results}' | jq ...` fails on Linux, where `sh` is dash: its
    `echo` turns the JSON's `\\n` escapes into newlines, and a `'` in any output ends the
    quoting (it worked where `sh` is bash, as on macOS). Said when the workflow is loaded,
    not when reduce fails after every agent ran."""
    if not isinstance(raw, list):
        return  # the deprecated {commands: [...]}: the steps' places are not this list's
    for index, step in enumerate(steps):
        if step.kind == "shell" and _WHOLE_RESULTS.search(step.command or ""):
            ctx.warn(
                "${map.results} pasted into a shell command breaks on the first newline "
                "or quote in any agent's output (sh's echo turns the JSON's \\n into "
                "newlines); write it to a file with a write_file: step and read the file "
                "(docs/workflows.md, 'After the map phase')",
                at.index(raw, index),
            )


def _phase_steps(raw: object, at: At, ctx: Context) -> tuple[Step, ...]:
    """A phase's steps: a list, or the deprecated `{commands: [...]}` (warned about)."""
    if isinstance(raw, Map):
        fields = known_entries(raw, ("commands",), at, ctx)
        if "commands" not in fields:
            ctx.problem("expected a list of steps or {commands: [...]}", at)
            return ()
        ctx.warn(f"{at.path}: {{commands: [...]}} is deprecated; give the list of steps", at)
        return step_list(fields["commands"], at.key(raw, "commands"), ctx)
    return step_list(raw, at, ctx)


def _setup(raw: object, at: At, ctx: Context) -> SetupSpec | None:
    """`setup: [steps]` or `{commands: [...], timeout, capture_outputs: {VAR: index|{...}}}`."""
    return steps_spec(SetupSpec, raw, at, ctx, {"capture_outputs": _setup_captures})


def _setup_captures(raw: object, at: At, ctx: Context) -> dict[str, CaptureOutput]:
    return named(raw, at, ctx, "capture", _capture_output)


def _capture_output(raw: object, at: At, ctx: Context) -> CaptureOutput | None:
    if isinstance(raw, int) and not isinstance(raw, bool):
        raw_fields: dict[str, Any] = {"command_index": raw}
        return build_model(CaptureOutput, raw_fields, at, raw, ctx)
    if not isinstance(raw, Map):
        ctx.problem(f"expected a command index or {{command_index: N, ...}}, got {shown(raw)}", at)
        return None
    return build_model(CaptureOutput, known_entries(raw, _CAPTURE_KEYS, at, ctx), at, raw, ctx)


_CAPTURE_KEYS = model_keys(CaptureOutput)
MAP_KEYS = model_keys(MapSpec, unwritten=("timeout_action",), extra=("timeout_config",))


def _map(raw: object, at: At, ctx: Context) -> MapSpec | None:
    if not isinstance(raw, Map):
        ctx.problem(f"expected a mapping with input: and agent_template:, got {shown(raw)}", at)
        return None
    count = len(ctx.problems)
    fields = known_entries(raw, MAP_KEYS, at, ctx)
    data = {key: value for key, value in fields.items() if key not in _MAP_BUILT}
    timeouts = _TimeoutConfig()
    if fields.get("timeout_config") is not None:
        timeouts = _timeout_config(fields["timeout_config"], at.key(raw, "timeout_config"), ctx)
        data.setdefault("agent_timeout_secs", timeouts.agent)
        data["timeout_action"] = timeouts.action
    for key in ("input", "json_path", "filter", "sort_by", "distinct"):
        if key in data and not isinstance(data[key], str):
            ctx.problem(f"expected text, got {shown(data[key])}", at.key(raw, key))
    _check_item_pipeline(data, raw, at, ctx)
    if fields.get("budget") is not None:
        data["budget"] = budget_fields(fields["budget"], at.key(raw, "budget"), ctx)
    if "agent_template" in fields:
        here = at.key(raw, "agent_template")
        steps = _phase_steps(fields["agent_template"], here, ctx)
        if timeouts.policy == "per_command":
            data["agent_template"] = _per_command(
                steps, data.pop("agent_timeout_secs", None), at, ctx
            )
        else:
            data["agent_template"] = _command_timeouts(steps, timeouts.commands)
    if ctx.failed_since(count):
        return None
    return build_model(MapSpec, data, at, raw, ctx)


_MAP_BUILT = ("agent_template", "timeout_config", "budget")  # read by _map, not passed as written


@dataclass
class _TimeoutConfig:
    """`timeout_config:` of the original (its book, "Timeout Configuration")."""

    agent: object = 600  # agent_timeout_secs: 600 once the block exists
    policy: str = "per_agent"  # per_agent | per_command | hybrid
    commands: dict[str, float] = dc_field(default_factory=dict)  # command_timeouts
    action: str = "dlq"


_TIMEOUT_CHOICES = {
    "timeout_policy": ("per_agent", "per_command", "hybrid"),
    "timeout_action": ("dlq", "skip", "fail", "graceful_terminate"),
}
_IGNORED_TIMEOUT_KEYS = {
    "cleanup_grace_period_secs": "a timed-out agent's processes are stopped at once",
}
_COMMAND_TIMEOUT_KEY = re.compile(r"(claude|shell|write_file|foreach)(?:_(\d+))?")


def _timeout_config(raw: object, at: At, ctx: Context) -> _TimeoutConfig:
    config = _TimeoutConfig()
    if not isinstance(raw, Map):
        ctx.problem(f"expected a mapping, got {shown(raw)}", at)
        return config
    keys = ("agent_timeout_secs", *_TIMEOUT_CHOICES, "command_timeouts", "enable_monitoring")
    fields = known_entries(raw, keys, at, ctx, ignored=_IGNORED_TIMEOUT_KEYS)
    config.agent = fields.get("agent_timeout_secs", config.agent)
    for key, choices in _TIMEOUT_CHOICES.items():
        if key in fields and fields[key] not in choices:
            ctx.problem(
                f"expected one of {', '.join(choices)}, got {shown(fields[key])}", at.key(raw, key)
            )
    config.policy = fields.get("timeout_policy", config.policy)
    action = fields.get("timeout_action", config.action)
    if action == "graceful_terminate":
        ctx.warn(
            "timeout_action: graceful_terminate is dlq here (processes are stopped at once)",
            at.key(raw, "timeout_action"),
        )
        action = "dlq"
    config.action = action
    commands = fields.get("command_timeouts")
    if isinstance(commands, Map):
        here = at.key(raw, "command_timeouts")
        for name, value in commands.items():
            if not _COMMAND_TIMEOUT_KEY.fullmatch(str(name)):
                ctx.problem(
                    f"expected a step kind (claude, shell) or KIND_N, got {shown(name)}",
                    here.key(commands, name),
                )
                continue
            try:
                config.commands[str(name)] = parse_duration(value)
            except ValueError as exc:
                ctx.problem(str(exc), here.key(commands, name))
    elif commands is not None:
        ctx.problem(
            f"expected a mapping of command: seconds, got {shown(commands)}",
            at.key(raw, "command_timeouts"),
        )
    return config


def _command_timeouts(steps: tuple[Step, ...], timeouts: Mapping[str, float]) -> tuple[Step, ...]:
    """`command_timeouts`: `claude_0` is the first claude step's timeout, `claude` every
    claude step's; a step's own `timeout:` wins."""
    seen: dict[str, int] = {}
    timed = []
    for step in steps:
        index = seen[step.kind] = seen.get(step.kind, -1) + 1
        limit = timeouts.get(f"{step.kind}_{index}", timeouts.get(step.kind))
        if step.timeout is None and limit:
            step = step.model_copy(update={"timeout": limit})
        timed.append(step)
    return tuple(timed)


def _per_command(steps: tuple[Step, ...], agent: object, at: At, ctx: Context) -> tuple[Step, ...]:
    """`timeout_policy: per_command`: each step gets agent_timeout_secs, the agent none."""
    try:
        limit = parse_duration(agent) if agent is not None else None
    except ValueError:
        ctx.problem("timeout_policy per_command needs agent_timeout_secs in seconds", at)
        return steps
    return _command_timeouts(steps, {kind: limit for kind in ("claude", "shell")} if limit else {})


def _check_item_pipeline(data: Mapping[str, Any], raw: Map, at: At, ctx: Context) -> None:
    """Syntax of json_path, filter and sort_by, checked at load time with their position."""
    checks: dict[str, Callable[[str], object]] = {
        "json_path": jsonpath.check,
        "filter": compile_filter,
        "sort_by": parse_sort,
    }
    for key, check in checks.items():
        if isinstance(data.get(key), str) and data[key].strip():
            try:
                check(data[key])
            except ProdigyError as exc:
                here = at.key(raw, key)
                ctx.problem(exc.message, here, hint=exc.hint, details=exc.details, code=exc.code)


def _error_policy(fields: dict[str, Any], doc: Map, root: At, ctx: Context) -> object:
    """`error_policy: {...}` merged with the top-level shortcuts (`on_item_failure: dlq`);
    one key given both ways with two values is a problem, not a silent choice (with one
    value, as the book's MapReduce reference writes them, it is that value)."""
    data: dict[str, Any] = {}
    raw = fields.get("error_policy")
    here = root.key(doc, "error_policy")
    if raw is not None:
        if isinstance(raw, Map):
            ignored = {"error_collection": _IGNORED_MAPREDUCE_KEYS["error_collection"]}
            data.update(known_entries(raw, POLICY_KEYS, here, ctx, ignored=ignored))
        else:
            ctx.problem(f"expected a mapping, got {shown(raw)}", here)
    for key in _POLICY_SHORTCUTS:
        if key in fields:
            if key in data and data[key] != fields[key]:
                ctx.problem(
                    f"{key} is given both here ({shown(fields[key])}) and under error_policy: "
                    f"({shown(data[key])})",
                    root.key(doc, key),
                )
            data[key] = fields[key]
    if "retry_config" in data:  # item retries start at once unless it says otherwise
        retry = retry_spec(data.pop("retry_config"), here.key(raw, "retry_config"), ctx, _AT_ONCE)
        if retry is not None:
            data["retry_config"] = retry
    if isinstance(data.get("circuit_breaker"), Map):
        breaker = data["circuit_breaker"]
        if "circuit_breaker" in fields:  # the top-level shortcut's, which wins
            at = root.key(doc, "circuit_breaker")
        else:
            at = here.key(raw, "circuit_breaker")
        data["circuit_breaker"] = known_entries(breaker, _BREAKER_KEYS, at, ctx)
    policy = build_model(
        ErrorPolicy,
        data,
        here if raw is not None else root,
        raw or doc,
        ctx,
    )
    return policy if policy is not None else ErrorPolicy()


_AT_ONCE = {"initial_delay": 0}


_BREAKER_KEYS = model_keys(CircuitBreaker)
