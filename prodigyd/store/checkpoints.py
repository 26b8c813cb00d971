"""Per-step checkpoints of a sequential phase, as an append-only journal.

Each step appends one self-contained JSON record to
`state/<session-id>/checkpoints/<session-id>.journal.jsonl` and fdatasyncs it: O(1) work per
step however long the workflow (rewriting a whole checkpoint file each step grows with the
step count), and one sync instead of the file + folder syncs of a rename. A crash can only
tear the last line, which `load` skips: that step then runs again on resume (at-least-once,
never skipped). `load` rebuilds the reference's checkpoint shape (§5.3) from the records.

Any other line that is no whole record was damaged, and the steps it recorded as done would
run again: `damage` says so, naming the line, and a resume refuses it unless forced
(engine/admission.py). Before a journal is appended to again, one with such lines is kept
beside it as a copy and replaced by its whole records (`_open_to_append`): a record appended
after a torn line would be glued to it and lost with it. Only a regular file is opened: a
FIFO in a journal's place would hold the event loop.

A write returns once its record is on disk. Whatever a follower is told afterwards
(`step_completed`, a map item's result) is therefore already durable: a step shown as done
never runs again on resume. Records keep call order. While the disk syncs fast, the append
and its sync run on the event loop: a worker thread's round trip (0.1-0.3 ms, two wake-ups)
costs more than a fast fdatasync and was the largest part of a step's overhead. Once a sync
is slow (INLINE_SYNC_SECONDS) the next ones go through a worker thread until recent syncs
are all fast again: a disk that turns slow holds the loop for one sync, however long that
one takes (the trade-off taken for the step's overhead; the journal's SQLite commits are
on the loop too). bench/step_overhead.py
measures the cost against the spawn + fdatasync floor.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections import deque
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from prodigyd import jsonl, paths
from prodigyd.clock import now_iso
from prodigyd.errors import StoreError
from prodigyd.files import Unreadable, failure_reason, open_regular
from prodigyd.store import space
from prodigyd.store.atomic import (
    append_all,
    ensure_dir,
    fsync_dir,
    write_bytes_atomic,
    write_unique,
)

log = logging.getLogger("prodigyd.store")

CHECKPOINT_VERSION = 1

#: A sync that took longer than this sends the following appends of every journal through a
#: worker thread (see the module docstring), until the last SYNCS_REMEMBERED are fast again.
INLINE_SYNC_SECONDS = 0.002
SYNCS_REMEMBERED = 8


#: The phase of a standard workflow; MapReduce sessions also have "setup", "map", "reduce".
MAIN = "main"


def journal_file(session_id: str, phase: str = MAIN) -> Path:
    """One journal per phase: `<id>.journal.jsonl` for the main one (the name it always
    had), `<id>.<phase>.journal.jsonl` for the others."""
    infix = "" if phase == MAIN else f".{phase}"
    return paths.checkpoints_dir(session_id) / f"{session_id}{infix}.journal.jsonl"


def load(session_id: str, phase: str = MAIN) -> dict[str, Any] | None:
    """The phase's checkpoint (reference §5.3 shape), or None before any step finished."""
    return summary(session_id, records(session_id, phase))


def summary(session_id: str, journal: Iterable[dict[str, Any]]) -> dict[str, Any] | None:
    """The checkpoint a phase journal's records amount to (None: no step record yet). A
    `rewind` record (`resume --from`) takes back the steps from its index on that were
    recorded before it."""
    records: list[dict[str, Any]] = []
    for record in journal:
        if record.get("kind") == REWIND:
            start = int(record.get("from_step") or 0)
            records = [r for r in records if _step_index(r) < start]
        elif _is_step_record(record):
            records.append(record)
    if not records:
        return None
    last = records[-1]
    return {
        "workflow_id": session_id,
        "execution_state": last["execution_state"],
        "completed_steps": [r["step"] for r in records if r.get("step")],
        "variable_state": last.get("variable_state") or {},
        "timestamp": last.get("timestamp"),
        "version": CHECKPOINT_VERSION,
        "workflow_hash": last.get("workflow_hash"),
        "total_steps": last["execution_state"].get("total_steps"),
        "workflow_name": last.get("workflow_name"),
        "workflow_path": last.get("workflow_path"),
    }


def has_progress(session_id: str) -> bool:
    """Whether any phase of the session wrote a checkpoint (a resume continues, not restarts)."""
    folder = paths.checkpoints_dir(session_id)
    return any(folder.glob(f"{session_id}*.journal.jsonl")) if folder.is_dir() else False


#: The record `resume --from STEP` appends: completed steps from `from_step` (0-based) on
#: count as not done, so the resume runs them again.
REWIND = "rewind"


