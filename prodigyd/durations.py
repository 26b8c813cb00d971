"""Durations as people write them: `30s`, `500ms`, `5m`, `1h 30m`, `1.5h`, `3d`, `1w`.

One grammar for the whole project, so that a duration means the same in a workflow file
(`timeout: 5m`, `retry_budget: 1h`) and on the command line (`--since 2h`, `--older-than
7d`); there used to be two, and each knew units the other refused (`500ms` only in
workflows, `1w` only on the command line). The units are those of humantime, which the
original's workflow durations went through: ms, s, m (minutes), h, d and w, or their long
names, in any case (`5M` is five minutes, as it always was here: months are no unit).

A bare number is seconds only where a value is documented as seconds (a workflow's
`timeout: 600`, parse_duration); on the command line (duration_seconds) a unit is
required, since `--since 20261125` is a date.
"""

from __future__ import annotations

import math
import re
from typing import TypeGuard

_UNIT_SECONDS = {
    "ms": 0.001,
    "msec": 0.001,
    "millis": 0.001,
    "s": 1.0,
    "sec": 1.0,
    "secs": 1.0,
    "second": 1.0,
    "seconds": 1.0,
    "m": 60.0,
    "min": 60.0,
    "mins": 60.0,
    "minute": 60.0,
    "minutes": 60.0,
    "h": 3600.0,
    "hr": 3600.0,
    "hrs": 3600.0,
    "hour": 3600.0,
    "hours": 3600.0,
    "d": 86400.0,
    "day": 86400.0,
    "days": 86400.0,
    "w": 604800.0,
    "week": 604800.0,
    "weeks": 604800.0,
}
_DURATION = re.compile(r"(?:\s*(?:\d+(?:\.\d*)?|\.\d+)\s*[a-zA-Z]+)+\s*")
_DURATION_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)\s*([a-zA-Z]+)")


def duration_seconds(text: str) -> float | None:
    """Seconds in a duration with units (`90m`, `1h30m`, `2 minutes`); None when `text` is
    not one."""
    if not _DURATION.fullmatch(text):
        return None
    total = 0.0
    for number, unit in _DURATION_PART.findall(text):
        factor = _UNIT_SECONDS.get(unit.lower())
        if factor is None:
            return None
        total += float(number) * factor
    return total


def parse_duration(value: object) -> float:
    """Seconds from a number of seconds (90, "90", 1.5) or a duration with units ("30s",
    "500ms", "1h 30m"); ValueError for anything else, negative or infinite included.

    The original documents humantime strings (`initial_delay: 1s`, `retry_budget: 5m`) for
    some workflow fields and bare seconds (`timeout: 600`) for others; accepting both
    everywhere means nobody has to remember which field takes which. Its serde form of a
    duration, `{secs: 1, nanos: 500000000}`, the only one its custom backoff's `delays`
    take, is read too.
    """
    if isinstance(value, dict) and value and value.keys() <= {"secs", "nanos"}:
        return _serde_seconds(value)
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ValueError(_problem(value))
    seconds = _text_seconds(value) if isinstance(value, str) else float(value)
    if seconds is None or not math.isfinite(seconds) or seconds < 0:
        raise ValueError(_problem(value))
    return seconds


def _serde_seconds(value: dict[str, object]) -> float:
    secs, nanos = value.get("secs", 0), value.get("nanos", 0)
    if not (_whole(secs) and _whole(nanos)):
        raise ValueError(f"expected whole numbers of secs and nanos, got {value!r}")
    return secs + nanos / 1e9


def _whole(part: object) -> TypeGuard[int]:
    return isinstance(part, int) and not isinstance(part, bool) and part >= 0


def _text_seconds(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return duration_seconds(text)


def _problem(value: object) -> str:
    return f"expected a duration such as 30, '30s', '500ms' or '5m', got {value!r}"
