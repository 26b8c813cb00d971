"""Keeping secrets out of logs, events, checkpoints and error messages (spec §2.14).

Everything the daemon writes down passes through one `Masker`. It knows the literal secret
values the workflow declared and also recognises credentials by shape, because a token that
arrives through the inherited environment or a command's output was never declared.

Masking is done on whole text, before anything cuts it to a width (a step's one-line
display, the tail of a failing command's output): a secret cut first would no longer be
recognised, and its surviving prefix or suffix would be shown.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any

__all__ = ["MASK", "MIN_SECRET_LENGTH", "Masker"]

MASK = "***"

#: The shortest secret a workflow may declare (engine/env.py refuses shorter ones). Masking
#: "on", "dev" or "1" would turn every such word of every log into ***, and not masking it
#: would show the secret; so a shorter value is an error, never silently shown. It is also
#: the shortest line of a multi-line secret that is masked on its own.
MIN_SECRET_LENGTH = 4

#: Credential shapes, each with its anchor: text every match of the shape contains. Text
#: with no anchor (nor literal secret) in it is returned at once, unsearched: the shapes'
#: word boundaries and alternatives make the full search of a short event string cost
#: ~5 µs, the anchors' well under one, and every event's every string is masked.
_SHAPES_ANCHORED = (
    # GitHub tokens
    (r"gh[pousr]_|github_pat_", r"\b(?:gh[pousr]_[A-Za-z0-9]{10,}|github_pat_[A-Za-z0-9_]{10,})"),
    (r"AKIA|ASIA", r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b"),  # AWS access key ids
    (r"sk-(?:ant|proj)-", r"\bsk-(?:ant|proj)-[A-Za-z0-9_-]{16,}"),  # Anthropic, OpenAI keys
    (r"xox[abpors]-", r"\bxox[abpors]-[A-Za-z0-9-]{10,}"),  # Slack tokens
    (r"eyJ", r"\beyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*"),  # JWTs
    # An HTTP credential keeps its scheme word. A plain word after it ("Basic usage",
    # "Bearer authentication") is prose, not a token, and is left alone.
    (
        r"(?i:bearer|basic)",
        r"(?P<scheme>\b(?i:bearer|basic)\s+)(?![A-Za-z][a-z]*\b)[A-Za-z0-9._~+/=-]{6,}",
    ),
)
_SHAPES = "|".join(shape for _, shape in _SHAPES_ANCHORED)
_ANCHORS = "|".join(anchor for anchor, _ in _SHAPES_ANCHORED)
_SHAPES_ONLY = re.compile(_SHAPES)
_ANCHORS_ONLY = re.compile(_ANCHORS)


class Masker:
    """Replaces secrets in text with `***`.

    A secret is also matched in its JSON-escaped spellings (quotes, backslashes, non-ASCII
    as `\\u00e9`), since raw stream logs hold JSON text. Secrets added with a `name` can be
    *protected* instead of masked: replaced by a placeholder naming them, which `restore`
    turns back into the current value; checkpoints use this, so a resumed run gets its
    variables back whole while the secret itself never reaches the disk.
    """

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self._secrets: set[str] = set()
        self._names: dict[str, str] = {}  # secret value -> the name it was declared under
        self._added: dict[str, str | None] = {}  # every value added -> its name, if any
        self._regex = _SHAPES_ONLY
        self._anchors = _ANCHORS_ONLY  # found in all `_regex` finds (see _SHAPES_ANCHORED)
        for secret in secrets:
            self.add(secret)

    @classmethod
    def of(cls, secrets: Mapping[str, str | None]) -> Masker:
        """A masker equal to the one whose `secrets()` these are (a map agent's, in the
        process that runs it)."""
        masker = cls()
        for value, name in secrets.items():
            masker.add(value, name)
        return masker

    def secrets(self) -> dict[str, str | None]:
        """Every secret added, with the name it was added under (None: unnamed)."""
        return dict(self._added)

    def add(self, value: str, name: str | None = None) -> None:
        """Mask `value` from now on (every non-empty value: the length policy is env.py's).

        Output is shown and stored line by line, so each line of a multi-line secret (a
        PEM key, say) is masked on its own too, once it has MIN_SECRET_LENGTH characters
        without its surrounding blanks. Those lines are masked, never protected: a
        placeholder stands for the whole value only.
        """
        if not value:
            return
        if name is not None:
            self._names[value] = name
        self._added[value] = name if name is not None else self._added.get(value)
        pieces = {value} | {
            line.strip() for line in value.splitlines() if len(line.strip()) >= MIN_SECRET_LENGTH
        }
        spellings = {
            spelling
            for piece in pieces
            for spelling in (
                piece,
                json.dumps(piece)[1:-1],
                json.dumps(piece, ensure_ascii=False)[1:-1],
            )
        }
        if spellings <= self._secrets:
            return
        self._secrets |= spellings
        # Longest first, so that a secret containing another one is masked whole.
        literals = "|".join(map(re.escape, sorted(self._secrets, key=len, reverse=True)))
        self._regex = re.compile(f"{literals}|{_SHAPES}")
        self._anchors = re.compile(f"{literals}|{_ANCHORS}")

    def mask(self, text: str) -> str:
        if not text or self._anchors.search(text) is None:
            return text
        return self._regex.sub(_replacement, text)

    def finds(self, text: str) -> bool:
        """Whether `text` holds a secret `mask` would hide."""
        return self._anchors.search(text) is not None and self._regex.search(text) is not None

    def cut(self, text: str, limit: int) -> str:
        """`text[:limit]`, or shorter: a cut through a secret moves back to where the
        secret starts. Part of a secret is no longer recognised, so a value kept whole (a
        captured variable, not masked: later steps need it) would store it in clear."""
        if len(text) <= limit:
            return text
        for match in self._regex.finditer(text):
            if match.start() >= limit:
                break
            if match.end() > limit:
                return text[: match.start()]
        return text[:limit]

    def mask_obj(self, obj: Any) -> Any:
        """A copy of `obj` with every string inside dicts, lists and tuples masked.

        Keys are kept: they are names chosen by the workflow author, not data.
        """
        return _map_strings(obj, self.mask)

    def protect(self, obj: Any) -> Any:
        """Like `mask_obj`, but named secrets become placeholders `restore` can undo."""

        def one(text: str) -> str:
            if not text or self._anchors.search(text) is None:
                return text
            return self._regex.sub(self._placeholder, text)

        return _map_strings(obj, one)

    def restore(self, obj: Any) -> Any:
        """Undo `protect` with the secrets' current values (unknown names stay as they are)."""
        values = {name: value for value, name in self._names.items()}

        def one(text: str) -> str:
            if _PLACEHOLDER_MARK not in text:
                return text
            return _PLACEHOLDER.sub(lambda m: values.get(m.group(1), m.group(0)), text)

        return _map_strings(obj, one)

    def _placeholder(self, match: re.Match[str]) -> str:
        name = self._names.get(match.group(0))
        return _replacement(match) if name is None else f"{_PLACEHOLDER_MARK}secret:{name}»"


_PLACEHOLDER_MARK = "«"
_PLACEHOLDER = re.compile(r"«secret:([^»]+)»")


#: Values that hold no text: returned as they are, before the (slow) Mapping ABC check.
_NO_TEXT = (bool, int, float, type(None))
_MAPPINGS = (dict, Mapping)  # dict first: the ABC check is slow


def _map_strings(obj: Any, change: Callable[[str], str]) -> Any:
    if isinstance(obj, str):
        return change(obj)
    if isinstance(obj, _NO_TEXT):
        return obj
    if type(obj) is dict:  # an event's fields: a flat dict of strings and numbers, mostly
        return {
            key: change(value)
            if type(value) is str
            else value
            if type(value) in _NO_TEXT
            else _map_strings(value, change)
            for key, value in obj.items()
        }
    if isinstance(obj, _MAPPINGS):
        return {key: _map_strings(value, change) for key, value in obj.items()}
    if isinstance(obj, list):
        return [_map_strings(item, change) for item in obj]
    if isinstance(obj, tuple):
        return tuple(_map_strings(item, change) for item in obj)
    return obj


def _replacement(match: re.Match[str]) -> str:
    scheme = match.group("scheme")
    return MASK if scheme is None else scheme + MASK
