"""A submission's `session_queued` is written with the session's next event, not at submit
time (eventhub.py), and is made again from the journal row when no log holds it (the
daemon stopped first): every reader shows it, the same, once."""

from __future__ import annotations

from pathlib import Path

from prodigyd import paths
from prodigyd.api import schemas
from prodigyd.api.events import list_events
from prodigyd.eventhub import EventHub
from prodigyd.store import sessions as session_store
from prodigyd.store.events import read_events
from prodigyd.store.sessions import SessionRecord
from tests.retentionkit import REPO_ID, session_record


def _submitted(n: int, priority: int) -> SessionRecord:
    """A session as `jobs.submit` stores it (its journal row), nothing logged."""
    record = session_record(n)
    session_store.create(record, {}, priority=priority)
    return record


def _queued(record: SessionRecord, priority: int) -> dict[str, object]:
    return {
        "seq": 1,
        "timestamp": record.started_at,
        "event_type": "session_queued",
        "session_id": record.id,
        "workflow": "/w.yml",
        "priority": priority,
    }


def test_submission_makes_no_file_and_the_next_event_writes_queued_first(isolated: Path):
    record = _submitted(1, priority=3)
    hub = EventHub(record, new=True)
    hub.queued(record, 3)
    assert not paths.events_dir(REPO_ID, record.id).exists()
    assert list(hub.history) == [_queued(record, 3)]
    hub.emit("session_started")
    hub.log.close()
    logged = list(read_events(REPO_ID, record.id))
    assert [e["event_type"] for e in logged] == ["session_queued", "session_started"]
    assert logged[0] == _queued(record, 3) and logged[1]["seq"] == 2


def test_closing_a_log_writes_the_held_event(isolated: Path):
    record = _submitted(2, priority=0)
    hub = EventHub(record, new=True)
    hub.queued(record, 0)
    hub.log.close()  # a daemon stop, or the hub evicted
    assert list(read_events(REPO_ID, record.id)) == [_queued(record, 0)]


def test_a_session_whose_daemon_died_before_logging_gets_queued_back(isolated: Path):
    record = _submitted(3, priority=7)
    EventHub(record, new=True).queued(record, 7)  # then kill -9: nothing written
    query = schemas.EventsQuery(session_id=record.id)
    assert list_events(query) == [_queued(record, 7)]
    assert list_events(schemas.EventsQuery()) == [_queued(record, 7)]
    hub = EventHub(session_store.load(record.id))  # the next daemon's hub
    assert list(hub.history) == [_queued(record, 7)] and hub.seq == 1
    hub.emit("session_started")
    hub.log.close()
    logged = list(read_events(REPO_ID, record.id))
    assert logged[0] == _queued(record, 7)
    assert [e["seq"] for e in logged] == [1, 2]
    assert [e["event_type"] for e in list_events(query)] == ["session_queued", "session_started"]


def test_idle_hubs_are_dropped_a_batch_at_a_time_their_held_events_written(isolated: Path):
    """Up to IDLE_HUBS + IDLE_HUBS_SLACK idle hubs stay; one more, and the oldest go down
    to IDLE_HUBS, each log closed (its held `session_queued` written)."""
    from prodigyd.engine.context import EngineSettings
    from prodigyd.pool import WorktreePool
    from prodigyd.scheduler import IDLE_HUBS, IDLE_HUBS_SLACK, Scheduler, SchedulerSettings

    jobs = Scheduler(EngineSettings(), SchedulerSettings(), WorktreePool())
    records = [_submitted(n, priority=0) for n in range(IDLE_HUBS + IDLE_HUBS_SLACK + 1)]
    for record in records[:-1]:
        jobs._unannounced[record.id] = 0  # as `submit` leaves it
        jobs.hub(record)
    assert len(jobs.hubs) == IDLE_HUBS + IDLE_HUBS_SLACK  # none dropped yet
    assert not paths.events_dir(REPO_ID, records[0].id).exists()
    jobs._unannounced[records[-1].id] = 0
    jobs.hub(records[-1])  # no event loop here: dropped at once, before it is made
    kept = [record.id for record in records[IDLE_HUBS_SLACK:]]
    assert list(jobs.hubs) == kept and len(kept) == IDLE_HUBS + 1
    for record in records[:IDLE_HUBS_SLACK]:
        assert list(read_events(REPO_ID, record.id)) == [_queued(record, 0)]
