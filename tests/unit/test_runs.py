"""A standard workflow run more than once (prodigyd/engine/runs.py): each run's phase name
and the iteration its checkpoints record."""

from __future__ import annotations

import pytest

from prodigyd.engine.plan import run_number, run_phase
from prodigyd.engine.runs import iteration_of, plan_runs
from prodigyd.store.sessions import Runs


@pytest.mark.parametrize(
    ("runs", "args"),
    [
        (Runs(iterations=3), []),
        (Runs(iterations=2, each_arg=True, files=["a.md", "b.md"]), ["x"]),
        (Runs(iterations=1, files=[f"f{n}" for n in range(12)]), []),
    ],
)
def test_each_runs_checkpoints_record_its_own_iteration(runs: Runs, args: list[str]) -> None:
    planned = plan_runs(runs, args)
    assert len(planned) == runs.count(args)
    for run in planned:
        assert run_number(run_phase(run.number)) == run.number
        assert iteration_of(run_phase(run.number), runs) == (run.iteration, run.iterations)


def test_phases_that_are_no_run_have_no_number() -> None:
    for phase in ("setup", "map", "reduce", "run", "runner", "run2x"):
        assert run_number(phase) is None
    assert iteration_of("setup", Runs(iterations=4)) == (1, 4)
    assert iteration_of("main", None) == (1, 1)
