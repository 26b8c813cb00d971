"""Turning a step's stdout into a captured variable (spec §2.11, `capture_format`)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from prodigyd import errorcodes
from prodigyd.errors import ProdigyError
from prodigyd.workflow.expr import parse_number

__all__ = ["CAPTURE_FORMATS", "CaptureError", "parse_capture"]

CAPTURE_FORMATS = ("string", "json", "lines", "number", "boolean")

_EXCERPT = 200


class CaptureError(ProdigyError):
    """Output does not fit the step's `capture_format`."""

    kind = "capture"
    code = errorcodes.CAPTURE


Excerpt = Callable[[str], str]


def parse_capture(text: str, fmt: str, *, success: bool, mask: Excerpt = str) -> Any:
    """The value `capture:` stores for output `text` of a step that did (not) `success`.

    `mask` hides secrets in the excerpt of `text` an error shows. It is applied before the
    excerpt is cut, so that a secret the cut splits is still recognised (see mask.py).
    """
    if fmt == "boolean":
        return _boolean(text, success)
    parser = _PARSERS.get(fmt)
    if parser is None:
        raise CaptureError(
            f"unknown capture_format {fmt!r}", hint=f"use one of: {', '.join(CAPTURE_FORMATS)}"
        )
    return parser(text, lambda part: mask(part)[:_EXCERPT])


def _string(text: str, excerpt: Excerpt) -> str:
    """The text minus ONE trailing newline.

    `echo` and most tools end their output with a newline nobody wants in `${name}`. Only
    one goes, so blank lines and trailing spaces a command printed on purpose survive.
    A "\\r\\n" ending counts as one newline.
    """
    if text.endswith("\r\n"):
        return text[:-2]
    return text.removesuffix("\n")


def _json(text: str, excerpt: Excerpt) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        reason = exc.msg.removesuffix(" at")  # "Invalid control character at" (json's own)
        raise CaptureError(
            f"output is not valid JSON: {reason} at line {exc.lineno} column {exc.colno}"
            f" (first {_EXCERPT} chars shown)",
            details=excerpt(text).rstrip() or "(empty output)",
        ) from None


def _lines(text: str, excerpt: Excerpt) -> list[str]:
    """Non-blank lines, as written (indentation kept)."""
    return [line for line in text.splitlines() if line.strip()]


def _number(text: str, excerpt: Excerpt) -> int | float:
    value = parse_number(text)
    if value is None:
        raise CaptureError(f"output is not a number: {excerpt(text.strip())!r}")
    return value


_BOOLEANS = {"true": True, "yes": True, "1": True, "false": False, "no": False, "0": False}


def _boolean(text: str, success: bool) -> bool:
    """A boolean word, or else whether the step succeeded (`test -f x` prints nothing)."""
    return _BOOLEANS.get(text.strip().lower(), success)


_PARSERS: dict[str, Callable[[str, Excerpt], Any]] = {
    "string": _string,
    "json": _json,
    "lines": _lines,
    "number": _number,
}
