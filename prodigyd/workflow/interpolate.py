"""The variable store and `${...}` interpolation (spec §3.1, §3.2).

Every string a workflow hands to a shell, to Claude or to a file goes through `interpolate`, so
the rules here are the ones users meet most: references that do not resolve stay in the text
exactly as written (the shell still needs `$HOME` and awk's `$2`), values render the way the
original tool rendered them, and the git context variables are only computed when a step
actually mentions them.
"""

from __future__ import annotations

import fnmatch
import json
import re
from collections.abc import Container, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Final

from prodigyd import errorcodes
from prodigyd.errors import ProdigyError

__all__ = [
    "MISSING",
    "SpaceList",
    "UnresolvedVariableError",
    "VariableStore",
    "interpolate",
    "render",
]


class _Missing:
    """The type of `MISSING`.

    `None` is a legitimate value (a JSON null, rendered as ""), so "this path does not resolve"
    needs a marker of its own. It is falsy so that a missing variable reads as false in `when`.
    """

    def __repr__(self) -> str:
        return "MISSING"

    def __bool__(self) -> bool:
        return False


MISSING: Final = _Missing()


class SpaceList(list[str]):
    """A list of paths that renders space-separated.

    The git context variables (`${step.files_added}` and friends) were space-separated strings
    in the original, written for `git add ${step.files_added}`; a plain list would render
    ", "-joined. Being a real list keeps `[n]`, glob modifiers and `:json` working.
    """


class VariableStore:
    """Named values in nested scopes.

    Names are flat strings that may contain dots ("shell.output", "map.results"); a lookup of
    a dotted path prefers the longest such name and walks into the value for the rest. A child
    scope (a foreach item, a map agent, an on_failure handler) sees its parent's variables but
    writes only its own, so siblings never leak into each other.
    """

    def __init__(self, parent: VariableStore | None = None) -> None:
        self._parent = parent
        self._entries: dict[str, Any] = {}

    def set(self, name: str, value: Any) -> None:
        self._entries[name] = value

    def update(self, values: Mapping[str, Any]) -> None:
        for name, value in values.items():
            self.set(name, value)

    def child(self) -> VariableStore:
        return VariableStore(self)

    def own(self, name: str) -> Any:
        """The value this scope itself set for `name` (not its parents'), or MISSING."""
        return self._entries.get(name, MISSING)

    def lookup(self, path: str) -> Any:
        """The value at `path` ("a.b[0].c"), or MISSING.

        Tries the longest prefix of the path that is a variable name first, so a variable
        literally called "map.results" wins over walking into a variable "map". If walking the
        rest fails, shorter prefixes still get their chance.
        """
        steps = _parse_path(path)
        if steps is None:
            return MISSING
        for index in range(len(steps) - 1, -1, -1):
            root = self._get(path[: steps[index][0]])
            if root is MISSING:
                continue
            found = _walk(root, [key for _, key in steps[index + 1 :]])
            if found is not MISSING:
                return found
        return MISSING

    def resolve(self, expr: str) -> Any:
        """The value of a `${...}` body without its `:-default`: a path, then `:modifier`s."""
        path, *modifiers = expr.split(":")
        value = self.lookup(path)
        for modifier in modifiers:
            if value is MISSING:
                break
            value = _apply_modifier(value, modifier)
        return value

    def snapshot(self) -> dict[str, Any]:
        """Every visible variable, for checkpoints.

        Values that cannot be written as JSON are left out. Note that a SpaceList comes back
        from JSON as a plain list.
        """
        return {name: value for name, value in self._merged().items() if _is_json(value)}

    def _get(self, name: str) -> Any:
        scope: VariableStore | None = self
        while scope is not None:
            entry = scope._entries.get(name, MISSING)
            if entry is not MISSING:
                return entry
            scope = scope._parent
        return MISSING

    def _merged(self) -> dict[str, Any]:
        merged = self._parent._merged() if self._parent is not None else {}
        merged.update(self._entries)
        return merged

    def _describe(self) -> list[str]:
        """`name (type)` for every visible variable."""
        merged = sorted(self._merged().items())
        return [f"{name} ({type(value).__name__})" for name, value in merged]


