"""Reading workflow files: YAML or JSON text in, a validated `Workflow` (or one clear error) out.

Why not `Workflow.model_validate(yaml.safe_load(text))`:

* Errors must name file, line and field (`commands[2].timeout`, line 14). pydantic only knows
  paths into Python objects, so the YAML is composed into containers that remember where each
  node and key was written, and every model is validated where its position is still known.
* The original accepts many spellings that are not one schema (reference §2.2, §2.6) and
  silently ignored keys it did not know. Each spelling is mapped here onto the one canonical
  model, and every key we do not use is reported: a warning, or an error with `strict`.
* Scalars are resolved as YAML 1.2, like the original's serde_yaml: `on`/`yes` stay strings,
  `0644` is not octal and `1:30` is not ninety.

This module is the way in (a file or text, the cache of parsed files); the parts:
reader.py (text to positioned data: nodes.py), document.py (the top level, a standard
workflow), mapreduce.py (setup, map, reduce), steps.py (every step, with retry.py and
legacy.py), keys.py (which keys each mapping may have, from the models) and diagnostics.py
(problems at file:line:col).
"""

from __future__ import annotations

import asyncio
import hashlib
import threading
from dataclasses import dataclass
from hashlib import sha256
from pathlib import Path
from typing import Literal

from prodigyd.errors import Location, WorkflowError
from prodigyd.files import failure_reason, read_regular
from prodigyd.workflow.limits import MAX_FILE_BYTES, Deadline, oversize_at
from prodigyd.workflow.load.diagnostics import Context
from prodigyd.workflow.load.document import empty_error, refuse_unsupported, standard_workflow
from prodigyd.workflow.load.mapreduce import is_mapreduce, mapreduce_workflow
from prodigyd.workflow.load.nodes import Map
from prodigyd.workflow.load.reader import read_json, read_yaml
from prodigyd.workflow.model import Workflow

__all__ = ["LoadedWorkflow", "load_workflow", "load_workflow_async", "parse_workflow"]


@dataclass
class LoadedWorkflow:
    """A parsed workflow plus what the user should hear about it.

    `sha256` is of the raw file bytes, so resume can refuse a workflow edited since the run.
    """

    workflow: Workflow
    warnings: list[str]
    sha256: str
    path: Path


async def load_workflow_async(path: Path | str, *, strict: bool = False) -> LoadedWorkflow:
    """load_workflow in a worker thread: what the daemon calls, so that reading a large or
    hostile file (bounded by prodigyd.workflow.limits, time included) never stalls the
    event loop and every other client keeps its answers."""
    return await asyncio.to_thread(load_workflow, path, strict=strict)


def load_workflow(path: Path | str, *, strict: bool = False) -> LoadedWorkflow:
    """Read and parse a workflow file; `.json` is JSON, anything else YAML.

    Blocking (up to the limits' time); inside the daemon use load_workflow_async. The path
    is a client's: a FIFO or a device is refused unread (files.read_regular), not waited on.
    """
    file = Path(path)
    try:
        file = file.expanduser().absolute().resolve()
        # never more than one byte past the limit: _check_size says where it is crossed
        data, _ = read_regular(file, limit=MAX_FILE_BYTES, refuse_larger=False)
    except FileNotFoundError:
        raise WorkflowError(
            f"workflow file not found: {file}", location=Location(str(file))
        ) from None
    except (OSError, RuntimeError) as exc:  # RuntimeError: a link loop, ~nobody
        why = failure_reason(exc)
        raise WorkflowError(
            f"cannot read workflow file: {why}", location=Location(str(file))
        ) from None
    _check_size(data, str(file))
    key = (str(file), strict, hashlib.sha256(data).hexdigest())
    with _PARSED_LOCK:
        cached = _PARSED.get(key)
    if cached is not None:
        return cached
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line, column = _byte_position(data, exc.start)
        raise WorkflowError(
            f"the workflow file is not UTF-8 text (bad byte 0x{data[exc.start]:02x})",
            location=Location(str(file), line, column),
        ) from None
    loaded = parse_workflow(text, source=str(file), strict=strict)
    with _PARSED_LOCK:
        if len(_PARSED) >= _PARSED_MAX:
            _PARSED.pop(next(iter(_PARSED)))
        _PARSED[key] = loaded
    return loaded


#: Parsed workflows by (file, strict, content hash). A submission, its start and every
#: resume read the same file; parsing YAML costs ~1 ms, reading and hashing it ~20 µs, and
#: keying on the content itself means an edited file is never served stale. Loads run in
#: worker threads (load_workflow_async), hence the lock.
_PARSED: dict[tuple[str, bool, str], LoadedWorkflow] = {}
_PARSED_MAX = 128
_PARSED_LOCK = threading.Lock()


def _check_size(data: bytes, source: str) -> None:
    where = oversize_at(data)
    if where is not None:
        raise WorkflowError(
            f"the workflow file is larger than {MAX_FILE_BYTES // 1024} KiB "
            "(the limit is reached here)",
            location=Location(source, *where),
            hint="keep long lists of work items in a separate file (input: in MapReduce)",
        )


def _byte_position(data: bytes, offset: int) -> tuple[int, int]:
    """1-based line and column (in characters) of byte `offset`."""
    start = data.rfind(b"\n", 0, offset) + 1
    column = len(data[start:offset].decode("utf-8", errors="replace")) + 1
    return data.count(b"\n", 0, offset) + 1, column


def parse_workflow(
    text: str,
    *,
    source: str = "<string>",
    fmt: Literal["yaml", "json"] | None = None,
    strict: bool = False,
    deadline: Deadline | None = None,
) -> LoadedWorkflow:
    """Parse workflow text; `source` names it in errors and warnings.

    Raises WorkflowError for anything wrong, always with a line and column (a JSON file
    YAML cannot mark aside): the first problem is the message, every problem found is listed
    in `details`. With `strict`, unknown keys are problems, not warnings. Reading stops at
    the limits of prodigyd.workflow.limits, `deadline` (default: LOAD_SECONDS from now)
    included.
    """
    fmt = fmt or ("json" if source.lower().endswith(".json") else "yaml")
    deadline = deadline or Deadline()
    if len(text) > MAX_FILE_BYTES // 4:  # cheap: a character is at most four UTF-8 bytes
        _check_size(text.encode("utf-8", errors="surrogatepass"), source)
    if not text.strip():
        raise empty_error(source)
    read = read_json if fmt == "json" else read_yaml
    doc, root_mark = read(text, source, deadline)
    ctx = Context(source, strict, deadline, root_mark or (1, 1))
    workflow = _workflow(doc, ctx)
    return LoadedWorkflow(
        workflow=workflow,
        warnings=ctx.warnings,
        sha256=sha256(text.encode("utf-8", errors="surrogatepass")).hexdigest(),
        path=Path(source),
    )


def _workflow(doc: object, ctx: Context) -> Workflow:
    """The document's mode decides its parser; what neither mode supports is refused first."""
    if isinstance(doc, Map):
        refuse_unsupported(doc, ctx)
        if is_mapreduce(doc):
            return mapreduce_workflow(doc, ctx)
    return standard_workflow(doc, ctx)
