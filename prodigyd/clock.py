"""The one timestamp format prodigy stores: ISO 8601 in UTC, to the millisecond, with `Z`.

Events, session records, DLQ entries and locks carry it, and `events.list`, `analytics`
and the trigger logs compare such timestamps as strings, which orders them only because
every one is written alike; so the client sends `--since` in it too (stdlib only: the
client imports this).
"""

from __future__ import annotations

import time
from datetime import UTC, datetime


def iso(moment: datetime) -> str:
    """`moment` as stored: `2026-11-25T15:22:04.916Z` (a naive `moment` is local time)."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def stored_time(text: str) -> str:
    """An ISO 8601 time a person or a client wrote (UTC unless it has an offset) in the
    stored form, which stores compare as text. ValueError for text that is none, or a
    time the stored form cannot hold (year 1 an hour east of UTC is year 0 in UTC)."""
    try:
        moment = datetime.fromisoformat(text)
        return iso(moment if moment.tzinfo else moment.replace(tzinfo=UTC))
    except OverflowError as exc:
        raise ValueError(f"out of range: {exc}") from None


#: The last second `now_iso` formatted, and its text: a running step stamps several events
#: and a checkpoint each millisecond, and formatting a datetime costs more than the rest.
_second: tuple[int, str] = (-1, "")


def now_iso() -> str:
    """Now, as stored (the same text `iso` gives for it: milliseconds cut, not rounded)."""
    global _second
    seconds, nanoseconds = divmod(time.time_ns(), 1_000_000_000)
    known = _second  # read once: a worker thread may set it meanwhile, to another second
    if known[0] != seconds:
        known = _second = (seconds, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)))
    return f"{known[1]}.{nanoseconds // 1_000_000:03d}Z"
