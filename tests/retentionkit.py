"""Sessions made straight in the store, with a file of every kind a session leaves, and
aged by hand: for retention tests, where waiting days for a session to be old is no option.

`make_session` writes through the store's own modules (the journal, the event log, the
checkpoint journal's path, the agent and Claude log names), so the files are where the
daemon puts them; `age` moves a job's last change back, as time passing would.
"""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

from prodigyd import paths
from prodigyd.store import checkpoints, journal
from prodigyd.store import sessions as session_store
from prodigyd.store.events import EventLog
from prodigyd.store.sessions import SessionRecord, Status

REPO_ID = "repo-0123abcd"


def session_record(n: int, **fields: object) -> SessionRecord:
    """The record of a session numbered `n` in REPO_ID, as `jobs.submit` makes it."""
    session_id = f"workflow-{1_000_000 + n}-{n:06x}"
    return SessionRecord.model_validate(
        {
            "id": session_id,
            "workflow": "/w.yml",
            "workflow_name": "w",
            "workflow_sha256": "0",
            "repo": "/repo",
            "repo_id": REPO_ID,
            "original_branch": "main",
            "worktree": "",
            "branch": f"prodigy-{session_id}",
            "cwd": "/repo",
            **fields,
        }
    )


def make_session(n: int, status: Status = Status.COMPLETED, *, dlq_job: str | None = None) -> str:
    """A session numbered `n` with its record, events, checkpoint, agent log and Claude
    log; returns its id."""
    dlq_retry = {"job_id": dlq_job, "item_ids": ["item_0"]} if dlq_job else None
    record = session_record(n, status=status, dlq_retry=dlq_retry)
    session_id = record.id
    session_store.create(record, {})
    events = EventLog(REPO_ID, session_id)
    events.append({"seq": 1, "event_type": "session_queued", "session_id": session_id})
    events.close()
    for path in session_files(session_id)[1:]:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("{}\n")
    return session_id


def session_files(session_id: str) -> list[Path]:
    """The files `make_session` writes: the events folder first, then one file of each
    other kind."""
    return [
        paths.events_dir(REPO_ID, session_id),
        checkpoints.journal_file(session_id),
        paths.agent_logs_dir(session_id) / "item_0.attempt-1.log",
        paths.claude_logs_dir() / f"{paths.claude_log_prefix(session_id)}1-20260101_000000.jsonl",
    ]


def add_dead_letter(job_id: str) -> None:
    with journal.transaction() as conn:
        conn.execute(
            "INSERT INTO dlq (job_id, item_id, repo, entry, created_at, updated_at)"
            " VALUES (?, 'item_0', '/repo', '{}', 0, 0)",
            (job_id,),
        )


def age(session_id: str, days: float, home: Path | None = None) -> None:
    """Make the job's last change `days` older. With `home`, through a connection of its
    own (a running daemon holds the journal: WAL lets another writer in)."""
    sql = "UPDATE jobs SET updated_at = updated_at - ? WHERE id = ?"
    values = (days * 86400, session_id)
    if home is None:
        with journal.transaction() as conn:
            conn.execute(sql, values)
        return
    conn = sqlite3.connect(home / "journal.db", timeout=30)
    try:
        with conn:
            conn.execute(sql, values)
    finally:
        conn.close()


def days_ago(days: float) -> float:
    return time.time() - days * 86400
