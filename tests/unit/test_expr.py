from __future__ import annotations

import pytest

from prodigyd.workflow.expr import (
    ExpressionError,
    compile_filter,
    evaluate,
    field_value,
    parse_field,
    parse_number,
    truthy,
)
from prodigyd.workflow.interpolate import MISSING, SpaceList, VariableStore


def make_store(**values: object) -> VariableStore:
    store = VariableStore()
    store.update(values)
    return store


# --- truthiness --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (True, True),
        (False, False),
        (1, True),
        (0, False),
        (-0.5, True),
        (0.0, False),
        ("yes", True),
        ("", False),
        ("  ", False),
        ("0", False),
        ("false", False),
        ("FALSE\n", False),
        ("False", False),
        ("no", True),
        ([], False),
        (["a"], True),
        ({}, False),
        ({"k": 1}, True),
        (None, False),
        (MISSING, False),
    ],
)
def test_truthy(value: object, expected: bool) -> None:
    assert truthy(value) is expected


# --- literals and variables --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("expr", "expected"),
    [
        ("true", True),
        ("false", False),
        ("True", True),
        ("'text'", True),
        ("''", False),
        ('"false"', False),
        ("0", False),
        ("-1.5", True),
        ("", False),
        ("   ", False),
    ],
)
def test_literals(expr: str, expected: bool) -> None:
    assert evaluate(expr, VariableStore()) is expected


def test_single_variable_truthiness() -> None:
    store = make_store(yes=True, no=False, text="false", count=0, items=["a"])
    assert evaluate("${yes}", store) is True
    assert evaluate("${no}", store) is False
    assert evaluate("${text}", store) is False
    assert evaluate("${count}", store) is False
    assert evaluate("${items}", store) is True
    assert evaluate("${missing}", store) is False


def test_variable_with_glob_modifier() -> None:
    store = make_store(**{"step.files_modified": SpaceList(["src/a.rs", "README.md"])})
    assert evaluate("${step.files_modified:*.rs}", store) is True
    assert evaluate("${step.files_modified:*.py}", store) is False


def test_variable_default() -> None:
    store = VariableStore()
    assert evaluate("${mode:-fast} == 'fast'", store) is True
    assert evaluate("${flag:-false}", store) is False


def test_exists() -> None:
    store = make_store(present="", out={"a": None})
    assert evaluate("${present.exists}", store) is True
    assert evaluate("${out.a.exists}", store) is True
    assert evaluate("${absent.exists}", store) is False
    assert evaluate("!${absent.exists}", store) is True


def test_nested_access_parses_json_strings() -> None:
    store = make_store(result='{"status": "ok", "count": 3}')
    assert evaluate("${result.status} == 'ok' && ${result.count} > 2", store) is True


# --- comparisons -------------------------------------------------------------------------------


def test_numeric_coercion_of_strings() -> None:
    store = make_store(count="10", ratio=" 0.5\n", name="abc")
    assert evaluate("${count} > 9", store) is True
    assert evaluate("${count} == 10", store) is True
    assert evaluate("${count} == 10.0", store) is True
    assert evaluate("${ratio} < 1", store) is True
    assert evaluate("${name} > 1", store) is False
    assert evaluate("${name} == 1", store) is False


def test_two_numeric_strings_order_numerically_but_equal_textually() -> None:
    store = make_store(a="10", b="9", v="1.10")
    assert evaluate("${a} > ${b}", store) is True
    assert evaluate("${v} == '1.1'", store) is False


def test_string_comparison_is_lexicographic() -> None:
    store = make_store(s="beta")
    assert evaluate("${s} > 'alpha'", store) is True
    assert evaluate("${s} <= 'alpha'", store) is False
    assert evaluate('${s} == "beta"', store) is True
    assert evaluate("${s} != 'beta'", store) is False


def test_bool_against_true_false_text() -> None:
    for value in (True, "true", "TRUE", " true\n"):
        assert evaluate("${tests_passed} == true", make_store(tests_passed=value)) is True
    assert evaluate("${v} == false", make_store(v="false")) is True
    assert evaluate("${v} == true", make_store(v=False)) is False
    assert evaluate("${v} == 'true'", make_store(v=True)) is True
    assert evaluate("${v} == true", make_store(v="yes")) is False


