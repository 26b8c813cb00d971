"""A workflow file's text, read safely: the one way the loader reads a file, the workflow
itself and every file it includes (imports, extends, templates, sub-workflows) alike.

The path is a client's: a FIFO or a device is refused unread (files.read_regular), the size
limit is checked before anything is parsed, and bad UTF-8 is an error at its line and column.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from prodigyd import errorcodes
from prodigyd.errors import Location, WorkflowError
from prodigyd.files import failure_reason, read_regular
from prodigyd.workflow.limits import MAX_FILE_BYTES, Deadline, oversize_at
from prodigyd.workflow.load.nodes import Mark
from prodigyd.workflow.load.reader import read_json, read_yaml


def read_source(file: Path | str) -> tuple[str, str]:
    """The text of `file` (absolute) and the SHA-256 of its bytes."""
    try:
        # never more than one byte past the limit: check_size says where it is crossed
        data, _ = read_regular(file, limit=MAX_FILE_BYTES, refuse_larger=False)
    except FileNotFoundError:
        raise WorkflowError(
            "workflow file not found",  # its location names it
            location=Location(str(file)),
            code=errorcodes.WORKFLOW_NOT_FOUND,
        ) from None
    except (OSError, RuntimeError) as exc:  # RuntimeError: a link loop, ~nobody
        why = failure_reason(exc)
        raise WorkflowError(
            f"cannot read workflow file: {why}",
            location=Location(str(file)),
            code=errorcodes.WORKFLOW_NOT_FOUND,
        ) from None
    check_size(data, str(file))
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line, column = _byte_position(data, exc.start)
        raise WorkflowError(
            f"the workflow file is not UTF-8 text (bad byte 0x{data[exc.start]:02x})",
            location=Location(str(file), line, column),
            code=errorcodes.WORKFLOW_NOT_FOUND,
        ) from None
    return text, hashlib.sha256(data).hexdigest()


def parse_text(text: str, source: str, deadline: Deadline) -> tuple[object, Mark | None]:
    """Text to positioned data (nodes.py): `.json` files as JSON, anything else as YAML."""
    if len(text) > MAX_FILE_BYTES // 4:  # cheap: a character is at most four UTF-8 bytes
        check_size(text.encode("utf-8", errors="surrogatepass"), source)
    read = read_json if source.lower().endswith(".json") else read_yaml
    return read(text, source, deadline)


def check_size(data: bytes, source: str) -> None:
    where = oversize_at(data)
    if where is not None:
        raise WorkflowError(
            f"the workflow file is larger than {MAX_FILE_BYTES // 1024} KiB "
            "(the limit is reached here)",
            location=Location(source, *where),
            hint="keep long lists of work items in a separate file (input: in MapReduce)",
            code=errorcodes.WORKFLOW_TOO_LARGE,
        )


def _byte_position(data: bytes, offset: int) -> tuple[int, int]:
    """1-based line and column (in characters) of byte `offset`."""
    start = data.rfind(b"\n", 0, offset) + 1
    column = len(data[start:offset].decode("utf-8", errors="replace")) + 1
    return data.count(b"\n", 0, offset) + 1, column
