"""Reading workflow files: YAML or JSON text in, a validated `Workflow` (or one clear error) out.

Why not `Workflow.model_validate(yaml.safe_load(text))`:

* Errors must name file, line and field (`commands[2].timeout`, line 14). pydantic only knows
  paths into Python objects, so the YAML is composed into containers that remember where each
  node and key was written, and every model is validated where its position is still known.
* The original accepts many spellings that are not one schema (reference §2.2, §2.6) and
  silently ignored keys it did not know. Each spelling is mapped here onto the one canonical
  model, and every key we do not use is reported: a warning, or an error with `strict`.
* Scalars are resolved as YAML 1.2, like the original's serde_yaml: `on`/`yes` stay strings,
  `0644` is not octal and `1:30` is not ninety.

Only standard (sequential) workflows are built so far; the step parser is shared by every
place a step can appear, so a MapReduce model can reuse it for setup/map/reduce.
"""

from __future__ import annotations

import asyncio
import difflib
import hashlib
import json
import re
import threading
from collections.abc import Callable, Collection, Iterator, Mapping
from dataclasses import dataclass, field
from hashlib import sha256
from pathlib import Path
from typing import Any, Literal, TypeVar, get_args

import yaml
from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails
from yaml.constructor import ConstructorError
from yaml.reader import ReaderError

from prodigyd.errors import Location, ProdigyError, WorkflowError
from prodigyd.files import failure_reason, read_regular
from prodigyd.workflow import jsonpath
from prodigyd.workflow.expr import compile_filter
from prodigyd.workflow.items import parse_sort
from prodigyd.workflow.limits import (
    MAX_DEPTH,
    MAX_FILE_BYTES,
    BoundedComposer,
    Deadline,
    LimitExceeded,
    oversize_at,
)
from prodigyd.workflow.model import (
    CaptureOutput,
    CircuitBreaker,
    EnvValue,
    ErrorPolicy,
    ForeachSpec,
    MapSpec,
    MergeSpec,
    OnFailure,
    OnIncomplete,
    Profile,
    RetrySpec,
    SecretSpec,
    SetupSpec,
    Step,
    Trigger,
    TriggerEvent,
    ValidateSpec,
    Workflow,
    WriteFileSpec,
    scalar_text,
)