def test_list_compared_with_text_uses_rendering() -> None:
    store = make_store(files=SpaceList(["a.rs"]), names=["a", "b"])
    assert evaluate("${files} == 'a.rs'", store) is True
    assert evaluate("${names} == 'a, b'", store) is True


def test_missing_variable_comparisons() -> None:
    store = VariableStore()
    assert evaluate("${nope} == ''", store) is False
    assert evaluate("${nope} != 'x'", store) is True
    assert evaluate("${nope} > 0", store) is False
    assert evaluate("${nope} < 0", store) is False


def test_numbers_compare() -> None:
    store = make_store(n=3, f=2.5)
    assert evaluate("${n} >= 3 && ${n} <= 3 && ${f} < ${n}", store) is True
    assert evaluate("${n} != 3", store) is False
    assert evaluate("-1.5 < 0", store) is True


def test_string_escapes() -> None:
    store = make_store(q="it's")
    assert evaluate("${q} == 'it\\'s'", store) is True


# --- precedence --------------------------------------------------------------------------------


def test_and_binds_tighter_than_or() -> None:
    store = VariableStore()
    assert evaluate("true || false && false", store) is True
    assert evaluate("(true || false) && false", store) is False


def test_not_binds_looser_than_comparison() -> None:
    store = make_store(a=1)
    assert evaluate("!${a} == 2", store) is True
    assert evaluate("!${a} == 1", store) is False
    assert evaluate("!!${a}", store) is True


def test_not_binds_tighter_than_and() -> None:
    store = VariableStore()
    assert evaluate("!false && false", store) is False
    assert evaluate("!(false && false)", store) is True


def test_nested_parentheses() -> None:
    store = make_store(a=1, b=2)
    assert evaluate("((${a} == 1) && (${b} == 3 || ${b} == 2))", store) is True


# --- errors ------------------------------------------------------------------------------------


def error_for(expr: str) -> ExpressionError:
    with pytest.raises(ExpressionError) as info:
        evaluate(expr, make_store(a=1))
    return info.value


def test_bare_word_is_an_error_naming_the_word() -> None:
    err = error_for("${a} == done")
    assert "'done'" in err.message
    assert err.offset == 8
    assert err.details == "  ${a} == done\n          ^"
    assert err.hint is not None
    assert "${done}" in err.hint


@pytest.mark.parametrize(
    ("expr", "offset", "fragment"),
    [
        ("${a} = 1", 5, "'='"),
        ("$a == 1", 0, "unbraced"),
        ("${a == 1", 0, "unterminated ${"),
        ("'open", 0, "unterminated string"),
        ("(${a} == 1", 10, "expected ')'"),
        ("${a} ==", 7, "found the end"),
        ("${a} == 1 == 1", 10, "unexpected '=='"),
        ("${a} &&", 7, "expected a value"),
        ("${a} # 1", 5, "unexpected character '#'"),
        (")", 0, "found ')'"),
    ],
)
def test_syntax_errors_point_at_offset(expr: str, offset: int, fragment: str) -> None:
    err = error_for(expr)
    assert err.offset == offset
    assert fragment in err.message
    assert f"at offset {offset}" in err.message
    caret_line = (err.details or "").splitlines()[-1]
    assert caret_line == "  " + " " * offset + "^"


def test_caret_on_multiline_expression_points_into_its_line() -> None:
    err = error_for("${a} == 1 &&\n  oops")
    assert err.details == "    oops\n    ^"


def test_errors_are_found_even_in_unevaluated_branches() -> None:
    with pytest.raises(ExpressionError):
        evaluate("true || bogus", VariableStore())


# --- parse_number ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("42", 42),
        (" -7\n", -7),
        ("+3", 3),
        ("3.0", 3.0),
        ("1e3", 1000.0),
        (".5", 0.5),
        ("1_000", None),
        ("inf", None),
        ("nan", None),
        ("", None),
        ("12abc", None),
    ],
)
def test_parse_number(text: str, expected: float | None) -> None:
    result = parse_number(text)
    assert result == expected
    assert type(result) is type(expected)


