"""`events ls|follow|stats|export`: query the stored event logs and watch live ones.

Stored events come from `events.list`/`events.stats`, filtered daemon-side by session, type
and time. `--since` takes a duration back from now (`30s`, `10m`, `2h`, `3d`, `1h30m`) or
an ISO 8601 timestamp, and is sent as the stored format (UTC, milliseconds, `Z`) because
the daemon compares timestamps as strings. Live events come from `events.subscribe`: one
session from its current seq, or every session from now on.

`subscribe` is shared with `logs` and `follow`.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import click

from prodigyctl.client import Client, dumps
from prodigyctl.commands import command, group
from prodigyctl.errors import DaemonUnreachable
from prodigyctl.exitcodes import EXIT_OK
from prodigyctl.options import format_option, json_option, note, output_option, since_option
from prodigyctl.original import Refusal
from prodigyctl.render import counted, job_tag
from prodigyd import clock, errorcodes, protocol
from prodigyd.durations import duration_seconds
from prodigyd.eventtypes import EventType

#: The most events one `events.list` call may return (the daemon's upper bound).
MAX_LIMIT = 1_000_000

#: Session statuses whose events are still to come.
ACTIVE = ("queued", "running")

#: Statuses after which a session gets no more events (failed/interrupted may be resumed,
#: awaiting_merge merged).
FINAL = ("completed", "cancelled")

#: The fields every event has; the rest is the event's payload.
ENVELOPE = ("seq", "timestamp", "session_id", "event_type")

#: The fields `events ls` shows for each type, in order; other types show every field.
_SUMMARY_FIELDS: dict[str, tuple[str, ...]] = {
    EventType.SESSION_QUEUED: ("workflow", "resumed"),
    EventType.SESSION_STARTED: ("workflow", "total_steps", "resumed"),
    EventType.STEP_STARTED: ("step", "display"),
    EventType.STEP_OUTPUT: ("step", "stream", "line"),
    EventType.STEP_OUTPUT_TRUNCATED: ("step", "stream", "after"),
    EventType.STEP_RETRYING: ("step", "attempt", "delay"),
    EventType.STEP_COMPLETED: ("step", "display", "exit_code", "duration", "skipped"),
    EventType.STEP_FAILED: ("step", "display", "exit_code", "duration", "error"),
    EventType.STEP_SKIPPED: ("step", "display", "reason"),
    EventType.CLAUDE_SESSION_STARTED: ("step", "model"),
    EventType.CLAUDE_MESSAGE: ("step", "message_type", "content"),
    EventType.CLAUDE_TOOL_INVOKED: ("step", "tool_name"),
    EventType.CLAUDE_TOKEN_USAGE: ("step", "input_tokens", "cache_read_tokens"),
    EventType.CLAUDE_RESULT: ("step", "is_error", "num_turns", "total_cost_usd"),
    EventType.CLAUDE_API_RETRY: ("step", "attempt", "max_retries", "error_status"),
    EventType.CLAUDE_API_ERROR: ("step", "status", "error_type", "message"),
    EventType.CLAUDE_PERMISSION_DENIED: ("step", "tool_name", "tool_input"),
    EventType.MERGE_STARTED: ("source", "target"),
    EventType.MERGE_COMPLETED: ("merged", "commit"),
    EventType.MERGE_FAILED: ("error",),
    EventType.WORKTREE_CLEANED: ("branch",),
    EventType.SESSION_FINISHED: ("status", "merged", "error"),
}
_VALUE_WIDTH = 60

events = group("events", "Query, count, export and watch events.")

session_filter = click.option("--session", "session_id", metavar="ID", help="Only this session.")
type_filter = click.option("--type", "event_type", metavar="TYPE", help="Only this event type.")
since_filter = since_option("events")
json_lines_option = click.option("--json", "as_json", is_flag=True, help="One JSON event a line.")


# -- shared: subscriptions --------------------------------------------------------------


def subscribe(client: Client, *subscriptions: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Make the subscriptions now; return their events in arrival order.

    Events may arrive before a subscribe reply (docs/protocol.md), so those are kept and
    yielded first. The iterator never ends quietly: a closed connection raises
    DaemonUnreachable (exit 5).
    """
    early: list[dict[str, Any]] = []
    client.on_event = early.append
    try:
        for params in subscriptions:
            client.call(protocol.EVENTS_SUBSCRIBE, params)
    finally:
        client.on_event = None
    return _stream(client, early)


