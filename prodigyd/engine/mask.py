"""Keeping secrets out of logs, events, checkpoints and error messages (spec §2.14).

Everything the daemon writes down passes through one `Masker`. It knows the literal secret
values the workflow declared and also recognises credentials by shape, because a token that
arrives through the inherited environment or a command's output was never declared.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

__all__ = ["MASK", "Masker"]

MASK = "***"

# Shorter values would turn every "on", "dev" or "1" in the logs into ***; such values are not
# real secrets anyway.
_MIN_SECRET_LENGTH = 4

_SHAPES = "|".join(
    (
        r"\b(?:gh[pousr]_[A-Za-z0-9]{10,}|github_pat_[A-Za-z0-9_]{10,})",  # GitHub tokens
        r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b",  # AWS access key ids
        r"\beyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*",  # JWTs
        # An HTTP credential keeps its scheme word. A plain word after it ("Basic usage",
        # "Bearer authentication") is prose, not a token, and is left alone.
        r"(?P<scheme>\b(?i:bearer|basic)\s+)(?![A-Za-z][a-z]*\b)[A-Za-z0-9._~+/=-]{6,}",
    )
)
_SHAPES_ONLY = re.compile(_SHAPES)

# Matched against the lower-cased name with "_" and "-" removed ("API_KEY" → "apikey").
# "clientsecret" needs no entry of its own: "secret" covers it.
_SENSITIVE_PARTS = (
    "password",
    "passwd",
    "token",
    "apikey",
    "secret",
    "bearer",
    "authorization",
    "privatekey",
    "sshkey",
    "accesskey",
)
# Too short to match inside other words ("GIT_AUTHOR_NAME"), so they must be a whole
# "_"/"-"-separated word of the name.
_SENSITIVE_WORDS = frozenset({"pwd", "auth"})
_NAME_SEPARATORS = re.compile(r"[_\-]")


class Masker:
    """Replaces secrets in text with `***`."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self._secrets: set[str] = set()
        self._regex = _SHAPES_ONLY
        for secret in secrets:
            self.add(secret)

    def add(self, value: str) -> None:
        """Mask `value` from now on, unless it is shorter than four characters."""
        if len(value) < _MIN_SECRET_LENGTH or value in self._secrets:
            return
        self._secrets.add(value)
        # Longest first, so that a secret containing another one is masked whole.
        literals = sorted(self._secrets, key=len, reverse=True)
        self._regex = re.compile("|".join([*map(re.escape, literals), _SHAPES]))

    def mask(self, text: str) -> str:
        if not text:
            return text
        return self._regex.sub(_replacement, text)

    def mask_obj(self, obj: Any) -> Any:
        """A copy of `obj` with every string inside dicts, lists and tuples masked.

        Keys are kept: they are names chosen by the workflow author, not data.
        """
        if isinstance(obj, str):
            return self.mask(obj)
        if isinstance(obj, Mapping):
            return {key: self.mask_obj(value) for key, value in obj.items()}
        if isinstance(obj, list):
            return [self.mask_obj(item) for item in obj]
        if isinstance(obj, tuple):
            return tuple(self.mask_obj(item) for item in obj)
        return obj

    def mask_env(self, env: Mapping[str, str]) -> dict[str, str]:
        """An environment fit for display.

        Values whose name looks sensitive are masked whole even if never declared as secrets
        (an inherited GITHUB_TOKEN); empty ones stay empty, which leaks nothing and explains
        an authentication failure.
        """
        return {
            name: MASK if value and _sensitive_name(name) else self.mask(value)
            for name, value in env.items()
        }


def _replacement(match: re.Match[str]) -> str:
    scheme = match.group("scheme")
    return MASK if scheme is None else scheme + MASK


def _sensitive_name(name: str) -> bool:
    lowered = name.lower()
    squashed = _NAME_SEPARATORS.sub("", lowered)
    if any(part in squashed for part in _SENSITIVE_PARTS):
        return True
    return not _SENSITIVE_WORDS.isdisjoint(_NAME_SEPARATORS.split(lowered))