# --- filter expressions (MapReduce filter:, §4.8.3) --------------------------------------------

SEVERITIES = [
    {"id": 1, "severity": "high"},
    {"id": 2, "severity": "low"},
    {"id": 3, "severity": "critical"},
    {"id": 4, "severity": "high"},
    {"id": 5, "severity": "low"},
]


def kept(text: str, items: list[object]) -> list[object]:
    predicate = compile_filter(text)
    return [item for item in items if predicate(item)]


def holds(text: str, item: object) -> bool:
    return compile_filter(text)(item)


def test_item_names_the_item_itself_as_the_books_filters_write_it() -> None:
    assert holds("item.score >= 5 && item.tags[0] == 'x'", {"score": 5, "tags": ["x"]})
    assert kept("ends_with(item, '.md')", ["a.md", "b.rs"]) == ["a.md"]  # text items
    assert holds("@.item == 'own'", {"item": "own"})  # a field named item


def test_filter_reference_example_keeps_high_and_critical() -> None:
    result = kept("severity == 'high' || severity == 'critical'", SEVERITIES)
    assert [item["id"] for item in result] == [1, 3, 4]  # type: ignore[index]


@pytest.mark.parametrize(
    ("text", "ids"),
    [
        ("severity = 'high'", [1, 4]),
        ('severity != "low"', [1, 3, 4]),
        ("id > 3", [4, 5]),
        ("id >= 3 && id <= 4", [3, 4]),
        ("id < 2 OR id > 4", [1, 5]),
        ("severity == 'high' AND id > 1", [4]),
        ("severity == 'high' and id > 1", [4]),
        ("!(severity == 'low')", [1, 3, 4]),
        ("NOT severity == 'low'", [1, 3, 4]),
        ("not (id > 1)", [1]),
        ("(id == 1 || id == 2) && severity == 'low'", [2]),
        ("severity in ['high', 'critical']", [1, 3, 4]),
        ("id in [2, 5]", [2, 5]),
        ("severity in []", []),
    ],
)
def test_filter_comparisons_and_logic(text: str, ids: list[int]) -> None:
    assert [item["id"] for item in kept(text, SEVERITIES)] == ids  # type: ignore[index]


def test_filter_nested_fields_and_indexes() -> None:
    item = {"location": {"file": "src/a.rs", "line": 12}, "tags": ["x", "y"]}
    assert holds("location.line > 10", item) is True
    assert holds("location.line > 12", item) is False
    assert holds("location.file == 'src/a.rs'", item) is True
    assert holds("tags[0] == 'x'", item) is True
    assert holds("tags[1] == 'x'", item) is False
    assert holds("tags[5] == null", item) is True


def test_filter_missing_field_equals_null() -> None:
    item = {"present": None, "zero": 0}
    assert holds("absent == null", item) is True
    assert holds("present == null", item) is True
    assert holds("zero == null", item) is False
    assert holds("absent != null", item) is False
    assert holds("absent > 0", item) is False
    assert holds("absent < 0", item) is False
    assert holds("absent in [null]", item) is True


def test_filter_coerces_like_when() -> None:
    item = {"count": "10", "flag": "true", "version": "1.10", "score": 2.5}
    assert holds("count > 9", item) is True  # a numeric string against a number
    assert holds("count == 10", item) is True
    assert holds("flag == true", item) is True
    assert holds("version == '1.1'", item) is False  # two strings: exact text
    assert holds("score < 3 && score > 2", item) is True
    assert holds("count > '9'", item) is True  # two numeric strings order as numbers


def test_filter_bare_field_is_truth_tested() -> None:
    assert kept("done", [{"done": True}, {"done": False}, {"done": "false"}, {}, {"done": 1}]) == [
        {"done": True},
        {"done": 1},
    ]


