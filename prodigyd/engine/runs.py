"""A standard workflow run more than once in one session: `run -n N`, `--map`, `--each-arg`
(reference §4.4).

Every input (an `--args` value with `--each-arg`, then each file `--map` matched) runs the
whole step list in turn, `iterations` times, in the session's one worktree, so an input
sees what the inputs before it committed, as in the original. Each run is its own
checkpointed phase (plan.run_phase: `main`, `run2`...), so a resume skips the runs that
finished and continues the others where they stopped.

Kept from the original: `${ARG}` and `PRODIGY_ARG` are the input, `${ITERATION}` the
iteration. Fixed: `${INDEX}` and `${TOTAL}` (the input's 1-based number and the count) are
set (the original built and never passed them), `${FILE}` is a `--map` input's path, and
`--fail-fast` stops at the first input that fails (it had no effect). Without it every
input runs, and the session fails when any did (the error lists them): a resume re-runs
only those. Changed: all N iterations run (the original stopped early after an iteration
that made no commit, which a resume could not reproduce).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from prodigyd.engine.context import RunContext
from prodigyd.engine.gitvars import GitTracker
from prodigyd.engine.phase import PhaseOutcome
from prodigyd.engine.plan import run_number, run_phase
from prodigyd.eventtypes import EventType, run_name
from prodigyd.failure import FailureReason
from prodigyd.store.sessions import Runs
from prodigyd.workflow.model import Step, Workflow


class RunsHost(Protocol):
    """What the runs need of the session (engine/session.py)."""

    @property
    def workflow(self) -> Workflow: ...

    async def sequential(
        self, phase: str, steps: tuple[Step, ...], ctx: RunContext, git: GitTracker
    ) -> PhaseOutcome: ...


@dataclass(frozen=True)
class Run:
    number: int  # 1-based, over every run of the session
    iteration: int
    iterations: int
    input: str | None = None  # None: no inputs (`-n` alone)
    index: int = 1  # the input's 1-based number
    total: int = 1  # inputs in all
    is_file: bool = False  # a --map match (`${FILE}`), not an --args value

    def variables(self) -> dict[str, Any]:
        values: dict[str, Any] = {"ITERATION": self.iteration, "workflow.iteration": self.iteration}
        if self.input is not None:
            values.update({"ARG": self.input, "INDEX": self.index, "TOTAL": self.total})
            if self.is_file:
                values["FILE"] = self.input
        return values

    def event(self) -> dict[str, Any]:
        return {
            "run": self.number,
            "iteration": self.iteration,
            "iterations": self.iterations,
            "input": self.input,
            "index": self.index if self.input is not None else None,
            "total": self.total if self.input is not None else None,
        }

    def name(self) -> str:
        """How errors name the run (eventtypes.run_name: as the client's lines do)."""
        return run_name(self.event())


def plan_runs(runs: Runs, args: list[str] | tuple[str, ...]) -> list[Run]:
    """Every run in order: each input (none: one run), `runs.iterations` times each."""
    arg_inputs = list(args) if runs.each_arg else []
    inputs: list[tuple[str | None, bool]] = [(value, False) for value in arg_inputs]
    inputs += [(path, True) for path in runs.files]
    planned: list[Run] = []
    for index, (value, is_file) in enumerate(inputs or [(None, False)], start=1):
        for iteration in range(1, runs.iterations + 1):
            planned.append(
                Run(
                    number=len(planned) + 1,
                    iteration=iteration,
                    iterations=runs.iterations,
                    input=value,
                    index=index,
                    total=len(inputs) or 1,
                    is_file=is_file,
                )
            )
    return planned


def iteration_of(phase: str, runs: Runs | None) -> tuple[int, int]:
    """(iteration, iterations) of the run checkpointed as `phase`, for its checkpoints'
    `execution_state` (the original's `current_iteration`/`total_iterations`). Worked out
    from the run's number (plan_runs numbers each input's iterations in a row), not by
    planning every run: a session of 10,000 runs asks once per run."""
    if runs is None:
        return 1, 1
    number = run_number(phase)
    if number is None:
        return 1, runs.iterations  # a MapReduce phase: never run more than once
    return (number - 1) % runs.iterations + 1, runs.iterations


async def run_all(
    host: RunsHost, ctx: RunContext, git: GitTracker, runs: Runs, args: list[str]
) -> PhaseOutcome:
    """Run the workflow's steps once per planned run; see the module docstring for what a
    failure does."""
    failed: list[tuple[Run, PhaseOutcome]] = []
    planned = plan_runs(runs, args)
    for run in planned:
        if failed and run.input is not None and failed[-1][0].index == run.index:
            continue  # a failed input's later iterations do not run
        ctx.variables.update(run.variables())
        if run.input is not None:
            ctx.env["PRODIGY_ARG"] = run.input
        ctx.events.emit(EventType.RUN_STARTED, **run.event())
        outcome = await host.sequential(run_phase(run.number), host.workflow.steps, ctx, git)
        if outcome.stopped:
            return outcome
        ctx.events.emit(EventType.RUN_FINISHED, **run.event(), success=outcome.ok)
        if outcome.ok:
            continue
        failed.append((run, outcome))
        if runs.fail_fast or run.input is None or outcome.reason is FailureReason.BUDGET_EXCEEDED:
            return _failure(run, outcome, failed)
    if failed:
        return _failure(*failed[-1], failed)
    return PhaseOutcome(True)


def _failure(
    run: Run, outcome: PhaseOutcome, failed: list[tuple[Run, PhaseOutcome]]
) -> PhaseOutcome:
    """The session's error: which runs failed and why (the first line of each error)."""
    if run.input is None or len(failed) == 1:
        error = f"{run.name()} failed: {outcome.error or 'a step failed'}"
    else:
        lines = [f"{len(failed)} of {run.total} inputs failed:"]
        lines += [
            f"  {each.name()}: {(why.error or 'a step failed').splitlines()[0]}"
            for each, why in failed
        ]
        error = "\n".join(lines)
    return PhaseOutcome(
        False, error=error, exit_code=outcome.exit_code, reason=outcome.reason, code=outcome.code
    )
