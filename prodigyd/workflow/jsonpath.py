"""The JSONPath subset that picks MapReduce work items out of an input document (spec §4.8.3).

    path    := ["$"] segment*                (or a bare first name: `items[*]` = `$.items[*]`)
    segment := "." (name | "*") | ".." (name | "*" | bracket) | bracket
    bracket := "[" (index | "*" | 'name' | "name" | "?(" filter ")") "]"

A path is compiled once into a tuple of selectors, each mapping one node to the nodes it
selects, so `check` at workflow-load time and `select` at run time share every rule. The
semantics follow RFC 9535 where the original was narrower or loose:

- `*` and `[?(...)]` select the children of arrays (elements) and of objects (values, in
  order); the original looked only into arrays.
- `[n]` counts from the end when n is negative; an index out of range selects nothing.
- `..x` applies `x` to the node and to each of its descendants, in document order.
- A filter is the filter language of expr.py (`compile_filter`), where `@` is the candidate
  and `@.a` a field of it; it is compiled with the path, so its errors are load-time errors.
- A name or index that is not there selects nothing: a path matching nothing gives `[]`.

A leading `$` is optional because the original accepted `items[*]`. Names after a dot are
letters, digits, `_` and `-`; any other key is written quoted: `$['a key']`.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

from prodigyd import errorcodes
from prodigyd.errors import WorkflowError
from prodigyd.workflow.expr import ExpressionError, caret, compile_filter

__all__ = ["JsonPathError", "check", "select"]


class JsonPathError(WorkflowError):
    """A `json_path` is malformed; `details` points a caret at the offset."""

    kind = "workflow"
    code = errorcodes.JSONPATH

    def __init__(self, message: str, path: str, offset: int, *, hint: str | None = None) -> None:
        super().__init__(
            f"bad JSONPath {path!r}: {message} at offset {offset}",
            hint=hint,
            details=caret(path, offset),
        )
        self.path = path
        self.offset = offset


def select(document: Any, path: str) -> list[Any]:
    """Every node `path` selects in `document`, in document order.

    An empty path or `$` selects the document itself, so the result is `[document]`.
    """
    nodes = [document]
    for selector in _compile(path):
        nodes = [match for node in nodes for match in selector(node)]
    return nodes


def check(path: str) -> None:
    """Raise JsonPathError if `path` is malformed (filters included); select nothing."""
    _compile(path)


# ---------------------------------------------------------------------------------------------
# selectors: one node in, the nodes it selects out

_Selector = Callable[[Any], Iterable[Any]]


def _children(node: Any) -> Iterable[Any]:
    if isinstance(node, Mapping):
        return node.values()
    if isinstance(node, list | tuple):
        return node
    return ()


def _descendants(node: Any) -> Iterator[Any]:
    """The node, then its descendants depth-first (document order)."""
    yield node
    for child in _children(node):
        yield from _descendants(child)


def _member(name: str) -> _Selector:
    return lambda node: [node[name]] if isinstance(node, Mapping) and name in node else []


def _element(index: int) -> _Selector:
    def select(node: Any) -> list[Any]:
        in_range = isinstance(node, list | tuple) and -len(node) <= index < len(node)
        return [node[index]] if in_range else []

    return select


def _filtered(predicate: Callable[[Any], bool]) -> _Selector:
    return lambda node: [child for child in _children(node) if predicate(child)]


def _recursive(selector: _Selector) -> _Selector:
    return lambda node: [match for each in _descendants(node) for match in selector(each)]


# ---------------------------------------------------------------------------------------------
# parser

_NAME = re.compile(r"[\w-]+")
_INDEX = re.compile(r"-?[0-9]+")
_QUOTED = re.compile(r"""'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*\"""", re.DOTALL)
_ESCAPE = re.compile(r"\\(.)", re.DOTALL)


@functools.lru_cache(maxsize=256)
def _compile(path: str) -> tuple[_Selector, ...]:
    return _PathParser(path).parse()


class _PathParser:
    """Reads a path left to right; surrounding whitespace is ignored."""

    def __init__(self, path: str) -> None:
        self._path = path
        self._pos = len(path) - len(path.lstrip())
        self._end = len(path.rstrip())

    def parse(self) -> tuple[_Selector, ...]:
        selectors: list[_Selector] = []
        if not self._take("$") and (name := self._match(_NAME)) is not None:
            selectors.append(_member(name))
        while self._pos < self._end:
            selectors.append(self._segment())
        return tuple(selectors)

    def _segment(self) -> _Selector:
        if self._take(".."):
            return _recursive(self._bracket() if self._take("[") else self._dotted())
        if self._take("."):
            return self._dotted()
        if self._take("["):
            return self._bracket()
        raise self._error("expected '.', '..' or '['")

    def _dotted(self) -> _Selector:
        if self._take("*"):
            return _children
        name = self._match(_NAME)
        if name is None:
            raise self._error("expected a name or '*' after '.'")
        return _member(name)

    def _bracket(self) -> _Selector:
        selector = self._bracket_body()
        if not self._take("]"):
            raise self._error("expected ']'")
        return selector

    def _bracket_body(self) -> _Selector:
        if self._take("*"):
            return _children
        if self._take("?("):
            return self._filter()
        if (index := self._match(_INDEX)) is not None:
            return _element(int(index))
        if (quoted := self._match(_QUOTED)) is not None:
            return _member(_ESCAPE.sub(r"\1", quoted[1:-1]))
        raise self._error("expected an index, '*', a quoted name or '?(filter)' inside [ ]")

    def _filter(self) -> _Selector:
        start = self._pos
        close = self._closing_parenthesis(start)
        text = self._path[start:close]
        if not text.strip():
            raise self._error("empty filter")
        try:
            predicate = compile_filter(text)
        except ExpressionError as err:
            raise JsonPathError(err.reason, self._path, start + err.offset, hint=err.hint) from None
        self._pos = close + 1
        return _filtered(predicate)

    def _closing_parenthesis(self, start: int) -> int:
        """Offset of the `)` closing a filter that starts at `start`; quotes are skipped."""
        depth, pos = 1, start
        while pos < self._end:
            quoted = _QUOTED.match(self._path, pos, self._end)
            if quoted is not None:
                pos = quoted.end()
                continue
            depth += {"(": 1, ")": -1}.get(self._path[pos], 0)
            if depth == 0:
                return pos
            pos += 1
        raise JsonPathError("unclosed filter, expected ')]'", self._path, start - 2)

    def _take(self, text: str) -> bool:
        if self._path.startswith(text, self._pos, self._end):
            self._pos += len(text)
            return True
        return False

    def _match(self, pattern: re.Pattern[str]) -> str | None:
        match = pattern.match(self._path, self._pos, self._end)
        if match is None:
            return None
        self._pos = match.end()
        return match.group()

    def _error(self, message: str) -> JsonPathError:
        return JsonPathError(message, self._path, self._pos)