def test_filter_at_is_the_item_itself() -> None:
    assert kept("@ matches '^src/'", ["src/a.py", "docs/b.md", "src/c.py"]) == [
        "src/a.py",
        "src/c.py",
    ]
    assert holds("@.a.b == 1", {"a": {"b": 1}}) is True
    assert holds("@[1] == 'y'", ["x", "y"]) is True


def test_filter_reserved_word_field_is_reached_through_at() -> None:
    assert holds("@.and == 1", {"and": 1}) is True
    assert holds("in == 1", {"in": 1}) is True  # `in` is a keyword only after an operand
    assert holds("matches == 'x'", {"matches": "x"}) is True


def test_filter_literals() -> None:
    item = {"t": True, "f": False, "n": None, "neg": -3, "q": "it's"}
    assert holds("t == true && f == FALSE && n == NULL", item) is True
    assert holds("neg < -2.5", item) is True
    assert holds("q == 'it\\'s'", item) is True
    assert holds('q == "it\'s"', item) is True


@pytest.mark.parametrize(
    ("text", "item", "expected"),
    [
        ("contains(name, 'ell')", {"name": "hello"}, True),
        ("contains(name, 'xyz')", {"name": "hello"}, False),
        ("contains(tags, 'b')", {"tags": ["a", "b"]}, True),
        ("contains(tags, 'c')", {"tags": ["a", "b"]}, False),
        ("contains(id, '23')", {"id": 1234}, True),
        ("contains(missing, 'a')", {}, False),
        ("starts_with(path, 'src/')", {"path": "src/a.rs"}, True),
        ("starts_with(path, 'lib/')", {"path": "src/a.rs"}, False),
        ("ends_with(path, '.rs')", {"path": "src/a.rs"}, True),
        ("ends_with(path, '.py')", {"path": "src/a.rs"}, False),
        ("ends_with(flag, 'e')", {"flag": True}, False),
        ("is_null(n)", {"n": None}, True),
        ("is_null(missing)", {}, True),
        ("is_null(n)", {"n": 0}, False),
        ("is_not_null(n)", {"n": 0}, True),
        ("is_not_null(missing)", {}, False),
        ("is_number(v)", {"v": 1.5}, True),
        ("is_number(v)", {"v": "1.5"}, False),
        ("is_number(v)", {"v": True}, False),
        ("is_string(v)", {"v": "s"}, True),
        ("is_string(v)", {"v": 1}, False),
        ("is_bool(v)", {"v": False}, True),
        ("is_bool(v)", {"v": 0}, False),
        ("is_array(v)", {"v": []}, True),
        ("is_array(v)", {"v": {}}, False),
        ("is_object(v)", {"v": {}}, True),
        ("is_object(v)", {"v": []}, False),
        ("length(tags) > 2", {"tags": [1, 2, 3]}, True),
        ("length(tags) > 2", {"tags": [1, 2]}, False),
        ("length(name) == 5", {"name": "hello"}, True),
        ("length(obj) == 2", {"obj": {"a": 1, "b": 2}}, True),
        ("length(missing) >= 0", {}, False),
        ("length(tags)", {"tags": []}, False),
        ("matches(file, '\\.rs$')", {"file": "src/a.rs"}, True),
        ("matches(file, '^a')", {"file": "src/a.rs"}, False),
        ("file matches 'a\\.r'", {"file": "src/a.rs"}, True),
        ("file matches '^test_'", {"file": "src/a.rs"}, False),
        ("id matches '^12'", {"id": 123}, True),
        ("missing matches '.*'", {}, False),
        ("!is_null(a) && contains(a, 'x')", {"a": "xyz"}, True),
        ("!(is_null(a))", {"a": None}, False),
    ],
)
def test_filter_functions(text: str, item: object, expected: bool) -> None:
    assert holds(text, item) is expected


def test_filter_empty_keeps_everything() -> None:
    assert kept("  ", SEVERITIES) == SEVERITIES


def test_filter_is_parsed_once_and_reused() -> None:
    predicate = compile_filter("severity == 'low'")
    assert [predicate(item) for item in SEVERITIES] == [False, True, False, False, True]


def filter_error(text: str) -> ExpressionError:
    with pytest.raises(ExpressionError) as info:
        compile_filter(text)
    return info.value


