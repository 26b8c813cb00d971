"""`merge`, `cancel`: end a session that waits, by landing its work or by dropping it."""

from __future__ import annotations

from typing import Any

import click

from prodigyctl.client import Client, dumps
from prodigyctl.commands import command
from prodigyctl.exitcodes import EXIT_OK
from prodigyctl.options import id_argument, json_option
from prodigyd import protocol


# It shows the merge's events as they come, as `run` shows a run's, up to the
# `session_finished` that ends it (the session's whole id and its status, `completed`):
# --json prints them as JSON Lines, like every command that prints events.
@command("merge")
@id_argument("session_id")
@json_option
def merge(*, session_id: str, as_json: bool) -> int:
    """Merge a session that is awaiting_merge into the branch it started from."""
    from prodigyctl.commands.events import ends_run
    from prodigyctl.render import Renderer

    renderer = Renderer(as_json=as_json)
    ended: list[dict[str, Any]] = []
    with Client.connect() as client:
        after = _current_seq(client, session_id)

        def show(event: dict[str, Any]) -> None:
            renderer(event)
            if ends_run(event, after):
                ended.append(event)

        client.on_event = show  # live: a refused merge shows its events before the error
        client.call(protocol.EVENTS_SUBSCRIBE, {"session_id": session_id, "since": after})
        client.call(protocol.SESSIONS_MERGE, {"session_id": session_id})
        for event in () if ended else client.events():  # the last may follow the reply
            show(event)
            if ended:
                break
    return EXIT_OK


@command("cancel")
@id_argument("session_id")
@click.option(
    "--resumable",
    is_flag=True,
    help="Stop a queued or running session as interrupted, as Ctrl-C on `run` does: "
    "`prodigyctl resume ID` continues it from its checkpoints.",
)
@json_option
def cancel(*, session_id: str, resumable: bool, as_json: bool) -> int:
    """Cancel a session for good: stop a queued or running one, close one that waits
    (awaiting merge, failed, interrupted). With --resumable, stop it to be resumed later
    instead (a detached run's Ctrl-C)."""
    params = {"session_id": session_id, "resumable": resumable}
    with Client.connect() as client:
        record = client.call(protocol.JOBS_CANCEL, params)
    if as_json:
        click.echo(dumps(record))
    elif record["status"] == "interrupted":
        sid = record["id"]
        click.echo(f"session {sid}: interrupted (resume with: prodigyctl resume {sid})")
    else:
        click.echo(f"session {record['id']}: {record['status']}")
    return EXIT_OK


def _current_seq(client: Client, session_id: str) -> int:
    shown = client.call(protocol.SESSIONS_SHOW, {"session_id": session_id})
    return int(shown.get("event_seq") or 0)
