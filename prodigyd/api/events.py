"""Queries over the stored event logs: `events.list` and `events.stats`.

Events live in `events/<repo-id>/<session-id>/*.jsonl` (store/events.py). Filters narrow by
session, event type and time; `since` is an ISO 8601 timestamp (the client turns `10m`
into one). Scanning the files is linear in what is stored; with one session named it
reads only that session's folder.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from typing import Any

from prodigyd import paths
from prodigyd.api import schemas
from prodigyd.errors import NotFound
from prodigyd.eventhub import rebuilt_queued
from prodigyd.store import sessions as session_store
from prodigyd.store.events import read_events
from prodigyd.store.ids import check_id
from prodigyd.store.sessions import Status


def matching(p: schemas.EventsQuery) -> Iterator[dict[str, Any]]:
    """Stored events that pass the query's filters, session by session, in order."""
    for repo_id, session_id in _sessions(p.session_id):
        for event in _events(repo_id, session_id):
            if p.event_type and event.get("event_type") != p.event_type:
                continue
            if p.since and str(event.get("timestamp", "")) < p.since:
                continue
            yield event


def _events(repo_id: str, session_id: str) -> Iterator[dict[str, Any]]:
    """The session's logged events; for one with none logged yet (its `session_queued` is
    written with its next event: eventhub.py), that event, made from its journal row."""
    empty = True
    for event in read_events(repo_id, session_id):
        empty = False
        yield event
    if empty:
        try:
            queued = rebuilt_queued(session_store.load(session_id))
        except NotFound:  # a folder left of a removed session
            return
        if queued is not None:
            yield queued


def list_events(p: schemas.EventsQuery) -> list[dict[str, Any]]:
    """The newest `limit` matching events, oldest first."""
    found = sorted(matching(p), key=lambda e: (e.get("timestamp", ""), e.get("seq", 0)))
    return found[-p.limit :]


def stats(p: schemas.EventsQuery) -> dict[str, Any]:
    by_type: Counter[str] = Counter()
    by_session: Counter[str] = Counter()
    first = last = None
    for event in matching(p):
        by_type[str(event.get("event_type"))] += 1
        by_session[str(event.get("session_id"))] += 1
        stamp = event.get("timestamp")
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
