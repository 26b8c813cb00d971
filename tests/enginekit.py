"""Drive the engine in-process (no daemon): the fastest way to test workflow semantics.

The engine is a library; these helpers host it the way prodigyd does, with a list as the
event sink, so a test reads like "run this YAML in that repo, then look at the branch".
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from prodigyd import paths
from prodigyd.engine.context import EngineSettings
from prodigyd.engine.session import RunRequest, Session, prepare
from prodigyd.eventtypes import EventType
from prodigyd.pool import PoolSettings, WorktreePool
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
    record: SessionRecord, env: dict[str, str], sink: ListSink, pool: PoolSettings | None = None
) -> Session:
    _, args = session_store.load_private(record.id)
    return Session(
        record,
        load_workflow(record.workflow, strict=record.strict),
        env=env,
        args=args,
        events=sink,
        settings=EngineSettings(claude_log_dir=paths.claude_logs_dir()),
        merge_lock=_unlocked,
        pool=WorktreePool(pool),
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
) -> Outcome:
    """Submit and run `workflow` in `repo` to completion, as prodigyd would (`sink`: one
    that looks at the store as each event arrives, say; `created` gets the session before
    it runs, to stop it from an event)."""
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
    session_store.create(record, env, args)
    sink = sink if sink is not None else ListSink()
    session = _session(record, env, sink, pool)
    if created is not None:
        created(session)
    try:
        await session.run()
    finally:
        await session.pool.close()  # as the daemon at its end: no spare still being made
    return Outcome(session.record, sink, session)


async def resume(session_id: str, env: dict[str, str] | None = None) -> Outcome:
    record = session_store.load(session_id)
    sink = ListSink()
    session = _session(record, dict(os.environ) if env is None else env, sink)
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
