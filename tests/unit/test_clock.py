"""The stored timestamp: `now_iso` writes what `iso` writes for the same moment."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest

from prodigyd import clock


@pytest.mark.parametrize(
    "ns",
    [
        1_796_000_000_999_999_999,  # the last nanosecond of a millisecond: cut, not rounded
        1_796_000_001_000_000_000,  # a whole second
        1_796_000_001_007_000_001,  # the next second: its text is made again
        1_796_000_001_450_500_000,
    ],
)
def test_now_iso_is_iso_of_the_same_moment(monkeypatch: pytest.MonkeyPatch, ns: int):
    monkeypatch.setattr(time, "time_ns", lambda: ns)
    seconds, rest = divmod(ns, 1_000_000_000)
    moment = datetime.fromtimestamp(seconds, UTC) + timedelta(microseconds=rest // 1000)
    assert clock.now_iso() == clock.iso(moment)
    assert clock.now_iso().endswith("Z") and len(clock.now_iso()) == len("2026-11-25T15:22:04.916Z")
