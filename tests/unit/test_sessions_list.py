"""`sessions.list` by several statuses (what `ps` asks): the active jobs of a store, however
many finished after them, newest first, through the journal's status index; and `sessions
ls --status` as a user types it."""

from __future__ import annotations

import json
import typing

import pydantic
import pytest

from prodigyctl.commands.status import JOB_STATES
from prodigyd.api import schemas
from prodigyd.store import sessions as session_store
from prodigyd.store.sessions import Status
from tests.cli import ctl
from tests.retentionkit import session_record


def test_the_active_jobs_are_listed_however_many_finished_after_them() -> None:
    statuses = [Status.RUNNING, Status.QUEUED, Status.QUEUED] + [Status.COMPLETED] * 30
    ids = []
    for n, status in enumerate(statuses):
        record = session_record(n, status=status)
        session_store.create(record, {})
        ids.append(record.id)
    active = session_store.list_all(5, ["queued", "running"])
    assert [r.id for r in active] == [ids[2], ids[1], ids[0]]  # newest first
    # the old question (the newest N, filtered afterwards) misses them
    assert not [r for r in session_store.list_all(5) if r.status is not Status.COMPLETED]
    assert [r.id for r in session_store.list_all(5, "queued")] == [ids[2], ids[1]]


def test_a_job_is_listed_by_its_status_now() -> None:
    record = session_record(1, status=Status.QUEUED)
    session_store.create(record, {})
    record.status = Status.FAILED
    session_store.save(record)
    assert session_store.list_all(10, ["queued", "running"]) == []
    assert [r.id for r in session_store.list_all(10, ["failed", "running"])] == [record.id]


def test_the_statuses_asked_for_are_checked() -> None:
    assert schemas.ListParams.model_validate({"status": ["queued", "running"]}).status == [
        "queued",
        "running",
    ]
    with pytest.raises(pydantic.ValidationError):
        schemas.ListParams.model_validate({"status": ["queued", "sleeping"]})


def test_an_unknown_status_is_a_usage_error_naming_the_statuses() -> None:
    allowed = "queued, running, awaiting_merge, completed, failed, interrupted, cancelled"
    done = ctl("sessions", "ls", "--status", "bogus")  # refused before any daemon is asked
    assert (done.returncode, done.stdout) == (2, "")
    assert done.stderr.endswith(
        f"error[E0002]: Invalid value for '--status': 'bogus' is not a status: use one of "
        f"{allowed}\n"
    )
    assert "literal" not in done.stderr
    error = json.loads(ctl("sessions", "ls", "--status", "bogus", "--json").stderr)["error"]
    assert error["code"] == "E0002" and error["message"].endswith(allowed)


def test_the_client_knows_every_status_the_daemon_does() -> None:
    assert set(JOB_STATES) == set(typing.get_args(schemas.SessionStatus))
