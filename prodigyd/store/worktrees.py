"""The worktree pool's bookkeeping: one row per worktree prodigy made, in `journal.db`.

A row is written *before* the git work it describes (a new worktree is registered before
`git worktree add` runs, a slot is marked busy before it is checked out), so after a daemon
crash
every worktree on disk is either registered, and reclaimed or re-adopted by its owner, or
unregistered and removed by the garbage collector as an orphan: none is ever forgotten.
The rows are committed without an fsync of their own (journal.transaction durable=False):
after a power loss a row may be older than the disk, and the collector's rules (a folder
no row owns is removed, an owner re-adopts its worktree) put that right.

States:
    idle   pooled, clean, detached: free for the next session or agent
    busy   in use by `owner` (a session id, or `<session>/<item>` for a map agent), or
           being made as a spare slot (owner `spare`, no session: pool.py)
    kept   kept for a person to look at: a failed session (resume needs it), a failed
           agent with `keep_failed`, a named worktree between runs
"""

from __future__ import annotations

import sqlite3
import time
from dataclasses import dataclass, fields
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path

from prodigyd.clock import iso
from prodigyd.store import journal

IDLE, BUSY, KEPT = "idle", "busy", "kept"


class Strategy(StrEnum):
    """How a worktree is allocated and what survives between two users of a slot."""

    ON_DEMAND = "on_demand"  # a fresh `git worktree add` each time, removed after use
    POOLED = "pooled"  # reused, reset to pristine (ignored files removed too)
    REUSE = "reuse"  # reused, ignored files (build caches) kept; same workflow preferred
    DEDICATED = "dedicated"  # like reuse, but a slot only ever serves the workflow it first did


@dataclass(frozen=True)
class WorktreeRow:
    path: str
    repo: str
    state: str
    owner: str | None
    session_id: str | None
    affinity: str | None  # the workflow name the slot last served
    name: str | None  # a named worktree (`worktree: NAME` in a workflow)
    strategy: str
    created_at: float
    last_used_at: float
    uses: int

    def as_dict(self) -> dict[str, object]:
        return {
            "path": self.path,
            "repo": self.repo,
            "state": self.state,
            "owner": self.owner,
            "session_id": self.session_id,
            "workflow": self.affinity,
            "name": self.name,
            "strategy": self.strategy,
            "created_at": _stamp(self.created_at),  # as every timestamp clients see
            "last_used_at": _stamp(self.last_used_at),
            "uses": self.uses,
        }


def _stamp(epoch: float) -> str:
    return iso(datetime.fromtimestamp(epoch, UTC))


#: The columns of a row, in WorktreeRow's order: rows are built by position (a map phase
#: reads the idle slots at every acquire; by name costs twice as much).
_COLUMNS = ", ".join(column.name for column in fields(WorktreeRow))
_SELECT = f"SELECT {_COLUMNS} FROM worktrees"


def _row(row: sqlite3.Row | None) -> WorktreeRow | None:
    return None if row is None else WorktreeRow(*row)


def _rows(cursor: sqlite3.Cursor) -> list[WorktreeRow]:
    return [WorktreeRow(*row) for row in cursor]


def get(path: Path | str) -> WorktreeRow | None:
    conn = journal.connection()
    return _row(conn.execute(f"{_SELECT} WHERE path = ?", (str(path),)).fetchone())


def owned_by(owner: str) -> WorktreeRow | None:
    """The worktree `owner` holds (busy or kept), if any: how a resumed owner finds its own."""
    row = journal.connection().execute(
        f"{_SELECT} WHERE owner = ? AND state != 'idle' LIMIT 1", (owner,)
    )
    return _row(row.fetchone())


def named(repo: Path, name: str) -> WorktreeRow | None:
    row = journal.connection().execute(f"{_SELECT} WHERE repo = ? AND name = ?", (str(repo), name))
    return _row(row.fetchone())


def idle_in(repo: Path) -> list[WorktreeRow]:
    """Idle slots of `repo`, most recently used first (the warmest caches)."""
    rows = journal.connection().execute(
        f"{_SELECT} WHERE repo = ? AND state = 'idle' AND name IS NULL ORDER BY last_used_at DESC",
        (str(repo),),
    )
    return _rows(rows)


def idle_count(repo: Path) -> int:
    """How many `idle_in` would list."""
    (count,) = (
        journal.connection()
        .execute(
            "SELECT count(*) FROM worktrees WHERE repo = ? AND state = 'idle' AND name IS NULL",
            (str(repo),),
        )
        .fetchone()
    )
    return int(count)


def all_rows(repo: Path | None = None) -> list[WorktreeRow]:
    conn = journal.connection()
    if repo is None:
        rows = conn.execute(f"{_SELECT} ORDER BY repo, created_at")
    else:
        rows = conn.execute(f"{_SELECT} WHERE repo = ? ORDER BY created_at", (str(repo),))
    return _rows(rows)


def register(
    path: Path,
    repo: Path,
    *,
    owner: str,
    session_id: str | None,
    affinity: str | None,
    strategy: Strategy,
    name: str | None = None,
    uses: int = 1,
) -> None:
    """Record a worktree that is about to be created, already busy for `owner` (`uses`: 0
    for a spare slot, made before anyone needs it)."""
    now = time.time()
    with journal.transaction(durable=False) as conn:
        conn.execute(
            "INSERT OR REPLACE INTO worktrees (path, repo, state, owner, session_id, affinity,"
            " name, strategy, created_at, last_used_at, uses) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
            (
                str(path),
                str(repo),
                BUSY,
                owner,
                session_id,
                affinity,
                name,
                strategy.value,
                now,
                now,
                uses,
            ),
        )


def claim(path: str, *, owner: str, session_id: str, affinity: str | None) -> bool:
    """Mark a slot busy for `owner` (durably, before it is checked out); whether the pool
    has it (a row to mark)."""
    with journal.transaction(durable=False) as conn:
        done = conn.execute(
            "UPDATE worktrees SET state = 'busy', owner = ?, session_id = ?, affinity = ?,"
            " last_used_at = ?, uses = uses + 1 WHERE path = ?",
            (owner, session_id, affinity, time.time(), path),
        )
    return done.rowcount > 0


def set_state(path: Path | str, state: str) -> None:
    """Move a worktree to `state`; `idle` also forgets its owner."""
    with journal.transaction(durable=False) as conn:
        if state == IDLE:
            conn.execute(
                "UPDATE worktrees SET state = 'idle', owner = NULL, session_id = NULL,"
                " last_used_at = ? WHERE path = ?",
                (time.time(), str(path)),
            )
        else:
            conn.execute("UPDATE worktrees SET state = ? WHERE path = ?", (state, str(path)))


def forget(path: Path | str) -> None:
    with journal.transaction(durable=False) as conn:
        conn.execute("DELETE FROM worktrees WHERE path = ?", (str(path),))


def hand_back_kept(conn: sqlite3.Connection, session_id: str) -> None:
    """Inside the transaction that removes `session_id` for good (store/removals.py): its
    kept worktrees (not named ones) become busy for an owner that is gone, which the
    collector reclaims as it does a cancelled session's (pool.py: leftovers committed to
    the branch, then pooled again)."""
    conn.execute(
        "UPDATE worktrees SET state = 'busy' WHERE session_id = ? AND state = 'kept'"
        " AND name IS NULL",
        (session_id,),
    )