class UnresolvedVariableError(ProdigyError):
    """Strict mode found references that do not resolve.

    Lists every failing reference at once (fixing them one run at a time is miserable) and
    the variables that do exist, since a typo is the usual cause.
    """

    kind = "unresolved_variable"
    code = errorcodes.UNDEFINED_VARIABLE

    def __init__(self, references: list[str], available: list[str]) -> None:
        self.references = list(dict.fromkeys(references))
        super().__init__(
            f"unresolved variables: {', '.join(self.references)}",
            hint="define them, or give a default with ${name:-default}",
            details="available variables:\n"
            + ("\n".join(f"  {line}" for line in available) or "  (none)"),
        )


# ---------------------------------------------------------------------------------------------
# paths and modifiers

_HEAD = re.compile(r"[\w-]+")
_STEP = re.compile(r"\.([\w-]+)|\[(\d+)\]")


def _parse_path(path: str) -> list[tuple[int, str | int]] | None:
    """Split "a.b[0]" into (end offset, key) steps; None when the text is not a path.

    Shell parameter syntax such as `${#arr[@]}` or `${VAR/x/y}` is not a path, so it can
    never resolve and stays in the command untouched.
    """
    head = _HEAD.match(path)
    if head is None:
        return None
    steps: list[tuple[int, str | int]] = [(head.end(), head.group())]
    pos = head.end()
    while pos < len(path):
        match = _STEP.match(path, pos)
        if match is None:
            return None
        pos = match.end()
        steps.append((pos, match.group(1) if match.group(1) is not None else int(match.group(2))))
    return steps


def _walk(value: Any, keys: list[str | int]) -> Any:
    for key in keys:
        value = _step_into(value, key)
        if value is MISSING:
            break
    return value


def _step_into(value: Any, key: str | int) -> Any:
    """One step of a path: a dict key or a list index.

    Strings holding a JSON object or array are parsed first (§2.10): captured output and
    some map-item fields arrive as JSON text, and users write `${out.field}` regardless.
    """
    if isinstance(value, str):
        value = _parse_json_container(value)
    if isinstance(key, int):
        is_sequence = isinstance(value, list | tuple)
        return value[key] if is_sequence and key < len(value) else MISSING
    if isinstance(value, Mapping):
        return value.get(key, MISSING)
    return MISSING


def _parse_json_container(text: str) -> Any:
    if not text.lstrip().startswith(("{", "[")):
        return MISSING
    try:
        return json.loads(text)
    except ValueError:
        return MISSING


_JOINERS = {"lines": "\n", "newline": "\n", "csv": ",", "comma": ","}


def _apply_modifier(value: Any, modifier: str) -> Any:
    """One `:modifier` of §3.2; anything that is not a known keyword is a glob filter."""
    if modifier == "json":
        return _to_json(value)
    if modifier in _JOINERS:
        items = value if isinstance(value, list | tuple) else [value]
        return _JOINERS[modifier].join(render(item) for item in items)
    if not modifier:
        return value
    return _glob_filter(value, modifier)


def _glob_filter(value: Any, pattern: str) -> Any:
    if isinstance(value, list | tuple):
        kept = [item for item in value if glob_match(render(item), pattern)]
        return SpaceList(kept) if isinstance(value, SpaceList) else kept
    return value if glob_match(render(value), pattern) else ""


def glob_match(path: str, pattern: str) -> bool:
    """Glob matching as the original's git-variable filters did it (and `on:` triggers do).

    fnmatch's `*` already crosses `/` (so `*.md` matches `docs/a.md`); the only gap is `**/`
    matching zero directories (`src/**/*.rs` should match `src/main.rs`).
    """
    if fnmatch.fnmatchcase(path, pattern):
        return True
    return "**/" in pattern and fnmatch.fnmatchcase(path, pattern.replace("**/", ""))


# ---------------------------------------------------------------------------------------------
# rendering


def render(value: Any) -> str:
    """How a value reads once substituted into text (§3.1).

    str as is; None → ""; bools → "true"/"false" (what shells and `when` compare against);
    ints → digits; SpaceList → space-joined; a list of only strings → ", "-joined (so an
    empty list renders ""; use `:json` to get "[]"); floats, dicts and other lists → JSON.
    Floats go through JSON so that `${x}` and `${obj}` show a number the same way: an integral
    float keeps its ".0" (7.0 → "7.0"), which is how it was written or computed.
    JSON is compact (`,` and `:` separators), as the original renders `${map.results}`.
    """
    if isinstance(value, str):
        return value
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, SpaceList):
        return " ".join(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, list | tuple) and all(isinstance(item, str) for item in value):
        return ", ".join(value)
    if isinstance(value, float | list | tuple | Mapping):
        return _to_json(value)
    return str(value)


