from __future__ import annotations

import pytest

from prodigyd.workflow.expr import ExpressionError, evaluate, parse_number, truthy
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
