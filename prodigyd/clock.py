"""The one timestamp format prodigy stores: ISO 8601 in UTC, to the millisecond, with `Z`.

Events, session records, DLQ entries and locks carry it, and `events.list`, `analytics`
and the trigger logs compare such timestamps as strings, which orders them only because
every one is written alike; so the client sends `--since` in it too (stdlib only: the
client imports this).
"""

from __future__ import annotations

from datetime import UTC, datetime


def iso(moment: datetime) -> str:
    """`moment` as stored: `2026-11-25T15:22:04.916Z` (a naive `moment` is local time)."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def now_iso() -> str:
    """Now, as stored."""
    return iso(datetime.now(UTC))
