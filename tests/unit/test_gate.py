"""watch/gate.py against the real scheduler: which queued run a newer event may replace."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from prodigyd.engine.admission import RunRequest
from prodigyd.engine.context import EngineSettings
from prodigyd.pool import WorktreePool
from prodigyd.scheduler import Scheduler, SchedulerSettings
from prodigyd.store import journal
from prodigyd.watch.gate import KEY_PREFIX, Gate, TriggerLimits


async def test_a_run_the_scheduler_has_begun_to_start_takes_no_newer_event(
    isolated: Path, repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    """Its start is stored only once its worktree is ready (Session.run), so the journal
    still says `queued` meanwhile; a newer event must not be folded into a run that
    already chose its commit: it gets a run of its own."""
    workflow = tmp_path / "wf.yml"
    workflow.write_text("- shell: 'true'\n")
    worktree_ready = asyncio.Event()
    real_acquire = WorktreePool.acquire

    async def held_acquire(self: WorktreePool, *args: Any, **kwargs: Any) -> Any:
        await worktree_ready.wait()
        return await real_acquire(self, *args, **kwargs)

    monkeypatch.setattr(WorktreePool, "acquire", held_acquire)
    jobs = Scheduler(EngineSettings(), SchedulerSettings(), WorktreePool())
    jobs.recovered = True  # as after `start`, without its background tasks
    request = RunRequest(
        workflow=str(workflow), cwd=str(repo), env={}, repo=str(repo), triggered_by="commit 1"
    )
    record = await jobs.submit(request, idempotency_key=f"{KEY_PREFIX}1")
    gate = Gate(TriggerLimits())
    queued = gate.queued_run(Path(record.workflow), "main")
    assert queued is not None and queued.id == record.id  # waiting: a newer event joins it

    await jobs._dispatch()
    [(_, task)] = jobs.running.values()
    row = journal.get(record.id)
    assert row is not None and row["status"] == "queued"  # its worktree is being made
    assert gate.queued_run(Path(record.workflow), "main") is None
    assert gate.refusal(repo, Path(record.workflow)) is None  # not counted as queued either

    worktree_ready.set()
    await task
    row = journal.get(record.id)
    assert row is not None and row["status"] == "completed"  # it ran: nothing to merge
