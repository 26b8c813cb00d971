"""PhaseHost: what a MapReduce job's phases need from the session that runs them.

The phases are given this protocol, not the Session, so they depend on nothing of the
session's lifecycle (and `engine/session.py` imports them without an import cycle back).
A session is the only host today; a test or another executor can be one too.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Protocol

from prodigyd.engine.context import RunContext
from prodigyd.engine.gitvars import GitTracker
from prodigyd.engine.journal import RunJournal
from prodigyd.engine.mapreduce.runner import AgentRunner
from prodigyd.engine.phase import PhaseOutcome, StepHook
from prodigyd.workflow.model import Step, Workflow


class PhaseHost(Protocol):
    @property
    def workflow(self) -> Workflow: ...

    @property
    def session_id(self) -> str: ...

    @property
    def branch(self) -> str:
        """The session branch, checked out in the session's worktree: agents merge into it."""
        ...

    @property
    def repo(self) -> Path: ...

    @property
    def runner(self) -> AgentRunner:
        """Where the map phase's agents run."""
        ...

    @property
    def keep_failed(self) -> bool:
        """Whether a failed agent's work is kept on a branch (worktree_config.keep_failed)."""
        ...

    @property
    def journal(self) -> RunJournal: ...

    @property
    def stop_event(self) -> asyncio.Event:
        """Set when the session must stop at the next step boundary (daemon shutdown)."""
        ...

    def enter_phase(self, phase: str) -> None:
        """The session is in `phase` now (its record and a `phase_started` event say so)."""
        ...

    async def sequential(
        self,
        phase: str,
        steps: tuple[Step, ...],
        ctx: RunContext,
        git: GitTracker,
        *,
        on_completed: StepHook | None = None,
    ) -> PhaseOutcome:
        """Run a sequential phase, checkpointed in its own journal."""
        ...

    def map_progress(self, total: int, processed: int, failed: int) -> None:
        """The map phase's item counts, for `sessions ls/show`."""
        ...
