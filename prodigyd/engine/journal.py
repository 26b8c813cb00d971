"""Where a run records itself: the RunJournal the engine is given, and the daemon's own.

A session's record (what `sessions ls` shows), the records of its Claude invocations, its
checkpoint journals (one per phase: what a resume skips) and its dead letters (the map
items that failed) are the run's durable account. The engine writes and reads them only
through the RunJournal its host hands it, never through module-level store calls, so a
test can run it against a journal in memory and a host that runs phases elsewhere can give
it one of its own.

`StoreJournal` is the daemon's: records and invocations in `journal.db`, checkpoints as
append-only JSONL files, dead letters as rows (store/). What each promises (a write is
durable when it returns; a record that does not fit on a full disk is kept and written
later) is the store's, described there.
"""

from __future__ import annotations

from typing import Any, Protocol

from prodigyd.errors import NoSpace
from prodigyd.failure import FailureReason
from prodigyd.store import checkpoints, claude_invocations, dlq
from prodigyd.store import sessions as session_store
from prodigyd.store.sessions import SessionRecord


class NotStarted(Exception):
    """A run's start could not be stored (a full disk): it stays queued, its steps not run.
    Not a ProdigyError: the run is not over, and nobody is told it failed; the scheduler
    holds the queue back until the disk has room."""

    def __init__(self, reason: NoSpace) -> None:
        super().__init__(reason.message)
        self.reason = reason


class CheckpointLog(Protocol):
    """One phase's journal, appended in call order."""

    async def write(self, record: dict[str, Any]) -> None:
        """Append `record`; return once it is durable (what follows may say it is done)."""
        ...

    async def write_all(self, records: list[dict[str, Any]]) -> None:
        """Append `records` in order; return once all are durable, made so together (one
        sync for the results of a map phase's agents that finished at once)."""
        ...

    async def close(self) -> None: ...


class RunJournal(Protocol):
    # -- the session record ---------------------------------------------------------------

    def save_record(self, record: SessionRecord) -> None:
        """Store the record's new state. Never fails for a full disk: it is kept and
        stored later, and `unsaved` says so meanwhile."""
        ...

    def save_start(self, record: SessionRecord) -> None:
        """Store the record as its run starts, before any step: NotStarted when it does not
        fit (a job that runs while its stored record says `queued` could run twice)."""
        ...

    def unsaved(self, session_id: str) -> str | None:
        """Why the record's latest state is not stored yet, or None when it is."""
        ...

    def claude_invocation(self, session_id: str, record: dict[str, Any]) -> None:
        """Store the record of one Claude invocation (claude/invocation.py, with `step`).
        Never fails for a full disk: it is kept and stored later."""
        ...

    # -- checkpoints, one journal per phase -----------------------------------------------

    def checkpoint_log(self, session_id: str, phase: str) -> CheckpointLog: ...

    def checkpoint_records(self, session_id: str, phase: str) -> list[dict[str, Any]]:
        """Every whole record of the phase's journal, in order."""
        ...

    def checkpoint(self, session_id: str, phase: str) -> dict[str, Any] | None:
        """The phase's checkpoint (reference §5.3 shape), or None before any step finished."""
        ...

    def has_checkpoints(self, session_id: str) -> bool:
        """Whether any phase of the session recorded anything, a step or a Claude
        conversation (a resume continues in the worktree)."""
        ...

    # -- dead letters ---------------------------------------------------------------------

    def dead_letter(
        self,
        job_id: str,
        item_id: str,
        *,
        item: Any,
        repo: str,
        workflow: str,
        reason: FailureReason,
        attempt: dict[str, Any],
        artifacts: dict[str, Any] | None,
    ) -> dict[str, Any]:
        """Add one failed attempt of an item; returns its entry (reference §4.9 shape)."""
        ...

    def dead_letter_entry(self, job_id: str, item_id: str) -> dict[str, Any] | None: ...

    def remove_dead_letters(self, job_id: str, item_ids: list[str]) -> None:
        """Drop the entries of items that succeeded since."""
        ...


class StoreJournal:
    """The daemon's RunJournal: store/sessions.py, claude_invocations.py, checkpoints.py, dlq.py."""

    def save_record(self, record: SessionRecord) -> None:
        session_store.save(record, defer=True)  # a full disk never stops a run here

    def save_start(self, record: SessionRecord) -> None:
        try:
            session_store.save(record)
        except NoSpace as exc:
            raise NotStarted(exc) from exc

    def unsaved(self, session_id: str) -> str | None:
        return session_store.unsaved(session_id)

    def claude_invocation(self, session_id: str, record: dict[str, Any]) -> None:
        claude_invocations.add(session_id, record)

    def checkpoint_log(self, session_id: str, phase: str) -> CheckpointLog:
        return checkpoints.CheckpointWriter(session_id, phase)

    def checkpoint_records(self, session_id: str, phase: str) -> list[dict[str, Any]]:
        return list(checkpoints.records(session_id, phase))

    def checkpoint(self, session_id: str, phase: str) -> dict[str, Any] | None:
        return checkpoints.load(session_id, phase)

    def has_checkpoints(self, session_id: str) -> bool:
        return checkpoints.has_progress(session_id)

    def dead_letter(
        self,
        job_id: str,
        item_id: str,
        *,
        item: Any,
        repo: str,
        workflow: str,
        reason: FailureReason,
        attempt: dict[str, Any],
        artifacts: dict[str, Any] | None,
    ) -> dict[str, Any]:
        return dlq.record_failure(
            job_id,
            item_id,
            item=item,
            repo=repo,
            workflow=workflow,
            reason=reason,
            attempt=attempt,
            artifacts=artifacts,
        )

    def dead_letter_entry(self, job_id: str, item_id: str) -> dict[str, Any] | None:
        return dlq.get(job_id, item_id)

    def remove_dead_letters(self, job_id: str, item_ids: list[str]) -> None:
        dlq.remove(job_id, item_ids)
