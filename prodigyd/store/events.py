"""The per-session event log: one JSON object a line under `events/<repo-id>/<session-id>/`.

Each record carries `seq` (1-based, per session), `timestamp`, `event_type`, `session_id` and
the event's own fields. Lines are flushed as they are written so `tail -f` and a reconnecting
client see them at once; the checkpoint, not this log, is the durable record of progress, so
the log is not fsync'd per line (a crash may lose the last few lines, never a completed step).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TextIO

from prodigyd import paths
from prodigyd.store.atomic import ensure_dir


class EventLog:
    """Append-only writer for one session's events."""

    def __init__(self, repo_id: str, session_id: str) -> None:
        folder = ensure_dir(paths.events_dir(repo_id, session_id))
        self.path = folder / f"events-{time.strftime('%Y%m%d_%H%M%S')}-{os.getpid()}.jsonl"
        self._file: TextIO | None = None

    def append(self, record: dict[str, Any]) -> None:
        if self._file is None:
            fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
            self._file = os.fdopen(fd, "a", encoding="utf-8")
        self._file.write(json.dumps(record, ensure_ascii=False, separators=(",", ":")) + "\n")
        self._file.flush()

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


def read_events(repo_id: str, session_id: str) -> Iterator[dict[str, Any]]:
    """Every stored event of a session in order; a torn last line (crash) is skipped."""
    folder = paths.events_dir(repo_id, session_id)
    if not folder.is_dir():
        return
    for path in sorted(folder.glob("events-*.jsonl"), key=_mtime):
        with open(path, encoding="utf-8") as fh:
            for line in fh:
                try:
                    record = json.loads(line)
                except ValueError:
                    continue
                if isinstance(record, dict):
                    yield record


def _mtime(path: Path) -> float:
    return path.stat().st_mtime
