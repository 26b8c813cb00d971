"""Drive the engine in-process (no daemon): the fastest way to test workflow semantics.

The engine is a library; these helpers host it the way prodigyd does, with a list as the
event sink, so a test reads like "run this YAML in that repo, then look at the branch".
The run journal is the daemon's (the store under the test's PRODIGY_HOME) unless a test
hands it a `MemoryJournal`.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from prodigyd import paths
from prodigyd.engine.admission import RunRequest, prepare
from prodigyd.engine.context import EngineSettings
from prodigyd.engine.journal import RunJournal, StoreJournal
from prodigyd.engine.mapreduce.runner import AgentRunner, LocalAgentRunner
from prodigyd.engine.session import Session
from prodigyd.eventtypes import EventType
from prodigyd.failure import FailureReason
from prodigyd.pool import PoolSettings, WorktreePool
from prodigyd.store import checkpoints, dlq
from prodigyd.store import sessions as session_store
from prodigyd.store import worktrees as worktree_rows
from prodigyd.store.sessions import SessionRecord
from prodigyd.workflow.load import load_workflow
from tests.gitutil import git


@dataclass
class ListSink:
    events: list[dict[str, Any]] = field(default_factory=list)

    def emit(self, event_type: str, /, **fields: Any) -> None:
        """Keeps the event; a type that is no EventType fails the test (ValueError)."""
        self.events.append({"event_type": EventType(event_type), **fields})

    def of(self, event_type: str) -> list[dict[str, Any]]:
        return [e for e in self.events if e["event_type"] == event_type]


@dataclass
class MemoryLog:
    records: list[dict[str, Any]]

    async def write(self, record: dict[str, Any]) -> None:
        self.records.append(json.loads(json.dumps(record)))  # as a file would keep it

    async def write_all(self, records: list[dict[str, Any]]) -> None:
        for record in records:
            await self.write(record)

    async def close(self) -> None:
        pass


@dataclass
class MemoryJournal:
    """A RunJournal in memory: the engine records a run here and nowhere else."""

    records: dict[str, SessionRecord] = field(default_factory=dict)
    phases: dict[tuple[str, str], list[dict[str, Any]]] = field(default_factory=dict)
    dead_letters: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    claude_invocations: list[tuple[str, dict[str, Any]]] = field(default_factory=list)

    def save_record(self, record: SessionRecord) -> None:
        self.records[record.id] = record.model_copy(deep=True)

    save_start = save_record

    def unsaved(self, session_id: str) -> str | None:
        return None

    def claude_invocation(self, session_id: str, record: dict[str, Any]) -> None:
        self.claude_invocations.append((session_id, record))

    def checkpoint_log(self, session_id: str, phase: str) -> MemoryLog:
        return MemoryLog(self.phases.setdefault((session_id, phase), []))

    def checkpoint_records(self, session_id: str, phase: str) -> list[dict[str, Any]]:
        return list(self.phases.get((session_id, phase), []))

    def checkpoint(self, session_id: str, phase: str) -> dict[str, Any] | None:
        return checkpoints.summary(session_id, self.checkpoint_records(session_id, phase))

    def has_checkpoints(self, session_id: str) -> bool:
        return any(sid == session_id and records for (sid, _), records in self.phases.items())

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
        entry = self.dead_letters.setdefault(
            (job_id, item_id), {"item_data": item, "failure_history": []}
        )
        entry["failure_history"].append(attempt)
        entry.update(
            error_type=reason.value,
            failure_count=len(entry["failure_history"]),
            error_signature=dlq.signature(attempt["error_message"]),
        )
        return entry

    def dead_letter_entry(self, job_id: str, item_id: str) -> dict[str, Any] | None:
        return self.dead_letters.get((job_id, item_id))

    def remove_dead_letters(self, job_id: str, item_ids: list[str]) -> None:
        for item_id in item_ids:
            self.dead_letters.pop((job_id, item_id), None)


@dataclass
class Outcome:
    record: SessionRecord
    sink: ListSink
    session: Session

    @property
    def status(self) -> str:
        return self.record.status.value


@contextlib.asynccontextmanager
async def _unlocked(_: str) -> AsyncIterator[None]:
    yield


def write_workflow(tmp: Path, text: str, name: str = "wf.yml") -> Path:
    path = tmp / name
    path.write_text(text)
    return path


def _session(
    record: SessionRecord,
    env: dict[str, str],
    args: tuple[str, ...] | list[str],
    sink: ListSink,
    journal: RunJournal,
    pool: PoolSettings | None = None,
    runner: AgentRunner | None = None,
) -> Session:
    worktrees = WorktreePool(pool)
    return Session(
        record,
        load_workflow(record.workflow, strict=record.strict),
        env=env,
        args=args,
        events=sink,
        settings=EngineSettings(claude_log_dir=paths.claude_logs_dir()),
        merge_lock=_unlocked,
        pool=worktrees,
        runner=runner or LocalAgentRunner(worktrees),
        journal=journal,
    )


async def run_workflow(
    workflow: Path,
    repo: Path,
    *,
    args: tuple[str, ...] = (),
    env: dict[str, str] | None = None,
    profile: str | None = None,
    merge: str = "auto",
    pool: PoolSettings | None = None,
    sink: ListSink | None = None,
    created: Callable[[Session], None] | None = None,
    journal: MemoryJournal | None = None,
    runner: AgentRunner | None = None,
) -> Outcome:
    """Submit and run `workflow` in `repo` to completion, as prodigyd would (`sink`: one
    that looks at the store as each event arrives, say; `created` gets the session before
    it runs, to stop it from an event; `journal`: record the run there, not in the store;
    `runner`: run its map agents there, not in the pool's worktrees)."""
    env = dict(os.environ) if env is None else env
    request = RunRequest(
        workflow=str(workflow),
        cwd=str(repo),
        env=env,
        args=args,
        profile=profile,
        merge_policy=merge,
    )
    record, _ = await prepare(request)
    if journal is None:
        session_store.create(record, env, args)
    sink = sink if sink is not None else ListSink()
    session = _session(record, env, args, sink, journal or StoreJournal(), pool, runner)
    if created is not None:
        created(session)
    try:
        await session.run()
    finally:
        await session.pool.close()  # as the daemon at its end: no spare still being made
    return Outcome(session.record, sink, session)


async def resume(
    session_id: str, env: dict[str, str] | None = None, journal: MemoryJournal | None = None
) -> Outcome:
    """Resume a session as prodigyd would (`journal`: the one its run was recorded in)."""
    if journal is None:
        record = session_store.load(session_id)
        _, args = session_store.load_private(session_id)
    else:
        record, args = journal.records[session_id].model_copy(deep=True), []
    sink = ListSink()
    session = _session(
        record, dict(os.environ) if env is None else env, args, sink, journal or StoreJournal()
    )
    try:
        await session.run(resume=True)
    finally:
        await session.pool.close()
    return Outcome(session.record, sink, session)


def assert_released(worktree: Path | str) -> None:
    """A finished session's worktree went back to the pool: idle, detached and pristine."""
    row = worktree_rows.get(worktree)
    assert row is not None and row.state == "idle", row
    assert git(Path(worktree), "status", "--porcelain", "--ignored") == ""
    assert git(Path(worktree), "branch", "--show-current").strip() == ""
