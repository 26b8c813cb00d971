"""A session's running time in the analytics (prodigyd/api/analytics.py): the kept
`budget_used.seconds` when there is one, 0 s included; start to end only for a record
from before it was kept."""

from __future__ import annotations

import sqlite3

import pytest

from prodigyd.api.analytics import _duration


@pytest.mark.parametrize(("ran_seconds", "expected"), [(0.0, 0.0), (2.5, 2.5), (None, 10.0)])
def test_the_running_time_kept_is_used_even_when_it_is_zero(
    ran_seconds: float | None, expected: float
) -> None:
    db = sqlite3.connect(":memory:")
    db.row_factory = sqlite3.Row
    row = db.execute(
        "SELECT ? AS ran_seconds, ? AS started_at, ? AS completed_at",
        (ran_seconds, "2026-01-01T00:00:00+00:00", "2026-01-01T00:00:10+00:00"),
    ).fetchone()
    db.close()
    assert _duration(row) == expected
