"""`sessions ls|show` and `ps`: what ran, what is running, what waits to be merged or resumed."""

from __future__ import annotations

from typing import Any

import click

from prodigyctl.client import Client, dumps
from prodigyctl.commands import command, group
from prodigyctl.exitcodes import EXIT_OK
from prodigyctl.options import id_argument, json_option
from prodigyd import protocol

sessions = group("sessions", "List and inspect sessions.")


@command("ls", sessions)
@click.option("--status", help="Only sessions in this status.")
@click.option("--limit", default=100, show_default=True, help="At most this many, newest first.")
@json_option
def list_sessions(*, status: str | None, limit: int, as_json: bool) -> int:
    """List sessions, newest first."""
    with Client.connect() as client:
        rows = client.call(protocol.SESSIONS_LIST, {"status": status, "limit": limit})
    if as_json:
        click.echo(dumps(rows))
        return EXIT_OK
    if not rows:
        click.echo("No sessions.")
        return EXIT_OK
    _table(rows)
    return EXIT_OK


@command("show", sessions)
@id_argument("session_id")
@json_option
def show(*, session_id: str, as_json: bool) -> int:
    """Show one session, its completed steps and its Claude invocations.

    Each invocation of Claude (every attempt of a step, map agents' too) is one line: its
    step and attempt (`3#2`: step 3's second run), how it ended, model, tool uses, turns,
    tokens (in, out, cache read and cache written), cost and time; `--json` has each one's
    full record, with Claude's session id, permission denials and the path of its raw
    stream log.
    """
    with Client.connect() as client:
        data = client.call(protocol.SESSIONS_SHOW, {"session_id": session_id})
    if as_json:
        click.echo(dumps(data))
        return EXIT_OK
    for key in (
        "id",
        "status",
        "workflow",
        "triggered_by",
        "repo",
        "original_branch",
        "branch",
        "worktree",
        "started_at",
        "completed_at",
        "merged",
        "merge_commit",
        "cost_usd",
        "error",
    ):
        if data.get(key) not in (None, ""):
            click.echo(f"{key + ':':<17} {data[key]}")
    click.echo(f"{'steps:':<17} {data['completed_steps']}/{data['total_steps']} completed")
    if data.get("mode") == "mapreduce":
        click.echo(
            f"{'items:':<17} {data['processed_items']}/{data['total_items']} processed, "
            f"{data['failed_items']} failed"
        )
    for step in data.get("completed", []):
        click.echo(f"  {step['step_index'] + 1}. {step['command']} ({step['duration']:.2f}s)")
    if data.get("claude_invocations"):
        _invocations(data["claude_invocations"])
    return EXIT_OK


#: `sessions show`'s table of Claude invocations; the first four columns are text.
_HEADINGS = (
    "STEP#TRY",
    "STATUS",
    "MODEL",
    "TOOLS",
    "TURNS",
    "IN",
    "OUT",
    "CACHE R",
    "CACHE W",
    "COST",
    "TIME",
)
_TEXT_COLUMNS = 4


def _invocations(records: list[dict[str, Any]]) -> None:
    """One line per Claude invocation, in columns as wide as their widest cell, then each
    one's permission denials."""
    rows = [list(_HEADINGS), *(_invocation_cells(record) for record in records)]
    widths = [max(len(row[i]) for row in rows) for i in range(len(_HEADINGS))]
    click.echo("claude invocations:")
    for number, row in enumerate(rows):
        cells = [
            cell.ljust(width) if i < _TEXT_COLUMNS else cell.rjust(width)
            for i, (cell, width) in enumerate(zip(row, widths, strict=True))
        ]
        click.echo("  " + "  ".join(cells).rstrip())
        for denial in records[number - 1]["permission_denials"] if number else []:
            click.echo(f"    permission denied: {denial.get('tool_name') or '?'}")


def _invocation_cells(record: dict[str, Any]) -> list[str]:
    tools = " ".join(f"{name}:{count}" for name, count in record["tool_uses"].items())
    return [
        f"{record['step']}#{record['attempt']}",
        record["status"],
        record["model"] or "-",
        tools or "-",
        str(record["num_turns"]),
        str(record["input_tokens"]),
        str(record["output_tokens"]),
        str(record["cache_read_tokens"]),
        str(record["cache_creation_tokens"]),
        f"${record['cost_usd']:.4f}",
        f"{record['duration_seconds']:.1f}s",
    ]


@command("ps")
@click.option("--recent", default=10, show_default=True, help="How many finished jobs to show.")
@json_option
def ps(*, recent: int, as_json: bool) -> int:
    """Queued and running jobs, and the most recent finished ones."""
    with Client.connect() as client:
        rows = client.call(protocol.SESSIONS_LIST, {"limit": 1000})
    active = [r for r in rows if r["status"] in ("queued", "running")]
    done = [r for r in rows if r["status"] not in ("queued", "running")][:recent]
    if as_json:
        click.echo(
            dumps(
                {
                    "queued": [r for r in active if r["status"] == "queued"],
                    "running": [r for r in active if r["status"] == "running"],
                    "recent": done,
                }
            )
        )
        return EXIT_OK
    if not active and not done:
        click.echo("No jobs.")
        return EXIT_OK
    _table(active + done)
    return EXIT_OK


def _table(rows: list[dict]) -> None:
    click.echo(f"{'ID':<34} {'STATUS':<15} {'PROGRESS':<20} {'STARTED':<24} WORKFLOW")
    for row in rows:
        click.echo(
            f"{row['id']:<34} {row['status']:<15} {_progress(row):<20} {row['started_at']:<24} "
            f"{row['workflow']}"
        )


def _progress(row: dict) -> str:
    """Steps done, or for a MapReduce job its items done and failed (`ps` as the progress
    line of `run` counts them)."""
    if not row.get("items"):
        return f"{row['steps']} steps"
    failed = f", {row['failed_items']} failed" if row.get("failed_items") else ""
    return f"{row['items']} items{failed}"
