"""`validate WORKFLOW...`: check workflow files without running them, as the original did.

The check is the daemon's own loader (prodigyd.workflow.load), run here, so no daemon is
needed and nothing is written: YAML syntax, every field and its type, step shapes, `when:`
and `filter:` expressions, `on:` triggers and unknown keys (warnings; errors with
`--strict`), and `${name}` references nothing defines (warnings; errors with `--strict`
or a workflow's `strict_variables: true`). What depends on where and how a run starts (the
repository, the environment, secrets, the claude executable) is checked when a job is
submitted.

Output keeps the original's lines, `✓ Workflow is valid: <path>` and `✗ Workflow has
issues: <path>`, and its exit status: 1 when any file has issues.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import click

from prodigyctl.client import dumps
from prodigyctl.commands import command
from prodigyctl.exitcodes import EXIT_FAILED, EXIT_OK
from prodigyctl.options import json_option
from prodigyd import errorcodes


@command("validate")
@click.argument("workflows", nargs=-1, required=True, type=click.Path(dir_okay=False))
@click.option(
    "--strict",
    is_flag=True,
    help="Unknown keys, and variables nothing defines, are errors, not warnings.",
)
@json_option
def validate(*, workflows: tuple[str, ...], strict: bool, as_json: bool) -> int:
    """Check WORKFLOWS without running them (no daemon needed); exit 1 if one has issues.

    A workflow with `strict_variables: true` has a `${name}` nothing defines (nor this
    environment) as an issue, as --strict has it for any workflow: the run would stop there.

    --json prints a list, one object per file: `path`, `valid`, `warnings` (lines of text)
    and `problems`, every issue found, each `{file, line, column, field, message, code,
    hint}` (none when valid). A valid file adds `name`, `mode`, `steps`, `on`, `parameters`
    and `includes`; one with issues adds `error` (the first problem, as an error object)
    and `message` (all of them, as text).
    """
    results = [_check(Path(name), strict=strict) for name in workflows]
    if as_json:
        click.echo(dumps(results))
    else:
        for result in results:
            _show(result)
    return EXIT_OK if all(result["valid"] for result in results) else EXIT_FAILED


def _check(path: Path, *, strict: bool) -> dict[str, Any]:
    from prodigyd.errors import ProdigyError
    from prodigyd.workflow.load import load_workflow, strict_problems

    result: dict[str, Any] = {"path": str(path.absolute()), "valid": False, "warnings": []}
    try:
        if strict and (problems := strict_problems(path.absolute(), os.environ)) is not None:
            raise problems
        loaded = load_workflow(path.absolute(), strict=strict)
        # a `${name}` nothing defines, nor this environment: an issue if variables are strict
        variables = loaded.variable_warnings(os.environ, strict=strict)
    except ProdigyError as exc:
        issues = {"error": exc.to_dict(), "message": exc.render(), "problems": exc.problems()}
        return {**result, **issues}
    workflow = loaded.workflow
    return {
        **result,
        "valid": True,
        "problems": [],
        "warnings": [*loaded.warnings, *variables],
        "name": workflow.name,
        "mode": workflow.mode,
        "steps": len(workflow.phase_steps),
        "on": [trigger.event for trigger in workflow.on],
        "parameters": {name: spec.model_dump() for name, spec in workflow.parameters.items()},
        "includes": sorted(loaded.includes),  # the files it is composed of
    }


def _show(result: dict[str, Any]) -> None:
    if not result["valid"]:
        click.echo(f"✗ Workflow has issues: {result['path']}")
        message = f"{errorcodes.label(result['error']['code'])}: {result['message']}"
        click.echo("  " + message.replace("\n", "\n  "))
        return
    click.echo(f"✓ Workflow is valid: {result['path']}")
    for warning in result["warnings"]:
        click.echo(f"  warning: {warning}")
