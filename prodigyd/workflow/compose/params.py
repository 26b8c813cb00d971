"""Workflow parameters: their declarations (`parameters:`, `defaults:`) and their values.

The original wrote declarations three ways, and its book shows all three; each is read onto
one `Parameter` per name:

    parameters:                      parameters:                    parameters:
      env: {type: string,              required: [env]                definitions:
            required: true}            optional:                        env: {type: string}
      port: {type: number,               - {name: port, type: Number,
             default: 8080}                 default: 8080}

A value is the first of: `--param` on the command line, a `--param-file`, a template's
`with:`, the workflow's `defaults:`, the parameter's own `default`. It is converted to the
declared type (command-line values are text: `--param port=8080` is the number 8080 for a
`number` parameter), checked by `validation` (a filter expression over `value`, compiled
when the file loads), and becomes the variable `${NAME}`. The original took `--param`
values by guessing their type from the text and never evaluated `validation`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from typing import Any, get_args

from prodigyd import errorcodes
from prodigyd.errors import ProdigyError, WorkflowError
from prodigyd.workflow.expr import compile_filter
from prodigyd.workflow.load.diagnostics import Context, build_model, shown
from prodigyd.workflow.load.keys import known_entries, model_keys
from prodigyd.workflow.load.nodes import At, Map, Seq, plain
from prodigyd.workflow.model import Parameter, ParameterType

TYPES: tuple[str, ...] = get_args(ParameterType)
#: Other spellings of the types: the book writes `String`, `Number`...; people write `int`.
_TYPE_ALIASES = {
    "str": "string",
    "text": "string",
    "int": "number",
    "integer": "number",
    "float": "number",
    "bool": "boolean",
    "list": "array",
    "map": "object",
    "dict": "object",
}
_LIST_FORM = ("required", "optional", "definitions")
_SPEC_KEYS = model_keys(Parameter)


def normalize(raw: object, at: At, ctx: Context) -> Map:
    """Any of the three declaration shapes as one mapping NAME -> spec (a mapping with the
    keys of `Parameter`), keeping positions."""
    specs = Map(raw.mark if isinstance(raw, Map | Seq) else at.mark, at.source)
    if raw is None:
        return specs
    if not isinstance(raw, Map):
        ctx.problem(f"expected a mapping of NAME: {{type, description, ...}}, got {shown(raw)}", at)
        return specs
    if not _is_list_form(raw):
        for name in raw:
            spec = raw[name]
            if spec is None:
                spec = Map(raw.key_marks.get(name), raw.source_of(name))
            specs.put(name, spec, raw.key_marks.get(name), raw.source_of(name))
        return specs
    definitions = raw.get("definitions")
    if isinstance(definitions, Map):
        for name in definitions:
            specs.copy_entry(definitions, name)
    elif definitions is not None:
        ctx.problem(
            f"expected a mapping of NAME: spec, got {shown(definitions)}",
            at.key(raw, "definitions"),
        )
    for group in ("required", "optional"):
        entries = raw.get(group)
        if entries is None:
            continue
        here = at.key(raw, group)
        if not isinstance(entries, Seq):
            ctx.problem(
                f"expected a list of names or {{name, type, ...}}, got {shown(entries)}", here
            )
            continue
        for index, entry in enumerate(entries):
            _listed(specs, entry, group == "required", entries, index, here, ctx)
    return specs


def _is_list_form(raw: Map) -> bool:
    """`required:`/`optional:` lists or a `definitions:` mapping, and nothing else: a
    parameter that happens to be called `required` is declared with a spec mapping."""
    if not raw or any(key not in _LIST_FORM for key in raw):
        return False
    return all(
        isinstance(raw[key], Seq) if key != "definitions" else _is_definitions(raw[key])
        for key in raw
    )


def _is_definitions(value: object) -> bool:
    return isinstance(value, Map) and not any(key in _SPEC_KEYS for key in value)


def _listed(
    specs: Map, entry: object, required: bool, seq: Seq, index: int, at: At, ctx: Context
) -> None:
    here = at.index(seq, index)
    mark, source = here.mark, here.source
    if isinstance(entry, str):
        spec = specs.get(entry)
        spec = spec if isinstance(spec, Map) else Map(mark, source)
        specs.put(entry, spec, mark, source)
    elif isinstance(entry, Map) and isinstance(entry.get("name"), str):
        spec = Map(entry.mark, entry.source)
        for key in entry:
            if key != "name":
                spec.copy_entry(entry, key)
        specs.put(entry["name"], spec, mark, source)
        entry = entry["name"]
    else:
        ctx.problem(f"expected a parameter name or {{name, type, ...}}, got {shown(entry)}", here)
        return
    if required and "required" not in spec:
        spec.put("required", True, mark, source)


def build(
    specs: Map, defaults: object, at: At, defaults_at: At, ctx: Context
) -> tuple[dict[str, Parameter], dict[str, Any]]:
    """The declared parameters (each default the one `defaults:` gives, if any, else its
    own) and the `defaults:` of names no parameter declares."""
    given = defaults if isinstance(defaults, Map) else Map(None)
    if defaults is not None and not isinstance(defaults, Map):
        ctx.problem(f"expected a mapping of NAME: value, got {shown(defaults)}", defaults_at)
    parameters: dict[str, Parameter] = {}
    for name, raw in specs.items():
        here = at.key(specs, name)
        if not isinstance(raw, Map):
            ctx.problem(
                f"expected {{type, description, required, default, validation}}, got {shown(raw)}",
                here,
            )
            continue
        fields = known_entries(raw, _SPEC_KEYS, here, ctx)
        if "type" in fields:
            fields["type"] = _type_name(fields["type"], here.key(raw, "type"), ctx)
        if name in given:
            fields["default"] = given[name]
            value_at = defaults_at.key(given, name)
        else:
            value_at = here.key(raw, "default")
        fields = {key: plain(value) for key, value in fields.items()}
        parameter = build_model(Parameter, fields, here, raw, ctx)
        if parameter is None:
            continue
        if parameter.validation is not None:
            try:
                _predicate(parameter.validation)
            except ProdigyError as exc:
                ctx.problem(f"invalid validation: {exc.message}", here.key(raw, "validation"))
                continue
        if parameter.default is not None:
            try:
                default = check(parameter, parameter.default)
            except ValueError as exc:
                ctx.problem(f"default of parameter '{name}': {exc}", value_at)
                continue
            parameter = parameter.model_copy(update={"default": default})
        parameters[str(name)] = parameter
    extra = {str(key): plain(value) for key, value in given.items() if key not in specs}
    return parameters, extra


def _type_name(value: object, at: At, ctx: Context) -> object:
    if not isinstance(value, str):
        return value
    name = _TYPE_ALIASES.get(value.lower(), value.lower())
    if name not in TYPES:
        ctx.problem(f"unknown parameter type {shown(value)} (types: {', '.join(TYPES)})", at)
        return "any"
    return name


def resolve(
    parameters: Mapping[str, Parameter],
    defaults: Mapping[str, Any],
    given: Mapping[str, Any],
    *,
    where: str,
) -> dict[str, Any]:
    """The values of a run: `given` (command line over parameter file, already merged) over
    the defaults, each of a declared parameter converted and checked. Every problem is
    reported at once; `where` names the workflow in the message."""
    problems: list[str] = []
    values = dict(defaults)
    declared = bool(parameters) or bool(defaults)
    for name, value in given.items():
        if name in parameters:
            continue
        if declared and name not in defaults:
            known = ", ".join(sorted({*parameters, *defaults}))
            problems.append(f"unknown parameter '{name}' (the workflow declares: {known})")
        else:
            values[name] = value
    for name, parameter in parameters.items():
        value = given.get(name, parameter.default)
        if value is None:
            if parameter.required:
                what = f" ({parameter.description})" if parameter.description else ""
                problems.append(f"missing required parameter '{name}'{what}")
            continue
        try:
            values[name] = check(parameter, value)
        except ValueError as exc:
            problems.append(f"parameter '{name}': {exc}")
    if problems:
        raise WorkflowError(
            f"{where}: {problems[0]}"
            + (f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""),
            details="\n".join(f"  {problem}" for problem in problems)
            if len(problems) > 1
            else None,
            hint="give values with --param NAME=VALUE or --param-file FILE",
            code=errorcodes.WORKFLOW_PARAM,
        )
    return values


def check(parameter: Parameter, value: Any) -> Any:
    """`value` as the parameter's type, and its validation holding; ValueError says why not."""
    converted = convert(value, parameter.type)
    if parameter.validation is not None and not _predicate(parameter.validation)(
        {"value": converted}
    ):
        raise ValueError(f"{shown(converted)} fails its validation: {parameter.validation}")
    return converted


