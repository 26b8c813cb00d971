"""`clean`: apply the retention policy now, or see what it would remove (prodigyd/retention.py;
docs/daemon.md, "Retention")."""

from __future__ import annotations

from typing import Any

import click

from prodigyctl.client import Client, dumps
from prodigyctl.commands import command
from prodigyctl.errors import fail
from prodigyctl.exitcodes import EXIT_OK, EXIT_USAGE
from prodigyctl.options import json_option
from prodigyd import errorcodes, protocol

#: The kinds of data `usage` reports, in the order shown, with their names.
_KINDS = (
    ("events", "events"),
    ("checkpoints", "checkpoints"),
    ("agent_logs", "agent logs"),
    ("claude_logs", "Claude logs"),
    ("daemon_logs", "daemon logs"),
    ("journal", "journal"),
    ("workflows", "inline workflows"),
    ("spool", "spool"),
    ("worktrees", "worktrees"),
)

#: Why an expired session stays, and what releases it.
_KEPT = {
    "dead_letters": "has dead letters (prodigyctl dlq retry, or dlq purge {id}, releases it)",
    "dlq_retry": "a kept `dlq retry` job re-runs its items",
}


def _older_than(ctx: click.Context, param: click.Parameter, value: str | None) -> float | None:
    from prodigyd.durations import duration_seconds

    if value is None:
        return None
    seconds = duration_seconds(value)
    if seconds is None and value.startswith("-"):  # said here: as a usage error, the
        fail(  # original's `clean WHAT` would take it for its argument (prodigyctl/original.py)
            errorcodes.USAGE,
            f"--older-than {value}: an age is not negative (--older-than {value[1:]} removes "
            f"what is older than {value[1:]})",
            EXIT_USAGE,
        )
    if seconds is None:
        raise click.BadParameter(f"{value!r} is not a duration such as 30d, 12h or 90m")
    return seconds


@command("clean")
@click.option(
    "--older-than",
    metavar="AGE",
    callback=_older_than,
    help="Remove completed and cancelled sessions last changed more than AGE ago (30d, 12h), "
    "instead of retention.max_age_days; failed and resumable ones keep their own, longer "
    "limit unless AGE is longer.",
)
@click.option("--dry-run", is_flag=True, help="Show what would go and its size; remove nothing.")
@json_option
def clean(*, older_than: float | None, dry_run: bool, as_json: bool) -> int:
    """Remove old sessions, logs and leftovers now, by the retention policy.

    prodigyd also applies the policy ([retention] in config.toml) at start and every
    retention.interval_secs. Queued and running sessions, and sessions with dead letters,
    are never removed; failed and resumable ones only past
    retention.resumable_max_age_days. --dry-run lists what would go, its size, and what
    the store holds of each kind of data.
    """
    with Client.connect() as client:
        report = client.call(
            protocol.RETENTION_CLEAN, {"older_than": older_than, "dry_run": dry_run}
        )
    if as_json:
        click.echo(dumps(report))
    else:
        _show(report)
    return EXIT_OK


def _show(report: dict[str, Any]) -> None:
    from prodigyctl.commands.status import human_bytes

    usage = report["usage"]
    parts = [f"{name} {human_bytes(usage[key])}" for key, name in _KINDS if key in usage]
    click.echo(f"Store: {human_bytes(usage['total'])} ({', '.join(parts)})")
    verb = "would remove" if report["dry_run"] else "removed"
    sessions, files = report["sessions"], report["files"]
    if sessions:
        size = human_bytes(sum(s["bytes"] for s in sessions))
        click.echo(f"{verb} {len(sessions)} session{_s(sessions)} ({size}):")
        for s in sessions:
            click.echo(
                f"  {s['id']:<34} {s['status']:<15} {s['updated_at']:<24} "
                f"{human_bytes(s['bytes']):>10}  {s['workflow_name']} ({s['reason']})"
            )
    if files:
        size = human_bytes(sum(f["bytes"] for f in files))
        click.echo(f"{verb} {len(files)} file{_s(files)} ({size}):")
        for f in files:
            what = "cut by" if f["kind"] == "daemon_output" else f["kind"].replace("_", " ")
            click.echo(f"  {what} {human_bytes(f['bytes'])}: {f['path']}")
    for kept in report["kept"]:
        why = _KEPT.get(kept["reason"], kept["reason"]).format(id=kept["id"])
        click.echo(f"kept {kept['id']} ({kept['status']}) past its age: {why}")
    for error in report["errors"]:
        click.echo(f"error: {error}", err=True)
    if not sessions and not files:
        click.echo("Nothing to remove.")
    else:
        freed = "would free" if report["dry_run"] else "freed"
        click.echo(f"{freed} {human_bytes(report['freed_bytes'])}")


def _s(items: list[Any]) -> str:
    return "" if len(items) == 1 else "s"
