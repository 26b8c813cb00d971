"""`exec`, `batch`, `goal-seek`: a workflow written from their options
(prodigyd.workflow.generate), submitted and followed as `run` does (prodigyctl/jobs.py).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click

from prodigyctl.commands import command
from prodigyctl.jobs import budget_options, budget_params, submit
from prodigyctl.options import detach_option, json_option, path_option, stacked, verbose_option

retry_option = click.option(
    "--retry",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="Attempts in all (backoff between them).",
)
timeout_option = click.option(
    "--timeout",
    type=click.FloatRange(min=0, min_open=True),
    metavar="SECS",
    help="Kill the command (a batch: each agent) after SECS seconds.",
)

#: What exec and batch take after their own options.
agent_options = stacked(
    retry_option, timeout_option, budget_options, path_option, detach_option, json_option
)


@command("exec")
@verbose_option
@click.argument("command")
@agent_options
def exec_(**options: Any) -> int:
    """Run one COMMAND in a new worktree and merge its result back to your branch.

    `claude: /cmd args` runs a Claude command and `shell: cmd` a shell command, as in
    the original prodigy; without a prefix, a COMMAND starting with `/` is a Claude
    command, anything else a shell command.
    """
    return generated("exec", **options)


@command("batch")
@verbose_option
@click.argument("pattern")
@click.option(
    "-c",
    "--command",
    required=True,
    help="Run for each file; ${item} is its path (`claude: /cmd` or a leading `/`: a "
    "Claude command; `shell: cmd` or anything else: a shell command).",
)
@click.option(
    "--parallel",
    type=click.IntRange(min=0),
    default=5,
    show_default=True,
    help="Agents at once (0: the default).",
)
@agent_options
def batch(**options: Any) -> int:
    """Run --command once per file matching PATTERN, each in its own agent, and merge.

    PATTERN is a `find -name` pattern (`'*.py'`), or a path pattern when it holds a `/`
    (`'src/*/api.py'`). Files are the committed ones of your branch, outside `.git`.
    A batch in which every file failed exits 1 (the files are in the DLQ).
    """
    return generated("batch", **options)


@command("goal-seek")
@click.argument("goal")
@click.option(
    "-c",
    "--command",
    required=True,
    help="Run on each attempt (a leading `/`: a Claude command); it sees ${goal.*} and "
    "PRODIGY_GOAL_*.",
)
@click.option(
    "--validate",
    required=True,
    metavar="COMMAND",
    help="Shell command printing a score after each attempt (`score: N`, `N%`, `N/100`, "
    '`N out of 100`, {"score": N, "gaps": [...]}).',
)
@click.option(
    "-t",
    "--threshold",
    type=click.FloatRange(0, 100),
    default=90,
    show_default=True,
    help="The score that reaches the goal.",
)
@click.option(
    "-m",
    "--max-attempts",
    type=click.IntRange(min=1),
    default=5,
    show_default=True,
    help="Attempts at most.",
)
@click.option(
    "--timeout",
    type=click.FloatRange(min=0, min_open=True),
    metavar="SECS",
    help="Give up after SECS seconds in all (the running attempt is killed).",
)
@click.option(
    "--fail-on-incomplete/--no-fail-on-incomplete",
    default=True,
    show_default=True,
    help="Whether a goal not reached fails (and nothing is merged) or its work is merged.",
)
@path_option
@detach_option
@json_option
def goal_seek(**options: Any) -> int:
    """Run --command until --validate scores GOAL as reached, then merge the result.

    Stops when the score reaches --threshold, after --max-attempts, at --timeout, or when
    the last three scores are within 2 points. Exit status 1 when the goal is not reached.
    """
    return generated("goal-seek", **options)


def generated(kind: str, *, path: str | None, detach: bool, as_json: bool, **options: Any) -> int:
    """`exec`, `batch` and `goal-seek`: a workflow written from their options
    (prodigyd.workflow.generate), submitted as text and merged without asking."""
    from prodigyd.workflow import generate

    if kind == "batch" and "${item" not in options["command"]:
        click.echo(
            "warning: --command does not use ${item}: every agent runs the same command",
            err=True,
        )
    builders: dict[str, Callable[..., str]] = {
        "exec": generate.exec_workflow,
        "batch": generate.batch_workflow,
        "goal-seek": generate.goal_seek_workflow,
    }
    build = builders[kind]
    budget = budget_params(options)
    try:
        text = build(**options)
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    params = {"workflow_text": text, **budget}
    return submit(params, yes=True, path=path, detach=detach, as_json=as_json)
