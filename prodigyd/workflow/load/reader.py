"""Workflow text into data that remembers where each part was written (nodes.py).

YAML is composed by PyYAML's SafeLoader with four changes: every mapping, key and item keeps
its line and column; a duplicate key is an error, not a silent overwrite; scalars are
resolved as YAML 1.2, like the original's serde_yaml (`on`/`yes` stay strings, `0644` is not
octal and `1:30` is not ninety); and the limits of prodigyd.workflow.limits (size, nesting,
aliases, time) are counted while the node graph is built. JSON is YAML 1.2 flow syntax, so
the same composer marks it, with json.loads the judge of what it means.

A syntax error names the line and column and shows them with a caret.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import yaml
from yaml.constructor import ConstructorError
from yaml.reader import ReaderError
from yaml.scanner import ScannerError

from prodigyd import errorcodes
from prodigyd.errors import Location, WorkflowError
from prodigyd.workflow.limits import MAX_DEPTH, BoundedComposer, Deadline, LimitExceeded
from prodigyd.workflow.load.diagnostics import SHAPES_HINT, excerpt, shown
from prodigyd.workflow.load.nodes import Map, Mark, Seq, unmarked


class _DuplicateKey(ConstructorError):
    """Two entries with the same key: YAML keeps the last one silently, we refuse."""


class _Loader(BoundedComposer, yaml.SafeLoader):
    """SafeLoader that keeps positions, refuses duplicate keys, resolves YAML 1.2 scalars and
    stops at the limits of prodigyd.workflow.limits (counted by BoundedComposer)."""

    yaml_implicit_resolvers: dict[str, list[tuple[str, re.Pattern[str]]]] = {}

    def __init__(self, text: str, deadline: Deadline | None, source: str | None) -> None:
        yaml.SafeLoader.__init__(self, text)
        self.count_from_here(deadline)
        self.source = source  # the file: each mapping and list knows where it came from

    def construct_object(self, node: yaml.Node, deep: bool = False) -> Any:
        """PyYAML reports a value its explicit tag cannot hold (`!!float x`, `!!timestamp 1`)
        as a bare ValueError or worse (`!!bool x`: KeyError, an empty `!!float`: IndexError),
        with no position: give it the node's."""
        try:
            return super().construct_object(node, deep)
        except (ValueError, TypeError, AttributeError, OverflowError, IndexError, KeyError):
            tag = str(node.tag).replace("tag:yaml.org,2002:", "!!")
            value = shown(node.value) if isinstance(node, yaml.ScalarNode) else "this node"
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


def _construct_map(loader: _Loader, node: yaml.MappingNode) -> Iterator[Map]:
    _kind(node, yaml.MappingNode, "a mapping")
    mapping = Map(_mark(node), loader.source)
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


def _construct_seq(loader: _Loader, node: yaml.SequenceNode) -> Iterator[Seq]:
    _kind(node, yaml.SequenceNode, "a list")
    seq = Seq(_mark(node), loader.source)
    yield seq
    for child in node.value:
        seq.append(loader.construct_object(child, deep=False))
        seq.item_marks.append(_mark(child))


def _kind(node: yaml.Node, kind: type[yaml.Node], what: str) -> None:
    """`!!map x`, `!!seq x`: a tag that names another kind of node than it is on. Checked
    before the constructor's first yield: what comes after it runs outside
    `construct_object` and its positioned errors."""
    if not isinstance(node, kind):
        tag = str(node.tag).replace("tag:yaml.org,2002:", "!!")
        raise ConstructorError(None, None, f"{tag} must tag {what}", node.start_mark)


_Loader.add_constructor("tag:yaml.org,2002:int", _construct_int)
_Loader.add_constructor("tag:yaml.org,2002:map", _construct_map)
_Loader.add_constructor("tag:yaml.org,2002:seq", _construct_seq)


def _compose(
    text: str, deadline: Deadline | None, source: str | None
) -> tuple[object, Mark | None]:
    """The document's data and where it starts (None for an empty document)."""
    loader = _Loader(text, deadline, source)
    try:
        try:
            node = loader.get_single_node()
        except (ValueError, OverflowError) as exc:  # "\U00110000": PyYAML's chr() fails
            problem = f"an escape names no character ({exc})"
            raise ScannerError(None, None, problem, loader.get_mark()) from None
        if node is None:
            return None, None
        return loader.construct_document(node), _mark(node)
    finally:
        loader.dispose()


