"""`events.list` across all sessions walks the event index newest first (store/eventindex.py)
and must list exactly what reading every log and sorting gives (`matching` + `order`, what
`events.stats` still reads): ties in timestamp and seq, folders in several repositories,
logs torn, missing or empty, queued sessions with nothing logged, a store written before
the index, and sessions written again after a listing closed their row. And it must read
few logs to list the newest few."""

from __future__ import annotations

import itertools
import shutil
from pathlib import Path
from typing import Any

import pytest

from prodigyd import paths
from prodigyd.api import events as events_api
from prodigyd.api import schemas
from prodigyd.eventhub import EventHub
from prodigyd.store import eventindex, journal
from prodigyd.store import sessions as session_store
from prodigyd.store.events import EventLog
from prodigyd.store.sessions import Status
from tests.retentionkit import session_record

REPOS = ("repo-0123abcd", "repo-ffff0000")


def _stamp(second: int) -> str:
    return f"2026-12-01T10:{second // 60:02d}:{second % 60:02d}.000Z"


def _log(repo_id: str, session_id: str, events: list[tuple[int | None, int, str]]) -> None:
    """Write events (second or None for no timestamp, seq, type) through the daemon's log."""
    log = EventLog(repo_id, session_id)
    for second, seq, kind in events:
        event: dict[str, Any] = {"seq": seq, "event_type": kind, "session_id": session_id}
        if second is not None:
            event["timestamp"] = _stamp(second)
        log.append(event)
    log.close()


def _full_scan(query: schemas.EventsQuery) -> list[dict[str, Any]]:
    """What every log read and sorted gives: what the listing gave before the index."""
    return sorted(events_api.matching(query), key=events_api.order)[-query.limit :]


def _queries(total: int) -> list[schemas.EventsQuery]:
    limits = sorted({1, 2, 3, 5, 7, 10, 16, 25, total - 1, total, total + 5} - {0})
    found = [schemas.EventsQuery(limit=n) for n in limits]
    for n, since in itertools.product((1, 4, 50), (_stamp(0), _stamp(30), _stamp(59))):
        found.append(schemas.EventsQuery(limit=n, since=since))
    for n, kind in itertools.product((1, 3, 50), ("step_completed", "session_finished", "x")):
        found.append(schemas.EventsQuery(limit=n, event_type=kind))
    return found


def _assert_same_as_full_scan() -> None:
    total = len(_full_scan(schemas.EventsQuery(limit=1_000_000)))
    for query in _queries(total):
        assert events_api.list_events(query) == _full_scan(query), query


def _store() -> list[str]:
    """Sessions in two repository folders whose events tie in timestamp, in seq, or both;
    one with an event with no timestamp; one torn and one corrupt log; an empty folder; a
    queued session with nothing logged. Returns the session ids with a folder."""
    ids = []
    for n in range(12):
        base = (n * 7) % 20  # sessions overlap in time, several start at the same second
        record = session_record(
            100 + n, status=Status.COMPLETED, repo_id=REPOS[n % 2], started_at=_stamp(base)
        )
        session_store.create(record, {})
        events = [(base, 1, "session_queued"), (base, 2, "session_started")]
        events += [(base + 3, 3, "step_completed"), (base + 3, 4, "session_finished")]
        _log(record.repo_id, record.id, events)
        ids.append(record.id)
    _log(REPOS[0], ids[0], [(None, 5, "note"), (40, 6, "step_completed")])  # a second run
    torn = paths.events_dir(REPOS[1], ids[1])
    with open(next(torn.glob("events-*.jsonl")), "ab") as fh:
        fh.write(b'{"seq": 9, "timestamp": "2026-12-01T10:59')  # the crash's torn last line
    corrupt = paths.events_dir(REPOS[0], "workflow-1000200-0000c8")  # no journal row
    corrupt.mkdir(parents=True)
    (corrupt / "events-1-1.jsonl").write_bytes(b"\xff\xfe not json\n[1, 2]\n")
    paths.events_dir(REPOS[1], "workflow-1000201-0000c9").mkdir(parents=True)  # empty
    for n, second in ((300, 20), (301, 3)):  # their `session_queued` is made from the journal
        session_store.create(session_record(n, status=Status.QUEUED, started_at=_stamp(second)), {})
    return ids


def test_the_walk_lists_what_the_full_scan_lists(isolated: Path):
    _store()
    _assert_same_as_full_scan()  # the first listing builds the index and closes the rows
    assert eventindex.open_rows() == []
    _assert_same_as_full_scan()  # and the next ones walk the closed rows


def test_a_store_written_before_the_index_is_indexed_at_the_first_listing(isolated: Path):
    ids = _store()
    with journal.transaction() as conn:  # as a journal from before the index has it
        conn.execute("DELETE FROM event_logs")
        conn.execute("DELETE FROM event_logs_built")
    _assert_same_as_full_scan()
    indexed = {row.session_id for row in eventindex.closed_rows()}
    assert set(ids) <= indexed


