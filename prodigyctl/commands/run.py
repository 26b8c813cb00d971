"""`run`: start a session from a workflow file and follow it to the end (prodigyctl/jobs.py);
`run --dry-run` shows its plan instead.
"""

from __future__ import annotations

import os
from typing import Any

import click

from prodigyctl.client import dumps
from prodigyctl.commands import command
from prodigyctl.exitcodes import EXIT_OK
from prodigyctl.jobs import budget_options, budget_params, executor_options, executor_params, submit
from prodigyctl.options import (
    detach_option,
    json_option,
    path_option,
    verbose_option,
    yes_option,
)


@command("run")
@verbose_option
@click.argument("workflow", type=click.Path(dir_okay=False))
@yes_option
@click.option(
    "--args",
    "args",
    multiple=True,
    metavar="VALUE",
    help="Positional value for $ARG / ${ARG_1}... (repeatable).",
)
@click.option(
    "-n",
    "--max-iterations",
    type=click.IntRange(1, 10_000),
    default=1,
    show_default=True,
    metavar="N",
    help="Run the whole step list N times (per input with --map/--each-arg).",
)
@click.option(
    "--map",
    "map_patterns",
    multiple=True,
    metavar="PATTERN",
    help="Run the workflow once per committed file matching PATTERN, as batch matches "
    "(${FILE}, ${ARG}, ${INDEX}, ${TOTAL}; repeatable).",
)
@click.option(
    "--each-arg",
    is_flag=True,
    help="Run the workflow once per --args value (${ARG}, ${INDEX}, ${TOTAL}), as --map does.",
)
@click.option(
    "--fail-fast",
    is_flag=True,
    help="With --map/--each-arg: stop at the first input that fails (default: run them all).",
)
@click.option(
    "--param",
    "param",
    multiple=True,
    metavar="NAME=VALUE",
    help="A workflow parameter, ${NAME} (repeatable; typed as the workflow declares it).",
)
@click.option(
    "--param-file",
    type=click.Path(dir_okay=False),
    metavar="FILE",
    help="Parameters from a YAML or JSON mapping (--param values win).",
)
@click.option("--profile", metavar="NAME", help="Activate an environment profile of the workflow.")
@path_option
@detach_option
@click.option(
    "--strict", is_flag=True, help="Unknown workflow keys and unresolved variables are errors."
)
@click.option(
    "--dry-run",
    is_flag=True,
    help="Show the plan (phases, steps, how many items) and run nothing.",
)
@click.option(
    "--priority",
    type=click.IntRange(-1000, 1000),
    default=0,
    show_default=True,
    help="Higher starts first among queued jobs (first come, first served within one).",
)
@click.option(
    "--idempotency-key",
    metavar="KEY",
    help="Run at most once per KEY: a run with a key already used follows that earlier job.",
)
@budget_options
@executor_options
@json_option
def run(
    *,
    workflow: str,
    yes: bool,
    args: tuple[str, ...],
    max_iterations: int,
    map_patterns: tuple[str, ...],
    each_arg: bool,
    fail_fast: bool,
    param: tuple[str, ...],
    param_file: str | None,
    profile: str | None,
    path: str | None,
    detach: bool,
    strict: bool,
    dry_run: bool,
    priority: int,
    idempotency_key: str | None,
    as_json: bool,
    **budget: Any,
) -> int:
    """Run WORKFLOW in a new worktree and merge the result back to your branch.

    WORKFLOW `-` reads the workflow from standard input.
    """
    if fail_fast and not (map_patterns or each_arg):
        raise click.UsageError("--fail-fast applies to a run over inputs (--map, --each-arg)")
    if each_arg and not args:
        raise click.UsageError("--each-arg runs once per --args value: give at least one")
    values = {**_param_file(param_file), **dict(_assignment(text) for text in param)}
    if dry_run:
        return _dry_run(workflow, path, values, strict=strict, as_json=as_json)
    source = {"workflow_text": _stdin_workflow()} if workflow == "-" else {"workflow": workflow}
    params: dict[str, Any] = {**source, "args": list(args), "profile": profile, "strict": strict}
    if values:
        params["params"] = values
    if priority:
        params["priority"] = priority
    if max_iterations > 1:
        params["max_iterations"] = max_iterations
    if map_patterns or each_arg:
        params.update(map=list(map_patterns), each_arg=each_arg, fail_fast=fail_fast)
    if idempotency_key is not None:
        params["idempotency_key"] = idempotency_key
    params.update(executor_params(budget))
    params.update(budget_params(budget))
    return submit(params, yes=yes, path=path, detach=detach, as_json=as_json)


def _assignment(text: str) -> tuple[str, str]:
    name, sep, value = text.partition("=")
    if not sep or not name.strip():
        raise click.UsageError(f"--param {text!r}: expected NAME=VALUE")
    return name.strip(), value


def _dry_run(
    workflow: str, path: str | None, values: dict[str, Any], *, strict: bool, as_json: bool
) -> int:
    """`run --dry-run`: the plan (prodigyctl/plan.py); no daemon, nothing submitted.
    `values`: the --param ones, whose names are defined as the run's would be."""
    from pathlib import Path

    from prodigyctl import plan
    from prodigyctl.gittop import repository_top
    from prodigyd.workflow.load import load_workflow, parse_workflow

    # a ProdigyError (the file cannot be loaded) goes to the error handler with its code
    if workflow == "-":
        loaded = parse_workflow(_stdin_workflow(), source="<stdin>", strict=strict)
    else:
        loaded = load_workflow(Path(workflow).absolute(), strict=strict)
    # as `run` warns (or, variables strict, refuses): unknown keys, and `${name}`s nothing
    # defines (nor this environment)
    variables = loaded.variable_warnings({**os.environ, **values}, strict=strict)
    repo = repository_top(path) or Path(path or ".").resolve()
    data = plan.plan(loaded.workflow, repo)
    data["warnings"] = [*loaded.warnings, *variables]
    if as_json:
        click.echo(dumps(data))
    else:
        for warning in data["warnings"]:
            click.echo(f"warning: {warning}", err=True)
        plan.show(data, workflow)
    return EXIT_OK


def _param_file(path: str | None) -> dict[str, Any]:
    """The mapping in a --param-file, read as workflow files are (YAML 1.2, of which JSON is
    a part: `yes` stays text); its values keep their types, and the daemon checks them
    against the workflow's declarations."""
    if path is None:
        return {}
    from pathlib import Path

    from prodigyd.errors import ProdigyError
    from prodigyd.workflow.limits import Deadline
    from prodigyd.workflow.load.nodes import plain
    from prodigyd.workflow.load.source import parse_text, read_source

    file = Path(path).absolute()
    if not file.is_file():
        raise click.UsageError(f"--param-file {path}: no such file")
    try:
        data = plain(parse_text(read_source(file)[0], str(file), Deadline())[0])
    except ProdigyError as exc:
        raise click.UsageError(f"--param-file: {exc.render()}") from None
    if not isinstance(data, dict) or not all(isinstance(key, str) for key in data):
        raise click.UsageError(f"--param-file {path}: expected a mapping of NAME: value")
    return data


def _stdin_workflow() -> str:
    with click.open_file("-") as stdin:
        text = stdin.read()
    if not text.strip():
        raise click.UsageError("no workflow on standard input (WORKFLOW `-` reads it there)")
    return text
