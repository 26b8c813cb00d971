"""A session's event log writes a turn of the event loop's events in one write, once the task
that made them has gone on (store/events.py, `append_soon`): never out of order, never lost
at close."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from prodigyd.store import events


async def _next_turns() -> None:
    """Until a turn's events are written (`append_soon`: the next turn but one)."""
    for _ in range(2):
        await asyncio.sleep(0)


def _seqs(log: events.EventLog) -> list[int]:
    if not log.path.exists():
        return []
    return [json.loads(line)["seq"] for line in log.path.read_text().splitlines()]


async def test_a_turns_events_are_written_in_one_write_after_their_task_goes_on(
    isolated: Path, monkeypatch: pytest.MonkeyPatch
):
    writes: list[bytes] = []
    real = events.append_all
    monkeypatch.setattr(
        events, "append_all", lambda fd, data, path: writes.append(data) or real(fd, data, path)
    )
    log = events.EventLog("repo", "workflow-1-aaaaaa")
    log.append({"seq": 1})  # written at once, as before
    for seq in (2, 3, 4):
        log.append_soon({"seq": seq})
    assert _seqs(log) == [1]  # this turn is not over
    await asyncio.sleep(0)  # as StepRunner.run yields before a spawn: that goes first
    assert _seqs(log) == [1]
    await asyncio.sleep(0)
    assert _seqs(log) == [1, 2, 3, 4]
    assert len(writes) == 2 and not log.pending
    log.append_soon({"seq": 5})
    log.append({"seq": 6})  # a direct append writes what waits first: order is kept
    assert _seqs(log) == [1, 2, 3, 4, 5, 6]
    log.close()


async def test_close_writes_the_turns_events(isolated: Path):
    log = events.EventLog("repo", "workflow-1-bbbbbb")
    log.append_soon({"seq": 1})
    log.append_soon({"seq": 2})
    log.close()
    assert _seqs(log) == [1, 2]
    await _next_turns()  # the write the turn planned writes nothing twice
    assert _seqs(log) == [1, 2]


def test_without_a_loop_an_event_is_written_at_once(isolated: Path):
    log = events.EventLog("repo", "workflow-1-cccccc")
    log.append_soon({"seq": 1})
    assert _seqs(log) == [1]
    log.close()


async def test_an_event_that_is_not_json_is_dropped_alone(
    isolated: Path, caplog: pytest.LogCaptureFixture
):
    """A bug's event (a value of no JSON type) must not hold up the events after it, nor
    make the log's close (at a daemon stop) raise."""
    log = events.EventLog("repo", "workflow-1-dddddd")
    log.append_soon({"seq": 1})
    log.append_soon({"seq": 2, "what": object()})
    log.append_soon({"seq": 3, "text": "\udc80"})  # a lone surrogate: no UTF-8
    log.append_soon({"seq": 4})
    await _next_turns()
    assert _seqs(log) == [1, 4]
    log.append_soon({"seq": 5, "what": {1, 2}})
    log.close()
    assert _seqs(log) == [1, 4]
    assert sum("not JSON" in r.getMessage() for r in caplog.records) == 3
