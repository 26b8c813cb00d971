"""Journals set aside as unreadable, and what that means until the user has looked.

A journal SQLite cannot open as a database is moved aside, never deleted, and a fresh one
is started (store/journal.py `_open`), so the daemon keeps working. The fresh journal knows
none of the jobs before: the worktrees, branches and submitted workflows they left look
like nobody's. While a set-aside journal is there, nothing is collected for being nobody's
(pool.py's collector, retention.py's workflows): a user who restores the old journal finds
every failed session resumable. The daemon's status and `ps` / `sessions ls` say so on
every call, with what to do; deleting the set-aside file (once looked at) ends it.

Imported by the client (`ps`): standard library only.
"""

from __future__ import annotations

import os
from pathlib import Path

from prodigyd import paths

#: What `_open` adds to the journal's name (store/atomic.py `move_aside`).
CORRUPT = ".corrupt-"


def set_aside() -> list[Path]:
    """The journals moved aside (their -wal and -shm files not counted), oldest first."""
    journal = paths.journal_file()
    prefix = journal.name + CORRUPT
    try:
        names = os.listdir(journal.parent)
    except FileNotFoundError:
        return []
    found = [
        journal.parent / name
        for name in names
        if name.startswith(prefix) and not name.endswith(("-wal", "-shm"))
    ]
    return sorted(path for path in found if _holds_data(path))


def _holds_data(path: Path) -> bool:
    """An empty one is a move aside that failed after its name was made: no journal."""
    try:
        return os.stat(path).st_size > 0
    except OSError:
        return False


def problem() -> str | None:
    """The warning for a store with a set-aside journal; None without one."""
    found = set_aside()
    if not found:
        return None
    return (
        f"the job journal was unreadable and was set aside as {found[-1]}: jobs from before "
        "it are not listed, and the worktrees, branches and workflows they left are kept, "
        "not collected, while it is there. To get them back, stop the daemon and put a "
        f"working copy at {paths.journal_file()}; once you have looked, delete the set-aside "
        "file to end this."
    )
