"""`sessions ls|show|replay` and `ps`: what ran, what is running, what waits to be merged or
resumed, and a session's events played back with their timing."""

from __future__ import annotations

import time
from typing import Any

import click

from prodigyctl.client import Client, dumps
from prodigyctl.commands import command, group
from prodigyctl.exitcodes import EXIT_OK
from prodigyctl.options import id_argument, json_option, note, verbose_option, verbosity
from prodigyctl.render import Renderer, counted, step_line
from prodigyd import protocol

sessions = group("sessions", "List and inspect sessions.")


def _known_status(
    ctx: click.Context, param: click.Parameter, value: tuple[str, ...]
) -> list[str] | None:
    """`--status` (repeated, or comma-separated: any of them) as a usage error that lists
    the statuses, before the daemon would refuse it in its validator's words. Not a
    click.Choice: its help, and so the man page, stay."""
    from prodigyctl.commands.status import JOB_STATES

    chosen = [name.strip() for given in value for name in given.split(",") if name.strip()]
    for name in chosen:
        if name not in JOB_STATES:
            raise click.BadParameter(
                f"{name!r} is not a status: use one of {', '.join(JOB_STATES)}"
            )
    return list(dict.fromkeys(chosen)) or None


@command("ls", sessions)
@click.option(
    "--status",
    multiple=True,
    callback=_known_status,
    help="Only sessions in this status; repeat it (or separate with commas) for any of several.",
)
@click.option(
    "--limit",
    type=click.IntRange(1, protocol.MAX_LIST),
    default=100,
    show_default=True,
    help="At most this many, newest first.",
)
@click.option("--all", "every", is_flag=True, help=f"Every session (up to {protocol.MAX_LIST:,}).")
@json_option
def list_sessions(*, status: list[str] | None, limit: int, every: bool, as_json: bool) -> int:
    """List sessions, newest first (the newest 100 unless --limit or --all)."""
    wanted = protocol.MAX_LIST if every else limit
    with Client.connect() as client:
        # one more than shown, to say so when the list is cut
        rows = client.call(
            protocol.SESSIONS_LIST, {"status": status, "limit": min(wanted + 1, protocol.MAX_LIST)}
        )
    _warn_set_aside()
    cut = len(rows) > wanted or len(rows) == protocol.MAX_LIST  # the daemon's most may hide more
    rows = rows[:wanted]
    if cut:  # --json: the list alone, which --limit bounds
        more = "--all" if wanted < protocol.MAX_LIST else "--status to narrow it"
        note(f"(the newest {len(rows):,} shown; there are more: {more})", as_json)
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
        if data.get("agents"):
            click.echo(f"{'agents:':<17} {_where(data['agents'])}")
    for step in data.get("completed", []):
        click.echo(step_line(step))
    if data.get("claude_invocations"):
        _invocations(data["claude_invocations"])
    return EXIT_OK


def _where(agents: list[dict[str, Any]]) -> str:
    """Where the map agents ran: `5 local`, `20 on 2 dask workers` (`, 3 local` after a
    resume that moved them)."""
    remote = [a["worker"] for a in agents if a.get("worker") not in (None, "local")]
    local = sum(1 for a in agents if a.get("worker") == "local")
    if not remote:
        return f"{len(agents)} local"
    workers = len(set(remote))
    text = f"{len(remote)} on {counted(workers, 'dask worker')}"
    return text + (f", {local} local" if local else "")


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


#: The statuses `ps` lists in full, newest first, before the recent finished jobs.
_ACTIVE = ("queued", "running")


@command("ps")
@click.option(
    "--recent",
    type=click.IntRange(0, protocol.MAX_LIST),
    default=10,
    show_default=True,
    help="How many finished jobs to show.",
)
@json_option
def ps(*, recent: int, as_json: bool) -> int:
    """Queued and running jobs, and the most recent finished ones."""
    with Client.connect() as client:  # the active ones, then enough of the newest
        active = client.call(
            protocol.SESSIONS_LIST, {"status": list(_ACTIVE), "limit": protocol.MAX_LIST}
        )
        newest = client.call(
            protocol.SESSIONS_LIST, {"limit": max(1, min(protocol.MAX_LIST, recent + len(active)))}
        )
    _warn_set_aside()
    listed = {r["id"] for r in active}  # (one that ended between the two calls: once)
    done = [r for r in newest if r["status"] not in _ACTIVE and r["id"] not in listed][:recent]
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


def _warn_set_aside() -> None:
    """A list that misses the jobs of a journal set aside as unreadable says so."""
    from prodigyd.store import aside

    problem = aside.problem()
    if problem is not None:
        click.echo(f"warning: {problem}", err=True)


