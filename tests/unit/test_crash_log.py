"""prodigyctl's crash log: one file per crash, however many crash in the same second."""

from __future__ import annotations

from pathlib import Path

import pytest

from prodigyctl.errors import error_handler
from prodigyctl.exitcodes import EXIT_CRASH


def test_crashes_in_the_same_second_each_keep_their_log(isolated: Path):
    for number in range(20):
        with pytest.raises(SystemExit) as exited, error_handler():
            raise RuntimeError(f"boom {number}")
        assert exited.value.code == EXIT_CRASH
    logs = sorted((isolated / "logs").glob("prodigyctl-crash-*.log"))
    assert len(logs) == 20
    assert {log.stat().st_mode & 0o777 for log in logs} == {0o600}  # they hold tracebacks
    assert {log.read_text().rsplit("RuntimeError: ", 1)[1].strip() for log in logs} == {
        f"boom {n}" for n in range(20)
    }
