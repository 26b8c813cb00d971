"""Sessions removed for good by the retention policy (prodigyd/retention.py), crash-safe.

A session is its row in `jobs` (what `sessions ls|show`, `resume` and `merge` read) and
files in several folders: its events, checkpoints, map agents' logs, Claude stream logs
and lock. The row goes first, in one transaction that also leaves a tombstone in the
`removals` table (the id and repository id that name the files) and hands the worktrees
the pool kept for it to the collector. The files go after, the tombstone last. So a
session is whole or gone, never half: a crash in between leaves only files no session owns
and the tombstone naming them, which the next pass (the daemon runs one at start) deletes.

A session with dead letters is never removed (its DLQ entries would lose their job):
`remove` checks it in the same statement, whatever the caller planned.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import NamedTuple

from prodigyd.store import journal
from prodigyd.store import worktrees as pool_rows


class Job(NamedTuple):
    """What retention needs to know of a job, read from its row without parsing the
    record in Python (SQLite's JSON functions, as analytics does)."""

    id: str
    status: str
    changed: float  # the row's last change, seconds since the epoch
    repo_id: str
    workflow: str  # the workflow file's path
    workflow_name: str
    updated_at: str  # the record's last change, as shown (ISO 8601)
    dlq_job: str | None  # a `dlq retry` job: the job whose dead letters it re-runs


_JOBS = """
SELECT id, status, updated_at AS changed,
       json_extract(record, '$.repo_id') AS repo_id,
       json_extract(record, '$.workflow') AS workflow,
       json_extract(record, '$.workflow_name') AS workflow_name,
       json_extract(record, '$.updated_at') AS shown,
       json_extract(record, '$.dlq_retry.job_id') AS dlq_job
FROM jobs
"""


def jobs() -> list[Job]:
    return [
        Job(
            id=row["id"],
            status=row["status"],
            changed=float(row["changed"]),
            repo_id=str(row["repo_id"] or ""),
            workflow=str(row["workflow"] or ""),
            workflow_name=str(row["workflow_name"] or ""),
            updated_at=str(row["shown"] or ""),
            dlq_job=row["dlq_job"],
        )
        for row in journal.connection().execute(_JOBS)
    ]


def dead_letter_jobs() -> set[str]:
    """The jobs that have entries in the dead-letter queue."""
    return {row[0] for row in journal.connection().execute("SELECT DISTINCT job_id FROM dlq")}


def remove(sessions: Iterable[tuple[str, str]]) -> list[str]:
    """Remove the rows of `sessions` (id, repository id) in one durable transaction, each
    with its tombstone; returns the ids removed (one with dead letters, or gone already,
    is not). The files are the caller's to delete next (then `done`)."""
    removed = []
    now = time.time()
    with journal.transaction() as conn:
        for session_id, repo_id in sessions:
            gone = conn.execute(
                "DELETE FROM jobs WHERE id = ? AND NOT EXISTS"
                " (SELECT 1 FROM dlq WHERE dlq.job_id = jobs.id)",
                (session_id,),
            ).rowcount
            if not gone:
                continue
            # its Claude invocations go with it: `analytics` covers the sessions kept
            conn.execute("DELETE FROM claude_invocations WHERE session_id = ?", (session_id,))
            conn.execute(
                "INSERT OR REPLACE INTO removals (session_id, repo_id, removed_at) VALUES (?,?,?)",
                (session_id, repo_id, now),
            )
            pool_rows.hand_back_kept(conn, session_id)
            removed.append(session_id)
    if removed:
        journal.scrub()  # a failed session's row held its environment: not in the WAL either
    return removed


def pending() -> list[tuple[str, str]]:
    """Tombstones: removed sessions (id, repository id) whose files may still be there."""
    rows = journal.connection().execute("SELECT session_id, repo_id FROM removals")
    return [(row[0], row[1]) for row in rows]


def done(session_ids: Iterable[str]) -> None:
    """Forget tombstones once their files are deleted."""
    ids = list(session_ids)
    if not ids:
        return
    marks = ", ".join("?" for _ in ids)
    with journal.transaction(durable=False) as conn:
        conn.execute(f"DELETE FROM removals WHERE session_id IN ({marks})", ids)