def rewind(session_id: str, from_step: int, phase: str = MAIN) -> None:
    """Append a durable `rewind` record to the phase's journal (the daemon does it before it
    queues the resume, so the session reads it when it starts)."""
    path = journal_file(session_id, phase)
    line = jsonl.encode({"kind": REWIND, "from_step": from_step, "timestamp": now_iso()})
    with space.guard(path):
        ensure_dir(path.parent)
        fd = _open_to_append(path)
        try:
            append_all(fd, line, path)
            os.fdatasync(fd)
        finally:
            os.close(fd)


def phases(session_id: str) -> list[str]:
    """The phases that wrote a journal, in the order they run."""
    folder = paths.checkpoints_dir(session_id)
    if not folder.is_dir():
        return []
    found = set()
    for path in folder.glob(f"{session_id}*.journal.jsonl"):
        infix = path.name.removeprefix(session_id).removesuffix(".journal.jsonl")
        found.add(infix.removeprefix(".") or MAIN)
    order = (MAIN, "setup", "map", "reduce")
    # a standard workflow's later runs (`run2`... `run10`) in number order
    return sorted(
        found, key=lambda phase: (order.index(phase) if phase in order else 9, len(phase), phase)
    )


def size(session_id: str) -> int:
    """Bytes the session's checkpoint journals take."""
    folder = paths.checkpoints_dir(session_id)
    return sum(p.stat().st_size for p in folder.glob("*")) if folder.is_dir() else 0


def discard(session_id: str) -> Path | None:
    """Take the session's checkpoints away at once (a rename: a resume that starts after
    this sees none) and return where they went, for the caller to delete at leisure."""
    folder = paths.checkpoints_dir(session_id)
    if not folder.is_dir():
        return None
    gone = folder.with_name(f".checkpoints-discarded-{os.getpid()}")
    os.replace(folder, gone)
    fsync_dir(folder.parent)
    return gone


def _step_index(record: dict[str, Any]) -> int:
    """The index of the step a record completed (-1 for one that completed none)."""
    step = record.get("step")
    return int(step.get("step_index", -1)) if isinstance(step, dict) else -1


def _is_step_record(record: dict[str, Any]) -> bool:
    return isinstance(record.get("execution_state"), dict)


def records(session_id: str, phase: str) -> Iterator[dict[str, Any]]:
    """Every whole record of a phase's journal, in order; a torn last line (a crash) is
    skipped. A journal that cannot be read (a FIFO in its place) is a StoreError naming it."""
    path = journal_file(session_id, phase)
    try:
        yield from jsonl.read(path)
    except OSError as exc:
        reason = failure_reason(exc)
        raise StoreError(f"checkpoint journal {path} cannot be read: {reason}") from exc


def steps_done(session_id: str) -> int | None:
    """How many sequential steps (every phase's but the map's) the session's journals
    record as completed: what its record, saved at its start and end only, trails after a
    crash (`sessions ls` showed a job a kill -9 cut off as 0 steps done). None when a
    journal cannot be read: the record's count stands."""
    try:
        return sum(
            len(
                (summary(session_id, records(session_id, phase)) or {}).get("completed_steps") or []
            )
            for phase in phases(session_id)
            if phase != "map"
        )
    except StoreError:
        return None


def item_counts(session_id: str) -> tuple[int, int] | None:
    """(items finished, of which failed) as a MapReduce job's map journal records them:
    the durable account, which a record saved at most once a second trails (a daemon
    killed mid-phase left `sessions ls` showing fewer items done than had been). (0, 0)
    without one (no map phase yet); None for one that cannot be read (a FIFO in its
    place): the record's counts stand."""
    ended: dict[str, bool] = {}  # item id: it succeeded (an item's last result stands)
    try:
        for record in records(session_id, "map"):
            result = record.get("result") if record.get("kind") == "result" else None
            if isinstance(result, dict) and isinstance(result.get("item_id"), str):
                ended[result["item_id"]] = bool(result.get("success"))
    except StoreError:
        return None
    return len(ended), sum(1 for ok in ended.values() if not ok)


def damage(session_id: str, phase: str, *, steps_done: bool) -> str | None:
    """What makes a phase's journal lose steps it recorded as done, naming the file and
    the line; None when nothing does. A torn last line is what a crash leaves (its step was
    never reported done); a line before it that is no whole record was damaged, and so was
    a journal with no whole record at all when the session counts steps of this phase as
    done (`steps_done`). A journal that does not exist loses nothing: `checkpoints delete`
    removes them on purpose, and a phase not reached has none."""
    path = journal_file(session_id, phase)
    if not path.exists():
        return None
    try:
        found = list(jsonl.lines(path))
    except OSError as exc:
        return f"{path} cannot be read: {failure_reason(exc)}"
    damaged = [number for number, record in found if record is None]
    lost_all = steps_done and len(damaged) == len(found)
    if damaged and (damaged[0] != found[-1][0] or lost_all):
        return f"line {damaged[0]} of {path} is not a whole record"
    return f"{path} is empty" if lost_all else None


