"""A MapReduce workflow (reference §2.3): setup, map, reduce and the error policy.

`setup:` runs once in the parent worktree and may capture variables from its commands'
output; `map:` names the work items (a JSON file or a command's output, then json_path,
filter, sort_by, distinct, offset and max_items, checked here with their position) and the
agent_template run for each; `reduce:` runs once after. The error policy may be written
under `error_policy:` or, key by key, at the top level. The rest of the top level is the
standard workflow's (document.py).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from prodigyd.errors import ProdigyError
from prodigyd.workflow import jsonpath
from prodigyd.workflow.expr import compile_filter
from prodigyd.workflow.items import parse_sort
from prodigyd.workflow.load.diagnostics import Context, build_model, shown
from prodigyd.workflow.load.document import (
    IGNORED_TOP_KEYS,
    built_workflow,
    named,
    steps_spec,
    workflow_fields,
)
from prodigyd.workflow.load.keys import known_entries, model_keys
from prodigyd.workflow.load.nodes import At, Map
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

#: `error_policy:` as written under it: `retry_attempts` is `retry_config: {max_attempts}`.
_POLICY_SPELLING = {"retry_attempts": "retry_config"}
_POLICY_KEYS = model_keys(ErrorPolicy, spelled=_POLICY_SPELLING)
#: Policy keys that may also stand at the top level (`on_item_failure: dlq`): all but
#: retry_config, which is read under error_policy: only.
_POLICY_SHORTCUTS = model_keys(ErrorPolicy, unwritten=("retry_attempts",))
#: A MapReduce workflow's keys: the Workflow's but its steps (and `source`, the loader's own).
_MAPREDUCE_KEYS = model_keys(Workflow, unwritten=("source", "steps"), extra=_POLICY_SHORTCUTS)
_IGNORED_MAPREDUCE_KEYS = {
    **IGNORED_TOP_KEYS,
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
    fields = known_entries(doc, _MAPREDUCE_KEYS, root, ctx, ignored=_IGNORED_MAPREDUCE_KEYS)
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
    data["error_policy"] = _error_policy(fields, doc, root, ctx)
    return built_workflow(data, root, doc, ctx)


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
_MAP_KEYS = model_keys(MapSpec, extra=("timeout_config",))


def _map(raw: object, at: At, ctx: Context) -> MapSpec | None:
    if not isinstance(raw, Map):
        ctx.problem(f"expected a mapping with input: and agent_template:, got {shown(raw)}", at)
        return None
    count = len(ctx.problems)
    fields = known_entries(raw, _MAP_KEYS, at, ctx)
    data = {key: value for key, value in fields.items() if key not in _MAP_BUILT}
    if fields.get("timeout_config") is not None:
        timeout = _timeout_config(fields["timeout_config"], at.key(raw, "timeout_config"), ctx)
        if timeout is not None:
            data.setdefault("agent_timeout_secs", timeout)
    for key in ("input", "json_path", "filter", "sort_by", "distinct"):
        if key in data and not isinstance(data[key], str):
            ctx.problem(f"expected text, got {shown(data[key])}", at.key(raw, key))
    _check_item_pipeline(data, raw, at, ctx)
    if fields.get("budget") is not None:
        data["budget"] = budget_fields(fields["budget"], at.key(raw, "budget"), ctx)
    if "agent_template" in fields:
        here = at.key(raw, "agent_template")
        data["agent_template"] = _phase_steps(fields["agent_template"], here, ctx)
    if ctx.failed_since(count):
        return None
    return build_model(MapSpec, data, at, raw, ctx)


_MAP_BUILT = ("agent_template", "timeout_config", "budget")  # read by _map, not passed as written


def _timeout_config(raw: object, at: At, ctx: Context) -> object:
    """`timeout_config:` of the original: only agent_timeout_secs has an effect here."""
    if not isinstance(raw, Map):
        ctx.problem(f"expected a mapping, got {shown(raw)}", at)
        return None
    ignored = {key: "only agent_timeout_secs is used" for key in raw if key != "agent_timeout_secs"}
    fields = known_entries(raw, ("agent_timeout_secs",), at, ctx, ignored=ignored)
    return fields.get("agent_timeout_secs", 600)


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
                ctx.problem(exc.message, at.key(raw, key), hint=exc.details or exc.hint)


def _error_policy(fields: dict[str, Any], doc: Map, root: At, ctx: Context) -> object:
    """`error_policy: {...}` merged with the top-level shortcuts (`on_item_failure: dlq`);
    one key given both ways is a problem, not a silent choice."""
    data: dict[str, Any] = {}
    raw = fields.get("error_policy")
    here = root.key(doc, "error_policy")
    if raw is not None:
        if isinstance(raw, Map):
            ignored = {"error_collection": _IGNORED_MAPREDUCE_KEYS["error_collection"]}
            data.update(known_entries(raw, _POLICY_KEYS, here, ctx, ignored=ignored))
        else:
            ctx.problem(f"expected a mapping, got {shown(raw)}", here)
    for key in _POLICY_SHORTCUTS:
        if key in fields:
            if key in data:
                ctx.problem(f"{key} is given both here and under error_policy:", root.key(doc, key))
            data[key] = fields[key]
    retry = data.pop("retry_config", None)
    if isinstance(retry, Map) and "max_attempts" in retry:
        data["retry_attempts"] = retry["max_attempts"]
    if isinstance(data.get("circuit_breaker"), Map):
        breaker = data["circuit_breaker"]
        data["circuit_breaker"] = known_entries(breaker, _BREAKER_KEYS, here, ctx)
    policy = build_model(
        ErrorPolicy,
        data,
        here if raw is not None else root,
        raw or doc,
        ctx,
        renames=_POLICY_SPELLING,
    )
    return policy if policy is not None else ErrorPolicy()


_BREAKER_KEYS = model_keys(CircuitBreaker)
