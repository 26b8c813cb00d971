"""The store: atomic writes, corrupt files kept aside, locks, ids, the checkpoint journal,
the event log."""

from __future__ import annotations

import asyncio
import json
import os
import sqlite3
import subprocess
from pathlib import Path

import pytest

from prodigyd import paths
from prodigyd.errors import Conflict, NotFound, ProdigyError, StoreError
from prodigyd.store import checkpoints, journal, locks, sessions
from prodigyd.store.atomic import read_json, write_json_atomic
from prodigyd.store.events import EventLog, read_events
from prodigyd.store.ids import check_id, new_session_id
from prodigyd.store.locks import SessionLock


def test_atomic_write_replaces_whole_file_and_leaves_no_temp(tmp_path: Path):
    target = tmp_path / "a" / "state.json"
    write_json_atomic(target, {"v": 1})
    write_json_atomic(target, {"v": 2})
    assert read_json(target) == {"v": 2}
    assert sorted(p.name for p in target.parent.iterdir()) == ["state.json"]
    assert target.stat().st_mode & 0o777 == 0o600


def test_corrupt_file_is_moved_aside_never_overwritten(tmp_path: Path):
    target = tmp_path / "s.json"
    target.write_text('{"half": ')
    with pytest.raises(StoreError) as err:
        read_json(target)
    assert "corrupt" in err.value.message and str(target) in err.value.message
    kept = list(tmp_path.glob("s.json.corrupt-*"))
    assert len(kept) == 1 and kept[0].read_text() == '{"half": '


def test_session_ids_are_unique_and_validated():
    ids = {new_session_id() for _ in range(200)}
    assert len(ids) == 200
    for good in ids:
        assert check_id(good) == good
    for bad in ("../x", "a/b", "", ".hidden", "x" * 200, "a..b"):
        with pytest.raises(ProdigyError):
            check_id(bad)


def test_missing_session_is_not_found(isolated: Path):
    with pytest.raises(NotFound):
        sessions.load("workflow-1-aaaaaa")


def test_session_with_invalid_fields_names_the_field(isolated: Path):
    journal.insert(
        "workflow-1-bbbbbb",
        status="queued",
        private={},
        record={"id": "workflow-1-bbbbbb", "status": "sleeping"},
    )
    with pytest.raises(StoreError) as err:
        sessions.load("workflow-1-bbbbbb")
    assert "is invalid" in err.value.message


def test_idempotency_key_never_creates_a_second_job(isolated: Path):
    first = journal.insert(
        "workflow-1-cccccc",
        status="queued",
        private={},
        record={"n": 1},
        idempotency_key="hook:abc",
    )
    again = journal.insert(
        "workflow-2-dddddd",
        status="queued",
        private={},
        record={"n": 2},
        idempotency_key="hook:abc",
    )
    assert first is None and again == {"n": 1}
    assert journal.get("workflow-2-dddddd") is None
    assert journal.counts() == {"queued": 1}


def test_queue_order_is_priority_then_fifo(isolated: Path):
    for name, priority in (("a", 0), ("b", 5), ("c", 0), ("d", 5)):
        journal.insert(name, status="queued", private={}, record={}, priority=priority)
    order = []
    while (row := journal.next_queued()) is not None:
        order.append(row["id"])
        journal.update(row["id"], status="running")
    assert order == ["b", "d", "a", "c"]


def test_startup_reads_only_the_jobs_a_daemon_stop_interrupted(isolated: Path):
    """`to_resume` (what a start queues again) names the jobs a daemon stop interrupted,
    newest first, and finds them in the partial index: the jobs interrupted otherwise (a
    Ctrl-C leaves one each) or resumed since are never read, however many there are."""
    for name, status, flag in (
        ("ctrl-c", "interrupted", 0),
        ("stopped-1", "interrupted", 1),
        ("resumed", "queued", 1),
        ("stopped-2", "interrupted", 1),
    ):
        journal.insert(name, status=status, private={}, record={})
        journal.update(name, resume_on_start=flag)
    conn = journal.connection()
    statements: list[str] = []
    conn.set_trace_callback(statements.append)
    try:
        assert journal.to_resume("interrupted") == ["stopped-2", "stopped-1"]
    finally:
        conn.set_trace_callback(None)
    (statement,) = statements
    plan = conn.execute(f"EXPLAIN QUERY PLAN {statement}")
    assert [row["detail"] for row in plan] == ["SCAN jobs USING INDEX jobs_to_resume"]


