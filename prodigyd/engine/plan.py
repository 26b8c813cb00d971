"""A session's plan: its sequential phases in order, and how far its journals say it got.

A standard workflow is one phase (`main`); a MapReduce one is setup → map → reduce, where
setup and reduce are sequential phases with a checkpoint journal each and the map phase
counts items instead of steps; a DLQ retry is a map phase alone. The step counts shown by
`sessions ls` and the resume decisions (what is done, which variables come back) are read
from here, from the journals rather than from a record a `kill -9` may have cut short.
"""

from __future__ import annotations

from typing import Any

from prodigyd.engine.journal import RunJournal
from prodigyd.store.checkpoints import MAIN
from prodigyd.store.sessions import DlqRetry, SessionRecord
from prodigyd.workflow.model import Step, Workflow

SETUP, MAP, REDUCE = "setup", "map", "reduce"


def phases(workflow: Workflow, retry: DlqRetry | None = None) -> list[tuple[str, tuple[Step, ...]]]:
    """The sequential phases of a session, in order, with their steps (a DLQ retry has
    none: it is a map phase alone)."""
    if retry is not None:
        return []
    if workflow.mode == "standard":
        return [(MAIN, workflow.steps)]
    setup = workflow.setup.steps if workflow.setup else ()
    return [(SETUP, setup), (REDUCE, workflow.reduce)]


def total_steps(workflow: Workflow, retry: DlqRetry | None = None) -> int:
    """The steps `sessions ls` counts: those of the sequential phases (MapReduce: setup and
    reduce; the map phase counts items instead)."""
    return sum(len(steps) for _, steps in phases(workflow, retry))


def steps_before(workflow: Workflow, phase: str) -> int:
    """The steps of the phases before `phase` (a DLQ retry never checkpoints a step)."""
    count = 0
    for name, steps in phases(workflow):
        if name == phase:
            break
        count += len(steps)
    return count


def checkpointed_steps(journal: RunJournal, record: SessionRecord, workflow: Workflow) -> int:
    """How many sequential steps the session's journals record as completed."""
    return sum(done for done, _ in _progress(journal, record, workflow))


def all_steps_done(journal: RunJournal, record: SessionRecord, workflow: Workflow) -> bool:
    """Whether every sequential step is checkpointed as completed (only the merge is left)."""
    return all(done >= total for done, total in _progress(journal, record, workflow))


def latest_variables(journal: RunJournal, session_id: str) -> dict[str, Any]:
    """The variables of the newest checkpoint: reduce's (it has everything before it),
    else setup's, else the standard workflow's."""
    for phase in (REDUCE, SETUP, MAIN):
        saved = journal.checkpoint(session_id, phase)
        if saved is not None:
            return dict(saved.get("variable_state") or {})
    return {}


def _progress(
    journal: RunJournal, record: SessionRecord, workflow: Workflow
) -> list[tuple[int, int]]:
    """(steps checkpointed as completed, steps) of each sequential phase, from its journal."""
    found = []
    for phase, steps in phases(workflow, record.dlq_retry):
        saved = journal.checkpoint(record.id, phase) or {}
        found.append((len(saved.get("completed_steps") or []), len(steps)))
    return found
