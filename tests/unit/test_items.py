from __future__ import annotations

import json
from typing import Any

import pytest

from prodigyd.errors import ProdigyError
from prodigyd.workflow.expr import ExpressionError
from prodigyd.workflow.items import (
    SortKey,
    distinct_items,
    items_from_output,
    parse_sort,
    select_items,
    sort_items,
    why_none,
)
from prodigyd.workflow.jsonpath import JsonPathError
from prodigyd.workflow.model import MapSpec, Step


def ids(items: list[Any]) -> list[Any]:
    return [item["id"] for item in items]


def sort_ids(items: list[Any], text: str) -> list[Any]:
    return ids(sort_items(items, parse_sort(text)))


# --- parse_sort --------------------------------------------------------------------------------


def test_parse_sort_defaults_to_ascending_nulls_last() -> None:
    assert parse_sort("priority") == (SortKey("priority", ("priority",)),)


def test_parse_sort_keywords_and_multiple_keys() -> None:
    keys = parse_sort("priority desc nulls first, location.line ASCENDING, tags[0] DESCENDING")
    assert keys == (
        SortKey("priority", ("priority",), descending=True, nulls_first=True),
        SortKey("location.line", ("location", "line")),
        SortKey("tags[0]", ("tags", 0), descending=True),
    )
    assert parse_sort("a NULLS LAST") == (SortKey("a", ("a",)),)
    assert parse_sort("a Asc Nulls First") == (SortKey("a", ("a",), nulls_first=True),)


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("", "names no field"),
        ("   ", "names no field"),
        ("a,,b", "empty"),
        ("a,", "empty"),
        ("a UP", "unexpected 'UP' after 'a'"),
        ("a DESC NULLS", "unexpected 'NULLS' after 'a'"),
        ("a nulls middle", "unexpected 'nulls middle' after 'a'"),
        ("a DESC ASC", "unexpected 'ASC' after 'a'"),
        ("a NULLS FIRST DESC", "unexpected 'DESC' after 'a'"),
        ("a!b", "'a!b' is not a field path"),
        ("$.a", "'$.a' is not a field path"),
    ],
)
def test_parse_sort_errors_name_the_bad_part(text: str, fragment: str) -> None:
    with pytest.raises(ProdigyError) as info:
        parse_sort(text)
    assert info.value.message.startswith(f"bad sort_by {text!r}: ")
    assert fragment in info.value.message
    assert info.value.hint is not None


# --- sort_items --------------------------------------------------------------------------------

PRIORITIES = [
    {"id": "a", "priority": 3},
    {"id": "b", "priority": None},
    {"id": "c", "priority": 1},
    {"id": "d"},
    {"id": "e", "priority": 2},
    {"id": "f", "priority": 1},
]


def test_sort_ascending_numbers_nulls_last_and_stable() -> None:
    assert sort_ids(PRIORITIES, "priority") == ["c", "f", "e", "a", "b", "d"]


def test_sort_descending_keeps_nulls_last() -> None:
    assert sort_ids(PRIORITIES, "priority DESC") == ["a", "e", "c", "f", "b", "d"]


def test_sort_descending_nulls_first() -> None:
    assert sort_ids(PRIORITIES, "priority DESC NULLS FIRST") == ["b", "d", "a", "e", "c", "f"]


def test_sort_ascending_nulls_first() -> None:
    assert sort_ids(PRIORITIES, "priority NULLS FIRST") == ["b", "d", "c", "f", "e", "a"]


def test_sort_numbers_numerically_not_as_text() -> None:
    items = [{"id": i, "n": n} for i, n in enumerate([10, 9, 2.5, -1, 100])]
    assert [item["n"] for item in sort_items(items, parse_sort("n"))] == [-1, 2.5, 9, 10, 100]


