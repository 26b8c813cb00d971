"""`analytics [--since WHEN] [--by workflow|day|repo|status]`: cost, tokens and outcomes.

The daemon sums its journal (prodigyd/api/analytics.py says what counts as succeeded);
this prints one row per group, the costliest first, then the total and the costliest
jobs. `--json` gives the daemon's answer as is.
"""

from __future__ import annotations

from typing import Any

import click

from prodigyctl.client import Client, dumps
from prodigyctl.commands import command
from prodigyctl.exitcodes import EXIT_OK
from prodigyctl.options import json_option, since_option
from prodigyd import protocol

COLUMNS = ("sessions", "ok", "failed", "success", "cost", "tokens in", "tokens out", "time")


@command("analytics")
@since_option("sessions started")
@click.option(
    "--by",
    "group_by",
    type=click.Choice(["workflow", "day", "repo", "status"]),
    default="workflow",
    show_default=True,
    help="One row per workflow, day, repository or status.",
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
    """Cost, tokens, outcomes and time of your sessions, the costliest groups first."""
    params = {"since": since, "group_by": group_by, "top": top}
    with Client.connect() as client:
        result = client.call(protocol.ANALYTICS_SUMMARY, params)
    if as_json:
        click.echo(dumps(result))
        return EXIT_OK
    if not result["total"]["sessions"]:
        click.echo("no sessions" + (f" since {since}" if since else ""))
        return EXIT_OK
    rows = [(row["key"], _cells(row)) for row in result["rows"]]
    rows.append(("total", _cells(result["total"])))
    width = max(len(group_by), *(len(key) for key, _ in rows))
    click.echo(f"{group_by.upper():<{width}}  " + "  ".join(f"{c:>10}" for c in COLUMNS))
    for key, cells in rows:
        click.echo(f"{key:<{width}}  " + "  ".join(f"{c:>10}" for c in cells))
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
        "-" if rate is None else f"{rate:.0%}",
        f"${totals['cost_usd']:.4f}",
        str(totals["input_tokens"]),
        str(totals["output_tokens"]),
        _duration(totals["duration_seconds"]),
    ]


def _duration(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{secs:02d}s"