_SHAPES_HINT = "\n".join(
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


@dataclass
class LoadedWorkflow:
    """A parsed workflow plus what the user should hear about it.

    `sha256` is of the raw file bytes, so resume can refuse a workflow edited since the run.
    """

    workflow: Workflow
    warnings: list[str]
    sha256: str
    path: Path


async def load_workflow_async(path: Path | str, *, strict: bool = False) -> LoadedWorkflow:
    """load_workflow in a worker thread: what the daemon calls, so that reading a large or
    hostile file (bounded by prodigyd.workflow.limits, time included) never stalls the
    event loop and every other client keeps its answers."""
    return await asyncio.to_thread(load_workflow, path, strict=strict)


def load_workflow(path: Path | str, *, strict: bool = False) -> LoadedWorkflow:
    """Read and parse a workflow file; `.json` is JSON, anything else YAML.

    Blocking (up to the limits' time); inside the daemon use load_workflow_async. The path
    is a client's: a FIFO or a device is refused unread (files.read_regular), not waited on.
    """
    file = Path(path)
    try:
        file = file.expanduser().absolute().resolve()
        # never more than one byte past the limit: _check_size says where it is crossed
        data, _ = read_regular(file, limit=MAX_FILE_BYTES, refuse_larger=False)
    except FileNotFoundError:
        raise WorkflowError(
            f"workflow file not found: {file}", location=Location(str(file))
        ) from None
    except (OSError, RuntimeError) as exc:  # RuntimeError: a link loop, ~nobody
        why = failure_reason(exc)
        raise WorkflowError(
            f"cannot read workflow file: {why}", location=Location(str(file))
        ) from None
    _check_size(data, str(file))
    key = (str(file), strict, hashlib.sha256(data).hexdigest())
    with _PARSED_LOCK:
        cached = _PARSED.get(key)
    if cached is not None:
        return cached
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line, column = _byte_position(data, exc.start)
        raise WorkflowError(
            f"the workflow file is not UTF-8 text (bad byte 0x{data[exc.start]:02x})",
            location=Location(str(file), line, column),
        ) from None
    loaded = parse_workflow(text, source=str(file), strict=strict)
    with _PARSED_LOCK:
        if len(_PARSED) >= _PARSED_MAX:
            _PARSED.pop(next(iter(_PARSED)))
        _PARSED[key] = loaded
    return loaded


#: Parsed workflows by (file, strict, content hash). A submission, its start and every
#: resume read the same file; parsing YAML costs ~1 ms, reading and hashing it ~20 µs, and
#: keying on the content itself means an edited file is never served stale. Loads run in
#: worker threads (load_workflow_async), hence the lock.
_PARSED: dict[tuple[str, bool, str], LoadedWorkflow] = {}
_PARSED_MAX = 128
_PARSED_LOCK = threading.Lock()


def _check_size(data: bytes, source: str) -> None:
    where = oversize_at(data)
    if where is not None:
        raise WorkflowError(
            f"the workflow file is larger than {MAX_FILE_BYTES // 1024} KiB "
            "(the limit is reached here)",
            location=Location(source, *where),
            hint="keep long lists of work items in a separate file (input: in MapReduce)",
        )


def _byte_position(data: bytes, offset: int) -> tuple[int, int]:
    """1-based line and column (in characters) of byte `offset`."""
    start = data.rfind(b"\n", 0, offset) + 1
    column = len(data[start:offset].decode("utf-8", errors="replace")) + 1
    return data.count(b"\n", 0, offset) + 1, column


def parse_workflow(
    text: str,
    *,
    source: str = "<string>",
    fmt: Literal["yaml", "json"] | None = None,
    strict: bool = False,
    deadline: Deadline | None = None,
) -> LoadedWorkflow:
    """Parse workflow text; `source` names it in errors and warnings.

    Raises WorkflowError for anything wrong, always with a line and column (a JSON file
    YAML cannot mark aside): the first problem is the message, every problem found is listed
    in `details`. With `strict`, unknown keys are problems, not warnings. Reading stops at
    the limits of prodigyd.workflow.limits, `deadline` (default: LOAD_SECONDS from now)
    included.
    """
    fmt = fmt or ("json" if source.lower().endswith(".json") else "yaml")
    deadline = deadline or Deadline()
    if len(text) > MAX_FILE_BYTES // 4:  # cheap: a character is at most four UTF-8 bytes
        _check_size(text.encode("utf-8", errors="surrogatepass"), source)
    if not text.strip():
        raise _empty(source)
    read = _read_json if fmt == "json" else _read_yaml
    doc, root_mark = read(text, source, deadline)
    ctx = _Context(source, strict, deadline, root_mark or (1, 1))
    workflow = _workflow(doc, ctx)
    return LoadedWorkflow(
        workflow=workflow,
        warnings=ctx.warnings,
        sha256=sha256(text.encode("utf-8", errors="surrogatepass")).hexdigest(),
        path=Path(source),
    )


# ---------------------------------------------------------------------------------------------
# YAML with positions

Mark = tuple[int, int]  # 1-based line and column


class _Map(dict[Any, Any]):
    """A YAML mapping that remembers where it and each of its keys were written."""

    def __init__(self, mark: Mark | None) -> None:
        super().__init__()
        self.mark = mark
        self.key_marks: dict[Any, Mark] = {}


class _Seq(list[Any]):
    """A YAML sequence that remembers where it and each of its items were written."""

    def __init__(self, mark: Mark | None) -> None:
        super().__init__()
        self.mark = mark
        self.item_marks: list[Mark] = []


class _DuplicateKey(ConstructorError):
    """Two entries with the same key: YAML keeps the last one silently, we refuse."""


class _Loader(BoundedComposer, yaml.SafeLoader):
    """SafeLoader that keeps positions, refuses duplicate keys, resolves YAML 1.2 scalars and
    stops at the limits of prodigyd.workflow.limits (counted by BoundedComposer)."""

    yaml_implicit_resolvers: dict[str, list[tuple[str, re.Pattern[str]]]] = {}

    def __init__(self, text: str, deadline: Deadline | None) -> None:
        yaml.SafeLoader.__init__(self, text)
        self.count_from_here(deadline)

    def construct_object(self, node: yaml.Node, deep: bool = False) -> Any:
        """PyYAML reports a value its explicit tag cannot hold (`!!float x`, `!!timestamp 1`)
        as a bare ValueError or worse (`!!bool x`: KeyError, an empty `!!float`: IndexError),
        with no position: give it the node's."""
        try:
            return super().construct_object(node, deep)
        except (ValueError, TypeError, AttributeError, OverflowError, IndexError, KeyError):
            tag = str(node.tag).replace("tag:yaml.org,2002:", "!!")
            value = _shown(node.value) if isinstance(node, yaml.ScalarNode) else "this node"
            problem = f"{value} is not a valid {tag}"
            raise ConstructorError(None, None, problem, node.start_mark) from None


_CORE_SCALARS = (
    ("bool", r"^(?:true|True|TRUE|false|False|FALSE)$", list("tTfF")),
    ("int", r"^(?:[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+)$", list("-+0123456789")),
    (
        "float",
        r"^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?"
        r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$",
        list("-+0123456789."),
    ),
    ("null", r"^(?:~|null|Null|NULL|)$", ["~", "n", "N", ""]),
    ("merge", r"^(?:<<)$", ["<"]),
)
for _name, _pattern, _first in _CORE_SCALARS:
    _Loader.add_implicit_resolver(f"tag:yaml.org,2002:{_name}", re.compile(_pattern), _first)


def _mark(node: yaml.Node) -> Mark:
    return node.start_mark.line + 1, node.start_mark.column + 1


def _construct_int(loader: _Loader, node: yaml.ScalarNode) -> int:
    text = str(loader.construct_scalar(node))
    sign = -1 if text.startswith("-") else 1
    digits = text.lstrip("+-")
    if digits.startswith("0o"):
        return sign * int(digits[2:], 8)
    if digits.startswith("0x"):
        return sign * int(digits[2:], 16)
    return sign * int(digits, 10)


def _construct_map(loader: _Loader, node: yaml.MappingNode) -> Iterator[_Map]:
    mapping = _Map(_mark(node))
    yield mapping
    own = {id(key_node) for key_node, _ in node.value}
    loader.flatten_mapping(node)  # `<<: *base` entries come first, so own keys override them
    first_line: dict[Any, int] = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        try:
            hash(key)
        except TypeError:  # a list, mapping or !!set
            raise ConstructorError(
                None, None, "a mapping key must be a plain value", key_node.start_mark
            ) from None
        if id(key_node) in own:
            if key in first_line:
                problem = f"duplicate key {key!r} (first defined on line {first_line[key]})"
                raise _DuplicateKey(None, None, problem, key_node.start_mark)
            first_line[key] = _mark(key_node)[0]
        mapping[key] = loader.construct_object(value_node, deep=False)
        mapping.key_marks[key] = _mark(key_node)


def _construct_seq(loader: _Loader, node: yaml.SequenceNode) -> Iterator[_Seq]:
    seq = _Seq(_mark(node))
    yield seq
    for child in node.value:
        seq.append(loader.construct_object(child, deep=False))
        seq.item_marks.append(_mark(child))


_Loader.add_constructor("tag:yaml.org,2002:int", _construct_int)
_Loader.add_constructor("tag:yaml.org,2002:map", _construct_map)
_Loader.add_constructor("tag:yaml.org,2002:seq", _construct_seq)


def _compose(text: str, deadline: Deadline | None) -> tuple[object, Mark | None]:
    """The document's data and where it starts (None for an empty document)."""
    loader = _Loader(text, deadline)
    try:
        node = loader.get_single_node()
        if node is None:
            return None, None
        return loader.construct_document(node), _mark(node)
    finally:
        loader.dispose()


def _read_yaml(text: str, source: str, deadline: Deadline) -> tuple[object, Mark | None]:
    try:
        return _compose(text, deadline)
    except yaml.MarkedYAMLError as exc:
        raise _syntax_error(exc, text, source) from None
    except ReaderError as exc:  # a control character, a lone surrogate
        line, column = _char_position(text, exc.position)
        code = ord(exc.character) if isinstance(exc.character, str) else exc.character
        raise WorkflowError(
            f"invalid YAML: character #x{code:04x} is not allowed (control characters other "
            "than tab and newline cannot appear in YAML, not even quoted)",
            location=Location(source, line, column),
            details=_excerpt(text, line, column),
            hint='write it as an escape in a double-quoted string, e.g. "\\x01"',
        ) from None


_LINE_BREAK = re.compile("\r\n|[\n\r\x85\u2028\u2029]")  # what PyYAML counts as one


def _char_position(text: str, index: int) -> tuple[int, int]:
    """1-based line and column of character `index`, as PyYAML's marks count them."""
    line, start = 1, 0
    for found in _LINE_BREAK.finditer(text, 0, index):
        line, start = line + 1, found.end()
    return line, index - start + 1


def _syntax_error(exc: yaml.MarkedYAMLError, text: str, source: str) -> WorkflowError:
    mark = exc.problem_mark or exc.context_mark
    message = f"invalid YAML: {exc.problem or exc.context}"
    if isinstance(exc, LimitExceeded):  # not invalid, too much: JSON files meet them too
        message = str(exc.problem)
    if exc.problem and exc.context:
        where = f" on line {exc.context_mark.line + 1}" if exc.context_mark else ""
        message += f" ({exc.context}{where})"
    if mark is None:
        return WorkflowError(message, location=Location(source), hint=_SHAPES_HINT)
    line, column = mark.line + 1, mark.column + 1
    if isinstance(exc, LimitExceeded):
        hint: str | None = _LIMITS_HINT
    else:
        hint = None if isinstance(exc, ConstructorError) else _SHAPES_HINT
    return WorkflowError(
        message,
        location=Location(source, line, column),
        details=_excerpt(text, line, column),
        hint=hint,
    )


_LIMITS_HINT = "workflow files have limits on size, nesting and aliases: docs/workflows.md, Limits"


def _excerpt(text: str, line: int, column: int) -> str:
    """The offending line with a caret under the column, after two lines of context; long
    lines (minified JSON) are cut to a window around the column."""
    lines = text.splitlines()
    current = lines[line - 1] if line <= len(lines) else ""
    start = 0
    if len(current) > _EXCERPT_WIDTH:
        start = max(0, min(column - 1 - _EXCERPT_WIDTH // 2, len(current) - _EXCERPT_WIDTH))

    def clip(text: str) -> str:
        shown = text[start : start + _EXCERPT_WIDTH]
        return ("..." if start else "") + shown + ("..." if len(text) > len(shown) + start else "")

    width = len(str(line))
    shown = [
        f"{number:>{width}} | {clip(lines[number - 1]) if number <= len(lines) else ''}"
        for number in range(max(1, line - 2), line + 1)
    ]
    pad = ("   " if start else "") + "".join(
        "\t" if char == "\t" else " " for char in current[start : column - 1]
    )
    return "\n".join([*shown, f"{' ' * width} | {pad}^"])


_EXCERPT_WIDTH = 100


def _read_json(text: str, source: str, deadline: Deadline) -> tuple[object, Mark | None]:
    """JSON, with positions: JSON is YAML 1.2 flow syntax, so the YAML composer marks it
    (and applies the same limits: depth, time).

    json.loads stays the judge of validity and values; if the YAML reading disagrees (lone
    surrogates, NaN), its values win and positions are dropped rather than risk wrong ones.
    """
    too_deep = False
    try:
        data = json.loads(text.removeprefix("\ufeff"))
    except json.JSONDecodeError as exc:
        raise WorkflowError(
            f"invalid JSON: {exc.msg}",
            location=Location(source, exc.lineno, exc.colno),
            details=_excerpt(text, exc.lineno, exc.colno),
        ) from None
    except RecursionError:  # nested thousands deep: the YAML reading below says where
        data, too_deep = None, True
    try:
        # a tab in valid JSON is always whitespace
        marked, mark = _compose(text.replace("\t", " "), deadline)
    except (_DuplicateKey, LimitExceeded) as exc:
        raise _syntax_error(exc, text, source) from None
    except (yaml.YAMLError, ValueError):
        marked, mark = None, None
    if too_deep:
        raise WorkflowError(
            f"invalid JSON: nested more than {MAX_DEPTH} levels deep",
            location=Location(source, 1, 1),
        )
    return (marked, mark) if marked == data else (_unmarked(data), None)


def _unmarked(value: object) -> object:
    if isinstance(value, dict):
        mapping = _Map(None)
        mapping.update((key, _unmarked(item)) for key, item in value.items())
        return mapping
    if isinstance(value, list):
        seq = _Seq(None)
        seq.extend(_unmarked(item) for item in value)
        return seq
    return value


def _plain(value: object) -> object:
    """Positions stripped: for values stored as data (foreach items)."""
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_plain(item) for item in value]
    return value


# ---------------------------------------------------------------------------------------------
# positions, problems and warnings


@dataclass(frozen=True)
class _At:
    """Where a node sits: its field path for errors, its mark, and how warnings name it."""

    path: str
    mark: Mark | None = None
    label: str = ""
    depth: int = 0

    @property
    def line(self) -> int | None:
        return self.mark[0] if self.mark else None

    @property
    def name(self) -> str:
        return self.label or self.path or "the workflow"

    def key(self, node: object, key: object) -> _At:
        mark = node.key_marks.get(key) if isinstance(node, _Map) else None
        path = f"{self.path}.{key}" if self.path else str(key)
        return _At(path, mark or self.mark, depth=self.depth + 1)

    def index(self, node: object, index: int) -> _At:
        marks = node.item_marks if isinstance(node, _Seq) else []
        mark = marks[index] if index < len(marks) else None
        return _At(f"{self.path}[{index}]", mark or self.mark, depth=self.depth + 1)

    def location(self, source: str) -> Location:
        column = self.mark[1] if self.mark else None
        return Location(source, self.line, column, self.path or None)


@dataclass
class _Problem:
    message: str
    location: Location
    hint: str | None = None


@dataclass
class _Context:
    """Collects warnings and problems, so one run reports every mistake in the file."""

    source: str
    strict: bool
    deadline: Deadline
    root_mark: Mark  # where the document starts, for problems with the whole of it
    warnings: list[str] = field(default_factory=list)
    problems: list[_Problem] = field(default_factory=list)

    def problem(self, message: str, at: _At, *, hint: str | None = None) -> None:
        self.problems.append(_Problem(message, at.location(self.source), hint))

    def warn(self, message: str, at: _At) -> None:
        where = f"{self.source}:{at.line}" if at.line else self.source
        self.warnings.append(f"{where}: {message}")

    def failed_since(self, count: int) -> bool:
        return len(self.problems) > count

    def raise_problems(self) -> None:
        """The first problem in file order is the message; all of them are the details."""
        if not self.problems:
            return
        problems = sorted(self.problems, key=_file_order)
        first = problems[0]
        details = None
        if len(problems) > 1:
            listed = "\n".join(f"  {p.location}: {p.message}" for p in problems)
            details = f"{len(problems)} problems:\n{listed}"
        raise WorkflowError(
            first.message, hint=first.hint, location=first.location, details=details
        )


def _file_order(problem: _Problem) -> tuple[bool, int, int]:
    where = problem.location
    return where.line is None, where.line or 0, where.column or 0


def _known(
    raw: _Map,
    known: Collection[str],
    at: _At,
    ctx: _Context,
    *,
    ignored: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """The entries whose keys we use. Every other key is reported: a silently ignored typo
    (the original's behaviour) is a feature that silently does nothing."""
    kept: dict[str, Any] = {}
    for key, value in raw.items():
        if key in known:
            kept[key] = value
        elif ignored and key in ignored:
            ctx.warn(f"'{key}' in {at.name} is ignored: {ignored[key]}", at.key(raw, key))
        else:
            _unknown_key(key, known, at.key(raw, key), at.name, ctx)
    return kept


def _unknown_key(key: object, known: Collection[str], at: _At, where: str, ctx: _Context) -> None:
    close = difflib.get_close_matches(str(key), list(known), n=1)
    suggestion = f"; did you mean '{close[0]}'?" if close else ""
    if ctx.strict:
        ctx.problem(
            f"unknown key '{key}' in {where}{suggestion}",
            at,
            hint="remove it or fix its spelling (without --strict it is only a warning)",
        )
    else:
        ctx.warn(f"unknown key '{key}' in {where} (ignored){suggestion}", at)


_M = TypeVar("_M", bound=BaseModel)
_T = TypeVar("_T")


def _build(
    model: type[_M],
    data: Mapping[str, Any],
    at: _At,
    raw: object,
    ctx: _Context,
    renames: Mapping[str, str] | None = None,
) -> _M | None:
    """Validate one model where its YAML position is known; None after recording problems.

    `renames` maps a model field to the YAML key it came from, so the error points there.
    """
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        for error in exc.errors():
            ctx.problem(_reason(error), _error_at(at, raw, error["loc"], renames or {}))
        return None


def _error_at(at: _At, raw: object, loc: tuple[int | str, ...], renames: Mapping[str, str]) -> _At:
    here, node = at, raw
    for position, part in enumerate(loc):
        if position == 0 and isinstance(part, str):
            part = renames.get(part, part)
        if isinstance(node, _Map) and part in node:
            here, node = here.key(node, part), node[part]
        elif isinstance(node, _Seq) and isinstance(part, int) and part < len(node):
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
    return f"{text}, got {_shown(error['input'])}"


def _shown(value: object) -> str:
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


# ---------------------------------------------------------------------------------------------
# the workflow

_TOP_KEYS = (
    "name", "description", "mode", "commands", "steps", "env", "secrets", "env_files",
    "profiles", "merge", "strict_variables", "worktree", "on",
)  # fmt: skip
_COMPOSITION_KEYS = ("imports", "extends", "template", "parameters", "workflows")
_IGNORED_TOP_KEYS = {"retry_defaults": "it is not applied; give each step its own retry:"}
_POLICY_SHORTCUTS = ("on_item_failure", "continue_on_failure", "max_failures",
                     "failure_threshold", "circuit_breaker")  # fmt: skip
_MAX_DEPTH = 40


def _workflow(doc: object, ctx: _Context) -> Workflow:
    if doc is None:
        raise _empty(ctx.source)
    steps_raw: object  # checked by _step_list
    if isinstance(doc, _Seq):
        fields: dict[str, Any] = {}
        steps_raw, steps_at = doc, _At("commands", doc.mark)
    elif isinstance(doc, _Map):
        _refuse_unsupported(doc, ctx)
        if _is_mapreduce(doc):
            return _mapreduce_workflow(doc, ctx)
        fields = _known(doc, _TOP_KEYS, _At("", doc.mark), ctx, ignored=_IGNORED_TOP_KEYS)
        steps_raw, steps_at = _steps_of(doc, ctx)
    else:
        raise WorkflowError(
            f"a workflow must be a list of steps or a mapping, got {_shown(doc)}",
            location=Location(ctx.source, *ctx.root_mark),
            hint=_SHAPES_HINT,
        )
    root = _At("", doc.mark)
    steps = _step_list(steps_raw, steps_at, ctx, top=True)
    data = _workflow_fields(fields, doc, root, ctx)
    ctx.raise_problems()
    workflow = _build(Workflow, {**data, "steps": steps, "source": ctx.source}, root, doc, ctx)
    ctx.raise_problems()
    assert workflow is not None  # _build returns None only after recording a problem
    return workflow


def _empty(source: str) -> WorkflowError:
    return WorkflowError(
        "the workflow file is empty", location=Location(source, 1, 1), hint=_SHAPES_HINT
    )


def _refuse_unsupported(doc: _Map, ctx: _Context) -> None:
    """Modes and features that would otherwise half-run: refuse them up front, by name."""
    root = _At("", doc.mark)
    mode = doc.get("mode", "standard")
    if mode not in ("standard", "mapreduce"):
        raise WorkflowError(
            f"unknown mode {_shown(mode)}",
            location=root.key(doc, "mode").location(ctx.source),
            hint="mode is standard (the default) or mapreduce",
        )
    for key in _COMPOSITION_KEYS:
        if key in doc:
            raise WorkflowError(
                f"composed workflows are not supported yet (found {key}:)",
                location=root.key(doc, key).location(ctx.source),
            )


def _steps_of(doc: _Map, ctx: _Context) -> tuple[object, _At]:
    root = _At("", doc.mark)
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


def _no_steps_hint(doc: _Map) -> str:
    if any(key in doc for key in _COMMAND_KEYS):
        return "a single step still goes in a list:\ncommands:\n  - shell: ..."
    return _SHAPES_HINT


def _workflow_fields(
    fields: dict[str, Any], doc: object, root: _At, ctx: _Context
) -> dict[str, Any]:
    data: dict[str, Any] = {
        key: fields[key]
        for key in ("name", "description", "strict_variables", "worktree")
        if key in fields
    }
    for key, build in _TOP_BUILDERS.items():
        if fields.get(key) is not None:
            data[key] = build(fields[key], root.key(doc, key), ctx)
    return data


def _named(
    raw: object,
    at: _At,
    ctx: _Context,
    what: str,
    build: Callable[[object, _At, _Context], _T | None],
) -> dict[str, _T]:
    """A `NAME: entry` mapping, each entry built by `build`; broken entries are left out."""
    if not isinstance(raw, _Map):
        ctx.problem(f"expected a mapping of NAME: {what}, got {_shown(raw)}", at)
        return {}
    entries = {str(name): build(value, at.key(raw, name), ctx) for name, value in raw.items()}
    return {name: entry for name, entry in entries.items() if entry is not None}


def _env_map(raw: object, at: _At, ctx: _Context) -> dict[str, EnvValue]:
    return _named(raw, at, ctx, "value", _env_value)


def _env_value(raw: object, at: _At, ctx: _Context) -> EnvValue | None:
    """`KEY: value` or `KEY: {value, secret}`; the documented dynamic forms are refused by name
    rather than dropped, so nobody runs with an env var that silently is not there."""
    if isinstance(raw, str | int | float):
        return EnvValue.model_validate({"value": raw})  # numbers and booleans become text
    if not isinstance(raw, _Map):
        ctx.problem(f"expected a string or {{value: ..., secret: true}}, got {_shown(raw)}", at)
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
        return _build(EnvValue, _known(raw, ("value", "secret"), at, ctx), at, raw, ctx)
    return None


def _secrets(raw: object, at: _At, ctx: _Context) -> dict[str, SecretSpec]:
    return _named(raw, at, ctx, "secret", _secret)


def _secret(raw: object, at: _At, ctx: _Context) -> SecretSpec | None:
    if isinstance(raw, str):
        return SecretSpec(value=raw)
    if not isinstance(raw, _Map):
        ctx.problem(f"expected a string or {{provider: env, key: NAME}}, got {_shown(raw)}", at)
        return None
    if "provider" not in raw:  # {secret: true, value: ...}: an inline value
        fields = _known(raw, ("secret", "value"), at, ctx)
        fields.pop("secret", None)
    elif raw["provider"] in ("env", "file", "literal"):
        fields = _known(raw, ("provider", "key", "value"), at, ctx)
    else:
        ctx.problem(
            f"secret provider {_shown(raw['provider'])} is not supported; "
            "only env, file and literal are",
            at.key(raw, "provider"),
        )
        return None
    return _build(SecretSpec, fields, at, raw, ctx)


def _profiles(raw: object, at: _At, ctx: _Context) -> dict[str, Profile]:
    if not isinstance(raw, _Map):
        ctx.problem(f"expected a mapping of profile names, got {_shown(raw)}", at)
        return {}
    entries = {str(name): _profile(value, at.key(raw, name), ctx) for name, value in raw.items()}
    return {name: entry for name, entry in entries.items() if entry is not None}


def _profile(raw: object, at: _At, ctx: _Context) -> Profile | None:
    """`{description, KEY: value, ...}` as the original writes it; a nested `env:` works too."""
    if not isinstance(raw, _Map):
        ctx.problem(f"expected a mapping of NAME: value, got {_shown(raw)}", at)
        return None
    env: dict[str, EnvValue] = {}
    for key, value in raw.items():
        if key == "env" and isinstance(value, _Map):
            env.update(_env_map(value, at.key(raw, key), ctx))
        elif key != "description":
            entry = _env_value(value, at.key(raw, key), ctx)
            if entry is not None:
                env[str(key)] = entry
    return _build(Profile, {"description": raw.get("description"), "env": env}, at, raw, ctx)


def _env_files(raw: object, at: _At, ctx: _Context) -> object:
    return (raw,) if isinstance(raw, str) else raw


def _merge(raw: object, at: _At, ctx: _Context) -> MergeSpec | None:
    """`merge:` as a list of steps, or `{commands: [...], timeout: N}`."""
    return _steps_spec(MergeSpec, raw, at, ctx, ("commands", "timeout"))


def _steps_spec(
    model: type[_M],
    raw: object,
    at: _At,
    ctx: _Context,
    keys: Collection[str],
    extras: Callable[[dict[str, Any], _Map, _At, _Context], dict[str, Any]] | None = None,
) -> _M | None:
    """A phase given as a list of steps or as `{commands: [...], timeout, ...}` (merge,
    setup); `extras` builds the model's other fields from the mapping."""
    if isinstance(raw, _Seq):
        return _from_steps(model, "steps", raw, at, ctx)
    if not isinstance(raw, _Map):
        ctx.problem(f"expected a list of steps or {{commands: [...]}}, got {_shown(raw)}", at)
        return None
    count = len(ctx.problems)
    fields = _known(raw, keys, at, ctx)
    data: dict[str, Any] = {"timeout": fields.get("timeout"), "steps": ()}
    if "commands" in fields:
        data["steps"] = _step_list(fields["commands"], at.key(raw, "commands"), ctx)
    if extras is not None:
        data.update(extras(fields, raw, at, ctx))
    if ctx.failed_since(count):
        return None
    return _build(model, data, at, raw, ctx, renames={"steps": "commands"})


def _triggers(raw: object, at: _At, ctx: _Context) -> tuple[Trigger, ...]:
    """`on:` as an event (`on: commit`), a list of events, or `{event: {options}}`."""
    if isinstance(raw, str):
        raw_items: list[tuple[object, object, _At]] = [(raw, None, at)]
    elif isinstance(raw, _Seq):
        raw_items = [(item, None, at.index(raw, i)) for i, item in enumerate(raw)]
    elif isinstance(raw, _Map):
        raw_items = [(event, options, at.key(raw, event)) for event, options in raw.items()]
    else:
        ctx.problem(f"expected an event, a list of events or a mapping, got {_shown(raw)}", at)
        return ()
    triggers = []
    for event, options, here in raw_items:
        if event not in _TRIGGER_EVENTS:
            ctx.problem(f"unknown event {_shown(event)} (events: {', '.join(_TRIGGER_EVENTS)})",
                        here)  # fmt: skip
            continue
        fields: dict[str, Any] = {}
        if isinstance(options, _Map):
            fields = _known(options, _TRIGGER_KEYS, here, ctx)
            for key in (
                "branches",
                "paths",
                "tags",
                "ignore",
            ):  # one glob may stand for a list of one
                if isinstance(fields.get(key), str):
                    fields[key] = (fields[key],)
        elif options is not None:
            ctx.problem(f"expected {event}: {{{', '.join(_TRIGGER_KEYS)}}}, got {_shown(options)}",
                        here)  # fmt: skip
            continue
        trigger = _build(Trigger, {"event": event, **fields}, here, options, ctx)
        if trigger is not None:
            triggers.append(trigger)
    return tuple(triggers)


_TRIGGER_EVENTS = get_args(TriggerEvent)
_TRIGGER_KEYS = (
    "branches", "paths", "tags", "ignore", "settle", "merge", "include_prodigy_commits",
)  # fmt: skip

_TOP_BUILDERS: dict[str, Callable[[object, _At, _Context], object]] = {
    "env": _env_map,
    "secrets": _secrets,
    "profiles": _profiles,
    "env_files": _env_files,
    "merge": _merge,
    "on": _triggers,
}

# ---------------------------------------------------------------------------------------------
# MapReduce (reference §2.3): setup, map, reduce, error policy

_MAPREDUCE_KEYS = (
    "name", "description", "mode", "env", "secrets", "env_files", "profiles", "setup", "map",
    "reduce", "merge", "strict_variables", "worktree", "error_policy", "on", *_POLICY_SHORTCUTS,
)  # fmt: skip
_IGNORED_MAPREDUCE_KEYS = {
    **_IGNORED_TOP_KEYS,
    "error_collection": "every failure is reported as it happens and summed up at the end",
}


def _is_mapreduce(doc: _Map) -> bool:
    """`mode: mapreduce`, or a file with `map:` and no step list (the original's default
    mode for MapReduce files was mapreduce)."""
    mode = doc.get("mode")
    return mode == "mapreduce" or (
        mode is None and "map" in doc and "commands" not in doc and "steps" not in doc
    )


def _mapreduce_workflow(doc: _Map, ctx: _Context) -> Workflow:
    root = _At("", doc.mark)
    fields = _known(doc, _MAPREDUCE_KEYS, root, ctx, ignored=_IGNORED_MAPREDUCE_KEYS)
    for key in ("commands", "steps"):
        if key in doc:
            ctx.problem(f"a MapReduce workflow has no {key}: (use setup:, map: and reduce:)",
                        root.key(doc, key))  # fmt: skip
    data = _workflow_fields(fields, doc, root, ctx)
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
    ctx.raise_problems()
    workflow = _build(Workflow, {**data, "source": ctx.source}, root, doc, ctx)
    ctx.raise_problems()
    assert workflow is not None
    return workflow


def _phase_steps(raw: object, at: _At, ctx: _Context) -> tuple[Step, ...]:
    """A phase's steps: a list, or the deprecated `{commands: [...]}` (warned about)."""
    if isinstance(raw, _Map):
        fields = _known(raw, ("commands",), at, ctx)
        if "commands" not in fields:
            ctx.problem("expected a list of steps or {commands: [...]}", at)
            return ()
        ctx.warn(f"{at.path}: {{commands: [...]}} is deprecated; give the list of steps", at)
        return _step_list(fields["commands"], at.key(raw, "commands"), ctx)
    return _step_list(raw, at, ctx)


_SETUP_KEYS = ("commands", "timeout", "capture_outputs")
_CAPTURE_KEYS = ("command_index", "source", "pattern", "json_path", "max_size", "default",
                 "multiline")  # fmt: skip


def _setup(raw: object, at: _At, ctx: _Context) -> SetupSpec | None:
    """`setup: [steps]` or `{commands: [...], timeout, capture_outputs: {VAR: index|{...}}}`."""
    return _steps_spec(SetupSpec, raw, at, ctx, _SETUP_KEYS, _setup_captures)


def _setup_captures(fields: dict[str, Any], raw: _Map, at: _At, ctx: _Context) -> dict[str, Any]:
    if fields.get("capture_outputs") is None:
        return {}
    here = at.key(raw, "capture_outputs")
    return {"capture_outputs": _named(fields["capture_outputs"], here, ctx, "capture",
                                      _capture_output)}  # fmt: skip


def _capture_output(raw: object, at: _At, ctx: _Context) -> CaptureOutput | None:
    if isinstance(raw, int) and not isinstance(raw, bool):
        raw_fields: dict[str, Any] = {"command_index": raw}
        return _build(CaptureOutput, raw_fields, at, raw, ctx)
    if not isinstance(raw, _Map):
        ctx.problem(f"expected a command index or {{command_index: N, ...}}, got {_shown(raw)}", at)
        return None
    return _build(CaptureOutput, _known(raw, _CAPTURE_KEYS, at, ctx), at, raw, ctx)


_MAP_KEYS = (
    "input", "json_path", "filter", "sort_by", "distinct", "offset", "max_items",
    "max_parallel", "agent_timeout_secs", "agent_template", "timeout_config",
)  # fmt: skip


def _map(raw: object, at: _At, ctx: _Context) -> MapSpec | None:
    if not isinstance(raw, _Map):
        ctx.problem(f"expected a mapping with input: and agent_template:, got {_shown(raw)}", at)
        return None
    count = len(ctx.problems)
    fields = _known(raw, _MAP_KEYS, at, ctx)
    data = {key: value for key, value in fields.items() if key in _MAP_KEYS[:9]}
    if fields.get("timeout_config") is not None:
        timeout = _timeout_config(fields["timeout_config"], at.key(raw, "timeout_config"), ctx)
        if timeout is not None:
            data.setdefault("agent_timeout_secs", timeout)
    for key in ("input", "json_path", "filter", "sort_by", "distinct"):
        if key in data and not isinstance(data[key], str):
            ctx.problem(f"expected text, got {_shown(data[key])}", at.key(raw, key))
    _check_item_pipeline(data, raw, at, ctx)
    if "agent_template" in fields:
        here = at.key(raw, "agent_template")
        data["agent_template"] = _phase_steps(fields["agent_template"], here, ctx)
    if ctx.failed_since(count):
        return None
    return _build(MapSpec, data, at, raw, ctx)


def _timeout_config(raw: object, at: _At, ctx: _Context) -> object:
    """`timeout_config:` of the original: only agent_timeout_secs has an effect here."""
    if not isinstance(raw, _Map):
        ctx.problem(f"expected a mapping, got {_shown(raw)}", at)
        return None
    ignored = {key: "only agent_timeout_secs is used" for key in raw if key != "agent_timeout_secs"}
    fields = _known(raw, ("agent_timeout_secs",), at, ctx, ignored=ignored)
    return fields.get("agent_timeout_secs", 600)


def _check_item_pipeline(data: Mapping[str, Any], raw: _Map, at: _At, ctx: _Context) -> None:
    """Syntax of json_path, filter and sort_by, checked at load time with their position."""
    checks: dict[str, Callable[[str], object]] = {
        "json_path": jsonpath.check, "filter": compile_filter, "sort_by": parse_sort,
    }  # fmt: skip
    for key, check in checks.items():
        if isinstance(data.get(key), str) and data[key].strip():
            try:
                check(data[key])
            except ProdigyError as exc:
                ctx.problem(exc.message, at.key(raw, key), hint=exc.details or exc.hint)


_POLICY_KEYS = ("on_item_failure", "continue_on_failure", "max_failures", "failure_threshold",
                "circuit_breaker", "retry_config", "error_collection")  # fmt: skip


def _error_policy(fields: dict[str, Any], doc: _Map, root: _At, ctx: _Context) -> object:
    """`error_policy: {...}` merged with the top-level shortcuts (`on_item_failure: dlq`);
    one key given both ways is a problem, not a silent choice."""
    data: dict[str, Any] = {}
    raw = fields.get("error_policy")
    here = root.key(doc, "error_policy")
    if raw is not None:
        if isinstance(raw, _Map):
            ignored = {"error_collection": _IGNORED_MAPREDUCE_KEYS["error_collection"]}
            data.update(_known(raw, _POLICY_KEYS[:6], here, ctx, ignored=ignored))
        else:
            ctx.problem(f"expected a mapping, got {_shown(raw)}", here)
    for key in _POLICY_SHORTCUTS:
        if key in fields:
            if key in data:
                ctx.problem(f"{key} is given both here and under error_policy:",
                            root.key(doc, key))  # fmt: skip
            data[key] = fields[key]
    retry = data.pop("retry_config", None)
    if isinstance(retry, _Map) and "max_attempts" in retry:
        data["retry_attempts"] = retry["max_attempts"]
    if isinstance(data.get("circuit_breaker"), _Map):
        breaker = data["circuit_breaker"]
        data["circuit_breaker"] = _known(breaker, CircuitBreaker.model_fields, here, ctx)
    policy = _build(ErrorPolicy, data, here if raw is not None else root, raw or doc, ctx,
                    renames={"retry_attempts": "retry_config"})  # fmt: skip
    return policy if policy is not None else ErrorPolicy()


# ---------------------------------------------------------------------------------------------
# steps

_COMMAND_KEYS = ("claude", "shell", "write_file", "foreach", "analyze", "test", "command")
_STEP_KEYS = (
    "id", "name", "commit_required", "auto_commit", "commit_config", "timeout", "when",
    "capture", "capture_format", "capture_streams", "capture_output", "output_file", "outputs",
    "env", "working_dir", "on_failure", "on_success", "on_exit_code", "retry", "validate",
    "allow_failure", "continue_on_error",
)  # fmt: skip
_PLAIN_STEP_FIELDS = (
    "id", "name", "commit_required", "auto_commit", "timeout", "when", "capture",
    "capture_format", "capture_output", "output_file", "env", "working_dir", "allow_failure",
)  # fmt: skip
_IGNORED_STEP_KEYS = {
    "analysis": "per-step analysis was removed from prodigy",
    "skip_validation": "step_validate is not supported",
    "validation_timeout": "step_validate is not supported",
    "ignore_validation_failure": "step_validate is not supported",
}
_REFUSED_STEP_KEYS = {
    "goal_seek": ("goal_seek was removed; use validate/on_failure", None),
    "handler": ("handler: steps are not supported", "use shell: or claude:"),
    "step_validate": ("step_validate is not supported yet", "use validate:"),
}


def _step_list(raw: object, at: _At, ctx: _Context, *, top: bool = False) -> tuple[Step, ...]:
    if not isinstance(raw, _Seq):
        ctx.problem(f"expected a list of steps, got {_shown(raw)}", at)
        return ()
    if top and not raw:
        ctx.problem("the workflow has no steps", at, hint=_SHAPES_HINT)
    steps = []
    for index, item in enumerate(raw):
        item_at = at.index(raw, index)
        if top:
            item_at = _At(item_at.path, item_at.mark, f"step {index + 1}", item_at.depth)
        step = _step(item, item_at, ctx)
        if step is not None:
            steps.append(step)
    return tuple(steps)


def _step(raw: object, at: _At, ctx: _Context) -> Step | None:
    """Any step, wherever it appears: one parser, one schema (the original had two)."""
    if ctx.deadline.expired():
        raise WorkflowError(ctx.deadline.problem, location=at.location(ctx.source))
    if at.depth > _MAX_DEPTH:
        ctx.problem(f"steps are nested more than {_MAX_DEPTH} levels deep", at)
        return None
    if isinstance(raw, str):  # legacy: a bare Claude command name
        return _text_step("claude", _slash(raw), at, ctx)
    if not isinstance(raw, _Map):
        ctx.problem(f"expected a step such as {{shell: ...}}, got {_shown(raw)}", at)
        return None
    for key, (message, hint) in _REFUSED_STEP_KEYS.items():
        if key in raw:
            ctx.problem(message, at.key(raw, key), hint=hint)
            return None
    found = [key for key in _COMMAND_KEYS if key in raw]
    if not found and _is_legacy_command(raw):
        return _legacy_command_step(raw, at, ctx)
    if len(found) != 1:
        ctx.problem(
            "a step needs exactly one of claude, shell, write_file, foreach "
            f"(found: {', '.join(found) or 'none'})",
            at,
            hint=_command_hint(raw, found),
        )
        return None
    return _step_of_kind(found[0], raw, at, ctx)


def _command_hint(raw: _Map, found: list[str]) -> str:
    if found:
        return "split them into separate steps"
    for key in raw:
        close = difflib.get_close_matches(str(key), _COMMAND_KEYS, n=1)
        if close:
            return f"did you mean '{close[0]}' instead of '{key}'?"
    return 'for example: - shell: "cargo test"'


def _step_of_kind(key: str, raw: _Map, at: _At, ctx: _Context) -> Step | None:
    count = len(ctx.problems)
    fields = _known(raw, (key, *_STEP_KEYS), at, ctx, ignored=_IGNORED_STEP_KEYS)
    body = _BODIES[key](fields[key], at.key(raw, key), ctx)
    common, renames = _step_fields(fields, raw, str(body["kind"]), at, ctx)
    if "on_failure" in body and "on_failure" in common:
        ctx.problem(
            "on_failure is given both under test: and on the step", at.key(raw, "on_failure")
        )
    if ctx.failed_since(count):
        return None
    data = {**body, **common, "line": at.line}
    return _build(Step, data, at, raw, ctx, renames={"command": key, **renames})


def _step_fields(
    fields: dict[str, Any], raw: _Map, kind: str, at: _At, ctx: _Context
) -> tuple[dict[str, Any], dict[str, str]]:
    """The fields every step kind shares, and which YAML key each came from."""
    data = {name: fields[name] for name in _PLAIN_STEP_FIELDS if name in fields}
    renames = {"commit_message": "commit_config", "validation": "validate"}
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
    if fields.get("on_failure") is not None:
        data["on_failure"] = _on_failure(fields["on_failure"], kind, at.key(raw, "on_failure"), ctx)
    return data, renames


def _from_steps(model: type[_M], name: str, raw: _Seq, at: _At, ctx: _Context) -> _M | None:
    """A model that is just a list of steps; not judged when a step already failed, so a
    broken step is one problem, not also "needs at least one step"."""
    count = len(ctx.problems)
    steps = _step_list(raw, at, ctx)
    if ctx.failed_since(count):
        return None
    return _build(model, {name: steps}, at, raw, ctx)


def _text_step(
    kind: Literal["shell", "claude"], text: object, at: _At, ctx: _Context
) -> Step | None:
    """A step given as bare text: legacy commands, handler strings, validation commands."""
    if not isinstance(text, str) or not text.strip():
        ctx.problem(f"expected a command, got {_shown(text)}", at)
        return None
    return Step(kind=kind, command=text, line=at.line)


def _slash(text: str) -> str:
    """Legacy Claude command names may omit the slash: `prodigy-lint` runs `/prodigy-lint`."""
    stripped = text.strip()
    return stripped if not stripped or stripped.startswith("/") else f"/{stripped}"


# --- kind-specific bodies: each returns the Step fields for its kind


def _claude_body(value: object, at: _At, ctx: _Context) -> dict[str, object]:
    return {"kind": "claude", "command": value}


def _shell_body(value: object, at: _At, ctx: _Context) -> dict[str, object]:
    return {"kind": "shell", "command": value}


def _command_body(value: object, at: _At, ctx: _Context) -> dict[str, object]:
    ctx.warn("`command:` is deprecated; use `claude:`", at)
    return {"kind": "claude", "command": _slash(value) if isinstance(value, str) else value}


def _analyze_body(value: object, at: _At, ctx: _Context) -> dict[str, object]:
    ctx.warn("`analyze:` was removed from prodigy; this step does nothing", at)
    return {"kind": "analyze"}


def _test_body(value: object, at: _At, ctx: _Context) -> dict[str, object]:
    """Deprecated `test: {command, on_failure}`: a shell step with the same debug loop."""
    ctx.warn("`test:` is deprecated; use `shell:`", at)
    if not isinstance(value, _Map):
        return {"kind": "shell", "command": value}
    fields = _known(value, ("command", "on_failure"), at, ctx)
    if "command" not in fields:
        ctx.problem("test: needs command:", at)
    body: dict[str, object] = {"kind": "shell", "command": fields.get("command")}
    if fields.get("on_failure") is not None:
        body["on_failure"] = _on_failure(
            fields["on_failure"], "shell", at.key(value, "on_failure"), ctx
        )
    return body


def _write_file_body(value: object, at: _At, ctx: _Context) -> dict[str, object]:
    keys = ("path", "content", "format", "mode", "create_dirs")
    if not isinstance(value, _Map):
        ctx.problem(f"expected a mapping with path: and content:, got {_shown(value)}", at)
        return {"kind": "write_file"}
    spec = _build(WriteFileSpec, _known(value, keys, at, ctx), at, value, ctx)
    return {"kind": "write_file", "write_file": spec}


def _foreach_body(value: object, at: _At, ctx: _Context) -> dict[str, object]:
    keys = ("foreach", "input", "parallel", "do", "continue_on_error", "max_items")
    if not isinstance(value, _Map):
        ctx.problem(f"expected a mapping with foreach: and do:, got {_shown(value)}", at)
        return {"kind": "foreach"}
    count = len(ctx.problems)
    fields = _known(value, keys, at, ctx)
    source = "input" if "input" in fields else "foreach"
    if "input" in fields and "foreach" in fields:
        ctx.problem("give the items as foreach: or input:, not both", at.key(value, "input"))
    if source not in fields:
        ctx.problem("foreach needs its items: foreach: <command or list>", at)
    data: dict[str, Any] = {
        name: fields[name]
        for name in ("parallel", "continue_on_error", "max_items")
        if name in fields
    }
    data["items"] = _plain(fields.get(source))
    data["do"] = _step_list(fields["do"], at.key(value, "do"), ctx) if "do" in fields else ()
    if ctx.failed_since(count):
        return {"kind": "foreach"}
    spec = _build(ForeachSpec, data, at, value, ctx, renames={"items": source})
    return {"kind": "foreach", "foreach": spec}


_BODIES: dict[str, Callable[[object, _At, _Context], dict[str, object]]] = {
    "claude": _claude_body,
    "shell": _shell_body,
    "command": _command_body,
    "analyze": _analyze_body,
    "test": _test_body,
    "write_file": _write_file_body,
    "foreach": _foreach_body,
}

# --- legacy structured command: {name, args, options, metadata, id, outputs, commit_required}

_LEGACY_KEYS = ("name", "args", "options", "metadata", "id", "outputs", "commit_required")
_LEGACY_METADATA = {
    "timeout": "timeout", "env": "env", "commit_required": "commit_required",
    "continue_on_error": "allow_failure",
}  # fmt: skip


def _is_legacy_command(raw: _Map) -> bool:
    """`{name: prodigy-lint, args: [...]}`; a name with spaces is a step that lost its command."""
    name = raw.get("name")
    return isinstance(name, str) and bool(name.strip()) and not re.search(r"\s", name.strip())


def _legacy_command_step(raw: _Map, at: _At, ctx: _Context) -> Step | None:
    """Run as `/name arg... --option value`; the original dropped the args on one path."""
    fields = _known(raw, _LEGACY_KEYS, at, ctx, ignored=_IGNORED_STEP_KEYS)
    words = [_slash(fields["name"]), *_legacy_words(fields, at, ctx)]
    data: dict[str, Any] = {"kind": "claude", "command": " ".join(words), "line": at.line}
    metadata = fields.get("metadata")
    if isinstance(metadata, _Map):
        here = at.key(raw, "metadata")
        ignored = {"retries": "use retry: on a step", **_IGNORED_STEP_KEYS}
        kept = _known(metadata, tuple(_LEGACY_METADATA), here, ctx, ignored=ignored)
        data.update({_LEGACY_METADATA[key]: value for key, value in kept.items()})
    data.update({key: fields[key] for key in ("id", "commit_required") if key in fields})
    if fields.get("outputs") is not None:
        data["outputs"] = _outputs(fields["outputs"], at.key(raw, "outputs"), ctx)
    return _build(Step, data, at, raw, ctx)


def _legacy_words(fields: dict[str, Any], at: _At, ctx: _Context) -> list[str]:
    args = fields.get("args") or []
    options = fields.get("options") or {}
    if not isinstance(args, list) or not isinstance(options, dict):
        ctx.problem("args: must be a list and options: a mapping", at)
        return []
    words = [str(scalar_text(arg)) for arg in args]
    for key, value in options.items():
        if value is True:
            words.append(f"--{key}")
        elif value not in (False, None):
            words.extend([f"--{key}", str(scalar_text(value))])
    return words


# --- nested step fields


def _commit_message(raw: object, at: _At, ctx: _Context) -> object:
    if not isinstance(raw, _Map):
        ctx.problem(f"expected a mapping with message_template:, got {_shown(raw)}", at)
        return None
    return _known(raw, ("message_template",), at, ctx).get("message_template")


_STREAM_WORDS = {"stdout": (True, False), "stderr": (False, True), "both": (True, True)}


def _capture_streams(raw: object, at: _At, ctx: _Context) -> object:
    """`"stdout"|"stderr"|"both"` (standard schema) or the per-stream mapping (step schema)."""
    if isinstance(raw, str) and raw in _STREAM_WORDS:
        stdout, stderr = _STREAM_WORDS[raw]
        return {"stdout": stdout, "stderr": stderr}
    if isinstance(raw, _Map):
        return _known(raw, ("stdout", "stderr", "exit_code", "success", "duration"), at, ctx)
    ctx.problem(f"expected stdout, stderr, both or a mapping of streams, got {_shown(raw)}", at)
    return None


def _outputs(raw: object, at: _At, ctx: _Context) -> dict[str, str]:
    """Legacy `outputs: {spec: {file_pattern: "*.md"}}`: `${<id>.spec}` = first matching file."""
    if not isinstance(raw, _Map):
        ctx.problem(f"expected a mapping of output names, got {_shown(raw)}", at)
        return {}
    patterns = {}
    for name, value in raw.items():
        pattern = value.get("file_pattern") if isinstance(value, _Map) else value
        if isinstance(pattern, str):
            patterns[str(name)] = pattern
        else:
            ctx.problem("expected {file_pattern: <glob>}", at.key(raw, name))
    return patterns


def _exit_code_steps(raw: object, at: _At, ctx: _Context) -> dict[int, Step]:
    if not isinstance(raw, _Map):
        ctx.problem(f"expected a mapping of exit code: step, got {_shown(raw)}", at)
        return {}
    steps = {}
    for code, value in raw.items():
        here = at.key(raw, code)
        if isinstance(code, bool) or not re.fullmatch(r"-?\d+", str(code)):
            ctx.problem(f"exit codes must be whole numbers, got {_shown(code)}", here)
            continue
        step = _step(value, here, ctx)
        if step is not None:
            steps[int(code)] = step
    return steps


# ---------------------------------------------------------------------------------------------
# on_failure (reference §2.6)

_HANDLER_OPTIONS = ("fail_workflow", "handler_failure_fatal", "strategy")
_CONTROL_KEYS = (*_HANDLER_OPTIONS, "max_retries", "max_attempts", "retry_original")
_DETAILED_KEYS = (*_CONTROL_KEYS, "commands", "timeout")


def _on_failure(raw: object, kind: str, at: _At, ctx: _Context) -> OnFailure | None:
    """Every accepted shape onto one OnFailure; `kind` is the failing step's kind, because the
    same YAML means a debug loop on a shell step and handler-then-retry elsewhere."""
    if isinstance(raw, bool):
        return OnFailure(ignore=True) if raw else None
    if isinstance(raw, str):
        handler = _handler(raw, at, ctx)
        return None if handler is None else OnFailure(handlers=(handler,))
    if isinstance(raw, _Seq):
        handlers = _handlers(raw, at, ctx)
        return None if handlers is None else _build(OnFailure, {"handlers": handlers}, at, raw, ctx)
    if isinstance(raw, _Map):
        if "commands" in raw:
            return _detailed_on_failure(raw, at, ctx)
        return _single_on_failure(raw, kind, at, ctx)
    ctx.problem(f"expected true, false, a command, a list or a mapping, got {_shown(raw)}", at)
    return None


def _handler(raw: object, at: _At, ctx: _Context) -> Step | None:
    """A handler string starting with `/` is a Claude command, anything else shell."""
    if isinstance(raw, str):
        return _text_step("claude" if raw.strip().startswith("/") else "shell", raw, at, ctx)
    return _step(raw, at, ctx)


def _handlers(raw: object, at: _At, ctx: _Context) -> tuple[Step, ...] | None:
    if not isinstance(raw, _Seq) or not raw:
        ctx.problem(f"expected a list of handler commands, got {_shown(raw)}", at)
        return None
    count = len(ctx.problems)
    handlers = tuple(_handler(item, at.index(raw, index), ctx) for index, item in enumerate(raw))
    if ctx.failed_since(count):
        return None
    return tuple(handler for handler in handlers if handler is not None)


def _detailed_on_failure(raw: _Map, at: _At, ctx: _Context) -> OnFailure | None:
    """`{commands: [...], strategy, timeout, fail_workflow, handler_failure_fatal}`."""
    ignored = {"capture": "capturing handler output is not supported yet"}
    fields = _known(raw, _DETAILED_KEYS, at, ctx, ignored=ignored)
    handlers = _handlers(fields["commands"], at.key(raw, "commands"), ctx)
    if handlers is None:
        return None
    data = {key: fields[key] for key in (*_HANDLER_OPTIONS, "timeout") if key in fields}
    counts = _retry_counts(fields, raw, at, ctx, handler=None, debug_loop=False)
    return _build(OnFailure, {"handlers": handlers, **data, **counts}, at, raw, ctx)


def _single_on_failure(raw: _Map, kind: str, at: _At, ctx: _Context) -> OnFailure | None:
    """A handler step plus control keys (the "advanced" and standard-schema forms), or
    control keys alone (`{fail_workflow: true}`)."""
    control = {key: raw[key] for key in _CONTROL_KEYS if key in raw}
    step_part = _Map(raw.mark)
    for key, value in raw.items():
        if key not in _CONTROL_KEYS:
            step_part[key] = value
            if key in raw.key_marks:
                step_part.key_marks[key] = raw.key_marks[key]
    data = {key: control[key] for key in _HANDLER_OPTIONS if key in control}
    if not any(key in step_part for key in _COMMAND_KEYS) and not _is_legacy_command(step_part):
        for key in step_part:
            _unknown_key(key, (*_CONTROL_KEYS, "claude", "shell"), at.key(raw, key), at.name, ctx)
        ignore = control.get("fail_workflow") in (False, None)
        return _build(OnFailure, {**data, "ignore": ignore}, at, raw, ctx)
    handler = _step(step_part, at, ctx)
    if handler is None:
        return None
    counts = _retry_counts(control, raw, at, ctx, handler=handler, debug_loop=kind == "shell")
    return _build(OnFailure, {"handlers": (handler,), **data, **counts}, at, raw, ctx)


def _retry_counts(
    control: Mapping[str, Any],
    raw: _Map,
    at: _At,
    ctx: _Context,
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
    control: Mapping[str, Any], key: str, minimum: int, raw: _Map, at: _At, ctx: _Context
) -> int | None:
    if key not in control:
        return None
    value = control[key]
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        reason = f"expected a whole number of at least {minimum}, got {_shown(value)}"
        ctx.problem(reason, at.key(raw, key))
        return None
    return value


# ---------------------------------------------------------------------------------------------
# validate (reference §2.8) and retry (reference §2.7)

_VALIDATE_KEYS = (
    "claude", "shell", "command", "commands", "result_file", "threshold", "timeout",
    "on_incomplete",
)  # fmt: skip
_IGNORED_VALIDATE_KEYS = {
    "expected_schema": "results are not checked against a schema yet; check them in the "
    "validation command",
}
_ON_INCOMPLETE_OPTIONS = ("prompt", "max_attempts", "fail_workflow", "commit_required")


def _validation(raw: object, at: _At, ctx: _Context) -> ValidateSpec | None:
    if isinstance(raw, _Seq):  # `validate: [steps]` shorthand
        return _from_steps(ValidateSpec, "commands", raw, at, ctx)
    if not isinstance(raw, _Map):
        ctx.problem(f"expected a mapping with claude:, shell: or commands:, got {_shown(raw)}", at)
        return None
    count = len(ctx.problems)
    fields = _known(raw, _VALIDATE_KEYS, at, ctx, ignored=_IGNORED_VALIDATE_KEYS)
    data: dict[str, Any] = {
        key: fields[key] for key in ("result_file", "threshold", "timeout") if key in fields
    }
    data["commands"] = _commands(fields, raw, ("shell", "command", "claude"), at, ctx)
    if fields.get("on_incomplete") is not None:
        data["on_incomplete"] = _on_incomplete(
            fields["on_incomplete"], at.key(raw, "on_incomplete"), ctx
        )
    if ctx.failed_since(count):
        return None
    return _build(ValidateSpec, data, at, raw, ctx)


def _on_incomplete(raw: object, at: _At, ctx: _Context) -> OnIncomplete | None:
    if isinstance(raw, _Seq):
        return _from_steps(OnIncomplete, "commands", raw, at, ctx)
    if not isinstance(raw, _Map):
        ctx.problem(f"expected a mapping with claude:, shell: or commands:, got {_shown(raw)}", at)
        return None
    count = len(ctx.problems)
    fields = _known(raw, ("claude", "shell", "commands", *_ON_INCOMPLETE_OPTIONS), at, ctx)
    data = {key: fields[key] for key in _ON_INCOMPLETE_OPTIONS if key in fields}
    data["commands"] = _commands(fields, raw, ("shell", "claude"), at, ctx)
    if ctx.failed_since(count):
        return None
    return _build(OnIncomplete, data, at, raw, ctx)


def _commands(
    fields: Mapping[str, Any], raw: _Map, singles: tuple[str, ...], at: _At, ctx: _Context
) -> tuple[Step, ...]:
    """`commands: [steps]`, or single `shell:`/`claude:` keys run in the order written (an old
    debtmap.yml gives both: capture the state, then judge it)."""
    given = [key for key in fields if key in singles]
    if "commands" not in fields:
        steps = (_single_command(key, fields[key], at.key(raw, key), ctx) for key in given)
        return tuple(step for step in steps if step is not None)
    if given:
        ctx.problem(f"give commands: or {given[0]}:, not both", at.key(raw, given[0]))
    return _step_list(fields["commands"], at.key(raw, "commands"), ctx)


def _single_command(key: str, value: object, at: _At, ctx: _Context) -> Step | None:
    return _text_step("claude" if key == "claude" else "shell", value, at, ctx)


_RETRY_KEYS = (
    "attempts", "backoff", "initial_delay", "max_delay", "jitter", "jitter_factor",
    "retry_on", "retry_budget", "on_failure",
)  # fmt: skip
_BACKOFF_OPTIONS = {
    "fixed": (), "fibonacci": (), "linear": ("increment",), "exponential": ("base",),
    "custom": ("delays",),
}  # fmt: skip


def _retry(raw: object, at: _At, ctx: _Context) -> RetrySpec | None:
    if not isinstance(raw, _Map):
        ctx.problem(f"expected a mapping such as {{attempts: 3}}, got {_shown(raw)}", at)
        return None
    fields = _known(raw, _RETRY_KEYS, at, ctx)
    data = {key: value for key, value in fields.items() if key not in ("backoff", "on_failure")}
    renames = {}
    if "backoff" in fields:
        data.update(_backoff(fields["backoff"], at.key(raw, "backoff"), ctx))
        renames = {option: "backoff" for option in ("increment", "base", "delays")}
    if "on_failure" in fields:
        data.update(_retry_exhausted(fields["on_failure"], at.key(raw, "on_failure"), ctx))
        renames.update(on_exhausted="on_failure", fallback="on_failure")
    return _build(RetrySpec, data, at, raw, ctx, renames=renames)


def _backoff(raw: object, at: _At, ctx: _Context) -> dict[str, Any]:
    """`exponential` or `{exponential: {base: 2}}`, `{linear: {increment: 5s}}`, ..."""
    if isinstance(raw, str):
        return {"backoff": raw}
    if isinstance(raw, _Map) and len(raw) == 1:
        ((strategy, options),) = raw.items()
        if strategy in _BACKOFF_OPTIONS and isinstance(options, _Map | None):
            here = at.key(raw, strategy)
            chosen = _known(options, _BACKOFF_OPTIONS[strategy], here, ctx) if options else {}
            return {"backoff": strategy, **chosen}
    ctx.problem(
        f"expected {', '.join(_BACKOFF_OPTIONS)} or e.g. {{exponential: {{base: 2}}}}, "
        f"got {_shown(raw)}",
        at,
    )
    return {}


def _retry_exhausted(raw: object, at: _At, ctx: _Context) -> dict[str, Any]:
    """`retry.on_failure`: stop | continue | {fallback: {command: ...}}."""
    if raw in ("stop", "continue"):
        return {"on_exhausted": raw}
    fallback = raw.get("fallback") if isinstance(raw, _Map) and len(raw) == 1 else None
    command = fallback.get("command") if isinstance(fallback, _Map) else fallback
    if isinstance(command, str):
        return {"on_exhausted": "fallback", "fallback": command}
    ctx.problem(f"expected stop, continue or {{fallback: {{command: ...}}}}, got {_shown(raw)}", at)
    return {}


_NESTED_STEP_FIELDS: dict[str, tuple[str, Callable[[object, _At, _Context], object]]] = {
    "commit_config": ("commit_message", _commit_message),
    "capture_streams": ("capture_streams", _capture_streams),
    "outputs": ("outputs", _outputs),
    "on_success": ("on_success", _step),
    "on_exit_code": ("on_exit_code", _exit_code_steps),
    "retry": ("retry", _retry),
    "validate": ("validation", _validation),
}
