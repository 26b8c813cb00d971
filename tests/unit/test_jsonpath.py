from __future__ import annotations

from typing import Any

import pytest

from prodigyd.errors import ProdigyError, WorkflowError
from prodigyd.workflow.jsonpath import JsonPathError, check, select

DEBT = {
    "debt_items": [
        {"id": "d1", "severity": "high", "location": {"file": "a.rs", "line": 3}},
        {"id": "d2", "severity": "low", "location": {"file": "b.rs", "line": 40}},
        {"id": "d3", "severity": "high", "location": {"file": "c.rs", "line": 12}},
    ],
    "summary": {"id": "s", "total": 3},
}


# --- the paths workflows use -------------------------------------------------------------------


def test_array_wildcard_gives_the_elements() -> None:
    assert select(DEBT, "$.debt_items[*]") == DEBT["debt_items"]
    assert select({"items": [1, "two", {"three": 3}]}, "$.items[*]") == [1, "two", {"three": 3}]


def test_root_wildcard_on_an_array_document() -> None:
    assert select([{"a": 1}, {"a": 2}], "$[*]") == [{"a": 1}, {"a": 2}]


def test_field_without_wildcard_is_one_match() -> None:
    assert select({"items": [1, 2]}, "$.items") == [[1, 2]]


@pytest.mark.parametrize("path", ["", "$", "  $  "])
def test_empty_path_and_root_select_the_document(path: str) -> None:
    assert select(DEBT, path) == [DEBT]
    assert select([1, 2], path) == [[1, 2]]


def test_recursive_descent_in_document_order() -> None:
    assert select(DEBT, "$..id") == ["d1", "d2", "d3", "s"]
    assert select(DEBT, "$..line") == [3, 40, 12]
    doc = {"id": 0, "children": [{"id": 1, "children": [{"id": 2}]}, {"id": 3}]}
    assert select(doc, "$..id") == [0, 1, 2, 3]


def test_recursive_descent_with_wildcard_and_index() -> None:
    assert select({"a": {"b": [7, 8]}}, "$..[0]") == [7]
    assert select({"a": {"b": 1}}, "$..*") == [{"b": 1}, 1]


def test_filter_selects_matching_elements() -> None:
    result = select(DEBT, "$.debt_items[?(@.severity == 'high')]")
    assert [item["id"] for item in result] == ["d1", "d3"]


def test_filter_uses_the_whole_filter_language() -> None:
    path = "$.debt_items[?(@.location.line > 10 && ends_with(@.location.file, '.rs'))].id"
    assert select(DEBT, path) == ["d2", "d3"]
    assert select(DEBT, '$.debt_items[?(@.id in ["d1", "d2"])].id') == ["d1", "d2"]
    assert select([1, 5, 10], "$[?(@ >= 5)]") == [5, 10]


def test_filter_with_parentheses_and_brackets_inside_quotes() -> None:
    doc = {"xs": [{"s": "a)]b"}, {"s": "(c"}]}
    assert select(doc, "$.xs[?((@.s == 'a)]b'))]") == [{"s": "a)]b"}]
    assert select(doc, "$.xs[?(starts_with(@.s, '('))]") == [{"s": "(c"}]


def test_filter_over_object_values() -> None:
    doc = {"by_name": {"x": {"n": 1}, "y": {"n": 2}}}
    assert select(doc, "$.by_name[?(@.n > 1)]") == [{"n": 2}]


def test_negative_and_positive_indexes() -> None:
    doc = {"a": [10, 20, 30]}
    assert select(doc, "$.a[-1]") == [30]
    assert select(doc, "$.a[-3]") == [10]
    assert select(doc, "$.a[0]") == [10]
    assert select(doc, "$.a[3]") == []
    assert select(doc, "$.a[-4]") == []


def test_quoted_names() -> None:
    doc = {"a key": {"b.c": 1}, "plain": 2}
    assert select(doc, "$['a key'][\"b.c\"]") == [1]
    assert select(doc, "$['plain']") == [2]
    assert select({"it's": 1}, "$['it\\'s']") == [1]


def test_dot_wildcard_on_object_and_array() -> None:
    assert select({"a": 1, "b": 2}, "$.*") == [1, 2]
    assert select({"a": [1, 2]}, "$.a.*") == [1, 2]


def test_chained_segments() -> None:
    assert select(DEBT, "$.debt_items[*].location.file") == ["a.rs", "b.rs", "c.rs"]
    assert select(DEBT, "$.debt_items[1].location['line']") == [40]


def test_leading_dollar_is_optional() -> None:
    assert select(DEBT, "debt_items[*].id") == ["d1", "d2", "d3"]
    assert select(DEBT, "summary.total") == [3]


@pytest.mark.parametrize(
    ("document", "path"),
    [
        (DEBT, "$.nope"),
        (DEBT, "$.nope[*]"),
        (DEBT, "$.summary[0]"),
        (DEBT, "$.debt_items.id"),
        (DEBT, "$..nope"),
        ("text", "$[*]"),
        (42, "$.a"),
        (DEBT, "$.debt_items[?(@.severity == 'none')]"),
    ],
)
def test_no_match_is_an_empty_list(document: Any, path: str) -> None:
    assert select(document, path) == []


# --- errors ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "offset", "fragment"),
    [
        ("$.", 2, "expected a name or '*' after '.'"),
        ("$[", 2, "expected an index"),
        ("$[0", 3, "expected ']'"),
        ("$[1:2]", 3, "expected ']'"),
        ("$a", 1, "expected '.', '..' or '['"),
        ("$.a b", 3, "expected '.', '..' or '['"),
        ("$..", 3, "expected a name"),
        ("$['open]", 2, "expected an index"),
        ("$.a[?(@.x == 1]", 4, "unclosed filter"),
        ("$.a[?(@.x == 1)", 15, "expected ']'"),
        ("$.a[?()]", 6, "empty filter"),
        ("$.a[?(@.x == )]", 13, "expected a value but found the end"),
        ("$.a[?(@.x === 1)]", 12, "expected a value but found '='"),
        ("$.a[?(nope(@.x))]", 6, "unknown function 'nope'"),
        ("$.a[?(@.x == ${v})]", 13, "variables are not allowed in a filter"),
    ],
)
def test_malformed_paths_name_the_path_and_offset(path: str, offset: int, fragment: str) -> None:
    with pytest.raises(JsonPathError) as info:
        check(path)
    err = info.value
    assert err.offset == offset
    assert err.message.startswith(f"bad JSONPath {path!r}: ")
    assert fragment in err.message
    assert err.message.endswith(f"at offset {offset}")
    assert err.details == f"  {path}\n  {' ' * offset}^"


def test_jsonpath_error_is_a_workflow_error() -> None:
    with pytest.raises(JsonPathError) as info:
        select(DEBT, "$.")
    assert isinstance(info.value, WorkflowError)
    assert isinstance(info.value, ProdigyError)
    assert info.value.kind == "workflow"


def test_filter_error_keeps_its_hint() -> None:
    with pytest.raises(JsonPathError) as info:
        check("$[?(bogus(@))]")
    assert info.value.hint is not None
    assert "known functions" in info.value.hint


@pytest.mark.parametrize(
    "path", ["", "$", "$.items[*]", "$..id", "$.a[-1]", "$[?(@.x == 'y')].z", "items"]
)
def test_check_accepts_valid_paths(path: str) -> None:
    check(path)
