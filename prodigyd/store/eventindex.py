"""The index of the event logs: one row per session folder under `events/`, with the key of
the newest event its logs held when last read, so that `events ls` across all sessions
reads the sessions newest first and stops once no unread one can hold a newer event
(api/events.py), instead of reading every log ever written.

A row is *open* (`newest` NULL: read it every time) from the moment a log starts writing
into its folder until a listing has read it with no log writing to it; then *closed* with
its newest event's timestamp and seq. A closed row is right for as long as nothing writes
to the folder, and every writer opens the row again first: a new job's row is opened in the
commit that stores the job (journal.insert), and `EventLog` calls `opening` before the
first line of any other log file it makes, in a journal write that does not wait for the
disk (a resumed job's, a merge's: once per log file, never per event). Each opening
bumps `gen`, and a listing closes a row only when `gen` is still what it read, so a log
that starts writing while a listing reads cannot be hidden by it.

The rows live in the job journal (store/journal.py): written by the daemon alone, and
lost with it only when the journal is (a fresh journal has no `event_logs_built` row, and
the next listing builds the index again from the folders). Folders put under `events/`
by hand, not by a log, are not in the index: the all-sessions listing does not see them
(`events ls --session ID` reads the folder itself).
"""

from __future__ import annotations

import logging
import sqlite3
from collections import Counter
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import NamedTuple

from prodigyd import paths
from prodigyd.errors import NoSpace
from prodigyd.store import journal

log = logging.getLogger("prodigyd.events")

#: The folders of the logs this process writes to and has not closed: their rows stay open
#: whatever a listing reads (a line may come at any time).
_writing: Counter[str] = Counter()
#: Folders whose row could not be opened (a journal error other than a full disk), with
#: their (repo id, session id): read by every listing for the process's life.
_unindexed: dict[str, tuple[str, str]] = {}


class Row(NamedTuple):
    repo_id: str
    session_id: str
    gen: int
    newest: str | None  # the newest event's timestamp; None: open
    newest_seq: int


class Closing(NamedTuple):
    """What a listing learnt of a row it read: close it with this key (or drop it, when
    its folder is gone), unless a log opened it again meanwhile (`gen`)."""

    row: Row
    newest: tuple[str, int] | None  # None: the folder is gone


def opening(repo_id: str, session_id: str) -> None:
    """Before a log writes its first line: the row is open, and stays so until `closed`.
    NoSpace when the journal cannot take it (the caller keeps its lines waiting)."""
    folder = str(paths.events_dir(repo_id, session_id))
    try:
        with journal.transaction(durable=False) as conn:
            conn.execute(journal.OPEN_EVENT_LOG, (session_id, repo_id))
    except sqlite3.Error as exc:  # the log is written all the same; listings read it always
        log.warning("event index: %s/%s stays unindexed (%s)", repo_id, session_id, exc)
        _unindexed[folder] = (repo_id, session_id)
    _writing[folder] += 1


def opened(repo_id: str, session_id: str) -> None:
    """`opening` for a log whose row was opened already, with its job's journal row (the
    submission's commit: journal.insert): it stays open until `closed`."""
    _writing[str(paths.events_dir(repo_id, session_id))] += 1


def closed(repo_id: str, session_id: str) -> None:
    """A log that `opening` opened the row for was closed: no more lines from it."""
    folder = str(paths.events_dir(repo_id, session_id))
    _writing[folder] -= 1
    if _writing[folder] <= 0:
        del _writing[folder]


def writing(folder: str) -> bool:
    """Whether a log of this process writes into `folder` (its path as a string)."""
    return folder in _writing or folder in _unindexed


def unindexed() -> list[tuple[str, str]]:
    """(repo id, session id) of the folders of this store whose row could not be opened."""
    root = paths.events_root()
    return sorted(key for folder, key in _unindexed.items() if Path(folder).parent.parent == root)


def ensure_built() -> None:
    """Index every folder under `events/` once per journal: a store written before the
    index, or whose journal was started afresh. The rows are made open (read at the next
    listing). sqlite3.Error / NoSpace when the journal cannot take them."""
    conn = journal.connection()
    if conn.execute("SELECT 1 FROM event_logs_built").fetchone() is not None:
        return
    with journal.transaction(durable=False) as conn:
        conn.executemany(
            "INSERT OR IGNORE INTO event_logs (session_id, repo_id) VALUES (?, ?)",
            ((session_id, repo_id) for repo_id, session_id in _folders()),
        )
        conn.execute("INSERT INTO event_logs_built (built) VALUES (1)")


def _folders() -> Iterator[tuple[str, str]]:
    """(repo id, session id) of every entry of every repository folder under `events/`."""
    root = paths.events_root()
    if not root.is_dir():
        return
    for repo_dir in root.iterdir():
        if repo_dir.is_dir():
            for entry in repo_dir.iterdir():
                yield repo_dir.name, entry.name


_COLUMNS = "repo_id, session_id, gen, newest, newest_seq"


def open_rows() -> list[Row]:
    sql = f"SELECT {_COLUMNS} FROM event_logs WHERE newest IS NULL"
    return [Row(*row) for row in journal.connection().execute(sql)]


def closed_rows() -> Iterator[Row]:
    """The closed rows, newest event first: by timestamp, seq, then repository and session
    id (the order a full listing breaks ties in). Read lazily: a listing stops early."""
    sql = (
        f"SELECT {_COLUMNS} FROM event_logs WHERE newest IS NOT NULL"
        " ORDER BY newest DESC, newest_seq DESC, repo_id DESC, session_id DESC"
    )
    for row in journal.connection().execute(sql):
        yield Row(*row)


def repos_of(session_id: str) -> list[str]:
    """The repository folders the index has a folder of `session_id` in."""
    sql = "SELECT repo_id FROM event_logs WHERE session_id = ?"
    return [row[0] for row in journal.connection().execute(sql, (session_id,))]


def close(closings: Iterable[Closing]) -> None:
    """Record what a listing read; best effort (a read must not fail for a cache): what is
    not recorded stays open and is read again next time."""
    todo = list(closings)
    if not todo:
        return
    try:
        with journal.transaction(durable=False) as conn:
            for row, newest in todo:
                where = "WHERE session_id = ? AND repo_id = ? AND gen = ?"
                key = (row.session_id, row.repo_id, row.gen)
                if newest is None:
                    conn.execute(f"DELETE FROM event_logs {where}", key)
                else:
                    conn.execute(
                        f"UPDATE event_logs SET newest = ?, newest_seq = ? {where}", (*newest, *key)
                    )
    except (NoSpace, sqlite3.Error) as exc:
        log.info("event index: %d rows left open (%s)", len(todo), exc)