def test_sort_strings_as_text_even_when_they_spell_numbers() -> None:
    items = [{"id": 1, "v": "10"}, {"id": 2, "v": "9"}, {"id": 3, "v": "b"}, {"id": 4, "v": "B"}]
    assert sort_ids(items, "v") == [1, 2, 4, 3]


def test_sort_multiple_keys_mixed_directions() -> None:
    items = [
        {"id": 1, "file": "b", "line": 5},
        {"id": 2, "file": "a", "line": 7},
        {"id": 3, "file": "b", "line": 9},
        {"id": 4, "file": "a", "line": 1},
    ]
    assert sort_ids(items, "file, line DESC") == [2, 4, 3, 1]
    assert sort_ids(items, "file DESC, line") == [1, 3, 4, 2]


def test_sort_by_nested_paths_and_indexes() -> None:
    items = [
        {"id": 1, "location": {"line": 30}, "tags": ["b"]},
        {"id": 2, "location": {"line": 4}, "tags": ["c"]},
        {"id": 3, "location": {}, "tags": ["a"]},
    ]
    assert sort_ids(items, "location.line") == [2, 1, 3]
    assert sort_ids(items, "tags[0]") == [3, 1, 2]


def test_sort_mixed_types_follows_jq_order_and_never_raises() -> None:
    values: list[Any] = [{"k": 1}, "s", [2], 10, True, None, [1, 5], False, 2.5, "a", {"a": 0}]
    items = [{"id": index, "v": value} for index, value in enumerate(values)]
    ordered = [item["v"] for item in sort_items(items, parse_sort("v"))]
    assert ordered == [False, True, 2.5, 10, "a", "s", [1, 5], [2], {"a": 0}, {"k": 1}, None]


def test_sort_arrays_element_by_element_with_nulls_inside() -> None:
    items = [{"id": i, "v": v} for i, v in enumerate([[2], [1, "x"], [None], [1], [1, 2]])]
    assert [item["v"] for item in sort_items(items, parse_sort("v"))] == [
        [None],
        [1],
        [1, 2],
        [1, "x"],
        [2],
    ]


def test_sort_scalar_items_by_the_item_itself() -> None:
    assert sort_items(["b", "c", "a"], parse_sort("@")) == ["a", "b", "c"]
    assert sort_items([3, 1, 2], parse_sort("@ DESC")) == [3, 2, 1]


def test_sort_does_not_mutate_its_input() -> None:
    items = [{"id": 2}, {"id": 1}]
    sort_items(items, parse_sort("id"))
    assert ids(items) == [2, 1]


# --- distinct_items ----------------------------------------------------------------------------


def test_distinct_keeps_the_first_item_per_value() -> None:
    items = [
        {"id": 1, "file": "a.rs"},
        {"id": 2, "file": "b.rs"},
        {"id": 3, "file": "a.rs"},
        {"id": 4, "file": "b.rs"},
        {"id": 5, "file": "c.rs"},
    ]
    assert ids(distinct_items(items, "file")) == [1, 2, 5]


def test_distinct_missing_counts_as_null() -> None:
    items = [{"id": 1}, {"id": 2, "file": None}, {"id": 3, "file": "x"}, {"id": 4}]
    assert ids(distinct_items(items, "file")) == [1, 3]


def test_distinct_compares_canonical_json() -> None:
    items = [
        {"id": 1, "v": {"a": 1, "b": 2}},
        {"id": 2, "v": {"b": 2, "a": 1}},  # same object, other key order
        {"id": 3, "v": 1},
        {"id": 4, "v": "1"},  # text is not the number
        {"id": 5, "v": True},  # true is not 1
        {"id": 6, "v": 1.0},  # JSON 1.0 is spelled differently from 1
        {"id": 7, "v": [1, 2]},
        {"id": 8, "v": [2, 1]},
    ]
    assert ids(distinct_items(items, "v")) == [1, 3, 4, 5, 6, 7, 8]


