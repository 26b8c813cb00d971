"""Trigger runs that were not started, kept as `trigger_dropped` events.

A trigger that does not run must say so where the user looks: `prodigyctl triggers ls`
shows the latest of them, and `prodigyctl events ls --type trigger_dropped` all of them.
They are ordinary events (store/events.py: one JSON object a line, flushed as written) of a
pseudo-session named FOLDER under the repository's events folder, one per repository:
every worktree of a repository (the user's linked ones, prodigy's own) writes to its main
worktree's, so `triggers ls` in any of them sees every drop.

Why a run is dropped (`why`):

- `prodigy_commit`: prodigy made the event (watch/triggers.py) and the trigger does not
  say `include_prodigy_commits`;
- `coalesced`: a run of the workflow on that branch was still queued; it takes this newer
  event instead (it starts from the branch's tip anyway), and the older event is dropped;
- `rate_limited`: the workflow's triggers started `triggers.max_runs` runs in the last
  `triggers.per_seconds` (config.toml);
- `queue_full`: `triggers.max_queued` triggered runs wait to start already.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from prodigyd import paths
from prodigyd.clock import now_iso
from prodigyd.errors import NoSpace
from prodigyd.eventtypes import EventType
from prodigyd.git.worktree import repository_of
from prodigyd.store.events import EventLog, log_files, read_events

log = logging.getLogger("prodigyd.watch")

FOLDER = "triggers"
#: How many drops `triggers ls` shows, newest last.
SHOWN = 50
#: How many daemon runs' logs a repository keeps: the older ones are deleted when a new
#: daemon run starts its own (the folder would otherwise grow by one file a start).
KEPT_RUNS = 10


def repository(worktree: Path) -> Path:
    """The main worktree of the repository `worktree` belongs to (itself when it is the
    main one): the one place a repository's drops are kept, whichever worktree fired."""
    return repository_of(worktree) or worktree


class DropLog:
    """Appends drops to each repository's log; one file per daemon run and repository."""

    def __init__(self) -> None:
        self._logs: dict[str, EventLog] = {}
        self._seq: dict[str, int] = {}

    def record(self, worktree: Path, why: str, message: str, **fields: Any) -> dict[str, Any]:
        """Keep one drop (and log it); a full disk loses it from the file, never the run."""
        log.info("trigger not run (%s): %s", why, message)
        return self.note(worktree, EventType.TRIGGER_DROPPED, message, why=why, **fields)

    def note(
        self, worktree: Path, event_type: EventType, message: str, **fields: Any
    ) -> dict[str, Any]:
        """Keep one event of the repository's triggers (a drop, a workflow file the watcher
        re-read: watch/refwatch.py) in the same log."""
        repo_id = paths.repo_id(repository(worktree))
        self._seq[repo_id] = seq = self._seq.get(repo_id, 0) + 1
        event = {
            "seq": seq,  # of this daemon run: the timestamps order the runs
            "timestamp": now_iso(),
            "event_type": event_type,
            "session_id": FOLDER,
            "message": message,
            "worktree": str(worktree),
            **fields,
        }
        events = self._logs.get(repo_id)
        if events is None:
            _prune(repo_id)
            events = self._logs[repo_id] = EventLog(repo_id, FOLDER)
        with contextlib.suppress(NoSpace):  # kept in memory; the next append writes it
            events.append(event)
        return event

    def close(self) -> None:
        for events in self._logs.values():
            events.close()


async def recent(worktree: Path, limit: int = SHOWN) -> list[dict[str, Any]]:
    """The repository's latest drops, oldest first; read in a worker thread."""
    repo_id = paths.repo_id(repository(worktree))
    drops = (
        e for e in read_events(repo_id, FOLDER) if e.get("event_type") == EventType.TRIGGER_DROPPED
    )
    return await asyncio.to_thread(_last, drops, limit)


#: Of the drops shown, at most this many `prodigy_commit` ones: each triggered run that
#: commits makes one (by design, not news), and they pushed the drops a user looks for
#: (rate_limited, queue_full) out of the SHOWN latest.
ROUTINE_SHOWN = 5


def _last(events: Iterator[dict[str, Any]], limit: int) -> list[dict[str, Any]]:
    routine: collections.deque[tuple[int, dict[str, Any]]] = collections.deque(
        maxlen=min(ROUTINE_SHOWN, limit)
    )
    others: collections.deque[tuple[int, dict[str, Any]]] = collections.deque(maxlen=limit)
    for number, event in enumerate(events):
        (routine if event.get("why") == "prodigy_commit" else others).append((number, event))
    kept = sorted([*routine, *others], key=lambda pair: pair[0])[-limit:]
    return [event for _, event in kept]


def _prune(repo_id: str) -> None:
    """Delete all but the newest KEPT_RUNS - 1 logs, before this run adds its own."""
    logs = log_files(repo_id, FOLDER)
    for old in logs[: max(0, len(logs) - (KEPT_RUNS - 1))]:
        with contextlib.suppress(OSError):
            old.unlink()