class _SyncTimes:
    """How long the newest syncs of the store's disk took (noted on the event loop only)."""

    def __init__(self) -> None:
        self.recent: deque[float] = deque(maxlen=SYNCS_REMEMBERED)

    def fast(self) -> bool:
        """Whether an append may sync on the event loop: every recent sync was fast."""
        return not self.recent or max(self.recent) < INLINE_SYNC_SECONDS

    def note(self, seconds: float) -> None:
        self.recent.append(seconds)


#: One disk under the store: all journals share what its syncs cost.
_sync_times = _SyncTimes()


class CheckpointWriter:
    """Appends one journal's records in order, each durable before `write` returns. Safe for
    concurrent writers on one loop (the agents of a map phase): records keep call order."""

    def __init__(self, session_id: str, phase: str = MAIN) -> None:
        self.path = journal_file(session_id, phase)
        self._fd: int | None = None
        self._pending: asyncio.Future[float] | None = None  # a sync its caller stopped awaiting
        self._order = asyncio.Lock()

    async def write(self, record: dict[str, Any]) -> None:
        """`write_all` of one record."""
        await self.write_all([record])

    async def write_all(self, records: list[dict[str, Any]]) -> None:
        """Append `records` and return once they are durable: one append, one sync. They
        are serialised here, on the loop, so later changes to the objects they hold cannot
        leak into them; a sync in a worker thread completes even when the caller is
        cancelled meanwhile (a daemon stop), and one on the loop cannot be interrupted."""
        line = b"".join(jsonl.encode(record) for record in records)
        async with self._order:
            await self._settle()
            if _sync_times.fast():
                _sync_times.note(self._append(line))
                return
            self._pending = asyncio.ensure_future(asyncio.to_thread(self._append, line))
            await self._settle()

    async def close(self) -> None:
        async with self._order:
            try:
                await self._settle()
            finally:
                if self._fd is not None:
                    os.close(self._fd)
                    self._fd = None

    async def _settle(self) -> None:
        """Wait for the last sync, even past the cancellation of whoever started it."""
        pending = self._pending
        if pending is None:
            return
        try:
            _sync_times.note(await asyncio.shield(pending))
        finally:
            if pending.done():  # a failed sync is reported once, to the writer that waits
                self._pending = None

    def _append(self, data: bytes) -> float:
        """Append and sync `data`; the seconds it took. A full disk raises NoSpace here
        (surfacing at this write or the close) and leaves no torn record: the step it
        recorded runs again on resume."""
        started = time.monotonic()
        with space.guard(self.path):
            if self._fd is None:
                folder = ensure_dir(self.path.parent)
                self._fd = _open_to_append(self.path)
                fsync_dir(folder)  # the journal's own name must survive a crash too
            append_all(self._fd, data, self.path)
            os.fdatasync(self._fd)
        return time.monotonic() - started


def _open_to_append(path: Path) -> int:
    """A descriptor appending to the journal at `path` (made when missing), its lines all
    whole records first (`_keep_whole_records`). Anything but a regular file is refused
    (StoreError): opening a FIFO would hold the event loop until a reader came."""
    try:
        _keep_whole_records(path)
        fd, _ = open_regular(path, os.O_RDWR | os.O_CREAT | os.O_APPEND)
    except Unreadable as exc:
        raise StoreError(f"checkpoint journal {path} cannot be written: {exc}") from exc
    return fd


def _keep_whole_records(path: Path) -> None:
    """When a line of the journal is no whole record (a crash's torn last one, a damaged one
    a resume was forced past) or its last lacks its newline, keep a copy of the journal
    beside it and replace it by its whole records: a record appended after a torn line is
    glued to it and lost with it, and a damaged line would stop every later resume again.
    The copy is made first: a crash in between leaves both."""
    try:
        fd, _ = open_regular(path)
    except FileNotFoundError:
        return
    with open(fd, "rb") as fh:
        data = fh.read()
    lines = data.split(b"\n")  # the last one: what follows the last newline
    records = [jsonl.record_of(raw) for raw in lines if raw.strip()]
    if not lines[-1] and None not in records:
        return
    # the journal as it was, beside it: `<name>.corrupt-*`
    copy = write_unique(path.parent, f"{path.name}.corrupt", data)
    write_bytes_atomic(
        path, b"".join(jsonl.encode(record) for record in records if record is not None)
    )
    log.warning(
        "%s had lines that were no whole record: it goes on with its whole records, and a "
        "copy as it was is kept as %s",
        path,
        copy,
    )