@pytest.mark.parametrize(
    ("text", "offset", "fragment"),
    [
        ("severity == ", 12, "found the end"),
        ("severity === 'x'", 11, "expected a value but found '='"),
        ("(a == 1", 7, "expected ')'"),
        ("a == 1 b", 7, "unexpected 'b'"),
        ("a in 'x'", 5, "expected a list"),
        ("a in ['x' 'y']", 10, "expected ']'"),
        ("a in [b]", 6, "expected a literal in the list but found 'b'"),
        ("contains(a 'x')", 11, "expected ')'"),
        ("a matches b", 10, "quoted pattern"),
        ("a matches '('", 10, "bad regular expression"),
        ("matches(a, '[')", 11, "bad regular expression"),
        ("a # 1", 2, "unexpected character '#'"),
        ("a == 'open", 5, "unterminated string"),
        ("a == ${x}", 5, "variables are not allowed in a filter"),
        ("$a == 1", 0, "variables are not allowed in a filter"),
    ],
)
def test_filter_syntax_errors_point_at_offset(text: str, offset: int, fragment: str) -> None:
    err = filter_error(text)
    assert err.offset == offset
    assert fragment in err.message
    assert err.message.endswith(f"at offset {offset} of the filter expression")
    assert err.details == f"  {text}\n  {' ' * offset}^"


def test_filter_unknown_function_is_named_at_compile_time() -> None:
    err = filter_error("severity == 'high' && is_empty(tags)")
    assert err.message == "unknown function 'is_empty' at offset 22 of the filter expression"
    assert err.details == "  severity == 'high' && is_empty(tags)\n                        ^"
    assert err.hint is not None
    assert "contains" in err.hint
    assert "matches" in err.hint


def test_filter_wrong_argument_count_is_an_error() -> None:
    err = filter_error("x || contains(name)")
    assert err.offset == 5
    assert "contains() takes 2 arguments but was given 1" in err.message
    assert "is_null() takes 1 argument but was given 2" in filter_error("is_null(a, b)").message


def test_filter_errors_are_found_in_unevaluated_branches() -> None:
    with pytest.raises(ExpressionError):
        compile_filter("true || nope(x)")


def test_when_still_refuses_filter_syntax() -> None:
    store = make_store(a=1)
    for expr, fragment in [
        ("severity == 'high'", "unknown word 'severity'"),
        ("${a} == null", "unknown word 'null'"),
        ("${a} AND true", "unknown word 'AND'"),
        ("${a} in [1]", "unknown word 'in'"),
        ("@ == 1", "unexpected character '@'"),
        ("contains(${a}, 'x')", "unknown word 'contains'"),
    ]:
        with pytest.raises(ExpressionError) as info:
            evaluate(expr, store)
        assert fragment in info.value.message
        assert info.value.message.endswith("of the when expression")


@pytest.mark.parametrize(
    ("text", "keys"),
    [
        ("a", ("a",)),
        ("location.file", ("location", "file")),
        ("tags[0]", ("tags", 0)),
        ("a-b.c[2].d", ("a-b", "c", 2, "d")),
        ("@", ()),
        ("@.a", ("a",)),
        ("@[1].b", (1, "b")),
        ("@a", None),
        ("item", ()),  # the book's spelling of the item, as in ${item.a}
        ("item.a", ("a",)),
        ("item[0].b", (0, "b")),
        ("@.item", ("item",)),  # a field named item
        ("items", ("items",)),
        ("item_id", ("item_id",)),
        ("a b", None),
        ("", None),
        ("a[-1]", None),
    ],
)
def test_parse_field(text: str, keys: tuple[object, ...] | None) -> None:
    assert parse_field(text) == keys


def test_field_value_missing_is_none_and_json_text_is_walked() -> None:
    item = {"a": {"b": [10, 20]}, "raw": '{"k": "v"}'}
    assert field_value(item, ("a", "b", 1)) == 20
    assert field_value(item, ("a", "x")) is None
    assert field_value(item, ("raw", "k")) == "v"
    assert field_value(item, ()) is item
