"""An agent's log file is a copy of its events: one that cannot be written (a disk filled
meanwhile) ends the copy with a warning, never the agent (engine/mapreduce/runner.py)."""

from __future__ import annotations

import errno
import io
import logging
from typing import Any

import pytest

from prodigyd.engine.mapreduce.runner import AgentSink
from prodigyd.engine.mask import Masker


class _FullDisk(io.StringIO):
    name = "item_3.attempt-1.log"

    def write(self, text: str) -> int:
        raise OSError(errno.ENOSPC, "No space left on device")


class _Events:
    def __init__(self) -> None:
        self.seen: list[tuple[str, dict[str, Any]]] = []

    def emit(self, event_type: str, /, **fields: Any) -> None:
        self.seen.append((event_type, fields))


def test_a_log_the_disk_cannot_take_is_given_up_and_the_events_go_on(
    caplog: pytest.LogCaptureFixture,
):
    events = _Events()
    sink = AgentSink(events, "agent-1", "item_3", _FullDisk(), Masker())
    with caplog.at_level(logging.WARNING):
        sink.emit("step_output", line="one")
        sink.emit("step_output", line="two")
        sink.close()
    assert [fields["line"] for _, fields in events.seen] == ["one", "two"]
    assert all(fields["item_id"] == "item_3" for _, fields in events.seen)
    warned = [r.getMessage() for r in caplog.records if "agent log" in r.getMessage()]
    assert warned == [
        "agent log item_3.attempt-1.log: [Errno 28] No space left on device; "
        "the rest of it is in the events"
    ]
