"""The per-session event log: one JSON object a line under `events/<repo-id>/<session-id>/`.

Each record carries `seq` (1-based, per session), `timestamp`, `event_type`, `session_id` and
the event's own fields. A session's events (EventHub, `append_soon`) are written a turn of the
event loop after the turn that made them, all of that turn in one write, once the task that
made them has gone on: a step's `step_completed` and the next step's `step_started` reach the
file while the next command runs, instead of before it starts, and so does a session's first
write, which makes its folder and file (~0.7 ms, a third of a job's start). `tail -f` and a
reconnecting client see them a moment later; followers get them at once from the hub. The
checkpoint, not this log, is the durable record of progress, so the log is not fsync'd (a
crash may lose the last few lines, never a completed step).
Before the first line of each file, the folder's row in the event index is opened
(store/eventindex.py: a new job's with its journal row; else one journal write that does not
wait for the disk, per file).

On a full disk the lines that do not fit wait in memory, in order, and go to the file with
the next append that fits (or `flush`, which the daemon's mender calls once there is
room): followers still get every event at once, and the log gets them late, not never.
While the disk is known to be full (store/space.py) an append does not try again: each
try writes every waiting line, and a map phase appends thousands while the disk is full.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections import deque
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from prodigyd import jsonl, paths
from prodigyd.errors import NoSpace
from prodigyd.store import eventindex, space
from prodigyd.store.atomic import append_all, ensure_dir

log = logging.getLogger("prodigyd.events")

#: Lines kept in memory while the disk is full; beyond this the oldest are dropped (and
#: counted in the log): a map phase must not grow the daemon without bound.
MAX_PENDING_LINES = 100_000


class EventLog:
    """Append-only writer for one session's events."""

    def __init__(self, repo_id: str, session_id: str, *, opened: bool = False) -> None:
        """`opened`: the log of a job just stored, whose row in the event index was opened
        with it (store/eventindex.py): its first line needs no journal write."""
        folder = paths.events_dir(repo_id, session_id)  # made at the first append
        self.repo_id, self.session_id = repo_id, session_id
        self.indexed = opened  # its row in the event index is open, for it
        if opened:
            eventindex.opened(repo_id, session_id)
        self.path = folder / f"events-{time.strftime('%Y%m%d_%H%M%S')}-{os.getpid()}.jsonl"
        self._fd: int | None = None
        # lines not written yet, oldest first: ones that did not fit, and events of this turn
        # of the loop (`append_soon`), encoded when written
        self.pending: deque[bytes | dict[str, Any]] = deque()
        self.dropped = 0
        self.held: bytes | None = None  # the first line, written with the next (see hold)
        self._soon: asyncio.Handle | None = None  # the write of this turn's events
        self._older = False  # lines waited already when this turn's events were added

    def hold(self, record: dict[str, Any]) -> None:
        """Keep the log's first line (a new session's `session_queued`) to write with the
        next line, or at `flush`/`close`, not now: a submission's acknowledgement then
        waits for one durable commit (its journal row), not also for a folder and a file
        made. The line is no less durable for it: it is made again from the journal row
        when the daemon stops before writing it (eventhub.py, `queued_event`)."""
        self.held = jsonl.encode(record)

    def append(self, record: dict[str, Any]) -> None:
        """Write the event, after any that are waiting; NoSpace when they do not fit (the
        event then waits too), or when lines wait already and the disk is still known to
        be full (then it waits untried: see the module docstring)."""
        waiting = self._add(jsonl.encode(record))
        problem = space.current()
        if waiting and problem is not None:
            raise NoSpace(problem.message, path=str(self.path), hint=problem.hint)
        self.flush()

    def append_soon(self, record: dict[str, Any]) -> None:
        """Write the event in the event loop's next turn but one, with the others of this
        turn (see the module docstring); without a loop, now (`append`). The record must
        not change afterwards (a hub's events never do: its followers hold them too)."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            self.append(record)
            return
        waiting = self._add(record)
        if self._soon is None:
            self._older = waiting
            self._soon = loop.call_soon(self._write_after_next_turn, loop)

    def _write_after_next_turn(self, loop: asyncio.AbstractEventLoop) -> None:
        """One turn more: the task that made the events yields to let its followers be told
        (StepRunner.run, before a spawn that holds the loop) and is then ready behind this
        callback, not before it; waiting a turn puts the write behind that task's next
        stretch too, so it runs while the command it spawned runs. Measured in an
        interleaved A/B (2026-12-04, 80 jobs a side): submit -> `step_started` 1.3-1.4 ms
        and submit -> `session_finished` 1.6-1.8 ms sooner, on either loop."""
        self._soon = loop.call_soon(self._write_soon)

    def _add(self, line: bytes | dict[str, Any]) -> bool:
        """Queue `line` last; whether lines were waiting already."""
        if len(self.pending) >= MAX_PENDING_LINES:
            self.pending.popleft()
            self.dropped += 1
        waiting = bool(self.pending)
        self.pending.append(line)
        return waiting

    def _write_soon(self) -> None:
        self._soon = None
        if self._older and space.current() is not None:
            return  # the disk is known to be full: they wait untried, like `append`'s
        try:
            self.flush()
        except NoSpace:
            pass  # kept in order for the next append or the mender (store/space.py logs it)
        except OSError:
            log.exception("cannot write event log %s", self.path)

    def flush(self) -> None:
        """Write the waiting lines; NoSpace (and they keep waiting) when they do not fit."""
        if self.held is not None:
            self.pending.appendleft(self.held)
            self.held = None
        if not self.pending:
            return
        if self._fd is None:
            if not self.indexed:  # before the first line: listings read the folder again
                eventindex.opening(self.repo_id, self.session_id)
                self.indexed = True
            ensure_dir(self.path.parent)
            with space.guard(self.path):
                self._fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        data = b"".join(self._encoded())
        append_all(self._fd, data, self.path)
        self.pending.clear()
        if self.dropped:
            log.warning("%s: %d events were lost to a full disk", self.path, self.dropped)
            self.dropped = 0

    def _encoded(self) -> Iterator[bytes]:
        """The waiting lines as bytes. An event that is not JSON (a bug: a value of no JSON
        type, a lone surrogate) is dropped with an error in the daemon log, alone: it must
        not hold up the events after it, nor the log's close at a daemon stop."""
        for line in self.pending:
            if isinstance(line, bytes):
                yield line
                continue
            try:
                yield jsonl.encode(line)
            except (TypeError, ValueError, RecursionError) as exc:
                log.error(
                    "%s: dropped an event that is not JSON (%s): %.300r", self.path, exc, line
                )

    def close(self) -> None:
        """Write what waits (once more) and close; what still does not fit is lost, and
        the daemon log says how much (the daemon closes a log only when it stops)."""
        if self._soon is not None:
            self._soon.cancel()
            self._soon = None
        try:
            self.flush()
        except (NoSpace, OSError) as exc:
            lost = len(self.pending) + self.dropped
            log.warning("%s: %d events were lost to a full disk (%s)", self.path, lost, exc)
            self.pending.clear()
            self.dropped = 0
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        if self.indexed:
            eventindex.closed(self.repo_id, self.session_id)
            self.indexed = False


