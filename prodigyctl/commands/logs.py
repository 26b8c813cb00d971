"""`logs` and `follow`: a session's history as `run` shows it, and live views of jobs.

Both read subscriptions: a session's subscription from seq 0 replays everything stored and
then streams live events, none twice and no gap between the two, so `logs -f` is one
subscription. Neither ever cancels a job: Ctrl-C only stops watching (exit 130).
"""

from __future__ import annotations

import click

from prodigyctl.client import Client
from prodigyctl.commands import command
from prodigyctl.commands.events import ACTIVE, ends_run, subscribe
from prodigyctl.exitcodes import EXIT_OK, exit_for_status
from prodigyctl.options import id_argument, json_option, note, verbose_option, verbosity
from prodigyctl.render import Renderer
from prodigyd import protocol
from prodigyd.eventtypes import EventType


# A session that is not queued or running is printed up to its last event. An active one is
# followed (with --follow) to a `session_finished` newer than what was stored when we asked
# (older ones end earlier runs of a resumed session).
@command("logs")
@id_argument("session_id")
@click.option("-f", "--follow", is_flag=True, help="Keep printing live events until it finishes.")
@verbose_option
@json_option
def logs(*, session_id: str, follow: bool, as_json: bool) -> int:
    """Print a session's progress from the start, as `run` shows it. With -f, follow a
    queued or running one to its end, and exit as `run` would have: 0 done (or awaiting
    its merge), 1 failed or cancelled, 4 its merge refused, 130 interrupted."""
    renderer = Renderer(as_json=as_json, verbose=verbosity(), live=follow)
    with Client.connect() as client:
        shown = client.call(protocol.SESSIONS_SHOW, {"session_id": session_id})
        last = int(shown.get("event_seq") or 0)
        live = follow and shown["status"] in ACTIVE
        if not live and last == 0:
            return exit_for_status(shown["status"], merge_refused=False) if follow else EXIT_OK
        ended, refused = shown["status"], False  # refused: its automatic merge (its error)
        for event in subscribe(client, {"session_id": session_id, "since": 0}):
            renderer(event)
            if event.get("event_type") == protocol.TERMINAL_EVENT:
                ended, refused = event.get("status"), bool(event.get("error"))
            done = ends_run(event, last) if live else event["seq"] >= last
            if done:
                break
    # with -f, also when it had ended before we asked: `run --detach` then `logs -f` of a
    # quick job must tell its outcome all the same
    code = exit_for_status(ended, merge_refused=refused) if follow else EXIT_OK
    if as_json:
        return code
    if not follow and shown["status"] in ACTIVE:
        click.echo(
            f"(session is {shown['status']}; follow it with: prodigyctl logs -f {session_id})",
            err=True,
        )
    elif ended == "awaiting_merge" and not refused and not shown.get("start_commit"):
        # as `run` ends such a session (a refused merge: its error); one started from a
        # snapshot of uncommitted files (`on: files`) is never merged: `merge` refuses it
        click.echo(f"(to merge it: prodigyctl merge {shown['id']})", err=True)
    return code


# By default the jobs queued or running now, until all have finished; with --all every
# job's events, later ones included, until Ctrl-C.
@command("follow")
@click.option(
    "--all",
    "all_sessions",
    is_flag=True,
    help="Every job, including ones submitted later, until Ctrl-C.",
)
@verbose_option
@json_option
def follow(*, all_sessions: bool, as_json: bool) -> int:
    """Watch active jobs live, each line tagged with its job, until they finish."""
    renderer = Renderer(as_json=as_json, tag=True, verbose=verbosity())
    with Client.connect() as client:
        if all_sessions:
            stream = subscribe(client, {})
            note("Following every job; Ctrl-C to stop (jobs keep running).", as_json)
            for event in stream:
                renderer(event)
            return EXIT_OK  # not reached: the stream raises when the connection closes
        starts = _active_sessions(client)
        if not starts:
            if not as_json:  # --json: no lines at all
                click.echo("No active jobs.")
            return EXIT_OK
        stream = subscribe(
            client, *({"session_id": sid, "since": seq} for sid, seq in starts.items())
        )
        note(f"Following {len(starts)} active job(s); Ctrl-C to stop watching.", as_json)
        pending = set(starts)
        for event in stream:
            renderer(event)
            session_id = event.get("session_id")
            if session_id in pending and ends_run(event, starts[session_id]):
                pending.discard(session_id)
                if not pending:
                    break
    return EXIT_OK


def _active_sessions(client: Client) -> dict[str, int]:
    """Queued and running sessions → the seq to follow each from: the start of the step
    running (its header and output so far; its result alone would not say what ran),
    else their current one."""
    starts: dict[str, int] = {}
    for status in ACTIVE:
        for row in client.call(protocol.SESSIONS_LIST, {"status": status, "limit": 10_000}):
            shown = client.call(protocol.SESSIONS_SHOW, {"session_id": row["id"]})
            if shown["status"] in ACTIVE:  # it may have finished since the list
                now = int(shown.get("event_seq") or 0)
                starts[row["id"]] = _current_step(client, row["id"]) or now
    return starts


def _current_step(client: Client, session_id: str) -> int | None:
    """The seq just before the newest `step_started` of the session (None: none yet)."""
    query = {"session_id": session_id, "event_type": EventType.STEP_STARTED, "limit": 1}
    newest = client.call(protocol.EVENTS_LIST, query)
    return int(newest[0]["seq"]) - 1 if newest else None
