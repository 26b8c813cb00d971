"""Queries over the stored event logs: `events.list` and `events.stats`.

Events live in `events/<repo-id>/<session-id>/*.jsonl` (store/events.py). Filters narrow by
session, event type and time; `since` is an ISO 8601 timestamp (the client turns `10m`
into one). With one session named, only that session's folder is read.

`events.list` across all sessions returns the newest `limit` events, ordered as if every
log were read and sorted by (timestamp, seq), ties left in folder order (repository id,
session id; then the queued sessions with no folder, newest first). It reads the sessions
newest first from the event index (store/eventindex.py) and stops at the first whose
newest event cannot make the list: its cost follows what it prints (plus the sessions
being written, and the queued ones with nothing logged), not what is stored. A `since`
stops it too; a `type` filter does not narrow the walk (a rare type reads back until
`limit` of it are found, up to every log). `events.stats` counts everything: linear.
"""

from __future__ import annotations

import heapq
import logging
import os
import sqlite3
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from prodigyd import paths
from prodigyd.api import schemas
from prodigyd.errors import NoSpace, NotFound
from prodigyd.eventhub import rebuilt_queued
from prodigyd.store import eventindex
from prodigyd.store import sessions as session_store
from prodigyd.store.events import read_folder
from prodigyd.store.ids import check_id
from prodigyd.store.sessions import SessionRecord, Status

log = logging.getLogger("prodigyd.events")


def matching(p: schemas.EventsQuery) -> Iterator[dict[str, Any]]:
    """Stored events that pass the query's filters, session by session, in order."""
    for repo_id, session_id in _sessions(p.session_id):
        for event in _events(paths.events_dir(repo_id, session_id), session_id):
            if p.event_type and event.get("event_type") != p.event_type:
                continue
            if p.since and str(event.get("timestamp", "")) < p.since:
                continue
            yield event


def _events(folder: str | Path, session_id: str) -> Iterator[dict[str, Any]]:
    """The session's logged events (`folder` holds them); for one with none logged yet (its
    `session_queued` is written with its next event: eventhub.py), that event, made from
    its journal row."""
    empty = True
    for event in read_folder(folder):
        empty = False
        yield event
    if empty:
        try:
            queued = rebuilt_queued(session_store.load(session_id))
        except NotFound:  # a folder left of a removed session
            return
        if queued is not None:
            yield queued


def order(event: dict[str, Any]) -> tuple[str, int]:
    """What events are listed by (a stable sort: ties keep the order they were read in). A
    corrupt event's timestamp that is no string, or seq that is no integer, sorts as ""
    or 0: listed first, never compared with a value of another type."""
    stamp, seq = event.get("timestamp"), event.get("seq")
    return stamp if isinstance(stamp, str) else "", seq if type(seq) is int else 0


def list_events(p: schemas.EventsQuery) -> list[dict[str, Any]]:
    """The newest `limit` matching events, oldest first."""
    if p.session_id is None:
        try:
            eventindex.ensure_built()
        except (NoSpace, sqlite3.Error) as exc:  # no index this time: read every log
            log.warning("event index not built (%s): reading every event log", exc)
        else:
            return _newest(p)
    return sorted(matching(p), key=order)[-p.limit :]


class _Newest:
    """The newest `limit` matching events seen so far, kept in a heap by their full sort
    key: (timestamp, seq, where the session comes in folder order, where the event comes
    in its session): the order `sorted(matching(p), key=order)` gives, ties included."""

    def __init__(self, p: schemas.EventsQuery) -> None:
        self.query = p
        self.heap: list[tuple[tuple[Any, ...], dict[str, Any]]] = []

    def read(
        self, rank: tuple[Any, ...], events: Iterator[dict[str, Any]]
    ) -> tuple[str, int] | None:
        """Take a session's matching events; return the key of its newest event (matching
        or not)."""
        p = self.query
        newest = ("", 0)
        for index, event in enumerate(events):
            stamp, seq = order(event)
            newest = max(newest, (stamp, seq))
            if p.event_type and event.get("event_type") != p.event_type:
                continue
            if p.since and str(event.get("timestamp", "")) < p.since:
                continue
            item = ((stamp, seq, rank, index), event)
            if len(self.heap) < p.limit:
                heapq.heappush(self.heap, item)
            elif item[0] > self.heap[0][0]:
                heapq.heapreplace(self.heap, item)
        return newest

    def beats(self, newest: str, seq: int, rank: tuple[Any, ...]) -> bool:
        """Whether a session whose newest event has this key may still add to the list."""
        if self.query.since and newest < self.query.since:
            return False
        if len(self.heap) < self.query.limit:
            return True
        stamp, least_seq, least_rank, _ = self.heap[0][0]
        return (newest, seq, rank) > (stamp, least_seq, least_rank)

    def events(self) -> list[dict[str, Any]]:
        return [event for _, event in sorted(self.heap, key=lambda item: item[0])]