def test_queued_triggered_runs_are_found_in_an_index_of_keyed_jobs_only(isolated: Path):
    """`keyed` (a trigger's queued runs) reads a partial index that holds the jobs with an
    idempotency key alone: a plain submission writes no entry there, and a journal that
    has the older index of every job loses it when it is opened."""
    conn = journal.connection()
    conn.execute("CREATE INDEX jobs_by_status_key ON jobs (status, idempotency_key)")
    journal.close_all()
    journal.insert("plain", status="queued", private={}, record={})
    journal.insert("run-1", status="queued", private={}, record={}, idempotency_key="t:1")
    journal.insert("run-2", status="queued", private={}, record={}, idempotency_key="t:2")
    journal.insert("other", status="queued", private={}, record={}, idempotency_key="u:1")
    conn = journal.connection()
    names = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type='index'")}
    assert "jobs_by_status_key" not in names
    entries = conn.execute(
        "SELECT id FROM jobs INDEXED BY jobs_keyed WHERE idempotency_key IS NOT NULL"
    ).fetchall()
    assert sorted(row["id"] for row in entries) == ["other", "run-1", "run-2"]
    statements: list[str] = []
    conn.set_trace_callback(statements.append)
    try:
        assert sorted(row["id"] for row in journal.keyed("t:", "queued")) == ["run-1", "run-2"]
    finally:
        conn.set_trace_callback(None)
    (statement,) = statements
    plan = [row["detail"] for row in conn.execute(f"EXPLAIN QUERY PLAN {statement}")]
    assert plan == [
        "SEARCH jobs USING INDEX jobs_keyed (status=? AND idempotency_key>? AND idempotency_key<?)"
    ]


def test_unopenable_journal_is_moved_aside(isolated: Path):
    path = paths.journal_file()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"this is not a database" * 100)
    journal.close_all()
    assert journal.counts() == {}
    assert list(path.parent.glob("journal.db.corrupt-*"))


def test_a_set_aside_journal_is_said_with_what_to_do_until_it_is_deleted(isolated: Path):
    from prodigyd.store import aside

    assert aside.set_aside() == [] and aside.problem() is None
    path = paths.journal_file()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"this is not a database" * 100)
    journal.close_all()
    journal.connection()  # set aside, a fresh one made
    [kept] = aside.set_aside()  # its -wal and -shm would not count
    problem = aside.problem()
    assert problem is not None and str(kept) in problem and str(path) in problem
    kept.unlink()  # looked at: the store is whole again
    assert aside.problem() is None
    (path.parent / f"{path.name}.corrupt-1.2-3").touch()  # a move aside that failed midway
    assert aside.set_aside() == []  # no journal in it: nothing held


@pytest.mark.parametrize("lost", ["missing", "emptied"])
def test_a_journal_lost_where_earlier_jobs_left_files_is_noted_until_the_note_goes(
    isolated: Path, lost: str
):
    """A new journal in a store with no earlier job's files leaves no note; one found
    missing or empty where earlier jobs left their session folders and worktrees does, and
    that note holds everything nobody owns (store/aside.py) until the user deletes it."""
    from prodigyd.store import aside

    journal.connection()
    journal.close_all()
    assert aside.set_aside() == []  # a first start: nothing was lost
    path = paths.journal_file()
    path.unlink()
    if lost == "emptied":
        path.write_bytes(b"")
    (paths.state_root() / "workflow-1-aaaaaa" / "checkpoints").mkdir(parents=True)
    slot = paths.worktrees_dir("repo-1") / "wt-0a1b2c3d"
    slot.mkdir(parents=True)

    journal.connection()
    [note] = aside.set_aside()
    assert note.name.startswith("journal.db.lost-")
    problem = aside.problem()
    assert problem is not None and "was missing or empty" in problem
    assert str(note) in problem and f"delete {note} to end this" in problem
    assert f"  {slot}\n" in note.read_text() and "(1 in " in note.read_text()
    note.unlink()  # looked at
    journal.close_all()
    journal.connection()  # no longer new: nothing noted again
    assert aside.set_aside() == [] and aside.problem() is None


BULK = {"text": "x" * 500}


def test_malformed_pages_of_an_open_journal_are_a_store_error_naming_it(isolated: Path):
    """A journal that opens but whose pages are damaged is not set aside (the daemon has it
    open): the requests that meet the damage fail with what to do, not 'internal error'."""
    for number in range(60):  # pages enough that the damage is in the table's
        journal.insert(f"workflow-{number}-ffffff", status="queued", record=BULK, private={})
    journal.close_all()
    path = paths.journal_file()
    with path.open("r+b") as file:
        file.seek(4096 * 3)
        file.write(b"\xff" * 4096 * 4)
    with pytest.raises(sqlite3.DatabaseError) as raised:
        for number in range(60):
            journal.get(f"workflow-{number}-ffffff")
        journal.counts()
    error = journal.damage(raised.value)
    assert error is not None and error.code == "E5000"
    assert f"the job journal {path} is damaged" in error.message
    assert error.hint is not None and ".recover" in error.hint
    assert journal.damage(sqlite3.OperationalError("database is locked")) is None
    assert journal.damage(ValueError("x")) is None