def convert(value: Any, kind: str) -> Any:
    """A value as type `kind`; text (a command-line value) is read as that type."""
    converted = _CONVERTERS[kind](value)
    if converted is None:
        raise ValueError(f"expected {_A[kind]}, got {shown(value)}")
    return converted


def _string(value: Any) -> str | None:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value) if isinstance(value, str | int | float) else None


def _number(value: Any) -> int | float | None:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return value
    if isinstance(value, str):
        for parse in (int, float):
            try:
                return parse(value.strip())
            except ValueError:
                pass
    return None


def _boolean(value: Any) -> bool | None:
    if isinstance(value, bool):
        return value
    return _BOOLEANS.get(value.strip().lower()) if isinstance(value, str) else None


def _json(wanted: type) -> Callable[[Any], Any]:
    """A list or mapping, or its JSON text."""

    def read(value: Any) -> Any:
        if isinstance(value, str):
            try:
                value = json.loads(value)
            except ValueError:
                return None
        return value if isinstance(value, wanted) else None

    return read


_CONVERTERS: dict[str, Callable[[Any], Any]] = {
    "any": lambda value: value,
    "string": _string,
    "number": _number,
    "boolean": _boolean,
    "array": _json(list),
    "object": _json(dict),
}
_BOOLEANS = {
    "true": True,
    "yes": True,
    "on": True,
    "1": True,
    "false": False,
    "no": False,
    "off": False,
    "0": False,
}
_A = {
    "string": "a string",
    "number": "a number",
    "boolean": "true or false",
    "array": "a list (JSON on the command line: '[1, 2]')",
    "object": "a mapping (JSON on the command line: '{\"a\": 1}')",
}

#: The book's shorthands: `matches('re')` and `in(['a', 'b'])` test the value itself.
_SHORTHANDS = (
    (
        re.compile(r"^\s*matches\(\s*(?P<arg>'(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\")\s*\)\s*$"),
        "matches(value, {arg})",
    ),
    (re.compile(r"^\s*in\(\s*(?P<arg>\[.*\])\s*\)\s*$", re.DOTALL), "value in {arg}"),
)


def _predicate(validation: str) -> Callable[[Any], bool]:
    """A validation as a filter expression over `{"value": ...}` (raises ExpressionError)."""
    for pattern, template in _SHORTHANDS:
        found = pattern.match(validation)
        if found:
            validation = template.format(arg=found["arg"])
            break
    return compile_filter(validation)
