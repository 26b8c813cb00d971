"""The condition language: `when:` (spec §2.10) and MapReduce `filter:` (§4.8.3).

A tiny recursive-descent parser rather than `eval`: conditions come from workflow files, and
users deserve an error with a caret under the problem instead of a Python traceback.

    or      := and (("||" | OR) and)*
    and     := not (("&&" | AND) not)*
    not     := ("!" | NOT) not | compare
    compare := operand (OP operand | "in" list | "matches" 'regex')?   OP: == = != > < >= <=
    operand := ${var} | field | name "(" operand, ... ")" | literal | "(" or ")"
    list    := "[" literal, ... "]"
    literal := 'text' | "text" | number | true | false | null

One grammar and one tokenizer serve two languages, which differ only in the tokens they accept
and in what an operand is resolved against (`_WHEN`, `_FILTER`):

- `when` is evaluated against the VariableStore. Variables are `${var}`, with `.exists`,
  `:-default` and modifiers resolved by the store itself, so a condition must not be
  interpolated first. It has no bare names: a bare word is almost always text missing its
  quotes, so it is an error. It has no `=`, `null`, AND/OR/NOT, `in`, `matches` or functions.
- a filter is compiled once and then tested against each work item. Bare names are fields of
  the item (`location.file`, `tags[0]`; `@` is the item itself and `@.a` a path from it, as
  JSONPath filters write them, and `item`/`item.a` the same, as the original's book writes
  them: `parse_field`); a missing field is null. `${...}` is an error: a filter tests
  items, not variables. AND/OR/NOT are reserved in any case, while `in` and `matches` are
  keywords only after an operand; a field named like a reserved word is reached as `@.and`.

Filter decisions, where the original was loose or is not followed:
- Comparisons use the same coercion as `when` (`_coerce`): a string compared with a number is
  read as a number when it spells one ("5" > 3), "true"/"false" text equals a boolean, two
  strings are equal only as exact text but order numerically when both spell numbers, and any
  ordering involving null is false. The original compared JSON types strictly.
- A bare field is truth-tested like a `when` value (so "false", "0", "", [] and null fail).
- A missing field equals null everywhere, so `is_null(missing)` is true (the original said
  false there while `missing == null` was true).
- `contains` on an array tests membership by `==`; `contains`, `starts_with`, `ends_with` and
  `matches` read a number as its text and are false for anything else that is not a string.
- `matches` searches (partial match, like the original's Rust `is_match`); its pattern must be
  a quoted literal and is compiled with the filter, so a bad regex fails at load time.
- `length` counts a string, array or object and is null for anything else.
- An unknown function or a wrong number of arguments is an error at compile time (the original
  logged a warning and filtered every item out).
- An empty filter keeps every item (an empty `when` is false: it has nothing to hold).
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, TypeVar

from prodigyd import errorcodes
from prodigyd.errors import ProdigyError
from prodigyd.workflow.interpolate import MISSING, VariableStore, parse_path, render, walk

__all__ = [
    "ExpressionError",
    "FieldPath",
    "caret",
    "check_when",
    "compile_filter",
    "evaluate",
    "field_value",
    "filter_fields",
    "has_field",
    "parse_field",
    "parse_number",
    "truthy",
]


class ExpressionError(ProdigyError):
    """A condition cannot be parsed; `details` points a caret at the offset.

    `reason` is the message without its position, for callers that embed the expression in
    a larger text (a JSONPath filter) and report their own offset.
    """

    kind = "expression"
    code = errorcodes.EXPRESSION

    def __init__(
        self,
        message: str,
        expression: str,
        offset: int,
        *,
        hint: str | None = None,
        language: str = "when",
    ) -> None:
        super().__init__(
            f"{message} at offset {offset} of the {language} expression",
            hint=hint,
            details=caret(expression, offset),
        )
        self.reason = message
        self.expression = expression
        self.offset = offset


def caret(text: str, offset: int) -> str:
    """The line of `text` holding `offset`, with a caret under it (indented two spaces)."""
    start = text.rfind("\n", 0, offset) + 1
    end = text.find("\n", offset)
    line = text[start : end if end >= 0 else len(text)]
    return f"  {line}\n  {' ' * (offset - start)}^"


def evaluate(expr: str, store: VariableStore) -> bool:
    """Whether the `when` condition holds. An empty condition is false, like an empty string."""
    if not expr.strip():
        return False
    return truthy(_Parser(expr, _WHEN).parse()(store))


def check_when(expr: str) -> None:
    """Raise ExpressionError if `expr` is not a `when` expression: what the loader calls, so a
    bad condition is reported with its file and line before anything runs."""
    if expr.strip():
        _Parser(expr, _WHEN).parse()


def compile_filter(text: str) -> Callable[[Any], bool]:
    """The predicate a MapReduce `filter:` spells, tested against one work item at a time.

    Parsing happens here, once, so a syntax error or an unknown function is reported when the
    workflow is loaded rather than once per item. An empty filter keeps every item.
    """
    if not text.strip():
        return lambda _item: True
    node = _Parser(text, _FILTER).parse()
    return lambda item: truthy(node(item))


def filter_fields(text: str) -> dict[str, FieldPath]:
    """The fields a filter names (as written, with their keys), for saying which of them no
    item has when a filter kept none: a misspelt field is the usual cause."""
    if not text.strip():
        return {}
    parser = _Parser(text, _FILTER)
    parser.parse()
    return parser.fields


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
# work-item fields: shared by filters and by the item pipeline (sort_by, distinct)

FieldPath = tuple[str | int, ...]


def parse_field(text: str) -> FieldPath | None:
    """The keys of a field path, or None when `text` is not one.

    `a.b[0]` follows the `${...}` path grammar of interpolate.py, so a filter, a sort key and
    `${item.a.b[0]}` name the same value. `@` is the item itself and `@.a`/`@[0]` paths from
    it, as JSONPath filters write them; so is `item` (`item.a`), as the original's book
    writes every filter, sort_by and distinct, and as `${item.a}` reads in an agent. A field
    literally named `item` is `@.item`. The head is parsed as a stand-in so that the one path
    grammar serves all three.
    """
    head = _item_head(text)
    if head is None:
        return None
    steps = parse_path("_" + text[len(head) :] if head else text)
    if steps is None:
        return None
    keys = tuple(key for _, key in steps)
    return keys[1:] if head else keys


def _item_head(text: str) -> str | None:
    """The head naming the item itself that `text` starts with ("" for none), or None for
    an `@` glued to a name (`@a`), which is no path."""
    for head in ("@", "item"):
        if text.startswith(head) and text[len(head) : len(head) + 1] in ("", ".", "["):
            return head
    return None if text.startswith("@") else ""


def field_value(item: Any, keys: Sequence[str | int]) -> Any:
    """The value at `keys` in `item`, or None when it is missing: a missing field is null.

    Like `${...}`, a string holding a JSON object or array is walked into.
    """
    value = walk(item, list(keys))
    return None if value is MISSING else value


def has_field(item: Any, keys: Sequence[str | int]) -> bool:
    """Whether `item` has the field at `keys`, even a null one (field_value cannot tell)."""
    return walk(item, list(keys)) is not MISSING


# ---------------------------------------------------------------------------------------------
# tokens

_TOKEN = re.compile(
    r"""
      (?P<var>\$\{[^}]*\}|\$)
    | (?P<string>'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*")
    | (?P<number>-?[0-9]+(?:\.[0-9]+)?)
    | (?P<op>\|\||&&|==|!=|>=|<=|[!<>()=\[\],])
    | (?P<word>(?:@|[A-Za-z_][\w-]*)(?:\.[\w-]+|\[[0-9]+\])*)
    """,
    re.VERBOSE | re.DOTALL,
)
_SPACE = re.compile(r"\s*")
_ESCAPE = re.compile(r"\\(.)", re.DOTALL)


@dataclass(frozen=True)
class _Token:
    kind: str  # var | string | number | op | word (a literal keyword) | field | end
    text: str  # as written
    offset: int
    op: str = ""  # for kind "op", the operator it stands for ("&&" for AND)


@dataclass(frozen=True)
class _Language:
    """What sets `when` and filters apart: the tokens each accepts, and its name in errors.

    `admit` returns the token as the parser should see it, or raises for a token the language
    does not have.
    """

    name: str
    admit: Callable[[str, _Token], _Token]


def _tokenize(expression: str, language: _Language) -> list[_Token]:
    tokens: list[_Token] = []
    pos = _skip_space(expression, 0)
    while pos < len(expression):
        match = _TOKEN.match(expression, pos)
        if match is None:
            raise _bad_character(expression, pos, language.name)
        kind, text = match.lastgroup or "", match.group()
        token = _Token(kind, text, pos, text if kind == "op" else "")
        tokens.append(language.admit(expression, token))
        pos = _skip_space(expression, match.end())
    tokens.append(_Token("end", "", len(expression)))
    return tokens


def _skip_space(expression: str, pos: int) -> int:
    match = _SPACE.match(expression, pos)
    return match.end() if match else pos


def _bad_character(expression: str, pos: int, language: str) -> ExpressionError:
    char = expression[pos]
    if expression.startswith("${", pos):
        return ExpressionError(
            "unterminated ${", expression, pos, hint="close it with }", language=language
        )
    if char == "$":
        hint = "write variables as ${name} in conditions"
        return ExpressionError("unbraced variable", expression, pos, hint=hint, language=language)
    if char in "'\"":
        return ExpressionError("unterminated string", expression, pos, language=language)
    if char == "=":
        return ExpressionError(
            "single '='", expression, pos, hint="compare with ==", language=language
        )
    return ExpressionError(f"unexpected character {char!r}", expression, pos, language=language)


_LITERAL_WORDS = ("true", "false")
_FILTER_ONLY_OPS = ("=", "[", "]", ",")


def _admit_when(expression: str, token: _Token) -> _Token:
    """`when` tokens: `${var}`, literals and operators; a bare word is an error."""
    if token.kind == "var" and token.text == "$":
        raise _bad_character(expression, token.offset, "when")
    if token.kind == "op" and token.text in _FILTER_ONLY_OPS:
        raise _bad_character(expression, token.offset, "when")
    if token.kind == "word" and token.text.lower() not in _LITERAL_WORDS:
        if token.text.startswith("@"):
            raise _bad_character(expression, token.offset, "when")
        raise ExpressionError(
            f"unknown word {token.text!r}",
            expression,
            token.offset,
            hint=f"quote text ('{token.text}') or reference a variable as ${{{token.text}}}",
        )
    return token


_WORD_OPS = {"and": "&&", "or": "||", "not": "!"}


def _admit_filter(expression: str, token: _Token) -> _Token:
    """Filter tokens: words are fields, `null` a literal, AND/OR/NOT operators; no `${}`."""
    if token.kind == "var":
        raise ExpressionError(
            "variables are not allowed in a filter",
            expression,
            token.offset,
            hint="a filter tests each item: name its fields directly (severity == 'high'), "
            "or the item itself as @",
            language="filter",
        )
    if token.kind == "op" and token.text == "=":
        return replace(token, op="==")
    if token.kind != "word":
        return token
    word = token.text.lower()
    if word in _WORD_OPS:
        return replace(token, kind="op", op=_WORD_OPS[word])
    return token if word in (*_LITERAL_WORDS, "null") else replace(token, kind="field")


_WHEN = _Language("when", _admit_when)
_FILTER = _Language("filter", _admit_filter)


# ---------------------------------------------------------------------------------------------
# parser: each rule returns a node, a function of the context (the VariableStore for `when`,
# the item for a filter), so && and || short-circuit while every syntax error is still found
# before anything is evaluated.

_Node = Callable[[Any], Any]
_T = TypeVar("_T")


class _Parser:
    def __init__(self, expression: str, language: _Language) -> None:
        self._expression = expression
        self._language = language
        self._tokens = _tokenize(expression, language)
        self._index = 0
        self.fields: dict[str, FieldPath] = {}  # what `_field` read, for `filter_fields`

    def parse(self) -> _Node:
        node = self._or()
        token = self._peek()
        if token.kind != "end":
            raise self._error(f"unexpected {token.text!r}", token)
        return node

    def _or(self) -> _Node:
        return self._chain("||", self._and, _either)

    def _and(self) -> _Node:
        return self._chain("&&", self._not, _both)

    def _chain(
        self, op: str, operand: Callable[[], _Node], combine: Callable[[_Node, _Node], _Node]
    ) -> _Node:
        node = operand()
        while self._accept(op):
            node = combine(node, operand())
        return node

    def _not(self) -> _Node:
        if self._accept("!"):
            inner = self._not()
            return lambda context: not truthy(inner(context))
        return self._comparison()

    def _comparison(self) -> _Node:
        left = self._operand()
        token = self._peek()
        compare = _COMPARATORS.get(token.op)
        if compare is not None:
            self._index += 1
            right = self._operand()
            return lambda context: compare(left(context), right(context))
        if token.kind == "field" and token.text == "in":
            self._index += 1
            return _member(left, self._list())
        if token.kind == "field" and token.text == "matches":
            self._index += 1
            return _matcher(left, self._regex(self._next()))
        return left

    def _operand(self) -> _Node:
        token = self._next()
        if token.op == "(":
            inner = self._or()
            self._expect(")")
            return inner
        if token.kind == "var":
            return _variable(token.text[2:-1])
        if token.kind == "field":
            return self._call(token) if self._accept("(") else self._field(token)
        if token.kind in ("string", "number", "word"):
            value = _literal(token)
            return lambda _context: value
        raise self._error(f"expected a value but found {_describe(token)}", token)

    def _field(self, token: _Token) -> _Node:
        keys = parse_field(token.text)
        if keys is None:
            raise self._error(f"{token.text!r} is not a field path", token)
        self.fields[token.text] = keys
        return lambda item: field_value(item, keys)

    def _call(self, name: _Token) -> _Node:
        args = self._sequence(")", lambda: (self._peek(), self._operand()))
        if name.text == "matches":
            self._check_arity(name, len(args), 2)
            return _matcher(args[0][1], self._regex(args[1][0]))
        arity, function = self._function(name)
        self._check_arity(name, len(args), arity)
        nodes = [node for _, node in args]
        return lambda context: function(*(_present(node(context)) for node in nodes))

    def _function(self, name: _Token) -> tuple[int, Callable[..., Any]]:
        spec = _FUNCTIONS.get(name.text)
        if spec is None:
            known = "known functions: " + ", ".join(sorted([*_FUNCTIONS, "matches"]))
            raise self._error(f"unknown function {name.text!r}", name, hint=known)
        return spec

    def _check_arity(self, name: _Token, given: int, arity: int) -> None:
        if given != arity:
            wanted = f"{arity} argument{'s' if arity > 1 else ''}"
            raise self._error(f"{name.text}() takes {wanted} but was given {given}", name)

    def _list(self) -> list[Any]:
        if not self._accept("["):
            raise self._error("expected a list such as ['a', 'b'] after 'in'", self._peek())
        return self._sequence("]", self._list_literal)

    def _list_literal(self) -> Any:
        token = self._next()
        if token.kind not in ("string", "number", "word"):
            raise self._error(f"expected a literal in the list but found {_describe(token)}", token)
        return _literal(token)

    def _sequence(self, close: str, item: Callable[[], _T]) -> list[_T]:
        """Comma-separated items up to `close`, whose opener has been consumed."""
        items: list[_T] = []
        if self._accept(close):
            return items
        items.append(item())
        while self._accept(","):
            items.append(item())
        self._expect(close)
        return items

    def _regex(self, token: _Token) -> re.Pattern[str]:
        if token.kind != "string":
            raise self._error("matches needs a quoted pattern, such as 'test_.*'", token)
        try:
            return re.compile(_literal(token))
        except re.error as err:
            raise self._error(f"bad regular expression ({err})", token) from None

    def _peek(self) -> _Token:
        return self._tokens[self._index]

    def _next(self) -> _Token:
        token = self._tokens[self._index]
        self._index += 1
        return token

    def _accept(self, op: str) -> bool:
        if self._peek().op == op:
            self._index += 1
            return True
        return False

    def _expect(self, op: str) -> None:
        if not self._accept(op):
            raise self._error(f"expected {op!r}", self._peek())

    def _error(self, message: str, token: _Token, hint: str | None = None) -> ExpressionError:
        return ExpressionError(
            message, self._expression, token.offset, hint=hint, language=self._language.name
        )


def _describe(token: _Token) -> str:
    return "the end" if token.kind == "end" else repr(token.text)


def _literal(token: _Token) -> Any:
    if token.kind == "string":
        return _ESCAPE.sub(r"\1", token.text[1:-1])
    if token.kind == "number":
        return parse_number(token.text)
    word = token.text.lower()
    return None if word == "null" else word == "true"


def _variable(body: str) -> _Node:
    if body.endswith(".exists"):
        target = body.removesuffix(".exists")
        return lambda store: store.resolve(target) is not MISSING
    expr, colon_dash, default = body.partition(":-")
    if not colon_dash:
        return lambda store: store.resolve(expr)
    return lambda store: _or_default(store.resolve(expr), default)


def _or_default(value: Any, default: str) -> Any:
    return default if value is MISSING else value


def _present(value: Any) -> Any:
    return None if value is MISSING else value


def _either(left: _Node, right: _Node) -> _Node:
    return lambda context: truthy(left(context)) or truthy(right(context))


def _both(left: _Node, right: _Node) -> _Node:
    return lambda context: truthy(left(context)) and truthy(right(context))


def _member(left: _Node, values: list[Any]) -> _Node:
    return lambda context: any(_equal(left(context), value) for value in values)


def _matcher(subject: _Node, pattern: re.Pattern[str]) -> _Node:
    def matches(context: Any) -> bool:
        text = _text(subject(context))
        return text is not None and pattern.search(text) is not None

    return matches


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


# ---------------------------------------------------------------------------------------------
# filter functions: each takes argument values (a missing field as None)


def _text(value: Any) -> str | None:
    """A string, or a number as its text; None for anything else."""
    if isinstance(value, str):
        return value
    return render(value) if _is_number(value) else None


def _on_text(test: Callable[[str, str], bool]) -> Callable[[Any, Any], bool]:
    def function(value: Any, other: Any) -> bool:
        text, part = _text(value), _text(other)
        return text is not None and part is not None and test(text, part)

    return function


_text_contains = _on_text(operator.contains)


def _contains(value: Any, part: Any) -> bool:
    if isinstance(value, list | tuple):
        return any(_equal(element, part) for element in value)
    return _text_contains(value, part)


def _length(value: Any) -> int | None:
    return len(value) if isinstance(value, str | list | tuple | Mapping) else None


_FUNCTIONS: dict[str, tuple[int, Callable[..., Any]]] = {
    "contains": (2, _contains),
    "starts_with": (2, _on_text(str.startswith)),
    "ends_with": (2, _on_text(str.endswith)),
    "is_null": (1, lambda value: value is None),
    "is_not_null": (1, lambda value: value is not None),
    "is_number": (1, _is_number),
    "is_string": (1, lambda value: isinstance(value, str)),
    "is_bool": (1, lambda value: isinstance(value, bool)),
    "is_array": (1, lambda value: isinstance(value, list | tuple)),
    "is_object": (1, lambda value: isinstance(value, Mapping)),
    "length": (1, _length),
}
