"""A session's event hub: its events numbered, logged to disk (store/events.py), kept in
memory for replay to late subscribers and fanned out live.

The scheduler (scheduler.py) keeps one hub per session it has seen and hands it to the
engine as the session's event sink; `events.subscribe` reads from it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from typing import Any

from prodigyd.clock import now_iso
from prodigyd.errors import NoSpace
from prodigyd.eventtypes import EventType
from prodigyd.store import journal
from prodigyd.store.events import EventLog, read_events
from prodigyd.store.sessions import SessionRecord

log = logging.getLogger("prodigyd.events")

#: Events a hub keeps in memory for replay; older ones are read back from its log file. A
#: map phase of thousands of agents must not grow the daemon without bound.
HISTORY_EVENTS = 2000


#: The number of a new session's first event, `session_queued`.
QUEUED_SEQ = 1


def queued_event(record: SessionRecord, priority: int) -> dict[str, Any]:
    """A new session's first event, from what its journal row holds (see EventHub.queued)."""
    return {
        "seq": QUEUED_SEQ,
        "timestamp": record.started_at,  # when it was submitted
        "event_type": EventType.SESSION_QUEUED,
        "session_id": record.id,
        "workflow": record.workflow,
        "priority": priority,
    }


def rebuilt_queued(record: SessionRecord) -> dict[str, Any] | None:
    """`session_queued` of a session with nothing logged, made again from its journal row
    (its priority is a column there, not in the record); None without a row."""
    row = journal.get(record.id)
    return None if row is None else queued_event(record, int(row["priority"]))


class EventHub:
    """One session's events: numbered, logged to disk, kept for replay, fanned out live
    to the session's subscribers and to those of every session (`watchers`)."""

    def __init__(
        self,
        record: SessionRecord,
        watchers: set[asyncio.Queue[dict[str, Any]]] | None = None,
        *,
        new: bool = False,
    ) -> None:
        """`new`: a session just submitted, which has no events to read back yet (its
        folder does not exist: looking costs a submission a glob for nothing), and whose
        row in the event index its submission opened (journal.insert). A session
        whose log holds nothing (its daemon stopped before writing its held
        `session_queued`, see `queued`) gets that event back from its journal row."""
        self.session_id = record.id
        self.repo_id = record.repo_id
        self.watchers = watchers if watchers is not None else set()
        self.log = EventLog(record.repo_id, record.id, opened=new)
        self.history: deque[dict[str, Any]] = deque(
            () if new else read_events(record.repo_id, record.id), maxlen=HISTORY_EVENTS
        )
        if not new and not self.history and (queued := rebuilt_queued(record)) is not None:
            self._hold(queued)
        self.seq = self.history[-1]["seq"] if self.history else 0
        self.subscribers: set[asyncio.Queue[dict[str, Any]]] = set()

    def emit(self, event_type: str, /, **fields: Any) -> None:
        self.seq += 1
        event = {
            "seq": self.seq,
            "timestamp": now_iso(),
            "event_type": event_type,
            "session_id": self.session_id,
            **fields,
        }
        try:
            self.log.append_soon(event)
        except NoSpace:
            pass  # kept in order for the next append or the mender (store/space.py logs it)
        except OSError:
            log.exception("cannot write event log for %s", self.session_id)
        self.history.append(event)
        for queue in self.subscribers | self.watchers:
            queue.put_nowait(event)

    def queued(self, record: SessionRecord, priority: int) -> None:
        """A just-submitted session's first event, `session_queued`: kept, fanned out, and
        written with the next event (EventLog.hold says why). It is made from the journal
        row alone, so it is as durable as that row, and made again the same from it."""
        event = queued_event(record, priority)
        self._hold(event)
        self.seq = event["seq"]
        for queue in self.subscribers | self.watchers:
            queue.put_nowait(event)

    def _hold(self, event: dict[str, Any]) -> None:
        self.log.hold(event)
        self.history.append(event)

    @contextlib.contextmanager
    def subscribe(self, since: int) -> Any:
        """Yield (backlog, queue): every event after `since`, then live ones, none twice."""
        queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        backlog = [e for e in self.history if e["seq"] > since]
        oldest = self.history[0]["seq"] if self.history else self.seq + 1
        if since + 1 < oldest:  # older than memory holds: the rest comes from the log
            older = read_events(self.repo_id, self.session_id)
            backlog = [e for e in older if since < e["seq"] < oldest] + backlog
        self.subscribers.add(queue)
        try:
            yield backlog, queue
        finally:
            self.subscribers.discard(queue)
