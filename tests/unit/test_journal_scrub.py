"""When the daemon scrubs the journal's write-ahead log of the environments jobs dropped as
they ended (scheduler.py, `_scrub_when_due`, at each of the mender's ticks): once it is
quiet, or SCRUB_AT_MOST_SECONDS after the first drop while jobs keep starting. And when it
syncs the log of the commits that did not wait for the disk (`_sync_when_idle`): once no
job runs."""

from __future__ import annotations

import asyncio
import logging
import os
import time
from pathlib import Path
from typing import Any

import pytest

from prodigyd import paths
from prodigyd.engine.context import EngineSettings
from prodigyd.errors import NoSpace
from prodigyd.pool import WorktreePool
from prodigyd.scheduler import SCRUB_AT_MOST_SECONDS, Scheduler, SchedulerSettings
from prodigyd.store import journal
from prodigyd.store import sessions as session_store

TOKEN = "tok-Wq2vL9mX8pR4tY6wKp3nB5cD9fG1hJ0eQ7a1"


def in_journal_files() -> bool:
    path = paths.journal_file()
    return TOKEN.encode() in b"".join(p.read_bytes() for p in path.parent.glob("journal.db*"))


def a_job_ended(job_id: str) -> None:
    journal.insert(job_id, status="running", record={}, private={"env": {"T": TOKEN}, "args": []})
    journal.update(job_id, status="completed", forget_env=True)


@pytest.fixture
def jobs(isolated: Path) -> Scheduler:
    return Scheduler(EngineSettings(), SchedulerSettings(), WorktreePool())


def run_one(jobs: Scheduler) -> None:
    """What `_start` counts: a session started (and still running, until `finish`)."""
    jobs._starts += 1
    jobs.running["workflow-9-000000"] = (Any, Any)  # type: ignore[assignment]


def finish(jobs: Scheduler) -> None:
    jobs.running.clear()


def test_nothing_is_scrubbed_while_jobs_run_or_start_then_once_quiet(jobs: Scheduler):
    a_job_ended("workflow-1-aaaaaa")
    run_one(jobs)  # the next job runs
    jobs._scrub_when_due()
    assert in_journal_files() and journal.scrub_owed_since() is not None
    finish(jobs)
    run_one(jobs)  # another job starts and ends between two ticks
    finish(jobs)
    jobs._scrub_when_due()
    assert in_journal_files()
    jobs._scrub_when_due()  # a tick with no job running nor started since the one before
    assert not in_journal_files() and journal.scrub_owed_since() is None


def test_while_jobs_keep_starting_the_scrub_waits_at_most_so_long(
    jobs: Scheduler, monkeypatch: pytest.MonkeyPatch
):
    a_job_ended("workflow-1-bbbbbb")
    run_one(jobs)
    jobs._scrub_when_due()
    assert in_journal_files()
    owed = journal.scrub_owed_since()
    assert owed is not None
    later = owed + SCRUB_AT_MOST_SECONDS
    monkeypatch.setattr(time, "monotonic", lambda: later)
    run_one(jobs)
    jobs._scrub_when_due()
    assert not in_journal_files()


def test_the_mender_scrubs_a_quiet_daemon_by_itself(
    jobs: Scheduler, monkeypatch: pytest.MonkeyPatch
):
    """The running scheduler: no call but its own tasks (the mender's tick shortened)."""
    monkeypatch.setattr("prodigyd.scheduler.MEND_SECONDS", 0.01)

    async def scenario() -> bool:
        jobs.start()
        try:
            a_job_ended("workflow-1-cccccc")
            for _ in range(500):
                if journal.scrub_owed_since() is None:
                    return not in_journal_files()
                await asyncio.sleep(0.01)
            return False
        finally:
            await jobs.shutdown()

    assert asyncio.run(scenario())


def test_the_mender_lives_on_when_a_scrub_raises(
    jobs: Scheduler, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
):
    """Whatever a tick raises is logged: the mender is what writes a full disk's backlog
    and scrubs, and a task that ended would leave both undone for good."""
    monkeypatch.setattr("prodigyd.scheduler.MEND_SECONDS", 0.01)
    ticks = []

    def broken() -> None:
        ticks.append(1)
        raise RuntimeError("a bug")

    monkeypatch.setattr(jobs, "_scrub_when_due", broken)

    async def scenario() -> None:
        jobs.start()
        try:
            for _ in range(500):
                if len(ticks) >= 3:
                    break
                await asyncio.sleep(0.01)
            assert jobs._mender is not None and not jobs._mender.done()
        finally:
            await jobs.shutdown()

    asyncio.run(scenario())
    assert len(ticks) >= 3
    assert "mending the store failed" in caplog.text


