"""The MapReduce work-item pipeline (spec §4.8.3): from an input document to the items agents get.

Pure functions only: reading the input file or running the input command belongs to the
engine, which hands the text or the parsed document here. The order is fixed by the spec:

    json_path → filter → sort_by → distinct → offset → max_items

Fields (in `filter`, `sort_by` and `distinct`) are paths such as `location.line` or `tags[0]`,
resolved by `expr.field_value`, the same rules `${item.location.line}` follows; a missing field
is null throughout. `item.location.line` (the original's book's spelling) and
`@.location.line` name the same field (`expr.parse_field`).

Decisions:
- With no `json_path`, an array document gives its elements and anything else is one item.
  With a `json_path`, its matches are the items as they are: `$.items` is one item (the whole
  list) and `$.items[*]` its elements. The path says which is meant, so a single list match is
  never flattened.
- Sorting never raises on mixed types. Non-null values are ordered as jq orders them:
  booleans (false < true) < numbers (numerically) < strings (by code point; "10" < "9", a
  string is text even when it spells a number) < arrays (element by element) < objects (by
  their sorted keys, then their values). Nulls and missing fields go first or last as the key
  says (NULLS LAST by default), whatever the direction. The sort is stable.
- `distinct` compares values by canonical JSON (`json.dumps(sort_keys=True)`), so 1 and 1.0
  are different values while key order inside an object does not matter.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from prodigyd.errors import WorkflowError
from prodigyd.workflow.expr import (
    FieldPath,
    compile_filter,
    field_value,
    filter_fields,
    has_field,
    parse_field,
)
from prodigyd.workflow.jsonpath import select

if TYPE_CHECKING:
    from prodigyd.workflow.model import MapSpec

__all__ = [
    "SortKey",
    "distinct_items",
    "items_from_output",
    "parse_sort",
    "select_items",
    "sort_items",
    "spec_items",
    "why_none",
]


@dataclass(frozen=True)
class SortKey:
    """One comma-separated part of `sort_by`."""

    path: str  # as written
    keys: FieldPath  # the parsed path
    descending: bool = False
    nulls_first: bool = False


def spec_items(document: Any, spec: MapSpec) -> list[Any]:
    """The work items of `document` through a map phase's own json_path, filter, sort_by,
    distinct, offset and max_items: what a run gets, and what `run --dry-run` counts."""
    return select_items(
        document,
        json_path=spec.json_path,
        filter=spec.filter,
        sort_by=spec.sort_by,
        distinct=spec.distinct,
        offset=spec.offset,
        max_items=spec.max_items,
    )


def why_none(document: Any, spec: MapSpec) -> str | None:
    """Why a map phase has no item when its json_path matched nothing in a document that
    holds something, or its filter took them all (None otherwise): said with "no work
    items", by the run and its dry run. It names the document's top-level keys, or the
    fields the filter reads that no item has at all, since a misspelt key or field
    quietly selects nothing."""
    before = select(document, spec.json_path) if spec.json_path else _as_items(document)
    if spec.json_path and not before and not _matched_empty(document, spec.json_path):
        note = f"the json_path {spec.json_path!r} matched nothing in the input"
        if isinstance(document, dict):
            keys = ", ".join(map(repr, list(document)[:10]))
            note += f"; its top-level keys are {keys}" + (", ..." if len(document) > 10 else "")
        return note
    if not spec.filter or not before or any(True for _ in _kept(before, spec.filter)):
        return None
    note = f"the filter {spec.filter!r} kept none of the {len(before)} items"
    absent = [
        name
        for name, keys in filter_fields(spec.filter).items()
        if not any(has_field(item, keys) for item in before)
    ]
    if absent:
        note += f"; no item has a field named {' or '.join(map(repr, absent))}"
    return note


def _matched_empty(document: Any, json_path: str) -> bool:
    """Whether `json_path` found what it looks for, empty (`$.items[*]` of `{"items": []}`),
    or the document holds nothing to look in."""
    if document in (None, [], {}, ""):
        return True
    return json_path.endswith("[*]") and bool(select(document, json_path.removesuffix("[*]")))


def select_items(
    document: Any,
    *,
    json_path: str | None = None,
    filter: str | None = None,
    sort_by: str | None = None,
    distinct: str | None = None,
    offset: int = 0,
    max_items: int | None = None,
) -> list[Any]:
    """The work items of `document`, through the whole pipeline in the spec's order.

    Empty strings mean "not given", as they do in workflow files (`json_path: ""`).
    """
    if offset < 0 or (max_items is not None and max_items < 0):
        raise WorkflowError(f"offset and max_items cannot be negative (got {offset}, {max_items})")
    items = select(document, json_path) if json_path else _as_items(document)
    if filter:
        items = list(_kept(items, filter))
    if sort_by:
        items = sort_items(items, parse_sort(sort_by))
    if distinct:
        items = distinct_items(items, distinct)
    items = items[offset:]
    return items if max_items is None else items[:max_items]


def items_from_output(text: str) -> list[Any]:
    """The work items a map `input:` command printed.

    Output that is one JSON value gives that value's items (an array its elements, anything
    else one item). Otherwise each non-blank line is an item: a JSON object or array when the
    line is one, else the line's text as a plain string (the original wrapped it in
    `{"item": ...}`, which made `${item}` render as JSON). So `echo 42` gives the number 42
    (one JSON value) while `seq 3` gives the strings "1", "2" and "3".
    """
    try:
        return _as_items(json.loads(text))
    except ValueError:
        return [_line_item(line) for line in text.splitlines() if line.strip()]


def _as_items(value: Any) -> list[Any]:
    return list(value) if isinstance(value, list) else [value]


def _line_item(line: str) -> Any:
    if line.lstrip().startswith(("{", "[")):
        try:
            return json.loads(line)
        except ValueError:
            pass
    return line


def _kept(items: Iterable[Any], text: str) -> Iterable[Any]:
    predicate = compile_filter(text)
    return (item for item in items if predicate(item))


# ---------------------------------------------------------------------------------------------
# sort_by

_DIRECTIONS = {"ASC": False, "ASCENDING": False, "DESC": True, "DESCENDING": True}
_NULLS = {"FIRST": True, "LAST": False}


def parse_sort(text: str) -> tuple[SortKey, ...]:
    """The keys of a `sort_by` text: `path [ASC|DESC] [NULLS FIRST|NULLS LAST]`, comma-separated.

    Keywords are case-insensitive (ASCENDING and DESCENDING too). The default is ascending
    with nulls last, and nulls stay last when descending unless NULLS FIRST says otherwise
    (the original's rule).
    """
    if not text.strip():
        raise _sort_error(text, "it names no field")
    return tuple(_sort_key(part, text) for part in text.split(","))


def _sort_key(part: str, text: str) -> SortKey:
    path, *rest = part.split() or [""]
    keys = parse_field(path)
    if keys is None:
        reason = f"{path!r} is not a field path" if path else "a key between commas is empty"
        raise _sort_error(text, reason)
    words = [word.upper() for word in rest]
    descending = False
    if words and words[0] in _DIRECTIONS:
        descending = _DIRECTIONS[words.pop(0)]
    nulls_first = False
    if words[:1] == ["NULLS"] and words[1:2] and words[1] in _NULLS:
        nulls_first = _NULLS[words[1]]
        del words[:2]
    if words:
        unexpected = " ".join(rest[len(rest) - len(words) :])
        reason = f"unexpected {unexpected!r} after {path!r}"
        raise _sort_error(text, f"{reason}; expected ASC, DESC, NULLS FIRST or NULLS LAST")
    return SortKey(path, keys, descending, nulls_first)


def _sort_error(text: str, reason: str) -> WorkflowError:
    return WorkflowError(
        f"bad sort_by {text!r}: {reason}",
        hint="write sort_by as 'field [ASC|DESC] [NULLS FIRST|LAST], ...', e.g. 'priority DESC'",
    )


def sort_items(items: Iterable[Any], keys: Iterable[SortKey]) -> list[Any]:
    """`items` ordered by `keys`, the first key most significant; stable, never raises.

    One stable sort per key, least significant first, is the textbook way to mix directions.
    """
    ordered = list(items)
    for key in reversed(tuple(keys)):
        ordered.sort(key=functools.partial(_sort_value, key=key), reverse=key.descending)
    return ordered


def _sort_value(item: Any, key: SortKey) -> tuple[int, tuple[Any, ...]]:
    """A null goes to group 0 or 2 around the values' group 1.

    `reverse=True` would carry the nulls along with the values, so their group is flipped
    for a descending key: where nulls land depends on NULLS FIRST/LAST only.
    """
    value = field_value(item, key.keys)
    if value is None:
        return (0 if key.nulls_first != key.descending else 2, ())
    return (1, _order(value))


def _order(value: Any) -> tuple[Any, ...]:
    """A sort key that orders any JSON values (jq's order); see the module docstring."""
    if value is None:
        return (0,)
    if isinstance(value, bool):
        return (1, value)
    if isinstance(value, int | float):
        return (2, value)
    if isinstance(value, str):
        return (3, value)
    if isinstance(value, list | tuple):
        return (4, tuple(_order(element) for element in value))
    if isinstance(value, Mapping):
        names = sorted(value)
        return (5, tuple(names), tuple(_order(value[name]) for name in names))
    return (6, _canonical(value))


# ---------------------------------------------------------------------------------------------
# distinct


def distinct_items(items: Iterable[Any], field: str) -> list[Any]:
    """The first item for each distinct value of `field` (a missing field counts as null)."""
    keys = parse_field(field)
    if keys is None:
        raise WorkflowError(
            f"bad distinct {field!r}: not a field path", hint="name a field, e.g. location.file"
        )
    seen: set[str] = set()
    kept: list[Any] = []
    for item in items:
        value = _canonical(field_value(item, keys))
        if value not in seen:
            seen.add(value)
            kept.append(item)
    return kept


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, ensure_ascii=False, default=str)
