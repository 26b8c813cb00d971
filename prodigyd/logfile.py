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
        try:
            if self.max_bytes and self._full(record):
                self._rotate()
        except Exception:
            self.handleError(record)
            return
        super().emit(record)

    def _full(self, record: logging.LogRecord) -> bool:
        if self.stream is None:
            return False
        self.stream.seek(0, os.SEEK_END)  # another writer (a restarted daemon) may have added
        size = self.stream.tell()
        return size > 0 and size + len(self.format(record)) + len(self.terminator) >= self.max_bytes

    def _rotate(self) -> None:
        if self.stream is not None:
            self.stream.close()
        with contextlib.suppress(FileNotFoundError):
            os.replace(self.baseFilename, f"{self.baseFilename}.1")
        self.stream = self._open()
