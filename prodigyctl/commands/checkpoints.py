"""`checkpoints ls|show|delete`: what a resume would continue from, and removing it."""

from __future__ import annotations

from typing import Any

import click

from prodigyctl.client import Client, dumps
from prodigyctl.commands import command, group
from prodigyctl.commands.status import human_bytes
from prodigyctl.exitcodes import EXIT_OK
from prodigyctl.options import id_argument, json_option
from prodigyctl.render import step_line
from prodigyd import protocol

checkpoints = group("checkpoints", "List, inspect and delete sessions' checkpoints.")


@command("ls", checkpoints)
@click.option("--status", help="Only sessions in this status.")
@json_option
def list_checkpoints(*, status: str | None, as_json: bool) -> int:
    """Sessions with checkpoints, newest first (resumable ones can be continued)."""
    with Client.connect() as client:
        rows = client.call(protocol.CHECKPOINTS_LIST, {"status": status, "limit": 10_000})
    if as_json:
        click.echo(dumps(rows))
        return EXIT_OK
    if not rows:
        click.echo("No checkpoints.")
        return EXIT_OK
    click.echo(f"{'ID':<34} {'STATUS':<15} {'STEPS':<7} {'PHASES':<24} {'SIZE':>9}")
    for row in rows:
        click.echo(
            f"{row['id']:<34} {row['status']:<15} {row['steps']:<7} "
            f"{','.join(row['phases']):<24} {human_bytes(row['bytes']):>9}"
        )
    return EXIT_OK


@command("show", checkpoints)
@id_argument("session_id")
@json_option
def show(*, session_id: str, as_json: bool) -> int:
    """A session's checkpoint: the steps done, by phase, and what a resume restores."""
    with Client.connect() as client:
        data = client.call(protocol.CHECKPOINTS_SHOW, {"session_id": session_id})
    if as_json:
        click.echo(dumps(data))
        return EXIT_OK
    resumable = "resumable" if data["resumable"] else "not resumable"
    click.echo(f"{data['id']} ({data['status']}, {resumable}): {data['workflow']}")
    for phase in data["checkpoints"]:
        click.echo(f"── {phase['phase']}: {_phase_line(phase)}")
        for step in phase["completed_steps"]:
            click.echo(step_line(step))
        if phase["variables"]:
            click.echo(f"  variables: {', '.join(phase['variables'])}")
    return EXIT_OK


def _phase_line(phase: dict[str, Any]) -> str:
    done = len(phase["completed_steps"])
    records = phase["records"]
    parts = []
    if done or phase["total_steps"] or not records:  # the map phase runs items, not steps
        parts.append(
            f"{done}/{phase['total_steps']} steps" if phase["total_steps"] else f"{done} steps"
        )
    for kind, count in sorted(records.items()):
        if kind in _RECORDS:  # the map phase's item list itself ("items") is no progress
            parts.append(_RECORDS[kind].format(count=count, s="" if count == 1 else "s"))
    return ", ".join(parts)


#: How the journal records other than steps read (`records` of checkpoints.show).
_RECORDS = {"result": "{count} item{s} finished", "rewind": "{count} rewind{s} (resume --from)"}


@command("delete", checkpoints)
@id_argument("session_id")
@click.option(
    "--force",
    is_flag=True,
    help="Also a failed or interrupted session's (its resume then runs every step again).",
)
@json_option
def delete(*, session_id: str, force: bool, as_json: bool) -> int:
    """Delete a finished session's checkpoints (never a queued or running one's)."""
    with Client.connect() as client:
        done = client.call(protocol.CHECKPOINTS_DELETE, {"session_id": session_id, "force": force})
    if as_json:
        click.echo(dumps(done))
    elif done["deleted"]:
        click.echo(f"deleted the checkpoints of {done['id']} ({human_bytes(done['bytes'])})")
    else:
        click.echo(f"{done['id']} has no checkpoints")
    return EXIT_OK
