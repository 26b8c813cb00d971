"""A score of 0-100 read from a validator's output: goal_seek's `validate` and the
built-in `quality` validator (docs/workflows.md, "Scores").

Formats, as the original read them: JSON `{"score": N, "gaps": [...]}`, `score: N`, `N%`,
`N/100` and `N out of 100`.

Fixed from the original (which returned 0 for anything it could not read, so a typo in a
validator looked like "no progress" until the attempts ran out): output with no score is
an error that shows the output. Also fixed: decimals (`87.5%` was read as 5), a JSON score
given as a decimal (read as 0), JSON after log lines (ignored), and which number wins
when the output holds several: an explicit `score: N` anywhere beats the other forms, and
among lines of the same form the last one counts (a validator's verdict comes after its
log). Scores outside 0-100 are clamped (`score=$((100 - warnings * 5))` goes negative).
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from typing import Any

from prodigyd import errorcodes
from prodigyd.errors import ProdigyError

#: How much of an unreadable output an error shows (its end: the verdict is printed last).
SHOWN_OUTPUT_CHARS = 400

_NUMBER = r"([-+]?\d+(?:\.\d+)?)"
#: `score: 85` (also `Score = 85`, `score 85`): the explicit form, which wins.
_EXPLICIT = re.compile(rf"\bscore\s*[:=]?\s*{_NUMBER}", re.IGNORECASE)
#: The other forms, tried on each line from the last one up.
_IMPLICIT = (
    re.compile(rf"{_NUMBER}\s*/\s*100\b"),
    re.compile(rf"{_NUMBER}\s+out\s+of\s+100\b", re.IGNORECASE),
    re.compile(rf"{_NUMBER}\s*%"),
)

FORMATS = '`score: N`, `N%`, `N/100`, `N out of 100` or JSON {"score": N, "gaps": [...]}'


class ScoreError(ProdigyError):
    """A validator's output holds no score (or a JSON score that is not a number)."""

    code = errorcodes.SCORE


@dataclass(frozen=True)
class Score:
    """A validator's verdict: `value` in 0-100 and the `gaps` it named (JSON `gaps`, the
    failing tests, the unreferenced requirements), and the text it came from."""

    value: float
    gaps: list[Any] = field(default_factory=list)
    output: str = ""

    def shown(self) -> str:
        """`87.5`, or `90` for a whole number."""
        return format_score(self.value)


def format_score(value: float) -> str:
    return f"{value:g}" if value != int(value) else str(int(value))


def parse_score(text: str, source: str = "the validator") -> Score:
    """The score in `text`; ScoreError naming `source` and showing the output if none."""
    from_json = _json_score(text, source)
    if from_json is not None:
        return from_json
    lines = [line for line in text.splitlines() if line.strip()]
    explicit = [m for line in lines for m in _EXPLICIT.finditer(line)]
    if explicit:
        return Score(_clamp(float(explicit[-1].group(1))), output=text)
    for line in reversed(lines):
        for pattern in _IMPLICIT:
            found = list(pattern.finditer(line))
            if found:
                return Score(_clamp(float(found[-1].group(1))), output=text)
    raise ScoreError(
        f"no score in the output of {source}",
        details=f"expected {FORMATS}; the output was:\n{shown_output(text)}",
        hint='print the score on the validator\'s last line, e.g. `echo "score: 75"`',
    )


def shown_output(text: str) -> str:
    """The end of an output, for an error message; `(empty)` when there is none."""
    text = text.strip()
    if not text:
        return "(empty)"
    if len(text) > SHOWN_OUTPUT_CHARS:
        return "…" + text[-SHOWN_OUTPUT_CHARS:]
    return text


def _json_score(text: str, source: str) -> Score | None:
    """JSON with a `score`: the whole output, or its last line (after a log)."""
    stripped = text.strip()
    lines = stripped.splitlines()
    for candidate in (stripped, lines[-1] if lines else ""):
        if not candidate.startswith("{"):
            continue
        try:
            data = json.loads(candidate)
        except ValueError:
            continue
        if not isinstance(data, dict) or "score" not in data:
            continue
        value = data["score"]
        if isinstance(value, bool) or not isinstance(value, int | float) or math.isnan(value):
            raise ScoreError(
                f"the JSON output of {source} has a score that is not a number: {value!r}",
                details=f"the output was:\n{shown_output(text)}",
            )
        gaps = data.get("gaps")
        if gaps is None:
            gaps = []
        return Score(_clamp(float(value)), gaps if isinstance(gaps, list) else [gaps], text)
    return None


def _clamp(value: float) -> float:
    return min(100.0, max(0.0, value))