def test_distinct_nested_field() -> None:
    items = [{"id": 1, "loc": {"file": "a"}}, {"id": 2, "loc": {"file": "a"}}]
    assert ids(distinct_items(items, "loc.file")) == [1]


def test_distinct_bad_field_is_an_error() -> None:
    with pytest.raises(ProdigyError, match="bad distinct 'a b'"):
        distinct_items([], "a b")


# --- items_from_output -------------------------------------------------------------------------


def test_output_json_array_gives_its_elements() -> None:
    text = json.dumps([{"id": 1}, "two", 3]) + "\n"
    assert items_from_output(text) == [{"id": 1}, "two", 3]


def test_output_pretty_printed_json_object_is_one_item() -> None:
    text = json.dumps({"items": [1, 2], "n": 2}, indent=2)
    assert items_from_output(text) == [{"items": [1, 2], "n": 2}]


def test_output_single_json_scalar_is_one_item() -> None:
    assert items_from_output("42\n") == [42]
    assert items_from_output('"text"') == ["text"]


def test_output_plain_lines_are_strings_not_wrapped() -> None:
    text = "src/a.py\n\nsrc/b c.py\r\n   \nREADME.md"
    assert items_from_output(text) == ["src/a.py", "src/b c.py", "README.md"]


def test_output_numeric_lines_stay_strings() -> None:
    assert items_from_output("1\n2\n3\n") == ["1", "2", "3"]


def test_output_json_lines_mixed_with_text() -> None:
    text = '{"id": 1}\nplain line\n[1, 2]\n{not json\n{"id": 2}\n'
    assert items_from_output(text) == [{"id": 1}, "plain line", [1, 2], "{not json", {"id": 2}]


def test_output_empty_gives_no_items() -> None:
    assert items_from_output("") == []
    assert items_from_output("\n  \n") == []


def test_output_json_array_is_not_re_split_by_lines() -> None:
    text = '[\n  {"id": 1},\n  {"id": 2}\n]\n'
    assert items_from_output(text) == [{"id": 1}, {"id": 2}]


# --- select_items: the pipeline ----------------------------------------------------------------

DEBT = {
    "debt_items": [
        {"id": 1, "severity": "high", "priority": 2, "file": "a.rs"},
        {"id": 2, "severity": "low", "priority": 9, "file": "b.rs"},
        {"id": 3, "severity": "critical", "priority": 5, "file": "a.rs"},
        {"id": 4, "severity": "high", "priority": 7, "file": "c.rs"},
        {"id": 5, "severity": "low", "priority": 1, "file": "a.rs"},
        {"id": 6, "severity": "high", "priority": 3, "file": "c.rs"},
    ]
}


def test_no_json_path_array_gives_elements_other_one_item() -> None:
    assert select_items([1, 2, 3]) == [1, 2, 3]
    assert select_items({"a": 1}) == [{"a": 1}]
    assert select_items("text") == ["text"]
    assert select_items([1, 2], json_path="") == [1, 2]


def test_json_path_matches_are_the_items_and_never_flattened() -> None:
    assert ids(select_items(DEBT, json_path="$.debt_items[*]")) == [1, 2, 3, 4, 5, 6]
    assert select_items(DEBT, json_path="$.debt_items") == [DEBT["debt_items"]]
    assert select_items([1, 2], json_path="$") == [[1, 2]]
    assert select_items(DEBT, json_path="$.nothing[*]") == []


def test_filter_reference_example() -> None:
    result = select_items(
        DEBT, json_path="$.debt_items[*]", filter="severity == 'high' || severity == 'critical'"
    )
    assert ids(result) == [1, 3, 4, 6]


