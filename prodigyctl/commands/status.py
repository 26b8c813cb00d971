"""`status`: the daemon's health at a glance. Never starts a daemon: exit 5 when none runs."""

from __future__ import annotations

from typing import Any

import click

from prodigyctl.client import Client, dumps
from prodigyctl.commands import command
from prodigyctl.errors import DaemonUnreachable
from prodigyctl.exitcodes import EXIT_OK, EXIT_UNREACHABLE
from prodigyctl.options import json_option
from prodigyd import protocol

#: Every job state, in the order they are listed (`sessions ls --status` takes these); a
#: state not named here (a newer daemon's) follows, alphabetically.
JOB_STATES = (
    "queued",
    "running",
    "awaiting_merge",
    "completed",
    "failed",
    "interrupted",
    "cancelled",
)


@command("status")
@json_option
def status(*, as_json: bool) -> int:
    """Daemon health: jobs, uptime, store size (never starts it; exit 5)."""
    try:
        with Client.connect(autostart=False) as client:
            info = client.call(protocol.DAEMON_STATUS)
    except DaemonUnreachable:
        click.echo(dumps({"running": False}) if as_json else "prodigyd is not running")
        return EXIT_UNREACHABLE
    if as_json:
        click.echo(dumps(status_json(info)))
        return EXIT_OK
    for label, value in _lines(info):
        click.echo(f"{label + ':':<16} {value}")
    if info.get("store_problem"):
        click.echo(f"warning: prodigyd's store: {info['store_problem']}", err=True)
    return EXIT_OK


def status_json(info: dict[str, Any]) -> dict[str, Any]:
    """The daemon's `daemon.status` reply as `status --json` (and `daemon start --json`)
    prints it: with `running`, the field a script tests whichever command it ran."""
    return {"running": True, **info}


def _lines(info: dict[str, Any]) -> list[tuple[str, str]]:
    running = info.get("running_sessions") or []
    accepting = info.get("accepting", True)
    return [
        ("prodigyd", "running" if accepting else "running, not accepting new jobs (stopping)"),
        ("pid", str(info.get("pid"))),
        ("version", str(info.get("version"))),
        ("uptime", human_duration(float(info.get("uptime") or 0))),
        ("jobs", _jobs(info.get("jobs") or {})),
        ("running", ", ".join(running) if running else "none"),
        ("max concurrent", str(info.get("max_concurrent_jobs", "?"))),
        ("store", human_bytes(int(info.get("store_bytes") or 0))),
        ("home", str(info.get("home"))),
    ]


def _jobs(counts: dict[str, int]) -> str:
    order = [s for s in JOB_STATES if s in counts] + sorted(set(counts) - set(JOB_STATES))
    return ", ".join(f"{counts[s]} {s}" for s in order) if order else "none"


def human_bytes(size: int) -> str:
    """1536 → `1.5 KiB`; bytes below 1 KiB stay exact."""
    if size < 1024:
        return f"{size} B"
    value = float(size)
    for unit in ("KiB", "MiB", "GiB", "TiB"):
        value /= 1024
        if value < 1024 or unit == "TiB":
            break
    return f"{value:.1f} {unit}"


def human_duration(seconds: float) -> str:
    """3725 → `1h 2m 5s`; the two largest units only past a day (`2d 3h`)."""
    whole = int(seconds)
    days, rest = divmod(whole, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d {hours}h"
    if hours:
        return f"{hours}h {minutes}m {secs}s"
    if minutes:
        return f"{minutes}m {secs}s"
    return f"{secs}s"
