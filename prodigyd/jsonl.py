"""JSON Lines: one JSON object a line, the way prodigy writes and reads them all.

The event logs (store/events.py) and checkpoint journals (store/checkpoints.py) are
written here and read back here, and Claude's stream-json output (claude/cli.py) is parsed
here line by line. Reading forgives alike everywhere: a line that is not one whole JSON
object (the torn last line a crash leaves, even one cut inside a UTF-8 character; a plain
text line claude prints; absurd nesting) is no record, and never an exception. Only a
regular file is read (files.open_regular): anything else raises, never waits.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from prodigyd.files import open_regular

#: Made once: `json.dumps` with options builds an encoder per call, and every event and
#: checkpoint record is encoded here.
_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))


def encode(record: dict[str, Any]) -> bytes:
    """`record` as one line: compact, UTF-8, newline-terminated."""
    return (_ENCODER.encode(record) + "\n").encode()


def parse(line: str) -> dict[str, Any] | None:
    """The JSON object `line` holds, or None when it holds none."""
    try:
        value = json.loads(line)
    except (ValueError, RecursionError):  # RecursionError: absurdly nested JSON
        return None
    return value if isinstance(value, dict) else None


def lines(path: Path) -> Iterator[tuple[int, dict[str, Any] | None]]:
    """Each line of the file at `path` that is not blank, as its number and the record it
    holds (None: none); nothing when the file does not exist. Only a regular file is read:
    a FIFO in its place would hold the event loop until a writer came, so it (or a folder,
    a device) raises files.Unreadable, an OSError."""
    try:
        fd, _ = open_regular(path)
    except FileNotFoundError:
        return
    with open(fd, "rb") as fh:
        for number, raw in enumerate(fh, start=1):
            if raw.strip():
                yield number, record_of(raw)


def read(path: Path) -> Iterator[dict[str, Any]]:
    """Every whole record of the file at `path`, in order (`lines`). A line skipped is
    logged (once a daemon): what it held is lost to every reader."""
    for number, record in lines(path):
        if record is not None:
            yield record
        else:
            _skipped(path, number)


def record_of(raw: bytes) -> dict[str, Any] | None:
    """The JSON object a line's bytes hold, or None (bytes that are no UTF-8 hold none)."""
    try:
        return parse(raw.decode("utf-8"))
    except UnicodeDecodeError:
        return None


#: Lines already logged as skipped (path, number): a log read again is not logged again.
_SKIPPED: set[tuple[str, int]] = set()
_SKIPPED_KEPT = 1000


def _skipped(path: Path, number: int) -> None:
    where = (str(path), number)
    if where in _SKIPPED or len(_SKIPPED) >= _SKIPPED_KEPT:
        return
    _SKIPPED.add(where)
    import logging  # here: rare, and the client imports this module

    logging.getLogger("prodigyd.store").warning(
        "%s:%d: not a whole JSON record, skipped (a crash cuts off a last line; any other "
        "was damaged): an event is not shown; a checkpoint journal's last line is a step "
        "that runs again on resume, and any other stops `prodigyctl resume` (docs/daemon.md)",
        path,
        number,
    )