def _stream(client: Client, early: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    yield from early
    yield from client.events()
    raise DaemonUnreachable("lost the connection to prodigyd", errorcodes.CONNECTION_LOST)


def ends_run(event: dict[str, Any], after: int) -> bool:
    """Whether `event` ends its session's run (or resume, or merge): a `session_finished`
    past `after`, the seq the follower started from (older ones end earlier runs)."""
    return event.get("event_type") == protocol.TERMINAL_EVENT and event["seq"] > after


# -- --since ------------------------------------------------------------------------------


def parse_since(value: str, *, now: datetime | None = None) -> str:
    """`10m`, `2h`, `1h30m` (back from now) or an ISO 8601 time (UTC unless it has an
    offset) → the stored timestamp format. Raises click.BadParameter (exit 2), or, for a
    bare number (the original's minutes), the refusal of its spelling (in a command only)."""
    text = value.strip()
    seconds = duration_seconds(text)
    if seconds is not None:
        try:
            return clock.iso((now or datetime.now(UTC)) - timedelta(seconds=seconds))
        except OverflowError:  # further back than year 1
            raise click.BadParameter(f"{value!r} reaches back before the year 1") from None
    try:
        return clock.stored_time(text)
    except ValueError:
        if text.isdigit():  # the original's `events ls --since N`: N minutes ago
            minutes = Refusal(
                f"it counted minutes, and prodigy's --since needs a unit: `--since {text}m`"
            )
            raise minutes.error(click.get_current_context(), f"--since {text}") from None
        raise click.BadParameter(
            f"{value!r} is neither a duration (30s, 10m, 2h, 3d, 1h30m) "
            "nor an ISO 8601 time (2026-11-25T15:22:04Z)"
        ) from None


def _query(
    session_id: str | None, event_type: str | None, since: str | None, limit: int | None = None
) -> dict[str, Any]:
    params: dict[str, Any] = {"session_id": session_id, "event_type": event_type, "since": since}
    if limit is not None:
        params["limit"] = limit
    return {k: v for k, v in params.items() if v is not None}


# -- events ls ----------------------------------------------------------------------------


@command("ls", events)
@session_filter
@type_filter
@since_filter
@click.option(
    "--limit",
    default=100,
    show_default=True,
    type=click.IntRange(1, MAX_LIMIT),
    help="At most this many: the newest matching events, oldest first.",
)
@json_lines_option
def list_events(
    *,
    session_id: str | None,
    event_type: str | None,
    since: str | None,
    limit: int,
    as_json: bool,
) -> int:
    """List stored events, one a line."""
    with Client.connect() as client:
        rows = client.call(protocol.EVENTS_LIST, _query(session_id, event_type, since, limit))
    for event in rows:
        click.echo(dumps(event) if as_json else format_line(event))
    if not rows and not as_json:
        click.echo("No events.")
    if len(rows) >= limit:  # --json: the lines alone, which --limit bounds
        note(f"(the newest {limit} matching events; --limit shows more)", as_json)
    return EXIT_OK


def format_line(event: dict[str, Any]) -> str:
    """One human line: time, job tag, type, the type's key fields."""
    return (
        f"{event.get('timestamp', '')!s:<24} {job_tag(event.get('session_id')):<6} "
        f"{event.get('event_type')!s:<22} {summary(event)}"
    ).rstrip()


def summary(event: dict[str, Any]) -> str:
    fields = _SUMMARY_FIELDS.get(str(event.get("event_type")))
    if fields is None:
        fields = tuple(k for k in event if k not in ENVELOPE)
    parts = []
    for key in fields:
        value = event.get(key)
        if value is None or value == "" or (value is False and key in ("resumed", "skipped")):
            continue
        parts.append(f"{key}={_compact(value)}")
    return " ".join(parts)


def _compact(value: Any) -> str:
    if isinstance(value, float):
        text = f"{value:.2f}"
    elif isinstance(value, str):
        text = value.splitlines()[0] if value.strip() else repr(value)
        text = json.dumps(text, ensure_ascii=False) if " " in text else text
    else:
        text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    return text if len(text) <= _VALUE_WIDTH else text[: _VALUE_WIDTH - 1] + "…"


# -- events follow -----------------------------------------------------------------------


# The type filter is applied here, not by the daemon, so that a session's end is noticed
# whatever is shown.
@command("follow", events)
@session_filter
@type_filter
@click.option(
    "--replay",
    is_flag=True,
    help="With --session: print the session's stored events first (from its submission), "
    "then follow it (a finished one's: all there are).",
)
@json_lines_option
def follow(*, session_id: str | None, event_type: str | None, replay: bool, as_json: bool) -> int:
    """Print events as they happen: one session's until it finishes, else all until Ctrl-C."""
    with Client.connect() as client:
        if session_id is None:
            if replay:
                raise click.UsageError("--replay needs --session: every session's are many")
            return _follow_all(client, event_type, as_json)
        shown = client.call(protocol.SESSIONS_SHOW, {"session_id": session_id})
        if shown["status"] in FINAL:
            if replay:  # its whole story, which is all there is
                query = _query(session_id, None, None, MAX_LIMIT)
                for event in client.call(protocol.EVENTS_LIST, query):
                    _show(event, event_type, as_json)
            note(f"session {session_id} is {shown['status']}: no more events", as_json)
            return EXIT_OK
        now = int(shown.get("event_seq") or 0)
        stream = subscribe(client, {"session_id": session_id, "since": 0 if replay else now})
        waiting = (
            ""
            if shown["status"] in ACTIVE
            else f" (it is {shown['status']}: waiting for a resume or merge)"
        )
        note(f"Following the events of {session_id}{waiting}; Ctrl-C to stop.", as_json)
        for event in stream:
            _show(event, event_type, as_json)
            if ends_run(event, now):  # a replayed end is an earlier run's
                break
    return EXIT_OK


def _follow_all(client: Client, event_type: str | None, as_json: bool) -> int:
    """Every session's events from now on; ends only with Ctrl-C (130) or a lost daemon (5)."""
    stream = subscribe(client, {})
    note("Following the events of every session; Ctrl-C to stop.", as_json)
    for event in stream:
        _show(event, event_type, as_json)
    return EXIT_OK  # not reached: the stream raises when the connection closes


def _show(event: dict[str, Any], event_type: str | None, as_json: bool) -> None:
    if event_type is None or event.get("event_type") == event_type:
        click.echo(dumps(event) if as_json else format_line(event))


# -- events stats ------------------------------------------------------------------------


@command("stats", events)
@session_filter
@since_filter
@json_option
def stats(*, session_id: str | None, since: str | None, as_json: bool) -> int:
    """Count stored events by type and by session."""
    with Client.connect() as client:
        data = client.call(protocol.EVENTS_STATS, _query(session_id, None, since))
    if as_json:
        click.echo(dumps(data))
        return EXIT_OK
    if not data["total"]:
        click.echo("No events.")
        return EXIT_OK
    click.echo(f"{counted(data['total'], 'event')}, {data['first']} → {data['last']}")
    _counts("TYPE", data["by_type"])
    _counts("SESSION", data["by_session"])
    return EXIT_OK


def _counts(title: str, counts: dict[str, int]) -> None:
    width = max(len(title), *(len(key) for key in counts))
    click.echo(f"\n{title:<{width}}  {'COUNT':>7}")
    for key, count in counts.items():
        click.echo(f"{key:<{width}}  {count:>7}")


# -- events export -----------------------------------------------------------------------


# CSV holds an event's payload as compact JSON in its `data` column.
@command("export", events)
@session_filter
@type_filter
@since_filter
@format_option(f"A JSON array, or CSV with columns {','.join((*ENVELOPE, 'data'))}.")
@output_option
def export(
    *,
    session_id: str | None,
    event_type: str | None,
    since: str | None,
    fmt: str,
    output: str | None,
) -> int:
    """Export stored events as JSON or CSV."""
    with Client.connect() as client:
        rows = client.call(protocol.EVENTS_LIST, _query(session_id, event_type, since, MAX_LIMIT))
    if len(rows) >= MAX_LIMIT:
        click.echo(f"warning: only the newest {MAX_LIMIT} events were exported", err=True)
    return write_export(rows, to_csv(rows) if fmt == "csv" else None, output, "event")


def write_export(
    rows: list[dict[str, Any]],
    csv_text: str | None,
    output: str | None,
    noun: str,
    plural: str | None = None,
) -> int:
    """An export to stdout or, atomically, to a file: CSV when `csv_text` is given, else the
    rows as an indented JSON array. Shared by `events export` and `dlq export`."""
    text = csv_text if csv_text is not None else json.dumps(rows, ensure_ascii=False, indent=1)
    text = text if text.endswith("\n") else text + "\n"
    if output is None:
        click.echo(text, nl=False)
        return EXIT_OK
    path = write_atomically(Path(output), text)
    click.echo(f"wrote {counted(len(rows), noun, plural)} to {path}", err=True)
    return EXIT_OK


def to_csv(rows: list[dict[str, Any]]) -> str:
    import csv
    import io

    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow([*ENVELOPE, "data"])
    for event in rows:
        data = {k: v for k, v in event.items() if k not in ENVELOPE}
        writer.writerow(
            [
                *(event.get(k) for k in ENVELOPE),
                json.dumps(data, ensure_ascii=False, separators=(",", ":")),
            ]
        )
    return buffer.getvalue()


def write_atomically(path: Path, text: str) -> Path:
    """Temp file in the target's folder, fsync, rename: a reader never sees half a file."""
    import tempfile

    path = path.expanduser().absolute()
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as err:
        raise click.ClickException(f"cannot write {path}: {err.strerror}") from None
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as out:
            out.write(text)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
    except OSError as err:
        Path(tmp).unlink(missing_ok=True)
        raise click.ClickException(f"cannot write {path}: {err.strerror}") from None
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path