def _table(rows: list[dict]) -> None:
    progress = [_progress(row) for row in rows]
    wide = max([24, *(len(text) for text in progress)])  # a long one never runs into STARTED
    click.echo(f"{'ID':<34} {'STATUS':<15} {'PROGRESS':<{wide}} {'STARTED':<24} WORKFLOW")
    for row, text in zip(rows, progress, strict=True):
        click.echo(
            f"{row['id']:<34} {row['status']:<15} {text:<{wide}} {row['started_at']:<24} "
            f"{row['workflow']}"
        )


def _progress(row: dict) -> str:
    """Steps done, or for a MapReduce job its items done and failed (`ps` as the progress
    line of `run` counts them)."""
    if not row.get("items"):
        return f"{row['steps']} steps"
    failed = f", {row['failed_items']} failed" if row.get("failed_items") else ""
    where = " on dask" if row.get("executor") == "dask" else ""
    return f"{row['items']} items{failed}{where}"


@command("replay", sessions)
@id_argument("session_id")
@click.option(
    "--speed",
    type=click.FloatRange(min=0),
    default=0,
    metavar="N",
    help="Play the events back as they happened, N times faster (0, the default: print "
    "them all at once).",
)
@click.option(
    "--max-pause",
    type=click.FloatRange(min=0),
    metavar="SECONDS",
    help="With --speed, cut longer pauses (a resume days later) to this.",
)
@verbose_option
@json_option
def replay(*, session_id: str, speed: float, max_pause: float | None, as_json: bool) -> int:
    """Play a session's events back in order, with their timing.

    Each line is shown as `logs` shows it, after the time since the session's first event
    (`+0.512s`); --speed plays them back with their pauses, scaled. --json prints one event
    a line with `elapsed`, those seconds.
    """
    from prodigyctl.commands.events import subscribe

    with Client.connect() as client:
        shown = client.call(protocol.SESSIONS_SHOW, {"session_id": session_id})
        last = int(shown.get("event_seq") or 0)
        history: list[dict[str, Any]] = []
        if last:
            for event in subscribe(client, {"session_id": shown["id"], "since": 0}):
                history.append(event)
                if event["seq"] >= last:
                    break
    if not history:
        click.echo("No events.", err=as_json)
        return EXIT_OK
    times = elapsed(history)
    renderer = Renderer(as_json=False, verbose=verbosity(), live=False)
    if not as_json:
        click.echo(
            f"session {shown['id']}: {len(history)} events over {offset(times[-1])[1:]}, "
            f"from {history[0].get('timestamp')}"
        )
    for event, at, pause in zip(history, times, pauses(times, speed, max_pause), strict=True):
        time.sleep(pause)
        if as_json:
            click.echo(dumps({"elapsed": round(at, 3), **event}))
            continue
        line = renderer.human(event)
        if line is not None:
            stamp = f"{offset(at):>11}  "
            click.echo(stamp + line.replace("\n", "\n" + " " * len(stamp)), color=renderer.color)
    return EXIT_OK


def elapsed(events: list[dict[str, Any]]) -> list[float]:
    """Seconds from the first event to each, never going back (a clock set back between
    two daemon runs, or an event without a time, counts as no time passed)."""
    from datetime import datetime

    found: list[float] = []
    start: datetime | None = None
    for event in events:
        try:
            moment = datetime.fromisoformat(str(event.get("timestamp")))
        except ValueError:
            moment = None
        if start is None:
            start = moment
        since = (moment - start).total_seconds() if moment and start else 0.0
        found.append(max(since, found[-1] if found else 0.0))
    return found


def pauses(times: list[float], speed: float, max_pause: float | None) -> list[float]:
    """How long to wait before each event: the time since the one before, `speed` times
    shorter and at most `max_pause`; none at all at speed 0."""
    if not speed:
        return [0.0] * len(times)
    gaps = [(at - before) / speed for before, at in zip([0.0, *times], times, strict=False)]
    return [min(gap, max_pause) if max_pause is not None else gap for gap in gaps]


def offset(seconds: float) -> str:
    """`+0.512s`, `+2m03.100s`, `+1h02m03.100s`."""
    minutes, secs = divmod(seconds, 60)
    hours, minutes = divmod(int(minutes), 60)
    if hours:
        return f"+{hours}h{minutes:02d}m{secs:06.3f}s"
    if minutes:
        return f"+{minutes}m{secs:06.3f}s"
    return f"+{secs:.3f}s"
