"""prodigyctl's crash log: one file per crash, however many crash in the same second, and
a crash report that never crashes itself."""

from __future__ import annotations

import json
import sys
import tempfile
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


def crash(capsys: pytest.CaptureFixture[str]) -> str:
    """What a crash of a command prints on stderr; it exits EXIT_CRASH."""
    with pytest.raises(SystemExit) as exited, error_handler():
        raise RuntimeError("boom")
    assert exited.value.code == EXIT_CRASH
    return capsys.readouterr().err


def test_a_crash_log_its_home_cannot_take_goes_to_the_temp_folder(
    isolated: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
):
    isolated.write_text("a file where the home should be\n")
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    said = crash(capsys)
    assert said.startswith("error[E2007]: prodigyctl crashed; details in ")
    log = Path(said.split("details in ", 1)[1].strip())
    assert log.parent == tmp_path and "RuntimeError: boom" in log.read_text()


def test_with_nowhere_to_write_a_crash_log_the_traceback_is_printed(
    isolated: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
):
    isolated.write_text("a file where the home should be\n")
    monkeypatch.setattr(tempfile, "tempdir", str(isolated / "tmp"))  # under that file too
    said = crash(capsys)
    assert said.startswith(
        "error[E2007]: prodigyctl crashed, and no crash log could be written:\nprodigyctl crash"
    )
    assert said.rstrip().endswith("RuntimeError: boom")


def test_a_crash_under_json_is_an_error_object(
    isolated: Path, monkeypatch: pytest.MonkeyPatch, capsys
):
    monkeypatch.setattr(sys, "argv", ["prodigyctl", "sessions", "ls", "--json"])
    error = json.loads(crash(capsys))["error"]
    assert error["code"] == "E2007" and error["message"].startswith("prodigyctl crashed; details")