def test_lock_refuses_a_second_holder_and_takes_over_a_dead_ones(isolated: Path):
    with SessionLock("s1"), pytest.raises(Conflict) as err, SessionLock("s1"):
        pass
    assert "already being run or resumed" in err.value.message
    dead = subprocess.run(["sh", "-c", "echo $$"], capture_output=True, text=True).stdout.strip()
    lock = paths.locks_dir() / "s2.lock"
    lock.write_text(json.dumps({"job_id": "s2", "process_id": int(dead), "hostname": "h"}))
    with SessionLock("s2"):
        assert json.loads(lock.read_text())["process_id"] == os.getpid()
    assert not lock.exists()


@pytest.mark.parametrize("make", [os.mkfifo, os.mkdir], ids=["fifo", "folder"])
def test_a_lock_in_place_of_which_is_no_file_is_refused_naming_it(isolated: Path, make):
    paths.locks_dir().mkdir(parents=True)
    odd = paths.locks_dir() / "s4.lock"
    make(odd)  # a FIFO nobody writes: reading it would wait for good
    with pytest.raises(Conflict) as err, SessionLock("s4"):
        pass
    assert err.value.message == f"cannot take the lock of session s4: {odd} is not a lock file"
    assert locks.clear_all() == [] and odd.exists()
    assert "s4" not in locks.held()


def test_checkpoint_journal_skips_a_torn_last_line(
    isolated: Path, caplog: pytest.LogCaptureFixture
):
    async def write() -> None:
        writer = checkpoints.CheckpointWriter("s3")
        for index in range(3):
            await writer.write(
                {
                    "execution_state": {
                        "current_step_index": index + 1,
                        "total_steps": 3,
                        "status": "Running",
                    },
                    "step": {"step_index": index, "command": f"shell: {index}"},
                    "variable_state": {"n": index},
                }
            )
        await writer.close()

    asyncio.run(write())
    with open(checkpoints.journal_file("s3"), "a") as fh:
        fh.write('{"execution_state": {"current_st')  # a crash mid-append
    saved = checkpoints.load("s3")
    assert [s["step_index"] for s in saved["completed_steps"]] == [0, 1, 2]
    assert saved["variable_state"] == {"n": 2}
    assert saved["execution_state"]["current_step_index"] == 3
    assert checkpoints.load("never-ran") is None
    # the daemon's log names the line (once, however often the journal is read again)
    checkpoints.load("s3")
    said = [r.getMessage() for r in caplog.records if "not a whole JSON record" in r.message]
    assert said == [
        f"{checkpoints.journal_file('s3')}:4: not a whole JSON record, skipped (a crash cuts "
        "off a last line; any other was damaged): an event is not shown; a checkpoint "
        "journal's last line is a step that runs again on resume, and any other stops "
        "`prodigyctl resume` (docs/daemon.md)"
    ]


def _step_record(index: int) -> dict:
    return {
        "execution_state": {"current_step_index": index + 1, "status": "Running"},
        "step": {"step_index": index, "command": f"shell: {index}"},
        "variable_state": {},
    }


def _write_steps(session_id: str, count: int) -> Path:
    async def write() -> None:
        writer = checkpoints.CheckpointWriter(session_id)
        for index in range(count):
            await writer.write(_step_record(index))
        await writer.close()

    asyncio.run(write())
    return checkpoints.journal_file(session_id)


def test_a_damaged_line_before_the_last_or_an_emptied_journal_is_damage_naming_the_line(
    isolated: Path,
):
    """A torn last line is what a crash leaves; a damaged line before it, or a journal with
    no whole record left while the session counts steps done, lost steps done."""
    path = _write_steps("s5", 3)
    whole = path.read_text().splitlines(keepends=True)
    assert checkpoints.damage("s5", checkpoints.MAIN, steps_done=True) is None
    with path.open("a") as fh:
        fh.write('{"execution_state": {"cur')  # a crash mid-append
    assert checkpoints.damage("s5", checkpoints.MAIN, steps_done=True) is None
    path.write_text(whole[0] + '{"garbage": tru\n' + whole[2])
    assert checkpoints.damage("s5", checkpoints.MAIN, steps_done=True) == (
        f"line 2 of {path} is not a whole record"
    )
    path.write_bytes(b"")
    assert checkpoints.damage("s5", checkpoints.MAIN, steps_done=True) == f"{path} is empty"
    assert checkpoints.damage("s5", checkpoints.MAIN, steps_done=False) is None  # none done
    path.write_bytes(b"\x9c\xff\x00garbage")
    assert checkpoints.damage("s5", checkpoints.MAIN, steps_done=True) == (
        f"line 1 of {path} is not a whole record"
    )
    path.unlink()  # `checkpoints delete`: on purpose
    assert checkpoints.damage("s5", checkpoints.MAIN, steps_done=True) is None


