"""The `when:` condition language (spec §2.10).

A tiny recursive-descent parser rather than `eval`: conditions come from workflow files, and
users deserve an error with a caret under the problem instead of a Python traceback.

    or      := and ("||" and)*
    and     := not ("&&" not)*
    not     := "!" not | compare
    compare := primary (("==" | "!=" | ">" | "<" | ">=" | "<=") primary)?
    primary := ${var} | ${var.exists} | 'text' | "text" | number | true | false | "(" or ")"

Variables are resolved by the store itself (modifiers and `:-default` included), so a
condition must not be interpolated before it is evaluated.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from prodigyd.errors import ProdigyError
from prodigyd.workflow.interpolate import MISSING, VariableStore, render

__all__ = ["ExpressionError", "evaluate", "parse_number", "truthy"]


class ExpressionError(ProdigyError):
    """A `when` expression cannot be parsed; `details` points a caret at the offset."""

    kind = "expression"

    def __init__(
        self, message: str, expression: str, offset: int, *, hint: str | None = None
    ) -> None:
        super().__init__(
            f"{message} at offset {offset} of the when expression",
            hint=hint,
            details=_caret(expression, offset),
        )
        self.expression = expression
        self.offset = offset


def _caret(expression: str, offset: int) -> str:
    """The line of `expression` holding `offset`, with a caret under it."""
    start = expression.rfind("\n", 0, offset) + 1
    end = expression.find("\n", offset)
    line = expression[start : end if end >= 0 else len(expression)]
    return f"  {line}\n  {' ' * (offset - start)}^"


def evaluate(expr: str, store: VariableStore) -> bool:
    """Whether the condition holds. An empty condition is false, like an empty string."""
    if not expr.strip():
        return False
    return truthy(_Parser(expr, store).parse()())


def truthy(value: Any) -> bool:
    """Truthiness of §2.10.

    Strings are judged by their trimmed text: "", "0" and "false" (any case) are false,
    because that is what `echo false` or a shell exit status capture leaves behind.
    MISSING and None are false; numbers, lists and dicts follow Python.
    """
    if isinstance(value, str):
        text = value.strip()
        return text not in ("", "0") and text.lower() != "false"
    return bool(value)


_INTEGER = re.compile(r"[+-]?[0-9]+")
_DECIMAL = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")


def parse_number(text: str) -> int | float | None:
    """The number `text` spells (surrounding whitespace allowed), or None.

    Stricter than int()/float(): no "1_000", "inf" or "nan", which are never meant as numbers
    in command output. Integral text gives an int so that it renders without ".0".
    """
    stripped = text.strip()
    if _INTEGER.fullmatch(stripped):
        return int(stripped)
    if _DECIMAL.fullmatch(stripped):
        return float(stripped)
    return None


# ---------------------------------------------------------------------------------------------
# tokens

_TOKEN = re.compile(
    r"""
      (?P<var>\$\{[^}]*\})
    | (?P<string>'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*")
    | (?P<number>-?[0-9]+(?:\.[0-9]+)?)
    | (?P<op>\|\||&&|==|!=|>=|<=|[!<>()])
    | (?P<word>[A-Za-z_][\w.-]*)
    """,
    re.VERBOSE | re.DOTALL,
)
_SPACE = re.compile(r"\s*")
_ESCAPE = re.compile(r"\\(.)", re.DOTALL)


@dataclass(frozen=True)
class _Token:
    kind: str  # var | string | number | op | word | end
    text: str
    offset: int


def _tokenize(expression: str) -> list[_Token]:
    tokens: list[_Token] = []
    pos = _skip_space(expression, 0)
    while pos < len(expression):
        match = _TOKEN.match(expression, pos)
        if match is None:
            raise _bad_character(expression, pos)
        token = _Token(match.lastgroup or "", match.group(), pos)
        if token.kind == "word" and token.text.lower() not in ("true", "false"):
            raise ExpressionError(
                f"unknown word {token.text!r}",
                expression,
                pos,
                hint=f"quote text ('{token.text}') or reference a variable as ${{{token.text}}}",
            )
        tokens.append(token)
        pos = _skip_space(expression, match.end())
    tokens.append(_Token("end", "", len(expression)))
    return tokens


def _skip_space(expression: str, pos: int) -> int:
    match = _SPACE.match(expression, pos)
    return match.end() if match else pos


def _bad_character(expression: str, pos: int) -> ExpressionError:
    char = expression[pos]
    if expression.startswith("${", pos):
        return ExpressionError("unterminated ${", expression, pos, hint="close it with }")
    if char == "$":
        return ExpressionError(
            "unbraced variable", expression, pos, hint="write variables as ${name} in conditions"
        )
    if char in "'\"":
        return ExpressionError("unterminated string", expression, pos)
    if char == "=":
        return ExpressionError("single '='", expression, pos, hint="compare with ==")
    return ExpressionError(f"unexpected character {char!r}", expression, pos)


# ---------------------------------------------------------------------------------------------
# parser: each rule returns a thunk, so && and || short-circuit while every syntax error is
# still found before anything is evaluated.

_Thunk = Callable[[], Any]


class _Parser:
    def __init__(self, expression: str, store: VariableStore) -> None:
        self._expression = expression
        self._store = store
        self._tokens = _tokenize(expression)
        self._index = 0

    def parse(self) -> _Thunk:
        node = self._or()
        token = self._tokens[self._index]
        if token.kind != "end":
            raise self._error(f"unexpected {token.text!r}", token)
        return node

    def _or(self) -> _Thunk:
        return self._chain("||", self._and, _either)

    def _and(self) -> _Thunk:
        return self._chain("&&", self._not, _both)

    def _chain(
        self, op: str, operand: Callable[[], _Thunk], combine: Callable[[_Thunk, _Thunk], _Thunk]
    ) -> _Thunk:
        node = operand()
        while self._accept(op):
            node = combine(node, operand())
        return node

    def _not(self) -> _Thunk:
        if self._accept("!"):
            inner = self._not()
            return lambda: not truthy(inner())
        return self._comparison()

    def _comparison(self) -> _Thunk:
        left = self._primary()
        token = self._tokens[self._index]
        compare = _COMPARATORS.get(token.text) if token.kind == "op" else None
        if compare is None:
            return left
        self._index += 1
        right = self._primary()
        return lambda: compare(left(), right())

    def _primary(self) -> _Thunk:
        token = self._tokens[self._index]
        self._index += 1
        if token.kind == "op" and token.text == "(":
            inner = self._or()
            if not self._accept(")"):
                raise self._error("expected ')'", self._tokens[self._index])
            return inner
        if token.kind == "var":
            return self._variable(token.text[2:-1])
        if token.kind in ("string", "number", "word"):
            value = _literal(token)
            return lambda: value
        found = "the end" if token.kind == "end" else repr(token.text)
        raise self._error(f"expected a value but found {found}", token)

    def _variable(self, body: str) -> _Thunk:
        store = self._store
        if body.endswith(".exists"):
            target = body.removesuffix(".exists")
            return lambda: store.resolve(target) is not MISSING
        expr, colon_dash, default = body.partition(":-")
        if not colon_dash:
            return lambda: store.resolve(expr)
        return lambda: _or_default(store.resolve(expr), default)

    def _accept(self, op: str) -> bool:
        token = self._tokens[self._index]
        if token.kind == "op" and token.text == op:
            self._index += 1
            return True
        return False

    def _error(self, message: str, token: _Token) -> ExpressionError:
        return ExpressionError(message, self._expression, token.offset)


def _literal(token: _Token) -> Any:
    if token.kind == "string":
        return _ESCAPE.sub(r"\1", token.text[1:-1])
    if token.kind == "number":
        return parse_number(token.text)
    return token.text.lower() == "true"


def _or_default(value: Any, default: str) -> Any:
    return default if value is MISSING else value


def _either(left: _Thunk, right: _Thunk) -> _Thunk:
    return lambda: truthy(left()) or truthy(right())


def _both(left: _Thunk, right: _Thunk) -> _Thunk:
    return lambda: truthy(left()) and truthy(right())


# ---------------------------------------------------------------------------------------------
# comparison


def _coerce(left: Any, right: Any) -> tuple[Any, Any]:
    """Bring a string operand to the type of the other operand where the text allows it.

    Variables are often strings (shell output) compared with literals: "5" vs 5, "true" vs
    true. A list or dict compared with a string is compared by its rendered text.
    """
    left = None if left is MISSING else left
    right = None if right is MISSING else right
    if isinstance(left, str) and not isinstance(right, str):
        right, left = _align(right, left)
    elif isinstance(right, str) and not isinstance(left, str):
        left, right = _align(left, right)
    return left, right


def _align(other: Any, text: str) -> tuple[Any, Any]:
    """(other, text) with one of them converted so that they can be compared."""
    if isinstance(other, bool):
        word = text.strip().lower()
        if word in ("true", "false"):
            return other, word == "true"
        return other, text
    if isinstance(other, int | float):
        number = parse_number(text)
        return other, text if number is None else number
    if other is None:
        return other, text
    return render(other), text


def _equal(left: Any, right: Any) -> bool:
    """Equality after coercion; two strings compare as exact text ("1.10" is not "1.1")."""
    left, right = _coerce(left, right)
    return bool(left == right)


def _ordered(test: Callable[[Any, Any], bool]) -> Callable[[Any, Any], bool]:
    """An ordering comparison: numbers numerically, other strings lexicographically.

    Two strings that both spell numbers compare as numbers ("10" > "9"). Anything else
    (a missing variable, a list against a number) is simply false, like a null in SQL.
    """

    def compare(left: Any, right: Any) -> bool:
        left, right = _coerce(left, right)
        if isinstance(left, str) and isinstance(right, str):
            numbers = parse_number(left), parse_number(right)
            if None in numbers:
                return bool(test(left, right))
            left, right = numbers
        return _is_number(left) and _is_number(right) and bool(test(left, right))

    return compare


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


_COMPARATORS: dict[str, Callable[[Any, Any], bool]] = {
    "==": _equal,
    "!=": lambda left, right: not _equal(left, right),
    ">": _ordered(operator.gt),
    "<": _ordered(operator.lt),
    ">=": _ordered(operator.ge),
    "<=": _ordered(operator.le),
}
