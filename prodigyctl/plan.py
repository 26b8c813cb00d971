"""`run --dry-run`: what a run would do, read from the workflow without running anything.

The workflow is loaded by the daemon's own loader, here in the client (as `validate` does),
so nothing is submitted, no worktree is made and no command runs. The plan lists each
phase's steps as `run` would show them; for a MapReduce job it counts the work items when
`map.input` names a JSON file of the repository (through the same json_path, filter, sort,
distinct, offset and max_items as a run), and otherwise names the command a run would ask
for them (a command is not run in a dry run: it may do anything).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from prodigyd.workflow.model import Step, Workflow


def plan(workflow: Workflow, repo: Path) -> dict[str, Any]:
    """The plan as data (`--json`): name, mode, and each phase's step lines."""
    phases: list[dict[str, Any]] = []
    if workflow.mode == "standard":
        phases.append({"phase": "main", "steps": _lines(workflow.steps)})
    else:
        if workflow.setup is not None:
            phases.append({"phase": "setup", "steps": _lines(workflow.setup.steps)})
        assert workflow.map is not None
        spec = workflow.map
        phases.append(
            {
                "phase": "map",
                "input": spec.input,
                "items": _items(workflow, repo),
                "max_parallel": spec.max_parallel,
                "steps": _lines(spec.agent_template),
            }
        )
        if workflow.reduce:
            phases.append({"phase": "reduce", "steps": _lines(workflow.reduce)})
    return {"name": workflow.name, "mode": workflow.mode, "phases": phases}


def show(data: dict[str, Any], source: str) -> None:
    click.echo(f"Dry run of {source} ({data['name']}, {data['mode']}): nothing runs")
    for phase in data["phases"]:
        if phase["phase"] == "map":
            items = phase["items"]
            count = f"{items} items" if isinstance(items, int) else items
            click.echo(
                f"── map phase: {count} from {phase['input']}, "
                f"{phase['max_parallel']} agents at once; each agent runs:"
            )
        else:
            click.echo(f"── {phase['phase']} phase")
        for number, line in enumerate(phase["steps"], start=1):
            click.echo(f"  [{number}/{len(phase['steps'])}] {line}")


def _lines(steps: tuple[Step, ...]) -> list[str]:
    return [step.display() for step in steps]


def _items(workflow: Workflow, repo: Path) -> int | str:
    """How many work items a run would have, when the input is a file to read now."""
    from prodigyd.errors import ProdigyError
    from prodigyd.workflow.items import spec_items, why_none

    spec = workflow.map
    assert spec is not None
    if "${" in spec.input:
        return "items (known when the job runs: the input has variables)"
    path = Path(spec.input) if Path(spec.input).is_absolute() else repo / spec.input
    if not path.is_file():
        if workflow.setup is not None and not any(ch.isspace() for ch in spec.input):
            return "items (the file as the setup leaves it: a dry run runs no setup)"
        return "items (a command's output: a dry run runs no command)"
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
        count = len(spec_items(document, spec))
        note = None if count else why_none(document, spec)
        return f"0 items ({note})" if note else count
    except (ValueError, UnicodeDecodeError, ProdigyError) as exc:
        first = str(getattr(exc, "message", exc)).splitlines()[0]
        return f"items: {spec.input} cannot be read ({first})"