def read_yaml(text: str, source: str, deadline: Deadline) -> tuple[object, Mark | None]:
    try:
        return _compose(text, deadline, source)
    except yaml.MarkedYAMLError as exc:
        raise _syntax_error(exc, text, source) from None
    except ReaderError as exc:  # a control character, a lone surrogate
        line, column = _char_position(text, exc.position)
        code = ord(exc.character) if isinstance(exc.character, str) else exc.character
        raise WorkflowError(
            f"invalid YAML: character #x{code:04x} is not allowed (control characters other "
            "than tab and newline cannot appear in YAML, not even quoted)",
            location=Location(source, line, column),
            details=excerpt(text, line, column),
            hint='write it as an escape in a double-quoted string, e.g. "\\x01"',
            code=errorcodes.YAML_SYNTAX,
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
    code = errorcodes.YAML_SYNTAX
    if isinstance(exc, LimitExceeded):  # not invalid, too much: JSON files meet them too
        message, code = str(exc.problem), errorcodes.WORKFLOW_TOO_LARGE
    if exc.problem and exc.context:
        where = f" on line {exc.context_mark.line + 1}" if exc.context_mark else ""
        message += f" ({exc.context}{where})"
    if mark is None:
        return WorkflowError(message, location=Location(source), hint=SHAPES_HINT, code=code)
    line, column = mark.line + 1, mark.column + 1
    if isinstance(exc, LimitExceeded):
        hint: str | None = _LIMITS_HINT
    else:
        hint = None if isinstance(exc, ConstructorError) else _syntax_hint(exc)
    return WorkflowError(
        message,
        location=Location(source, line, column),
        details=excerpt(text, line, column),
        hint=hint,
        code=code,
    )


_LIMITS_HINT = "workflow files have limits on size, nesting and aliases: docs/workflows.md, Limits"

#: What usually causes PyYAML's problem (its own words, which name parser states), said
#: in a workflow author's terms; any other problem gets the shapes a workflow may take.
_SYNTAX_HINTS = (
    (
        "mapping values are not allowed here",
        "a value holding ': ' must be quoted, as in shell: \"echo 'Processing: ${item}'\" "
        "(or written as a block: shell: |, the command on the lines below)",
    ),
    (
        "expected <block end>",
        "the entries of one list or mapping start in the same column: check this line's "
        "indentation against the lines above it",
    ),
    (
        "could not find expected ':'",
        "each line of a mapping is `key: value`, and a value running onto the next line "
        "needs quotes or a block (|)",
    ),
    ("found character '\\t'", "YAML indents with spaces, never tabs"),
)


def _syntax_hint(exc: yaml.MarkedYAMLError) -> str:
    if "scanning a quoted scalar" in (exc.context or "") and exc.context_mark is not None:
        return (  # PyYAML's problem is where the file ended; the quote is what to fix
            f"the quote opened on line {exc.context_mark.line + 1} is never closed: close "
            "it (inside double quotes a \" is written \\\", inside single quotes a ' is '')"
        )
    problem = exc.problem or ""
    return next((hint for words, hint in _SYNTAX_HINTS if words in problem), SHAPES_HINT)


def read_json(text: str, source: str, deadline: Deadline) -> tuple[object, Mark | None]:
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
            details=excerpt(text, exc.lineno, exc.colno),
            code=errorcodes.YAML_SYNTAX,
        ) from None
    except RecursionError:  # nested thousands deep: the YAML reading below says where
        data, too_deep = None, True
    try:
        # a tab in valid JSON is always whitespace
        marked, mark = _compose(text.replace("\t", " "), deadline, source)
    except (_DuplicateKey, LimitExceeded) as exc:
        raise _syntax_error(exc, text, source) from None
    except (yaml.YAMLError, ValueError):
        marked, mark = None, None
    if too_deep:
        raise WorkflowError(
            f"invalid JSON: nested more than {MAX_DEPTH} levels deep",
            location=Location(source, 1, 1),
            code=errorcodes.WORKFLOW_TOO_LARGE,
        )
    return (marked, mark) if marked == data else (unmarked(data, source), None)
