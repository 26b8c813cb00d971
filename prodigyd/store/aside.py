"""Journals set aside as unreadable or found lost, and what that means until the user has looked.

A journal SQLite cannot open as a database is moved aside, never deleted, and a fresh one
is started (store/journal.py `_open`), so the daemon keeps working. A journal found missing
or empty while the store holds what earlier jobs left (their session folders, worktrees)
was lost: a fresh one is started too, and a note of what the store held is left where a
set-aside journal would be (`note_lost`). Either way the fresh journal knows none of the
jobs before: the worktrees, branches and submitted workflows they left look like nobody's.
While a set-aside journal or a note is there, nothing is collected for being nobody's
(pool.py's collector, retention.py's workflows): a user who restores the old journal finds
every failed session resumable. The daemon's status and `ps` / `sessions ls` say so on
every call, with what to do; deleting the set-aside file or the note (once looked at)
ends it.

Imported by the client (`ps`): its reads use the standard library only; `note_lost`, the
daemon's, imports what it writes with when it is called.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from prodigyd import paths

#: What `_open` adds to the name of a journal it sets aside (store/atomic.py `move_aside`).
CORRUPT = ".corrupt-"
#: What `note_lost` adds to the journal's name for its note.
LOST = ".lost-"
#: What `note_unknown` adds to the journal's name for its note.
UNKNOWN = ".unknown-"


def set_aside() -> list[Path]:
    """The journals set aside and the notes of lost ones (their -wal and -shm files not
    counted), oldest first: while there is one, what no job of the journal owns may be an
    earlier job's."""
    journal = paths.journal_file()
    kinds = (journal.name + CORRUPT, journal.name + LOST, journal.name + UNKNOWN)
    try:
        names = os.listdir(journal.parent)
    except FileNotFoundError:
        return []
    found = [
        journal.parent / name
        for name in names
        if name.startswith(kinds) and not name.endswith(("-wal", "-shm"))
    ]
    return sorted((path for path in found if _holds_data(path)), key=_stamp)


def _stamp(path: Path) -> str:
    """When a set-aside journal or a note was made: its name after the kind (the local time,
    then nanoseconds, as store/atomic.py `create_unique` writes them), so both sort alike."""
    return path.name.split("-", 1)[1]


def _holds_data(path: Path) -> bool:
    """An empty one is a move aside (or a note) that failed after its name was made."""
    try:
        return os.stat(path).st_size > 0
    except OSError:
        return False


def problem() -> str | None:
    """The warning for a store with a set-aside journal or a lost one's note; None without."""
    found = set_aside()
    if not found:
        return None
    newest, journal = found[-1], paths.journal_file()
    if newest.name.startswith(journal.name + UNKNOWN):
        return (
            f"the job journal {journal} lists no job of sessions whose folders the store holds "
            f"({newest} lists them): it lost their records (a damaged journal.db-wal, whose "
            "commits SQLite drops without a word, or an older copy put back). Their worktrees, "
            "branches and workflows are kept, not collected, while that file is there. If you "
            f"have a newer copy of the journal, stop the daemon and put it at {journal}; else, "
            "once you have kept what you need, delete the folders it lists, then it."
        )
    if newest.name.startswith(journal.name + LOST):
        return (
            f"the job journal {journal} was missing or empty when prodigyd started, though the "
            f"store held what earlier jobs left ({newest} lists it): those jobs are not listed, "
            "and the worktrees, branches and workflows they left are kept, not collected, "
            "while that file is there. If you have a copy of the journal, stop the daemon and "
            f"put it at {journal}; once you have looked at what is held (`prodigyctl worktree "
            f"gc --dry-run` lists the worktrees) and kept what you need, delete {newest} to "
            "end this."
        )
    return (
        f"the job journal was unreadable and was set aside as {newest}: jobs from before "
        "it are not listed, and the worktrees, branches and workflows they left are kept, "
        "not collected, while it is there. To get them back, stop the daemon and put a "
        f"working copy at {journal}; once you have looked, delete the set-aside "
        "file to end this."
    )