def test_an_append_after_a_torn_line_is_kept_and_so_is_the_journal_as_it_was(isolated: Path):
    """Appended to a torn last line, a record would be glued to it and lost with it, and the
    line would read as damage: the journal goes on with its whole records, its old self
    kept beside it."""
    path = _write_steps("s6", 2)
    torn = path.read_bytes() + b'{"execution_state": {"cur'
    path.write_bytes(torn)

    async def append() -> None:
        writer = checkpoints.CheckpointWriter("s6")
        await writer.write(_step_record(2))
        await writer.close()

    asyncio.run(append())
    saved = checkpoints.load("s6")
    assert saved is not None
    assert [s["step_index"] for s in saved["completed_steps"]] == [0, 1, 2]
    assert checkpoints.damage("s6", checkpoints.MAIN, steps_done=True) is None
    [copy] = path.parent.glob(f"{path.name}.corrupt-*")
    assert copy.read_bytes() == torn
    assert checkpoints.phases("s6") == [checkpoints.MAIN]  # the copy is no phase's journal


@pytest.mark.timeout(30)  # a FIFO opened the plain way waits for its other end: a hang
def test_a_fifo_in_a_checkpoint_journals_place_is_refused_not_waited_on(isolated: Path):
    path = checkpoints.journal_file("s7")
    path.parent.mkdir(parents=True)
    os.mkfifo(path)
    with pytest.raises(StoreError, match=f"{path} cannot be read: not a regular file"):
        checkpoints.load("s7")
    assert "cannot be read: not a regular file" in str(
        checkpoints.damage("s7", checkpoints.MAIN, steps_done=False)
    )

    async def write() -> None:
        writer = checkpoints.CheckpointWriter("s7")
        try:
            await writer.write(_step_record(0))
        finally:
            await writer.close()

    with pytest.raises(StoreError, match=f"{path} cannot be written: not a regular file"):
        asyncio.run(write())
    with pytest.raises(StoreError, match="cannot be written: not a regular file"):
        checkpoints.rewind("s7", 0)


def test_a_line_torn_inside_a_utf8_character_is_skipped_by_every_reader(isolated: Path):
    """A crash can cut the last line anywhere, even between the bytes of one character:
    the journal and the event log both read on without it, as after any torn line."""

    async def write() -> None:
        writer = checkpoints.CheckpointWriter("s4")
        await writer.write(
            {
                "execution_state": {"current_step_index": 1, "total_steps": 2},
                "step": {"step_index": 0, "command": "shell: café"},
                "variable_state": {},
            }
        )
        await writer.close()

    asyncio.run(write())
    torn = '{"step": {"command": "café"'.encode()[:-2]  # ends inside the é
    with open(checkpoints.journal_file("s4"), "ab") as fh:
        fh.write(torn)
    saved = checkpoints.load("s4")
    assert saved is not None
    assert [s["command"] for s in saved["completed_steps"]] == ["shell: café"]

    log = EventLog("repo-1", "s4")
    log.append({"seq": 1, "event_type": "step_output", "line": "né"})
    log.close()
    with open(log.path, "ab") as fh:
        fh.write(torn)
    assert [e["line"] for e in read_events("repo-1", "s4")] == ["né"]


TOKEN = "tok-Zq7vL2mX8pR4tY6wKp3nB5cD9fG1hJ0eQ9w8"


def _journal_bytes() -> bytes:
    path = paths.journal_file()
    return b"".join(p.read_bytes() for p in path.parent.glob("journal.db*"))