def read_events(repo_id: str, session_id: str) -> Iterator[dict[str, Any]]:
    """Every stored event of a session in order; a torn last line (crash) is skipped."""
    return read_folder(paths.events_dir(repo_id, session_id))


def read_folder(folder: str | Path) -> Iterator[dict[str, Any]]:
    """`read_events` of the session whose folder this is (a listing of thousands of
    sessions names them by folder: building each Path costs more than reading its log)."""
    for path in _logs_in(folder):
        yield from jsonl.read(Path(path))


def log_files(repo_id: str, session_id: str) -> list[Path]:
    """A session's log files, oldest first: one per daemon run that logged for it."""
    return [Path(path) for path in _logs_in(paths.events_dir(repo_id, session_id))]


def _logs_in(folder: str | Path) -> list[str]:
    """The `events-*.jsonl` files in `folder` (none when it is no folder), oldest first."""
    try:
        with os.scandir(folder) as entries:
            names = [
                e.path
                for e in entries
                if e.name.startswith("events-") and e.name.endswith(".jsonl")
            ]
    except (FileNotFoundError, NotADirectoryError):
        return []
    return sorted(names, key=_mtime)


def _mtime(path: str) -> float:
    """When the file was last written; one deleted meanwhile (watch/dropped.py prunes old
    logs) sorts first, and reads as empty."""
    try:
        return os.stat(path).st_mtime
    except FileNotFoundError:
        return 0.0