def test_a_scrub_that_fails_is_said_once_until_one_succeeds(
    isolated: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
):
    a_job_ended("workflow-1-dddddd")
    real = journal.connection

    def full() -> Any:
        raise NoSpace("no space left on device", path=str(paths.journal_file()))

    monkeypatch.setattr(journal, "connection", full)
    assert not journal.scrub() and not journal.scrub()  # never raised
    assert caplog.text.count("could not be emptied") == 1
    monkeypatch.setattr(journal, "connection", real)
    assert journal.scrub() and not in_journal_files()
    a_job_ended("workflow-2-dddddd")
    monkeypatch.setattr(journal, "connection", full)
    assert not journal.scrub()
    assert caplog.text.count("could not be emptied") == 2  # failing again, after a success


def test_a_resume_with_a_new_environment_owes_a_scrub_of_the_old(isolated: Path):
    journal.insert(
        "workflow-1-eeeeee", status="failed", record={}, private={"env": {"T": TOKEN}, "args": []}
    )
    journal.scrub()
    session_store.save_private("workflow-1-eeeeee", {"T": "new"}, [])
    assert journal.scrub_owed_since() is not None
    assert journal.scrub() and not in_journal_files()


def synced_files(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The files os.fdatasync is called on from now (it still syncs them)."""
    files: list[str] = []
    real = os.fdatasync

    def recording(fd: int) -> None:
        files.append(os.readlink(f"/proc/self/fd/{fd}"))
        real(fd)

    monkeypatch.setattr(os, "fdatasync", recording)
    return files


def test_sync_log_syncs_the_journals_write_ahead_log(
    isolated: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
):
    a_job_ended("workflow-1-ffffff")  # its end: a commit that did not wait for the disk
    synced = synced_files(monkeypatch)
    journal.sync_log()
    assert synced == [f"{paths.journal_file()}-wal"]

    def failing(fd: int) -> None:
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(os, "fdatasync", failing)
    with caplog.at_level(logging.WARNING, logger="prodigyd.journal"):
        journal.sync_log()  # never raised: nothing waits for it
    assert "could not be synced (" in caplog.text and "Input/output error" in caplog.text


def test_a_durable_commit_syncs_the_log_and_only_a_durable_one(
    isolated: Path, monkeypatch: pytest.MonkeyPatch
):
    journal.insert("workflow-1-hhhhhh", status="queued", record={}, private={})
    synced = synced_files(monkeypatch)
    journal.update("workflow-1-hhhhhh", status="running")  # the engine's: need not wait
    assert synced == []
    journal.insert("workflow-2-hhhhhh", status="queued", record={}, private={})  # a submission
    journal.update("workflow-1-hhhhhh", status="cancelled", durable=True)  # a client's cancel
    assert synced == [f"{paths.journal_file()}-wal"] * 2
    assert journal.connection().execute("PRAGMA synchronous").fetchone()[0] == 1  # NORMAL


def test_a_sync_that_fails_for_want_of_space_is_no_space(
    isolated: Path, monkeypatch: pytest.MonkeyPatch
):
    """The commit is made but not known durable: the submission is not acknowledged."""

    def full(fd: int) -> None:
        raise OSError(28, "No space left on device")

    journal.insert("workflow-1-iiiiii", status="queued", record={}, private={})
    monkeypatch.setattr(os, "fdatasync", full)
    with pytest.raises(NoSpace):
        journal.insert("workflow-2-iiiiii", status="queued", record={}, private={})


def test_a_journal_without_a_log_has_nothing_to_sync(
    isolated: Path, monkeypatch: pytest.MonkeyPatch
):
    synced = synced_files(monkeypatch)
    journal.sync_log()  # no journal opened yet: no log file
    assert synced == [] and not Path(f"{paths.journal_file()}-wal").exists()


def test_the_scheduler_syncs_the_log_once_no_job_runs(
    jobs: Scheduler, monkeypatch: pytest.MonkeyPatch
):
    """The running scheduler: a job's end leaves it with none running, and the log is
    synced in a worker thread; while one runs, it is not."""
    import threading

    threads: list[threading.Thread] = []
    real = journal.sync_log

    def recording() -> None:
        threads.append(threading.current_thread())
        real()

    monkeypatch.setattr(journal, "sync_log", recording)

    async def scenario() -> tuple[int, int]:
        jobs.start()
        try:
            await asyncio.sleep(0.05)  # the scheduler's first (idle) dispatch
            threads.clear()
            run_one(jobs)
            a_job_ended("workflow-1-gggggg")
            jobs._wake.set()
            await asyncio.sleep(0.05)
            while_running = len(threads)
            finish(jobs)
            jobs._wake.set()  # as a session's end wakes it (`_run`)
            for _ in range(500):
                if threads:
                    break
                await asyncio.sleep(0.01)
            return while_running, len(threads)
        finally:
            await jobs.shutdown()

    assert asyncio.run(scenario()) == (0, 1)
    assert threads[0] is not threading.main_thread()
