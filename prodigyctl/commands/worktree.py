"""`worktree ls|clean|gc`: the pool of git worktrees sessions and map agents run in."""

from __future__ import annotations

import time
from datetime import datetime

import click

from prodigyctl.client import Client, dumps
from prodigyctl.commands import command, group
from prodigyctl.exitcodes import EXIT_OK
from prodigyctl.options import json_option
from prodigyd import protocol

worktree = group("worktree", "The pool of git worktrees that sessions and map agents run in.")


@command("ls", worktree)
@json_option
def list_worktrees(*, as_json: bool) -> int:
    """Every worktree prodigy keeps: idle pool slots, busy ones and kept ones."""
    with Client.connect() as client:
        rows = client.call(protocol.WORKTREES_LIST)
    if as_json:
        click.echo(dumps(rows))
        return EXIT_OK
    if not rows:
        click.echo("No prodigy worktrees.")
        return EXIT_OK
    click.echo(f"{'STATE':<6} {'USES':>4} {'IDLE FOR':>9}  {'OWNER':<40} PATH")
    now = time.time()
    for row in rows:
        used = row["last_used_at"]  # a number from a daemon older than this client
        used = used if isinstance(used, int | float) else datetime.fromisoformat(used).timestamp()
        idle = _ago(now - used) if row["state"] == "idle" else ""
        owner = row["owner"] or (f"named {row['name']}" if row["name"] else "")
        click.echo(f"{row['state']:<6} {row['uses']:>4} {idle:>9}  {owner:<40} {row['path']}")
    return EXIT_OK


@command("clean", worktree)
@click.argument("target", default="all")
@json_option
def clean(*, target: str, as_json: bool) -> int:
    """Remove TARGET (a path, a slot name or a named worktree), or every idle one (all)."""
    with Client.connect() as client:
        result = client.call(protocol.WORKTREES_CLEAN, {"target": target})
    if as_json:
        click.echo(dumps(result))
    else:
        for path in result["removed"]:
            click.echo(f"removed {path}")
        if not result["removed"]:
            click.echo("No idle worktrees to remove.")
    return EXIT_OK


#: Why the collector keeps a worktree no job of the journal owns (pool.py `gc`).
_HELD = "owned by no job of the journal, but it may hold work (an earlier journal's, or changes)"


@command("gc", worktree)
@click.option("--dry-run", is_flag=True, help="Report what would be collected; change nothing.")
@json_option
def gc(*, dry_run: bool, as_json: bool) -> int:
    """Reclaim orphaned worktrees and stale prodigy-* branches now (prodigyd also does it
    at start and every worktree_config.gc_interval_secs)."""
    with Client.connect() as client:
        report = client.call(protocol.WORKTREES_GC, {"dry_run": dry_run})
    if as_json:
        click.echo(dumps(report))
        return EXIT_OK
    verb = "would " if dry_run else ""
    lines = [
        *(f"{verb}reclaim {path}" for path in report["reclaimed"]),
        *(f"{verb}remove {path}" for path in report["removed"]),
        *(f"{verb}delete branch {name}" for name in report["branches_deleted"]),
        *(f"kept branch {name}: not merged anywhere" for name in report["branches_kept"]),
        *(f"held {path}: {_HELD}" for path in report.get("held", ())),
        *(f"error: {message}" for message in report["errors"]),
    ]
    click.echo("\n".join(lines) if lines else "Nothing to collect.")
    return EXIT_OK


def _ago(seconds: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{int(seconds // size)}{unit}"
    return f"{int(seconds)}s"