def _newest(p: schemas.EventsQuery) -> list[dict[str, Any]]:
    """`list_events` across all sessions, newest sessions first (see the module docstring).

    Read every time: the open rows (closed here when no log writes to them any more),
    the logs the index could not take, the queued sessions with no folder. Then the closed
    rows, newest first, until one cannot beat what is found."""
    found = _Newest(p)
    root = str(paths.events_root())
    closings: list[eventindex.Closing] = []
    read: set[str] = set()  # folders read (a log the index could not take may have a row)
    for row in eventindex.open_rows():
        folder = f"{root}/{row.repo_id}/{row.session_id}"
        read.add(folder)
        present, newest = _read_folder(found, folder, row.repo_id, row.session_id)
        if eventindex.writing(folder):
            continue
        closings.append(eventindex.Closing(row, newest if present else None))
    for repo_id, session_id in eventindex.unindexed():
        folder = f"{root}/{repo_id}/{session_id}"
        if folder not in read:
            read.add(folder)
            _read_folder(found, folder, repo_id, session_id)
    for rank, record in enumerate(_queued_without_folder(root)):
        found.read((1, rank), _events(f"{root}/{record.repo_id}/{record.id}", record.id))
    for row in eventindex.closed_rows():
        assert row.newest is not None
        if not found.beats(row.newest, row.newest_seq, (0, row.repo_id, row.session_id)):
            break
        folder = f"{root}/{row.repo_id}/{row.session_id}"
        if folder not in read and not _read_folder(found, folder, row.repo_id, row.session_id)[0]:
            closings.append(eventindex.Closing(row, None))  # the folder is gone
    eventindex.close(closings)
    return found.events()


def _read_folder(
    found: _Newest, folder: str, repo_id: str, session_id: str
) -> tuple[bool, tuple[str, int] | None]:
    """Read a session folder's events into `found`: whether the folder is there, and the
    key of its newest event (`_Newest.read`)."""
    if not os.path.lexists(folder):
        return False, None
    return True, found.read((0, repo_id, session_id), _events(folder, session_id))


def _queued_without_folder(root: str) -> Iterator[SessionRecord]:
    """The queued sessions nothing is logged for yet (their `session_queued` is made from
    the journal: `_events`), newest first, as a full listing reads them."""
    unindexed = eventindex.unindexed()
    for record in session_store.list_all(status=Status.QUEUED.value):
        repos = {*eventindex.repos_of(record.id), *(r for r, s in unindexed if s == record.id)}
        if not any(os.path.lexists(f"{root}/{repo_id}/{record.id}") for repo_id in repos):
            yield record


def stats(p: schemas.EventsQuery) -> dict[str, Any]:
    by_type: Counter[str] = Counter()
    by_session: Counter[str] = Counter()
    first = last = None
    for event in matching(p):
        by_type[str(event.get("event_type"))] += 1
        by_session[str(event.get("session_id"))] += 1
        stamp = order(event)[0]
        if stamp:  # (a corrupt event's timestamp is no string: not one of these)
            first = stamp if first is None or stamp < first else first
            last = stamp if last is None or stamp > last else last
    return {
        "total": sum(by_type.values()),
        "by_type": dict(by_type.most_common()),
        "by_session": dict(by_session.most_common()),
        "first": first,
        "last": last,
    }


def _sessions(session_id: str | None) -> Iterator[tuple[str, str]]:
    if session_id is not None:
        record = session_store.load(check_id(session_id))
        yield record.repo_id, record.id
        return
    root = paths.events_root()
    seen: set[str] = set()
    if root.is_dir():
        for repo_dir in sorted(root.iterdir()):
            for session_dir in sorted(repo_dir.iterdir()) if repo_dir.is_dir() else ():
                seen.add(session_dir.name)
                yield repo_dir.name, session_dir.name
    for record in session_store.list_all(status=Status.QUEUED.value):  # none logged yet
        if record.id not in seen:
            yield record.repo_id, record.id
