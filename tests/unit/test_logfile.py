"""prodigyd.log's rotation: the one older file kept, nothing lost but what is two
generations old."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import pytest

from prodigyd.logfile import RotatingLog


def _log(handler: RotatingLog, *messages: str) -> None:
    for message in messages:
        handler.handle(logging.makeLogRecord({"msg": message, "levelno": logging.INFO}))


def test_a_record_that_would_pass_the_limit_goes_to_a_new_file(tmp_path: Path):
    path = tmp_path / "prodigyd.log"
    handler = RotatingLog(path, max_bytes=20)
    try:
        _log(handler, "first-123456", "second-1234", "third-12345")
    finally:
        handler.close()
    assert path.read_text() == "third-12345\n"
    assert (tmp_path / "prodigyd.log.1").read_text() == "second-1234\n"
    assert sorted(p.name for p in tmp_path.glob("prodigyd.log*")) == [
        "prodigyd.log",
        "prodigyd.log.1",
    ]


def test_a_record_larger_than_the_limit_is_written_whole_into_an_empty_file(tmp_path: Path):
    path = tmp_path / "prodigyd.log"
    handler = RotatingLog(path, max_bytes=5)
    try:
        _log(handler, "longer than five bytes")
    finally:
        handler.close()
    assert path.read_text() == "longer than five bytes\n"
    assert not (tmp_path / "prodigyd.log.1").exists()


def test_it_appends_to_what_an_earlier_daemon_wrote_and_counts_it(tmp_path: Path):
    path = tmp_path / "prodigyd.log"
    path.write_text("x" * 15 + "\n")
    handler = RotatingLog(path, max_bytes=20)
    try:
        _log(handler, "next")
    finally:
        handler.close()
    assert (tmp_path / "prodigyd.log.1").read_text() == "x" * 15 + "\n"
    assert path.read_text() == "next\n"


def test_no_limit_never_rotates(tmp_path: Path):
    path = tmp_path / "prodigyd.log"
    handler = RotatingLog(path, max_bytes=0)
    try:
        _log(handler, *[f"line {n}" for n in range(100)])
    finally:
        handler.close()
    assert len(path.read_text().splitlines()) == 100
    assert not (tmp_path / "prodigyd.log.1").exists()


def test_a_rotation_that_fails_loses_no_record_and_the_next_one_rotates(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    path = tmp_path / "prodigyd.log"
    handler = RotatingLog(path, max_bytes=20)
    real_open = handler._open
    failures = [OSError(24, "Too many open files")]

    def open_once_failing() -> Any:
        if failures:
            raise failures.pop()
        return real_open()

    monkeypatch.setattr(handler, "_open", open_once_failing)
    monkeypatch.setattr(logging, "raiseExceptions", False)  # handleError: say nothing
    try:
        _log(handler, "first-123456", "second-1234", "third-12345")
    finally:
        handler.close()
    assert (tmp_path / "prodigyd.log.1").read_text() == "second-1234\n"
    assert path.read_text() == "third-12345\n"


def test_a_log_pointed_at_a_fifo_is_written_to_and_never_moved(tmp_path: Path):
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    path = tmp_path / "prodigyd.log"
    path.symlink_to(fifo)
    reader = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
    try:
        handler = RotatingLog(path, max_bytes=10)
        try:
            _log(handler, "hello-world-1", "hello-world-2")
        finally:
            handler.close()
        assert os.read(reader, 1000) == b"hello-world-1\nhello-world-2\n"
    finally:
        os.close(reader)
    assert path.is_symlink() and not (tmp_path / "prodigyd.log.1").exists()
