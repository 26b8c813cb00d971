"""A full disk, injected: the journal's writes fail as SQLite's do on a full disk, and file
writes with ENOSPC. Fast checks of what must hold while the disk is full and once it has
room again (tests/integration/test_disk_full.py runs the real daemon on a real full tmpfs).
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import json
import os
import sqlite3
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import prodigyd.scheduler as scheduler_module
from prodigyd import paths
from prodigyd.engine.admission import RunRequest
from prodigyd.engine.context import EngineSettings
from prodigyd.errors import NoSpace
from prodigyd.pool import WorktreePool
from prodigyd.scheduler import Scheduler, SchedulerSettings
from prodigyd.store import claude_invocations, events, journal, space
from prodigyd.store import sessions as session_store
from prodigyd.store.sessions import Status
from prodigyd.watch import spool
from prodigyd.watch.inbox import HookInbox
from prodigyd.workflow import load as workflow_load
from tests.gitutil import commit_files, git

TOKEN = "tok-Vb3nQ8rT2wL6yP0sD4fG7hJ1kZ5x"


class Disk:
    """Turns the disk under PRODIGY_HOME full and back: the journal's transactions fail with
    SQLITE_FULL (and it opens only in exclusive mode: no shared-memory file can be made),
    and writes to regular files with ENOSPC."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.monkeypatch = monkeypatch
        self.full = False
        self.file_writes = 0  # writes to regular files tried while full
        self._real_connection = journal.connection
        real_transaction, real_connect, real_write = journal.transaction, journal._connect, os.write

        @contextlib.contextmanager
        def transaction(*, durable: bool = True) -> Iterator[sqlite3.Connection]:
            if self.full:
                with space.guard(paths.journal_file()):
                    raise sqlite3.OperationalError("database or disk is full")
            with real_transaction(durable=durable) as conn:
                yield conn

        def connect(path: Path, *, exclusive: bool = False) -> sqlite3.Connection:
            if self.full and not exclusive:
                raise sqlite3.OperationalError("database or disk is full")
            return real_connect(path, exclusive=exclusive)

        def write(fd: int, data: Any) -> int:
            if self.full and stat.S_ISREG(os.fstat(fd).st_mode):
                self.file_writes += 1
                raise OSError(errno.ENOSPC, "No space left on device")
            return real_write(fd, data)

        monkeypatch.setattr(journal, "transaction", transaction)
        monkeypatch.setattr(journal, "_connect", connect)
        monkeypatch.setattr(os, "write", write)

    def fill(self) -> None:
        self.full = True

    def free(self) -> None:
        self.full = False

    def fail_sql(self, prefix: str) -> None:
        """Statements starting with `prefix` fail with an I/O error (room or not)."""
        real_connection = self._real_connection

        class Failing:
            def __init__(self, conn: sqlite3.Connection) -> None:
                self._conn = conn

            def execute(self, sql: str, *args: Any) -> Any:
                if sql.startswith(prefix):
                    raise sqlite3.OperationalError("disk I/O error")
                return self._conn.execute(sql, *args)

            def __getattr__(self, name: str) -> Any:
                return getattr(self._conn, name)

        self.monkeypatch.setattr(journal, "connection", lambda: Failing(real_connection()))

    def heal_sql(self) -> None:
        self.monkeypatch.setattr(journal, "connection", self._real_connection)


@pytest.fixture
def disk(isolated: Path, monkeypatch: pytest.MonkeyPatch) -> Disk:
    return Disk(monkeypatch)


def manager() -> Scheduler:
    jobs = Scheduler(EngineSettings(), SchedulerSettings(max_concurrent_jobs=2), WorktreePool())
    jobs.recovered = True  # as after `start`, without its background tasks
    return jobs


def request(workflow: Path, repo: Path) -> RunRequest:
    return RunRequest(workflow=str(workflow), cwd=str(repo), env={"TOKEN": TOKEN}, repo=str(repo))


def stored_status(session_id: str) -> str:
    """What the journal holds (not the daemon's memory): what a crash would leave."""
    row = journal.get(session_id)
    assert row is not None
    return str(row["status"])


