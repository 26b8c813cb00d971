"""Running the built-in validators (`quality`, `tests`, `spec`) to a Score, for goal_seek's
`validate` and a step's `validate:` alike.

The command of a `quality` or `tests` validator runs as a nested shell step (events,
live output and its timeout as for any step). A failing exit code is no failure of the
validator: failing tests are what it measures. So it runs with `allow_failure`, and what
counts is its output:

* `quality`: the score its output shows (engine/score.py); none is an error.
* `tests`: the share of tests passing in the runner's summary (engine/testsummary.py).
  No summary from a command that failed (a build error: no test ran) scores 0, with the
  end of its output as the gap, so a goal_seek's next attempt can fix the build; no
  summary from a command that succeeded is an error (it ran no tests we can read).
* `spec`: the share of the spec's requirements referenced (engine/speccoverage.py).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from prodigyd.engine.score import Score, ScoreError, parse_score, shown_output
from prodigyd.engine.speccoverage import DEFAULT_REQUIREMENT_ID, spec_coverage
from prodigyd.engine.testsummary import RUNNERS, parse_test_summary
from prodigyd.workflow.interpolate import VariableStore
from prodigyd.workflow.model import Scorer, Step

if TYPE_CHECKING:
    from prodigyd.engine.step import StepRunner


async def score(
    scorer: Scorer,
    runner: StepRunner,
    *,
    label: str,
    store: VariableStore,
    env: Mapping[str, str],
    working_dir: str | None = None,
    timeout: float | None = None,
) -> Score:
    """The validator's score of the worktree as it is now; ScoreError when it gives none."""
    ctx = runner.ctx
    if scorer.kind == "spec":
        cwd = ctx.resolve_dir(working_dir, store)
        spec = ctx.inside_worktree(cwd / ctx.interpolate(scorer.spec or "", store), scorer.spec)
        paths = tuple(ctx.interpolate(path, store) for path in scorer.paths)
        pattern = scorer.pattern or DEFAULT_REQUIREMENT_ID
        return await spec_coverage(ctx.worktree, cwd, spec, pattern=pattern, paths=paths)
    command = scorer.command or ""
    step = Step(
        kind="shell",
        command=command,
        env=dict(env),
        working_dir=working_dir,
        timeout=timeout,
        allow_failure=True,
    )
    result = (await runner.run(step, label=label, store=store)).result
    source = f"the {scorer.kind} validator `{command.strip()}`"
    if result.timed_out:
        raise ScoreError(f"{source} {result.error}")
    if scorer.kind == "quality":
        exited = f" (it exited with code {result.exit_code})" if result.exit_code else ""
        return parse_score(result.stdout, source + exited)
    output = f"{result.stdout}\n{result.stderr}".strip()
    counts = parse_test_summary(output)
    if counts is not None:
        return Score(counts.score, counts.failures, output)
    if result.exit_code != 0:
        gap = f"no test ran: `{command.strip()}` exited with code {result.exit_code}"
        return Score(0.0, [gap, shown_output(output)], output)
    raise ScoreError(
        f"no test summary in the output of {source}",
        details=f"expected the summary of {RUNNERS}; the output was:\n{shown_output(output)}",
    )