def _to_json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, default=str, separators=(",", ":"))


#: What most variables hold: JSON as they are, no trial encoding needed (bool is an int).
_PLAIN = (str, int, float, type(None))


def _is_json(value: Any) -> bool:
    if isinstance(value, _PLAIN):
        return True
    try:
        json.dumps(value)
    except (TypeError, ValueError):
        return False
    return True


# ---------------------------------------------------------------------------------------------
# interpolation

# `$$` is matched only so that it is skipped whole: in a shell it is the PID, and `$$HOME`
# means "PID, then the word HOME", not a reference to HOME.
_REFERENCE = re.compile(r"\$(?:\$|(\{)|([A-Za-z_][A-Za-z0-9_]*|[0-9]+))")


@dataclass(frozen=True)
class _Reference:
    start: int
    end: int
    expr: str
    default: str | None


def _references(text: str) -> Iterator[_Reference]:
    pos = 0
    while (match := _REFERENCE.search(text, pos)) is not None:
        pos = match.end()
        if match.group(2) is not None:
            yield _Reference(match.start(), pos, match.group(2), None)
        elif match.group(1) is not None:
            close = _closing_brace(text, pos)
            if close < 0:
                continue  # an unterminated `${` stays as text
            expr, colon_dash, default = text[pos:close].partition(":-")
            yield _Reference(match.start(), close + 1, expr, default if colon_dash else None)
            pos = close + 1


def _closing_brace(text: str, start: int) -> int:
    """Index of the `}` closing a `${` whose body starts at `start`, or -1.

    Braces nest so that a default such as `${cfg:-{}}` keeps its `{}`.
    """
    depth = 1
    for index in range(start, len(text)):
        if text[index] == "{":
            depth += 1
        elif text[index] == "}":
            depth -= 1
            if depth == 0:
                return index
    return -1


def interpolate(
    text: str,
    store: VariableStore,
    *,
    strict: bool = False,
    shell_names: Container[str] = (),
    environment: Mapping[str, str] | None = None,
) -> str:
    """Substitute `${path}`, `${path:-default}`, `${path:modifiers}`, `$NAME` and `$1`.

    References that do not resolve stay verbatim, because most of them belong to the shell
    (`$HOME`, awk's `$2`). With `strict`, they raise UnresolvedVariableError instead, except
    plain references to `shell_names` (the job's environment), which the shell will expand.
    `${env:NAME}` (also `${env.NAME}`) is NAME of `environment`, when it has it.
    Defaults are literal text; substituted values are never interpolated again.
    """
    if "$" not in text:
        return text
    parts: list[str] = []
    unresolved: list[str] = []
    pos = 0
    for ref in _references(text):
        parts.append(text[pos : ref.start])
        value = _from_environment(ref.expr, environment)
        if value is MISSING:
            value = store.resolve(ref.expr)
        if value is not MISSING:
            parts.append(render(value))
        elif ref.default is not None:
            parts.append(ref.default)
        else:
            parts.append(text[ref.start : ref.end])
            if ref.expr not in shell_names:
                unresolved.append(parts[-1])
        pos = ref.end
    if strict and unresolved:
        raise UnresolvedVariableError(unresolved, store._describe())
    parts.append(text[pos:])
    return "".join(parts)


_ENVIRONMENT_REFERENCE = re.compile(r"env[:.]([A-Za-z_][A-Za-z0-9_]*)")


def _from_environment(expr: str, environment: Mapping[str, str] | None) -> Any:
    match = _ENVIRONMENT_REFERENCE.fullmatch(expr)
    if environment is None or match is None:
        return MISSING
    return environment.get(match[1], MISSING)


# ---------------------------------------------------------------------------------------------
# the path grammar, shared with the filter language and the work-item pipeline (expr.py)

parse_path = _parse_path
walk = _walk