async def test_a_queued_job_that_fails_to_start_on_a_full_disk_is_not_started_again(
    disk: Disk, repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    workflow = tmp_path / "wf.yml"
    workflow.write_text("- shell: 'true'\n")
    jobs = manager()
    record = await jobs.submit(request(workflow, repo))
    workflow.unlink()  # edited away while it waited: it fails to start
    loads = []
    real_load = workflow_load.load_workflow_async

    async def counted(*args: Any, **kwargs: Any) -> Any:
        loads.append(args)
        if len(loads) > 3:
            raise AssertionError("the scheduler starts the failed job again and again")
        return await real_load(*args, **kwargs)

    # The scheduler imports it when it starts a job (lazily): patched where it lives.
    monkeypatch.setattr(workflow_load, "load_workflow_async", counted)
    disk.fill()
    await jobs._dispatch()
    assert len(loads) == 1
    assert session_store.load(record.id).status is Status.FAILED
    assert stored_status(record.id) == "queued"  # not written yet
    assert [r.id for r in session_store.list_all(status="failed")] == [record.id]
    assert session_store.list_all(status="queued") == []
    assert session_store.counts() == {"failed": 1}

    disk.free()
    assert jobs.mend()
    assert stored_status(record.id) == "failed"
    await jobs._dispatch()
    assert len(loads) == 1


async def test_a_hook_event_whose_job_does_not_fit_waits_in_the_spool_until_there_is_room(
    disk: Disk, repo: Path
):
    commit_files(
        repo,
        {".prodigy/workflows/t.yml": "on: commit\ncommands:\n  - shell: 'true'\n"},
        "add a trigger",
    )
    head = git(repo, "rev-parse", "HEAD").strip()
    folder = paths.spool_dir()
    folder.mkdir(parents=True)
    (folder / "1-1.env").write_bytes(f"TOKEN={TOKEN}\0".encode())
    (folder / "1-1.event").write_text(
        f"version=1\nhook=post-commit\nrepo={repo}\nhead={head}\nbranch=refs/heads/main\nend=1\n"
    )
    jobs = manager()
    inbox = HookInbox(jobs)
    disk.fill()
    await inbox.drain()
    await inbox.drain()  # tried again (as the inbox does every RETRY_SECONDS): still kept
    assert sorted(p.name for p in folder.iterdir()) == ["1-1.env", "1-1.event"]
    assert inbox.waiting == "1-1.event"
    assert [p["event"] for p in inbox.problems] == ["1-1.event"]  # said once, not per try
    assert "waits in the spool until there is room: no space left on" in inbox.problems[0]["error"]
    assert journal.counts() == {}

    disk.free()
    await inbox.drain()
    assert list(folder.iterdir()) == []
    assert inbox.waiting is None
    [queued] = session_store.list_all()
    assert queued.status is Status.QUEUED and queued.triggered_by
    assert session_store.load_private(queued.id)[0]["TOKEN"] == TOKEN


async def test_an_entry_that_cannot_be_set_aside_on_a_full_disk_stays_and_the_inbox_goes_on(
    disk: Disk, monkeypatch: pytest.MonkeyPatch
):
    folder = paths.spool_dir()
    folder.mkdir(parents=True)
    (folder / "2-2.event").write_text("version=2\nend=1\n")
    real_reject = spool.reject

    def reject(entry: Path, reason: str) -> Path:
        if disk.full:  # spool/rejected/ cannot be made
            raise space.no_space(paths.rejected_spool_dir())
        return real_reject(entry, reason)

    monkeypatch.setattr(spool, "reject", reject)
    inbox = HookInbox(manager())
    disk.fill()
    await inbox.drain()  # raises nothing: the inbox task goes on
    assert sorted(p.name for p in folder.iterdir()) == ["2-2.event"]
    assert inbox.waiting == "2-2.event"
    [problem] = inbox.problems
    assert "version '2', expected 1; it cannot be set aside until there is room" in problem["error"]

    disk.free()
    await inbox.drain()
    assert sorted(p.name for p in (paths.rejected_spool_dir()).iterdir()) == [
        "2-2.event",
        "2-2.reason",
    ]
    assert inbox.waiting is None


def test_an_old_journal_drops_finished_environments_even_after_a_crash_before_recovery(
    isolated: Path,
):
    journal.insert(
        "workflow-1-aaaaaa",
        status="completed",
        record={},
        private={"env": {"T": TOKEN}, "args": []},
    )
    journal.connection().execute("PRAGMA user_version=3")  # written by an older prodigyd
    journal.close_all()
    assert journal.counts() == {"completed": 1}  # a daemon opens it, then dies before `recover`
    journal.close_all()
    manager().recover()  # the next daemon
    assert journal.private_of("workflow-1-aaaaaa") == {"args": []}
    journal.close_all()
    assert journal.found_version() == journal.SCHEMA_VERSION


def test_an_old_journal_opened_on_a_full_disk_drops_the_environments_once_there_is_room(
    disk: Disk,
):
    journal.insert(
        "workflow-1-bbbbbb",
        status="cancelled",
        record={},
        private={"env": {"T": TOKEN}, "args": []},
    )
    journal.connection().execute("PRAGMA user_version=3")
    journal.close_all()
    jobs = Scheduler(EngineSettings(), SchedulerSettings(), WorktreePool())
    disk.fill()
    jobs._recover_or_wait()  # the daemon starts: the journal opens (exclusive), the drop fails
    assert journal.degraded() and not jobs.recovered
    disk.free()
    assert jobs.mend()  # reopens the journal shared, then recovers
    assert not journal.degraded() and jobs.recovered
    assert journal.private_of("workflow-1-bbbbbb") == {"args": []}


def test_a_failed_scrub_never_turns_a_recorded_end_into_an_error(disk: Disk, repo: Path):
    env = {f"VAR_{n}": f"{TOKEN}-{n}" for n in range(50)}
    record = session_store.SessionRecord(
        id="workflow-1-cccccc",
        workflow="/w.yml",
        workflow_name="w",
        workflow_sha256="0",
        repo=str(repo),
        repo_id="r",
        original_branch="main",
        worktree="",
        branch="b",
        cwd=str(repo),
        status=Status.RUNNING,
    )
    session_store.create(record, env)
    disk.fail_sql("PRAGMA wal_checkpoint")
    record.status = Status.COMPLETED
    session_store.save(record, defer=True)  # the end is recorded, the scrub owed
    assert stored_status(record.id) == "completed"
    assert journal.private_of(record.id) == {"args": []}
    assert journal.scrub_owed_since() is not None
    jobs = manager()
    jobs._scrub_when_due()  # the daemon is quiet: the scrub is tried, fails, raises nothing
    assert journal.scrub_owed_since() is not None
    disk.heal_sql()
    jobs._scrub_when_due()  # the mender's next tick
    assert journal.scrub_owed_since() is None
    files = b"".join(p.read_bytes() for p in paths.journal_file().parent.glob("journal.db*"))
    assert TOKEN.encode() not in files


def test_a_claude_invocation_that_does_not_fit_is_shown_and_written_once_there_is_room(
    disk: Disk,
):
    def record(step: str) -> dict[str, Any]:
        return {"step": step, "started_at": "2026-01-01T00:00:00.000Z", "status": "timed_out"}

    claude_invocations.add("job-a", record("1"))
    disk.fill()
    claude_invocations.add("job-a", record("1"))  # a full disk never fails the step
    claude_invocations.add("job-a", record("2"))
    shown = claude_invocations.of_session("job-a")
    assert [(r["step"], r["attempt"]) for r in shown] == [("1", 1), ("1", 2), ("2", 1)]
    jobs = manager()
    assert jobs._needs_mending() and not jobs.mend()
    disk.free()
    assert jobs.mend()
    assert not claude_invocations.pending()
    stored = journal.connection().execute("SELECT step FROM claude_invocations ORDER BY seq")
    assert [row["step"] for row in stored] == ["1", "1", "2"]


def test_events_wait_untried_while_the_disk_is_known_to_be_full_and_none_is_lost(disk: Disk):
    log = events.EventLog("repo", "workflow-1-dddddd")
    log.append({"seq": 1})
    disk.fill()
    for seq in range(2, 1002):
        with pytest.raises(NoSpace):
            log.append({"seq": seq})
    assert disk.file_writes == 1  # one try, not one per event (each writing all that wait)
    disk.free()
    log.flush()
    log.close()
    lines = log.path.read_text().splitlines()
    assert [json.loads(line)["seq"] for line in lines] == list(range(1, 1002))


async def test_a_turns_events_wait_untried_while_the_disk_is_known_to_be_full(disk: Disk):
    log = events.EventLog("repo", "workflow-1-dddddd")
    log.append({"seq": 1})
    disk.fill()
    log.append_soon({"seq": 2})
    for _ in range(2):  # the turn's write (the next turn but one) fails: the disk is full
        await asyncio.sleep(0)
    assert disk.file_writes == 1 and log.pending
    for seq in range(3, 1003):
        log.append_soon({"seq": seq})
        for _ in range(2):
            await asyncio.sleep(0)
    assert disk.file_writes == 1  # untried while lines wait and the disk is known full
    disk.free()
    log.flush()
    log.close()
    lines = log.path.read_text().splitlines()
    assert [json.loads(line)["seq"] for line in lines] == list(range(1, 1003))


def test_an_idle_hub_with_events_waiting_for_space_is_kept_until_they_are_written(
    disk: Disk, repo: Path, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setattr(scheduler_module, "IDLE_HUBS", 1)
    monkeypatch.setattr(scheduler_module, "IDLE_HUBS_SLACK", 0)

    def record(n: int) -> session_store.SessionRecord:
        return session_store.SessionRecord(
            id=f"workflow-{n}-eeeeee",
            workflow="/w.yml",
            workflow_name="w",
            workflow_sha256="0",
            repo=str(repo),
            repo_id="r",
            original_branch="main",
            worktree="",
            branch="b",
            cwd=str(repo),
        )

    jobs = manager()
    disk.fill()
    jobs.hub(record(1)).emit("session_finished", status="completed")
    disk.free()
    for n in range(2, 5):  # more idle hubs than kept: the oldest would go first
        jobs.hub(record(n)).emit("session_queued")
    assert "workflow-1-eeeeee" in jobs.hubs
    assert jobs.mend()
    [event] = events.read_events("r", "workflow-1-eeeeee")
    assert event["event_type"] == "session_finished"
    jobs.hub(record(5))
    assert "workflow-1-eeeeee" not in jobs.hubs  # written: it may go now


def test_a_closed_log_loses_no_event_in_silence(disk: Disk, caplog: pytest.LogCaptureFixture):
    log = events.EventLog("repo", "workflow-1-ffffff")
    disk.fill()
    for seq in (1, 2):
        with pytest.raises(NoSpace):
            log.append({"seq": seq})
    log.close()  # the daemon stops before the disk has room
    assert "2 events were lost to a full disk" in caplog.text


def test_the_pid_file_is_private_whole_and_not_fsynced(
    isolated: Path, monkeypatch: pytest.MonkeyPatch
):
    """Start-up does not wait for the disk for a file that means nothing after a reboot;
    its mode does not rely on the daemon's umask."""
    from prodigyd.main import _write_pid_file

    synced: list[int] = []
    real_fsync = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: synced.append(fd) or real_fsync(fd))
    old_umask = os.umask(0)
    try:
        _write_pid_file()
    finally:
        os.umask(old_umask)
    pid_file = paths.pid_file()
    try:
        assert pid_file.read_text() == f"{os.getpid()}\n"
        assert pid_file.stat().st_mode & 0o777 == 0o600
        assert synced == []
        assert sorted(p.name for p in pid_file.parent.iterdir()) == ["prodigyd.pid"]  # no temp
    finally:
        pid_file.unlink()  # it names this very process: no daemon to stop at teardown


def test_an_append_cut_off_by_a_full_disk_leaves_no_torn_line(tmp_path: Path, monkeypatch):
    """Half a line reached the file before ENOSPC: it is cut off again, so the next append
    starts a clean line instead of gluing itself to the torn one."""
    from prodigyd.errors import NoSpace
    from prodigyd.store import atomic

    path = tmp_path / "log.jsonl"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        atomic.append_all(fd, b'{"n":1}\n', path)
        real_write, calls = os.write, []

        def half_then_full(descriptor: int, data: bytes) -> int:
            calls.append(len(data))
            if len(calls) == 1:
                return real_write(descriptor, bytes(data[:5]))
            raise OSError(errno.ENOSPC, "No space left on device")

        monkeypatch.setattr(atomic.os, "write", half_then_full)
        with pytest.raises(NoSpace):
            atomic.append_all(fd, b'{"n":2}\n', path)
        monkeypatch.undo()
        atomic.append_all(fd, b'{"n":3}\n', path)
    finally:
        os.close(fd)
    assert path.read_bytes() == b'{"n":1}\n{"n":3}\n'


async def test_a_job_whose_start_does_not_fit_stays_queued_unrun_until_there_is_room(
    disk: Disk, repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    """Its start is stored once its worktree is ready (Session.run): when the disk fills
    while the worktree is made, the job neither runs nor fails; it stays queued in the
    journal, and runs once, as soon as the disk has room."""
    marker = tmp_path / "ran"
    workflow = tmp_path / "wf.yml"
    workflow.write_text(f"- shell: 'echo x >> {marker}'\n")
    real_acquire = WorktreePool.acquire

    async def acquire_then_fill(self: WorktreePool, *args: Any, **kwargs: Any) -> Any:
        lease = await real_acquire(self, *args, **kwargs)
        disk.fill()  # the worktree is made; the disk fills before the start is stored
        return lease

    monkeypatch.setattr(WorktreePool, "acquire", acquire_then_fill)
    jobs = manager()
    record = await jobs.submit(request(workflow, repo))
    await jobs._dispatch()
    [(_, task)] = jobs.running.values()
    await task
    assert stored_status(record.id) == "queued"
    assert session_store.load(record.id).status is Status.QUEUED
    assert not marker.exists()
    assert jobs.held_back and not jobs.running
    await jobs._dispatch()  # held back: nothing starts while the disk is full
    assert not jobs.running

    monkeypatch.setattr(WorktreePool, "acquire", real_acquire)
    disk.free()
    assert jobs.mend()
    await jobs._dispatch()
    [(_, task)] = jobs.running.values()
    await task
    assert stored_status(record.id) == "completed"  # it ran (changing nothing to merge)
    assert marker.read_text() == "x\n"