def test_full_pipeline_order() -> None:
    # filter drops 2 and 5; sort by priority DESC gives 4, 3, 6, 1; distinct on file
    # keeps the first per file (4 c.rs, 3 a.rs) and drops 6 and 1; offset and max_items last.
    common: dict[str, Any] = {
        "json_path": "$.debt_items[*]",
        "filter": "severity != 'low'",
        "sort_by": "priority DESC",
        "distinct": "file",
    }
    assert ids(select_items(DEBT, **common)) == [4, 3]
    assert ids(select_items(DEBT, **common, offset=1)) == [3]
    assert ids(select_items(DEBT, **common, max_items=1)) == [4]
    assert ids(select_items(DEBT, **common, offset=1, max_items=5)) == [3]
    assert select_items(DEBT, **common, offset=2) == []


def test_offset_applies_after_sort_and_distinct() -> None:
    items = [{"id": i, "k": k} for i, k in enumerate(["b", "a", "a", "c"])]
    # sort: 1 a, 2 a, 0 b, 3 c; distinct: 1, 0, 3; offset 1: 0, 3; max 1: 0
    assert ids(select_items(items, sort_by="k", distinct="k", offset=1, max_items=1)) == [0]


def test_max_items_applies_after_offset() -> None:
    assert select_items(list(range(10)), offset=3, max_items=4) == [3, 4, 5, 6]
    assert select_items(list(range(10)), max_items=0) == []


def test_distinct_applies_after_sort() -> None:
    items = [
        {"id": 1, "file": "a", "priority": 1},
        {"id": 2, "file": "a", "priority": 9},
    ]
    # distinct keeps the first per file *after* sorting, so the highest priority wins.
    assert ids(select_items(items, sort_by="priority DESC", distinct="file")) == [2]


def test_filter_applies_before_max_items() -> None:
    items = [{"id": i, "keep": i % 2 == 0} for i in range(10)]
    assert ids(select_items(items, filter="keep", max_items=3)) == [0, 2, 4]


def test_empty_strings_mean_not_given() -> None:
    items = [{"id": 2}, {"id": 1}]
    assert select_items(items, json_path="", filter="", sort_by="", distinct="") == items


def test_pipeline_errors_are_prodigy_errors() -> None:
    with pytest.raises(JsonPathError):
        select_items(DEBT, json_path="$.[")
    with pytest.raises(ExpressionError):
        select_items(DEBT, filter="nope(x)")
    with pytest.raises(ProdigyError, match="bad sort_by"):
        select_items(DEBT, sort_by="priority SIDEWAYS")
    with pytest.raises(ProdigyError, match="cannot be negative"):
        select_items(DEBT, offset=-1)


def test_pipeline_does_not_mutate_the_document() -> None:
    before = json.dumps(DEBT)
    select_items(DEBT, json_path="$.debt_items[*]", sort_by="priority", max_items=2)
    assert json.dumps(DEBT) == before


def test_a_filter_that_keeps_nothing_names_the_fields_no_item_has() -> None:
    spec = MapSpec(
        input="items.json",
        filter="contains(tagz, 'x') || item.scor > 1 || id == 9 || is_null(note)",
        agent_template=[Step(kind="shell", command="true")],
    )
    items = [{"id": 1, "note": "n"}, {"id": 2, "note": "m"}]
    assert why_none(items, spec) == (
        f"the filter {spec.filter!r} kept none of the 2 items; "
        "no item has a field named 'tagz' or 'item.scor'"
    )
    assert why_none([{"id": 9}], spec) is None  # it kept one


def test_a_json_path_that_matches_nothing_names_the_documents_keys() -> None:
    spec = MapSpec(
        input="items.json",
        json_path="$.itemz[*]",
        agent_template=[Step(kind="shell", command="true")],
    )
    document = {"items": [{"id": 1}], "meta": {}}
    assert why_none(document, spec) == (
        "the json_path '$.itemz[*]' matched nothing in the input; "
        "its top-level keys are 'items', 'meta'"
    )
    assert why_none({"itemz": []}, spec) is None  # it matched: an empty list of items
    assert why_none({}, spec) is None  # nothing in the input to match