def test_a_session_written_again_after_a_listing_comes_first(isolated: Path):
    ids = _store()
    _assert_same_as_full_scan()
    _log(REPOS[1], ids[3], [(58, 7, "session_queued"), (59, 8, "session_finished")])
    newest = events_api.list_events(schemas.EventsQuery(limit=2))
    assert [(e["session_id"], e["seq"]) for e in newest] == [(ids[3], 7), (ids[3], 8)]
    _assert_same_as_full_scan()


def test_a_log_still_writing_is_read_until_it_closes(isolated: Path):
    ids = _store()
    log = EventLog(REPOS[0], ids[4])
    log.append({"seq": 5, "timestamp": _stamp(50), "event_type": "x", "session_id": ids[4]})
    _assert_same_as_full_scan()  # its row is left open: more may come
    log.append({"seq": 6, "timestamp": _stamp(59), "event_type": "x", "session_id": ids[4]})
    assert events_api.list_events(schemas.EventsQuery(limit=1))[0]["seq"] == 6
    log.close()
    _assert_same_as_full_scan()
    assert eventindex.open_rows() == []


def test_removed_folders_and_logs_list_as_the_full_scan_does(isolated: Path):
    ids = _store()
    _assert_same_as_full_scan()
    shutil.rmtree(paths.events_dir(REPOS[0], ids[0]))  # retention removed a session
    for path in paths.events_dir(REPOS[1], ids[5]).glob("*.jsonl"):
        path.unlink()  # its logs pruned: its `session_queued` comes from the journal
    _assert_same_as_full_scan()
    assert ids[0] not in {row.session_id for row in eventindex.closed_rows()}


def test_listing_the_newest_few_reads_few_logs(isolated: Path, monkeypatch: pytest.MonkeyPatch):
    for n in range(200):
        _log(REPOS[0], f"workflow-{2_000_000 + n}-{n:06x}", [(n % 60, 1, "a"), (n % 60, 2, "b")])
    events_api.list_events(schemas.EventsQuery(limit=1))  # builds the index, closes the rows
    read: list[str] = []
    real = events_api.read_folder

    def counting(folder: str | Path) -> Any:
        read.append(Path(folder).name)
        return real(folder)

    query = schemas.EventsQuery(limit=4)
    expected = _full_scan(query)
    monkeypatch.setattr(events_api, "read_folder", counting)
    assert events_api.list_events(query) == expected
    assert len(read) <= 3, read  # 4 events: the newest 2 sessions, and the one that ties


def test_a_new_job_is_listed_from_its_first_line(isolated: Path):
    _store()
    _assert_same_as_full_scan()
    record = session_record(400, started_at=_stamp(59))
    session_store.create(record, {})  # the submission's commit opens its row
    hub = EventHub(record, new=True)
    hub.queued(record, 0)  # held, not written: no folder yet
    _assert_same_as_full_scan()  # a listing before its first line leaves the row open
    record.status = Status.RUNNING
    session_store.save(record)  # the job starts
    hub.emit("session_started")  # written with its `session_queued`, no journal write
    newest = events_api.list_events(schemas.EventsQuery(limit=2))
    assert [e["event_type"] for e in newest] == ["session_queued", "session_started"]
    _assert_same_as_full_scan()
    hub.log.close()
    _assert_same_as_full_scan()


def test_events_whose_keys_have_the_wrong_types_are_listed_not_a_traceback() -> None:
    """A hand-edited or corrupt log: a seq that is text, a timestamp that is a number, next
    to good events at the same time. Listed (first: their keys sort as "" and 0) by the
    walk, the full scan and the stats alike."""
    good = session_record(1)
    session_store.create(good, {})
    _log(REPOS[0], good.id, [(5, 1, "session_started"), (6, 2, "step_completed")])
    bad = session_record(2)
    session_store.create(bad, {})
    log = EventLog(REPOS[0], bad.id)
    log.append({"seq": "x", "timestamp": _stamp(5), "event_type": "weird", "session_id": bad.id})
    log.append({"seq": 2, "timestamp": 5, "event_type": "weirder", "session_id": bad.id})
    log.append({"seq": 1, "timestamp": _stamp(5), "event_type": "fine", "session_id": bad.id})
    log.close()
    for limit in (1, 2, 5, 10):
        query = schemas.EventsQuery(limit=limit)
        assert events_api.list_events(query) == _full_scan(query)
    listed = [e["event_type"] for e in events_api.list_events(schemas.EventsQuery(limit=10))]
    assert listed[:2] == ["weirder", "weird"]  # keys ("", 2) and (second 5, 0)
    stats = events_api.stats(schemas.EventsQuery())
    assert stats["total"] == 5
    assert (stats["first"], stats["last"]) == (_stamp(5), _stamp(6))
