from __future__ import annotations

import pytest

from prodigyd.engine.capture import CAPTURE_FORMATS, CaptureError, parse_capture
from prodigyd.workflow.interpolate import VariableStore, interpolate


def test_formats_listed() -> None:
    assert CAPTURE_FORMATS == ("string", "json", "lines", "number", "boolean")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("hello\n", "hello"),
        ("hello", "hello"),
        ("hello\r\n", "hello"),
        ("two\n\n", "two\n"),
        ("  spaced  \n", "  spaced  "),
        ("a\nb\n", "a\nb"),
        ("", ""),
    ],
)
def test_string_strips_exactly_one_trailing_newline(text: str, expected: str) -> None:
    assert parse_capture(text, "string", success=True) == expected


def test_json_parsed_and_walkable() -> None:
    value = parse_capture('{"items": [{"id": 7}], "ok": true}\n', "json", success=True)
    assert value == {"items": [{"id": 7}], "ok": True}
    store = VariableStore()
    store.set("data", value)
    assert interpolate("${data.items[0].id} ${data.ok}", store) == "7 true"


def test_json_scalars_and_arrays() -> None:
    assert parse_capture("[1, 2]", "json", success=True) == [1, 2]
    assert parse_capture('"s"', "json", success=True) == "s"
    assert parse_capture("null", "json", success=True) is None


def test_invalid_json_error_shows_reason_and_excerpt() -> None:
    text = "not json " + "x" * 500
    with pytest.raises(CaptureError) as info:
        parse_capture(text, "json", success=True)
    err = info.value
    assert err.message.startswith("output is not valid JSON: Expecting value")
    assert "line 1 column 1" in err.message
    assert "(first 200 chars shown)" in err.message
    assert err.details == text[:200]


def test_a_control_character_is_reported_once_with_where() -> None:
    """json's own reason ends in "at" (it expects a position after it): not "at at"."""
    with pytest.raises(CaptureError) as info:
        parse_capture('{"a": "tab\there"}', "json", success=True)
    assert info.value.message.startswith(
        "output is not valid JSON: Invalid control character at line 1 column 11"
    )


def test_empty_output_is_invalid_json() -> None:
    with pytest.raises(CaptureError) as info:
        parse_capture("", "json", success=True)
    assert info.value.details == "(empty output)"


def test_lines_drop_blank_lines_and_render_comma_joined() -> None:
    value = parse_capture("a.rs\n\n  b.rs\n   \nc.rs\n", "lines", success=True)
    assert value == ["a.rs", "  b.rs", "c.rs"]
    store = VariableStore()
    store.set("files", parse_capture("x\ny\n", "lines", success=True))
    assert interpolate("${files}", store) == "x, y"


def test_lines_of_empty_output() -> None:
    assert parse_capture("", "lines", success=True) == []


@pytest.mark.parametrize(
    ("text", "expected"),
    [("42\n", 42), ("-3", -3), ("3.5\n", 3.5), ("2.0", 2.0), (" 1e2 ", 100.0)],
)
def test_number(text: str, expected: float) -> None:
    value = parse_capture(text, "number", success=True)
    assert value == expected
    assert type(value) is type(expected)


@pytest.mark.parametrize("text", ["", "abc", "12 apples", "nan"])
def test_number_rejects_non_numeric_text(text: str) -> None:
    with pytest.raises(CaptureError) as info:
        parse_capture(text + "\n", "number", success=True)
    assert info.value.message == f"output is not a number: {text!r}"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("true\n", True),
        ("TRUE", True),
        (" yes ", True),
        ("1", True),
        ("false", False),
        ("No\n", False),
        ("0", False),
    ],
)
def test_boolean_words(text: str, expected: bool) -> None:
    assert parse_capture(text, "boolean", success=not expected) is expected


@pytest.mark.parametrize("success", [True, False])
def test_boolean_falls_back_to_step_success(success: bool) -> None:
    assert parse_capture("", "boolean", success=success) is success
    assert parse_capture("tests ran\n", "boolean", success=success) is success


def test_unknown_format_lists_valid_ones() -> None:
    with pytest.raises(CaptureError) as info:
        parse_capture("x", "yaml", success=True)
    assert "'yaml'" in info.value.message
    assert info.value.hint == "use one of: string, json, lines, number, boolean"
