"""A session's plan: its sequential phases in order, and how far its journals say it got.

A standard workflow is one phase (`main`); a MapReduce one is setup → map → reduce, where
setup and reduce are sequential phases with a checkpoint journal each and the map phase
counts items instead of steps; a DLQ retry is a map phase alone. A standard workflow run
more than once (`run -n`, `--map`: engine/runs.py) has a phase per run: `main`, `run2`...
The step counts shown by `sessions ls` and the resume decisions (what is done, which
variables come back) are read from here, from the journals rather than from a record a
`kill -9` may have cut short.
"""

from __future__ import annotations

from typing import Any

from prodigyd.engine.journal import RunJournal
from prodigyd.store.checkpoints import MAIN
from prodigyd.store.sessions import DlqRetry, SessionRecord
from prodigyd.workflow.model import Step, Workflow

SETUP, MAP, REDUCE = "setup", "map", "reduce"


def run_phase(number: int) -> str:
    """The phase of a standard workflow's `number`th run (1-based): `main` for the first
    (the name it always had), `run2`, `run3`... for the others."""
    return MAIN if number == 1 else f"run{number}"


def run_number(phase: str) -> int | None:
    """The run `phase` checkpoints (run_phase's inverse); None: not a run's phase."""
    if phase == MAIN:
        return 1
    number = phase.removeprefix("run")
    return int(number) if number != phase and number.isdigit() else None


def run_count(record: SessionRecord) -> int:
    """How many times a session runs its steps (engine/runs.py)."""
    return record.runs.count(record.args) if record.runs else 1


def phases(
    workflow: Workflow, retry: DlqRetry | None = None, runs: int = 1
) -> list[tuple[str, tuple[Step, ...]]]:
    """The sequential phases of a session, in order, with their steps (a DLQ retry has
    none: it is a map phase alone); `runs`: how many times a standard workflow's steps run."""
    if retry is not None:
        return []
    if workflow.mode == "standard":
        return [(run_phase(number), workflow.steps) for number in range(1, runs + 1)]
    setup = workflow.setup.steps if workflow.setup else ()
    return [(SETUP, setup), (REDUCE, workflow.reduce)]


def total_steps(workflow: Workflow, retry: DlqRetry | None = None, runs: int = 1) -> int:
    """The steps `sessions ls` counts: those of the sequential phases (MapReduce: setup and
    reduce; the map phase counts items instead)."""
    return sum(len(steps) for _, steps in phases(workflow, retry, runs))


def steps_before(workflow: Workflow, phase: str, runs: int = 1) -> int:
    """The steps of the phases before `phase` (a DLQ retry never checkpoints a step)."""
    count = 0
    for name, steps in phases(workflow, runs=runs):
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


def latest_variables(journal: RunJournal, record: SessionRecord) -> dict[str, Any]:
    """The variables of the newest checkpoint: reduce's (it has everything before it),
    else setup's, else the standard workflow's (its last run's that wrote one)."""
    session_id = record.id
    runs = [run_phase(number) for number in range(run_count(record), 0, -1)]
    for phase in (REDUCE, SETUP, *runs):
        saved = journal.checkpoint(session_id, phase)
        if saved is not None:
            return dict(saved.get("variable_state") or {})
    return {}


def _progress(
    journal: RunJournal, record: SessionRecord, workflow: Workflow
) -> list[tuple[int, int]]:
    """(steps checkpointed as completed, steps) of each sequential phase, from its journal."""
    found = []
    for phase, steps in phases(workflow, record.dlq_retry, run_count(record)):
        saved = journal.checkpoint(record.id, phase) or {}
        found.append((len(saved.get("completed_steps") or []), len(steps)))
    return found
