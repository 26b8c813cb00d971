"""JSON Lines: one JSON object a line, the way prodigy writes and reads them all.

The event logs (store/events.py) and checkpoint journals (store/checkpoints.py) are
written here and read back here, and Claude's stream-json output (claude/cli.py) is parsed
here line by line. Reading forgives alike everywhere: a line that is not one whole JSON
object (the torn last line a crash leaves, even one cut inside a UTF-8 character; a plain
text line claude prints; absurd nesting) is no record, and never an exception.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

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


def read(path: Path) -> Iterator[dict[str, Any]]:
    """Every whole record of the file at `path`, in order; none when it does not exist.
    A line skipped is logged (once a daemon): what it held is lost to every reader."""
    try:
        with open(path, "rb") as fh:
            for number, raw in enumerate(fh, start=1):
                try:
                    record = parse(raw.decode("utf-8"))
                except UnicodeDecodeError:
                    record = None
                if record is not None:
                    yield record
                elif raw.strip():
                    _skipped(path, number)
    except FileNotFoundError:
        return


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
        "was damaged): a checkpoint's step runs again on resume, an event is not shown",
        path,
        number,
    )
