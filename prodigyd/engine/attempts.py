"""Checkpoints inside a step: the attempts of a goal_seek, so a resume continues from the
last completed attempt instead of starting the step over.

A sequential phase's journal (store/checkpoints.py) records one line per completed step;
an attempt adds a line of its own to the same journal: `{"attempt_of": <step label>,
"attempt": {...}}`, or `{"attempt_of": <label>, "closed": true}` once the step's loop
ended (reached its goal or gave up), after which a later run of that step starts afresh.
Step records are told apart by their `execution_state`, so the checkpoint a resume reads
(`checkpoints.summary`) never sees these lines.

Only the top-level steps of a sequential phase (and their handlers) have such a log: a
foreach item, a map agent or a merge step runs again whole anyway.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Protocol

from prodigyd.clock import now_iso
from prodigyd.engine.journal import CheckpointLog


class AttemptLog(Protocol):
    def earlier(self, step: str) -> list[dict[str, Any]]:
        """The attempts recorded for `step` since its loop last ended, in order."""
        ...

    async def record(self, step: str, attempt: dict[str, Any]) -> None:
        """Append one completed attempt; returns once it is durable."""
        ...

    async def close(self, step: str) -> None:
        """The step's loop ended: a later run of it starts from its first attempt."""
        ...


class JournalAttempts:
    """An AttemptLog in a phase's checkpoint journal (given its records read at start)."""

    def __init__(self, writer: CheckpointLog, records: Iterable[dict[str, Any]]) -> None:
        self._writer = writer
        self._records = [r for r in records if "attempt_of" in r]

    def earlier(self, step: str) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []
        for record in self._records:
            if record["attempt_of"] != step:
                continue
            if record.get("closed"):
                found = []
            elif isinstance(record.get("attempt"), dict):
                found.append(record["attempt"])
        return found

    async def record(self, step: str, attempt: dict[str, Any]) -> None:
        await self._append({"attempt_of": step, "attempt": attempt, "timestamp": now_iso()})

    async def close(self, step: str) -> None:
        await self._append({"attempt_of": step, "closed": True, "timestamp": now_iso()})

    async def _append(self, record: dict[str, Any]) -> None:
        await self._writer.write(record)
        self._records.append(record)
