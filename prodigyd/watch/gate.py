"""How many runs `on:` triggers may start: no storms, whatever the hooks are fed.

Three rules, checked in this order for each run a hook event would start (the drops are
kept by watch/dropped.py):

1. **One queued run per (workflow, branch).** A workflow file lives in one worktree, and a
   branch is checked out in at most one, so this is one queued run per repository,
   workflow and branch. When a run of it is still queued, the newer event replaces the
   older one in that run (its `triggered_by` and environment): a run starts from the
   branch's tip when it starts, so it takes the newest state either way, and ten quick
   commits make one run, not ten. A running run (or one being started) is left alone: the
   event queues one more, which waits for it (scheduler.py, `_twin_runs`) and so takes
   the events after it.
   Branches are kept apart, so a commit on `topic` never takes the place of one on `main`.
2. **A rate limit per workflow**: at most `max_runs` runs started by one workflow's
   triggers in any `per_seconds` (the workflow is its file name in its repository, all
   worktrees together: a loop through session worktrees counts as one workflow). The
   newest event it refuses on a branch runs once the window lets one in (watch/fire.py).
3. **A cap on queued triggered runs**, all repositories together: `max_queued`.

The rate limit counts in memory: a daemon restart starts it afresh. The queue is the
journal's, so rules 1 and 3 hold across restarts.
"""

from __future__ import annotations

import collections
import time
from dataclasses import dataclass
from pathlib import Path

from prodigyd.store import journal, locks
from prodigyd.store import sessions as session_store
from prodigyd.store.sessions import SessionRecord, Status

#: The idempotency keys of triggered runs start with this (watch/fire.py makes them).
KEY_PREFIX = "hook:"
#: ... and those of a run whose firing has no branch (a tag, a deleted branch) with this:
#: such a run neither takes a newer event nor waits for the branch's runs (`coalesces`).
ALONE_PREFIX = f"{KEY_PREFIX}@"


def coalesces(session_id: str) -> bool:
    """Whether the job is a triggered run of a branch: one at a time runs per workflow and
    branch (scheduler.py, `_twin_runs`), and a queued one takes newer events (rule 1)."""
    return _of_a_branch(journal.key_of(session_id))


def _of_a_branch(key: str | None) -> bool:
    return key is not None and key.startswith(KEY_PREFIX) and not key.startswith(ALONE_PREFIX)


@dataclass(frozen=True)
class TriggerLimits:
    """`[triggers]` of config.toml (docs/config.md); 0 turns a limit off."""

    max_runs: int = 10
    per_seconds: float = 60.0
    max_queued: int = 20


class Gate:
    def __init__(self, limits: TriggerLimits) -> None:
        self.limits = limits
        self._started: dict[tuple[str, str], collections.deque[float]] = {}

    def queued_run(self, workflow: Path, branch: str) -> SessionRecord | None:
        """The queued triggered run of `workflow` on `branch`, if there is one."""
        for record in _queued_triggered(of_a_branch=True):
            if record.workflow == str(workflow) and record.original_branch == branch:
                return record
        return None

    def replace(
        self,
        record: SessionRecord,
        triggered_by: str,
        env: dict[str, str],
        start_commit: str | None = None,
    ) -> SessionRecord:
        """Make the queued run stand for the newer event (and start from its snapshot, for
        `on: files`). No await may come between `queued_run` and this: the scheduler could
        start the run in between."""
        _, args = session_store.load_private(record.id)
        session_store.save_private(record.id, env, args)
        record.triggered_by = triggered_by
        record.start_commit = start_commit
        session_store.save(record, durable=True)
        return record

    def refusal(self, repository: Path, workflow: Path) -> tuple[str, str] | None:
        """(why, message) when the rate limit or the queue cap refuses a new run."""
        limits = self.limits
        if limits.max_runs:
            started = self._window(repository, workflow)
            if len(started) >= limits.max_runs:
                return (
                    "rate_limited",
                    f"{workflow.name} started {len(started)} runs in the last "
                    f"{limits.per_seconds:g}s (triggers.max_runs = {limits.max_runs})",
                )
        if limits.max_queued:
            queued = sum(1 for _ in _queued_triggered())
            if queued >= limits.max_queued:
                return (
                    "queue_full",
                    f"{queued} triggered runs are queued already "
                    f"(triggers.max_queued = {limits.max_queued})",
                )
        return None

    def free_in(self, repository: Path, workflow: Path) -> float:
        """Seconds until the workflow's window lets a run in (its oldest start leaves)."""
        started = self._window(repository, workflow)
        if len(started) < self.limits.max_runs or not started:
            return 0.0
        return max(0.0, started[0] + self.limits.per_seconds - time.monotonic())

    def started(self, repository: Path, workflow: Path) -> None:
        """Count a run just submitted against the workflow's rate limit."""
        self._window(repository, workflow).append(time.monotonic())

    def _window(self, repository: Path, workflow: Path) -> collections.deque[float]:
        """The start times of the workflow's runs within the last `per_seconds`."""
        started = self._started.setdefault((str(repository), workflow.name), collections.deque())
        cutoff = time.monotonic() - self.limits.per_seconds
        while started and started[0] <= cutoff:
            started.popleft()
        return started


def _queued_triggered(*, of_a_branch: bool = False) -> list[SessionRecord]:
    """The queued runs that triggers submitted, as they are now (`of_a_branch`: those
    that coalesce); not those queued to resume (they go on from their checkpoint, not
    from a new event), nor those the scheduler has begun to start (still `queued` until
    their worktree is ready: a newer event gets its own run, as it would a moment later)."""
    records = []
    starting = locks.held()
    for row in journal.keyed(KEY_PREFIX, Status.QUEUED.value):
        if of_a_branch and not _of_a_branch(row["idempotency_key"]):
            continue
        if row["action"] == "run" and row["id"] not in starting:
            record = session_store.load(row["id"])
            if record.status is Status.QUEUED:
                records.append(record)
    return records
