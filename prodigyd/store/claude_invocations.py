"""Claude invocations: one row per run of the `claude` CLI, in `journal.db`.

A row is written when the invocation ends (claude/invocation.py makes the record, the
session stores it), in one transaction, so a record is there whole or not at all; like a
status change it survives a crash of the daemon (store/journal.py, `transaction`).
`sessions show` lists a session's records, numbering each step's attempts in the order they
ended; `analytics --by tool|model` sums them with SQLite's JSON functions (no record is
parsed in Python, so a summary over many sessions stays cheap).

On a full disk a record is kept in memory (`of_session` shows it all the same) and written
by the next `add` that fits or by `flush_unsaved` (the daemon's mender), oldest first, as
session records are (store/sessions.py).
"""

from __future__ import annotations

import json
import sqlite3
from typing import Any

from prodigyd.errors import NoSpace
from prodigyd.store import journal

#: Records the journal could not take yet (a full disk): (session id, record), oldest first.
_unsaved: list[tuple[str, dict[str, Any]]] = []


def add(session_id: str, record: dict[str, Any]) -> None:
    """Store one invocation's record (it has `step` and `started_at`); never raises NoSpace."""
    _unsaved.append((session_id, record))
    flush_unsaved()


def flush_unsaved() -> bool:
    """Write the kept records, oldest first; True when none is left."""
    while _unsaved:
        session_id, record = _unsaved[0]
        try:
            with journal.transaction(durable=False) as conn:
                conn.execute(
                    "INSERT INTO claude_invocations (session_id, step, started_at, record)"
                    " VALUES (?, ?, ?, ?)",
                    (
                        session_id,
                        record["step"],
                        record["started_at"],
                        json.dumps(record, ensure_ascii=False, separators=(",", ":")),
                    ),
                )
        except NoSpace:
            return False
        _unsaved.pop(0)
    return True


def pending() -> bool:
    """Whether a record waits for room on the disk."""
    return bool(_unsaved)


def of_session(session_id: str) -> list[dict[str, Any]]:
    """The session's invocations in the order they ended, each with `attempt`: 1 for the
    first run of its step, 2 for the next (a retry, a resumed step, a map item's retry)."""
    rows = journal.connection().execute(
        "SELECT record FROM claude_invocations WHERE session_id = ? ORDER BY seq", (session_id,)
    )
    records = [json.loads(row["record"]) for row in rows]
    records += [dict(record) for sid, record in _unsaved if sid == session_id]
    runs: dict[str, int] = {}
    for record in records:
        runs[record["step"]] = runs.get(record["step"], 0) + 1
        record["attempt"] = runs[record["step"]]
    return records


#: The sums every row of `totals` has: `$.x` of each record, added up.
_SUMS = """
    COUNT(*) AS invocations,
    COUNT(DISTINCT session_id) AS sessions,
    SUM(json_extract(record, '$.status') = 'succeeded') AS succeeded,
    SUM(json_extract(record, '$.num_turns')) AS turns,
    SUM(json_extract(record, '$.input_tokens')) AS input_tokens,
    SUM(json_extract(record, '$.output_tokens')) AS output_tokens,
    SUM(json_extract(record, '$.cache_read_tokens')) AS cache_read_tokens,
    SUM(json_extract(record, '$.cache_creation_tokens')) AS cache_creation_tokens,
    SUM(json_extract(record, '$.cost_usd')) AS cost_usd,
    SUM(json_extract(record, '$.duration_seconds')) AS duration_seconds
"""
_SINCE = "(? IS NULL OR run.started_at >= ?)"
#: Every tool use of a record: SUM over its `tool_uses` object.
_ALL_USES = "(SELECT COALESCE(SUM(value), 0) FROM json_each(run.record, '$.tool_uses'))"

_BY_MODEL = f"""
SELECT COALESCE(json_extract(record, '$.model'), '') AS key, SUM({_ALL_USES}) AS tool_uses,
{_SUMS} FROM claude_invocations AS run WHERE {_SINCE} GROUP BY key
"""
#: An invocation counts once under each tool it used, and under '' when it used none.
_BY_TOOL = f"""
SELECT COALESCE(tool.key, '') AS key, COALESCE(SUM(tool.value), 0) AS tool_uses,
{_SUMS} FROM claude_invocations AS run LEFT JOIN json_each(run.record, '$.tool_uses') AS tool
WHERE {_SINCE} GROUP BY key
"""
_TOTAL = f"""
SELECT SUM({_ALL_USES}) AS tool_uses, {_SUMS} FROM claude_invocations AS run WHERE {_SINCE}
"""


def totals(group_by: str, since: str | None) -> tuple[list[sqlite3.Row], sqlite3.Row]:
    """Per model or per tool (`group_by`), and over all: the invocations started at or after
    `since` (ISO 8601 as records store it), or all, summed (see `_SUMS`)."""
    conn = journal.connection()
    query = _BY_TOOL if group_by == "tool" else _BY_MODEL
    rows = conn.execute(query, (since, since)).fetchall()
    return rows, conn.execute(_TOTAL, (since, since)).fetchone()
