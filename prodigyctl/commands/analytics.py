"""`analytics [--since WHEN] [--by workflow|day|repo|status|tool|model]`: cost, tokens and
outcomes.

The daemon sums its journal (prodigyd/api/analytics.py says what counts as succeeded, and
how invocations count per tool); this prints one row per group, the costliest (or, per
tool, the most used) first, then the total and the costliest jobs. `--json` gives the
daemon's answer as is.
"""

from __future__ import annotations

from typing import Any

import click

from prodigyctl.client import Client, dumps
from prodigyctl.commands import command
from prodigyctl.exitcodes import EXIT_OK
from prodigyctl.options import json_option, since_option
from prodigyd import protocol

COLUMNS = (
    "sessions",
    "ok",
    "failed",
    "cancelled",
    "success",
    "cost",
    "tokens in",
    "tokens out",
    "time",
    "failed time",
)
#: The columns of `--by tool` and `--by model`: sums over Claude invocations.
INVOCATION_COLUMNS = (
    "runs",
    "sessions",
    "tool uses",
    "turns",
    "cost",
    "tokens in",
    "tokens out",
    "cache read",
    "cache write",
    "time",
)


@command("analytics")
@since_option("sessions started")
@click.option(
    "--by",
    "group_by",
    type=click.Choice(["workflow", "day", "repo", "status", "tool", "model"]),
    default="workflow",
    show_default=True,
    help="One row per workflow, day, repository or status of the sessions; or per tool "
    "or model of their Claude invocations (a run counts under each tool it used).",
)
@click.option(
    "--top",
    type=click.IntRange(0, 100),
    default=5,
    show_default=True,
    help="List this many of the costliest sessions.",
)
@json_option
def analytics(*, since: str | None, group_by: str, top: int, as_json: bool) -> int:
    """Cost, tokens, outcomes and time of your sessions, the costliest groups first.

    `--by tool` and `--by model` sum the Claude invocations (every run of `claude`, each
    step attempt and map agent) started since WHEN instead: runs, sessions, tool uses,
    turns, cost, tokens (in, out, cache read, cache written) and time, one row per tool
    (most used first; `(no tool)` for runs that used none) or per model (costliest first).
    """
    params = {"since": since, "group_by": group_by, "top": top}
    with Client.connect() as client:
        result = client.call(protocol.ANALYTICS_SUMMARY, params)
    if as_json:
        click.echo(dumps(result))
        return EXIT_OK
    by_invocation = group_by in ("tool", "model")
    counted = "invocations" if by_invocation else "sessions"
    if not result["total"][counted]:
        click.echo(
            f"no {'Claude invocations' if by_invocation else 'sessions'}"
            + (f" since {since}" if since else "")
        )
        return EXIT_OK
    cells, columns = (_invocation_cells, INVOCATION_COLUMNS) if by_invocation else (_cells, COLUMNS)
    rows = [(row["key"], cells(row)) for row in result["rows"]]
    rows.append(("total", cells(result["total"])))
    width = max(len(group_by), *(len(key) for key, _ in rows))
    click.echo(f"{group_by.upper():<{width}}  " + "  ".join(f"{c:>10}" for c in columns))
    for key, row_cells in rows:
        click.echo(f"{key:<{width}}  " + "  ".join(f"{c:>10}" for c in row_cells))
    if result["top"]:
        click.echo("\ncostliest sessions:")
        for job in result["top"]:
            click.echo(
                f"  ${job['cost_usd']:.4f}  {job['tokens']:>9} tokens  {job['id']}  "
                f"{job['workflow']} ({job['status']})"
            )
    return EXIT_OK


def _cells(totals: dict[str, Any]) -> list[str]:
    rate = totals["success_rate"]
    return [
        str(totals["sessions"]),
        str(totals["succeeded"]),
        str(totals["failed"]),
        str(totals.get("cancelled", "-")),  # a daemon older than this client: not counted
        "-" if rate is None else f"{rate:.0%}",
        f"${totals['cost_usd']:.4f}",
        str(totals["input_tokens"]),
        str(totals["output_tokens"]),
        _duration(totals["duration_seconds"]),
        _duration(totals["failed_seconds"]),
    ]


def _invocation_cells(totals: dict[str, Any]) -> list[str]:
    return [
        str(totals["invocations"]),
        str(totals["sessions"]),
        str(totals["tool_uses"]),
        str(totals["turns"]),
        f"${totals['cost_usd']:.4f}",
        str(totals["input_tokens"]),
        str(totals["output_tokens"]),
        str(totals["cache_read_tokens"]),
        str(totals["cache_creation_tokens"]),
        _duration(totals["duration_seconds"]),
    ]


def _duration(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{secs:02d}s"
