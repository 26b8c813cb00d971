"""prodigyd.log, moved to prodigyd.log.1 (the one older file kept) once it would pass its
size limit.

logging.handlers' RotatingFileHandler does the same, but its module imports pickle (for
its socket handlers) and with it ~0.4 MB a daemon would hold for good; this is the part
of it the daemon uses.
"""

from __future__ import annotations

import contextlib
import logging
import os
from pathlib import Path


class RotatingLog(logging.FileHandler):
    """Appends to `path`; a record that would take it to `max_bytes` or past it first
    moves it to `path.1` (replacing the older one) and starts a new file. 0: never."""

    def __init__(self, path: Path, max_bytes: int) -> None:
        super().__init__(path, encoding="utf-8")
        self.max_bytes = max_bytes

    def emit(self, record: logging.LogRecord) -> None:
        """A rotation that fails is reported (logging's handleError) and the record written
        all the same, into the file open or opened again."""
        try:
            if self.max_bytes and self._full(record):
                self._rotate()
        except Exception:
            self.handleError(record)
        super().emit(record)

    def _full(self, record: logging.LogRecord) -> bool:
        """Whether `record` would take the file to `max_bytes`: never for an empty file (a
        record larger than the limit is written whole), nor for anything but a regular
        file (a FIFO or a terminal the log was pointed at is written to, never moved)."""
        stream = self.stream
        if stream is None or not os.path.isfile(self.baseFilename):
            return False
        try:
            stream.seek(0, os.SEEK_END)  # another writer (a restarted daemon) may have added
            size = stream.tell()
        except OSError:
            return False
        return size > 0 and size + len(self.format(record)) + len(self.terminator) >= self.max_bytes

    def _rotate(self) -> None:
        stream, self.stream = self.stream, None  # emit opens it again should the rest fail
        if stream is not None:
            stream.close()
        with contextlib.suppress(FileNotFoundError):
            os.replace(self.baseFilename, f"{self.baseFilename}.1")
        self.stream = self._open()