def note_lost() -> Path | None:
    """For a journal just found new (missing or empty): when the store holds what earlier
    jobs left and nothing set aside explains it, write a note of it beside the journal, so
    that nothing is collected for being nobody's until the user has looked. Called before
    the fresh journal's tables are made: a crash in between finds it new again. Returns
    the note, or None when none was needed."""
    if set_aside():
        return None  # held already, and the user already told what to do
    sessions, worktrees = _earlier_jobs()
    if not sessions and not worktrees:
        return None
    return _write_note(LOST, _note_text(paths.journal_file(), sessions, worktrees))


def note_unknown(sessions: list[str]) -> Path | None:
    """For sessions whose folders the store holds and the journal lists no job of (found
    by retention's walk of the store, retention.py): a note of them beside the journal, as
    `note_lost` leaves one. None, nothing written, when a set-aside journal or a note is
    there already: the user is told, and nothing is collected, either way."""
    if set_aside():
        return None
    journal = paths.journal_file()
    listed = "".join(f"  {session}\n" for session in sessions)
    text = (
        f"prodigyd (pid {os.getpid()}) found folders of sessions the job journal {journal}\n"
        f"does not list ({len(sessions)}, in {paths.state_root()} and {paths.events_root()}):\n"
        f"{listed}\n"
        "Their jobs were acknowledged once; the journal lost them (a damaged -wal file, or an\n"
        "older copy put back). While this file is here, prodigyd collects no worktree, branch\n"
        "or workflow that no job of its journal owns. Put a newer copy of the journal back if\n"
        "you have one (stop the daemon first); else, once you have kept what you need (their\n"
        "events, checkpoints, worktrees), delete those folders, then this file.\n"
    )
    return _write_note(UNKNOWN, text)


def _write_note(kind: str, text: str) -> Path:
    """A note of `kind` (LOST, UNKNOWN) beside the journal, durable before it is told of
    in the daemon's log (with what `problem` says every `ps` from now on)."""
    from prodigyd.store.atomic import write_unique

    journal = paths.journal_file()
    note = write_unique(journal.parent, journal.name + kind.rstrip("-"), text.encode())
    logging.getLogger("prodigyd.journal").error("%s", problem())
    return note


def _earlier_jobs() -> tuple[set[str], list[Path]]:
    """What the store holds of jobs a journal recorded: the ids of the sessions with a
    folder (checkpoints, events), and the worktrees of the pool."""
    from prodigyd.pool import worktree_folders

    return session_folders(), worktree_folders()


def session_folders() -> set[str]:
    """The ids of the sessions with a folder of checkpoints or events in the store."""
    from prodigyd.files import subfolders
    from prodigyd.store.ids import KIND_WORDS

    folders = subfolders(paths.state_root())
    for repo in subfolders(paths.events_root()):
        folders += subfolders(repo)
    return {folder.name for folder in folders if folder.name.startswith(KIND_WORDS)}


def _note_text(journal: Path, sessions: set[str], worktrees: list[Path]) -> str:
    """The note: what was found, and what it means."""
    listed = "".join(f"  {path}\n" for path in worktrees) or "  (none)\n"
    return (
        f"prodigyd (pid {os.getpid()}) found the job journal {journal} missing or empty,\n"
        "while the store held what earlier jobs left: folders of sessions it no longer\n"
        f"lists ({len(sessions)} in {paths.state_root()} and {paths.events_root()}), and\n"
        "these worktrees:\n"
        f"{listed}\n"
        "While this file is here, prodigyd collects no worktree, branch or workflow that no\n"
        "job of its journal owns. Put a copy of the old journal back if you have one (stop\n"
        "the daemon first); once you have looked and kept what you need, delete this file.\n"
        'See prodigyd(8), "A lost or damaged journal".\n'
    )