def test_a_finished_jobs_environment_is_dropped_and_scrubbed_from_the_file(isolated: Path):
    env = {f"VAR_{n}": f"{TOKEN}-{n}" for n in range(200)}  # spills onto overflow pages
    journal.insert(
        "workflow-1-eeeeee", status="running", record={}, private={"env": env, "args": ["a"]}
    )
    journal.scrub()  # the environment is in the database file itself now, not only the log
    assert TOKEN.encode() in _journal_bytes()
    journal.update("workflow-1-eeeeee", status="failed", forget_env=False)
    assert journal.private_of("workflow-1-eeeeee") == {"env": env, "args": ["a"]}
    journal.update("workflow-1-eeeeee", status="completed", forget_env=True)
    assert journal.private_of("workflow-1-eeeeee") == {"args": ["a"]}  # `dlq retry` needs them
    assert TOKEN.encode() in _journal_bytes()  # in the write-ahead log, until a scrub
    assert journal.scrub_owed_since() is not None
    assert journal.scrub()  # (the daemon scrubs once quiet: scheduler.py, `_scrub_when_due`)
    assert TOKEN.encode() not in _journal_bytes()
    assert journal.scrub_owed_since() is None


def test_a_log_left_by_a_killed_daemon_is_scrubbed_by_the_next(isolated: Path):
    """A daemon killed between a job's end and its scrub leaves the dropped environment in
    the write-ahead log: the next one to open the journal owes the scrub."""
    journal.insert(
        "workflow-1-dddddd", status="running", record={}, private={"env": {"T": TOKEN}, "args": []}
    )
    journal.update("workflow-1-dddddd", status="completed", forget_env=True)
    killed = Path(f"{paths.journal_file()}-wal").read_bytes()  # a kill -9 leaves this log
    assert TOKEN.encode() in killed
    journal.close_all()  # (which empties the log: put it back as the kill left it)
    Path(f"{paths.journal_file()}-wal").write_bytes(killed)
    assert journal.private_of("workflow-1-dddddd") == {"args": []}  # the log was replayed
    assert journal.scrub_owed_since() is not None
    assert journal.scrub()
    assert TOKEN.encode() not in _journal_bytes()


def test_an_older_journal_drops_the_environment_of_its_finished_jobs(isolated: Path):
    for sid, status in (
        ("workflow-1-ffffff", "completed"),
        ("workflow-2-ffffff", "failed"),
        ("workflow-3-ffffff", "cancelled"),
    ):
        journal.insert(sid, status=status, record={}, private={"env": {"T": TOKEN}, "args": []})
    journal.connection().execute("PRAGMA user_version=3")
    journal.close_all()
    assert journal.found_version() == 3 < journal.ENV_DROPPED_SINCE
    assert sessions.forget_finished_environments() == 2
    assert journal.private_of("workflow-1-ffffff") == {"args": []}
    assert journal.private_of("workflow-2-ffffff") == {"env": {"T": TOKEN}, "args": []}
    assert journal.private_of("workflow-3-ffffff") == {"args": []}
    journal.close_all()
    assert journal.found_version() == journal.SCHEMA_VERSION


def test_a_corrupt_journal_moved_aside_twice_in_a_second_keeps_both(isolated: Path):
    path = isolated / "journal.db"
    isolated.mkdir(parents=True, exist_ok=True)
    for text in (b"not a database, one", b"not a database, two"):
        journal.close_all()
        path.write_bytes(text * 100)
        journal.connection()  # moved aside, a fresh one made
    kept = sorted(p.read_bytes()[:19] for p in isolated.glob("journal.db.corrupt-*"))
    assert kept == [b"not a database, one", b"not a database, two"]


def test_the_journals_page_cache_is_bounded_below_sqlites_default(isolated: Path):
    """A long-lived daemon's journal connection keeps SQLite's page cache full: 2 MB by
    default, ~3.5 MB resident after 1,000 jobs. Its own bound applies, and holds in KiB."""
    size = journal.connection().execute("PRAGMA cache_size").fetchone()[0]
    assert size == -journal.CACHE_KIB
    assert 0 < journal.CACHE_KIB < 2000  # SQLite's default: -2000 (KiB)


def test_a_request_meeting_damaged_pages_is_answered_as_that_not_internal_error(
    isolated: Path,
):
    """The RPC layer (server.py) turns the damage a handler meets into the store error
    `journal.damage` makes (E5000 naming the journal, with how to recover), not -32603."""
    from prodigyd import protocol
    from prodigyd.server import Connection

    async def meets_damage() -> None:
        error = sqlite3.DatabaseError("database disk image is malformed")
        error.sqlite_errorcode = 11  # type: ignore[attr-defined]  # SQLITE_CORRUPT, as raised
        raise error

    conn = Connection(None, None, None, lambda: None)  # type: ignore[arg-type]  # unused here
    reply = asyncio.run(conn._guarded(7, meets_damage))
    assert reply["id"] == 7 and reply["error"]["code"] != protocol.INTERNAL_ERROR
    assert reply["error"]["data"]["code"] == "E5000"
    assert f"the job journal {paths.journal_file()} is damaged" in reply["error"]["message"]
