"""What the user is told about a workflow file: every problem at its file:line:col.

A parser records problems in a `Context` and goes on, so one run reports every mistake in
the file; the first in file order becomes the error, all of them its details. `build_model`
validates a model where its YAML position is still known and turns pydantic's complaints
into the words of someone editing YAML, pointed at the key they came from. Syntax errors
get an excerpt with a caret under the column.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from prodigyd import errorcodes
from prodigyd.closest import closest
from prodigyd.errors import Location, WorkflowError
from prodigyd.workflow.limits import Deadline
from prodigyd.workflow.load.nodes import At, Map, Mark, Seq

SHAPES_HINT = "\n".join(
    [
        "a workflow is either a list of steps:",
        '  - shell: "cargo test"',
        '  - claude: "/prodigy-lint"',
        "or a mapping with commands: (or steps:):",
        "  name: my-workflow",
        "  commands:",
        '    - shell: "cargo test"',
    ]
)


def excerpt(text: str, line: int, column: int) -> str:
    """The offending line with a caret under the column, after two lines of context; long
    lines (minified JSON) are cut to a window around the column."""
    lines = text.splitlines()
    current = lines[line - 1] if line <= len(lines) else ""
    start = 0
    if len(current) > _EXCERPT_WIDTH:
        start = max(0, min(column - 1 - _EXCERPT_WIDTH // 2, len(current) - _EXCERPT_WIDTH))

    def clip(text: str) -> str:
        part = text[start : start + _EXCERPT_WIDTH]
        return ("..." if start else "") + part + ("..." if len(text) > len(part) + start else "")

    width = len(str(line))
    rows = [
        f"{number:>{width}} | {clip(lines[number - 1]) if number <= len(lines) else ''}"
        for number in range(max(1, line - 2), line + 1)
    ]
    pad = ("   " if start else "") + "".join(
        "\t" if char == "\t" else " " for char in current[start : column - 1]
    )
    return "\n".join([*rows, f"{' ' * width} | {pad}^"])


_EXCERPT_WIDTH = 100


@dataclass
class Context:
    """Collects warnings and problems, so one run reports every mistake in the file."""

    source: str
    strict: bool
    deadline: Deadline
    root_mark: Mark  # where the document starts, for problems with the whole of it
    warnings: list[str] = field(default_factory=list)
    problems: list[WorkflowError] = field(default_factory=list)

    def problem(
        self,
        message: str,
        at: At,
        *,
        hint: str | None = None,
        details: str | None = None,
        code: str = errorcodes.WORKFLOW,
    ) -> None:
        """`details` is shown as it is (an expression with a caret under it)."""
        location = at.location(self.source)
        error = WorkflowError(message, hint=hint, location=location, details=details, code=code)
        self.problems.append(error)

    def warn(self, message: str, at: At) -> None:
        """`message` at file:line:column, as a problem's place is given (a warning is one
        that --strict makes a problem)."""
        where = at.location(self.source)
        self.warnings.append(f"{replace(where, field=None)}: {message}")

    def failed_since(self, count: int) -> bool:
        return len(self.problems) > count

    def raise_problems(self) -> None:
        raise_together(self.problems)


def raise_together(problems: Sequence[WorkflowError]) -> None:
    """One error for all `problems`: the first in file order is the message (and the
    code); the others are listed in the details, after the first's own (the first is not
    said twice), and kept one by one in its `others`."""
    if not problems:
        return
    first, *others = sorted(problems, key=_file_order)
    parts = [first.details] if first.details else []
    if others:
        listed = "\n".join(f"  {p.location}: {p.message}" for p in others)
        parts.append(f"{len(others)} more problem{'s' if len(others) > 1 else ''}:\n{listed}")
    raise WorkflowError(
        first.message,
        hint=first.hint,
        location=first.location,
        details="\n".join(parts) or None,
        code=first.code,
        others=others,
    )


def _file_order(problem: WorkflowError) -> tuple[bool, int, int]:
    where = problem.location or Location("")
    return where.line is None, where.line or 0, where.column or 0


_M = TypeVar("_M", bound=BaseModel)


def build_model(
    model: type[_M],
    data: Mapping[str, Any],
    at: At,
    raw: object,
    ctx: Context,
    renames: Mapping[str, str] | None = None,
) -> _M | None:
    """Validate one model where its YAML position is known; None after recording problems.

    `renames` maps a model field to the YAML key it came from, so the error points there;
    a dotted one (`backoff.custom.delays`) to the key at that path under `raw`.
    """
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        for error in exc.errors():
            here = _error_at(at, raw, error["loc"], renames or {})
            reason = _reason(error) + _misspelt(error, raw, model)
            ctx.problem(reason, here, code=errorcodes.INVALID_VALUE)
        return None


def _misspelt(error: ErrorDetails, raw: object, model: type[BaseModel]) -> str:
    """For a required field missing from `raw`: the key of `raw` that is no field of the
    model and looks like its misspelling (`inputs:` for `input:`). Its own warning (an
    unknown key) is not shown while the file has errors, so the error names it."""
    field = error["loc"][0] if error["type"] == "missing" and len(error["loc"]) == 1 else None
    if not isinstance(field, str) or not isinstance(raw, Map):
        return ""
    strangers = [str(key) for key in raw if key not in model.model_fields]
    close = closest(field, strangers)
    return f" (is '{close}' it, misspelt?)" if close else ""


def _error_at(at: At, raw: object, loc: tuple[int | str, ...], renames: Mapping[str, str]) -> At:
    here, node = at, raw
    if loc and isinstance(loc[0], str) and loc[0] in renames:
        loc = (*renames[loc[0]].split("."), *loc[1:])
    for part in loc:
        if isinstance(node, Map) and part in node:
            here, node = here.key(node, part), node[part]
        elif isinstance(node, Seq) and isinstance(part, int) and part < len(node):
            here, node = here.index(node, part), node[part]
        else:
            here = here.index(None, part) if isinstance(part, int) else here.key(None, part)
            node = None
    return here


_REASONS = {
    "string_type": "expected a string",
    "int_type": "expected a whole number",
    "int_parsing": "expected a whole number",
    "int_from_float": "expected a whole number",
    "float_type": "expected a number",
    "float_parsing": "expected a number",
    "bool_type": "expected true or false",
    "bool_parsing": "expected true or false",
    "dict_type": "expected a mapping",
    "list_type": "expected a list",
    "tuple_type": "expected a list",
}
_BOUNDS = {
    "greater_than": ("gt", "must be greater than"),
    "greater_than_equal": ("ge", "must be at least"),
    "less_than": ("lt", "must be less than"),
    "less_than_equal": ("le", "must be at most"),
}


def _reason(error: ErrorDetails) -> str:
    """pydantic's complaint in the words of someone editing YAML."""
    kind, ctx = error["type"], error.get("ctx", {})
    if kind == "value_error":
        return str(ctx.get("error", error["msg"]))
    if kind == "missing":
        return "is required"
    if kind == "too_short":
        return "needs at least one step"
    if kind == "literal_error":
        text = f"expected {ctx['expected']}"
    elif kind in _BOUNDS:
        bound, words = _BOUNDS[kind]
        text = f"{words} {ctx[bound]}"
    else:
        text = _REASONS.get(kind, error["msg"])
    return f"{text}, got {shown(error['input'])}"


def shown(value: object) -> str:
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list | tuple):
        return "a list"
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
