"""What the commands that start a job (`run`, `exec`, `batch`, `goal-seek`, `resume`,
`resume-job`, `dlq retry`) share: their budget and executor options, the submit, and what
follows once the daemon accepted the job: `--detach` prints its id; otherwise the client
follows it.

Following = subscribe to the session's events from the point the job was accepted, render
them, stop at `session_finished`. Ctrl-C while following cancels the job (it is recorded as
interrupted and stays resumable) and exits 130. A successful run without `-y` asks on a TTY
whether to merge; elsewhere it leaves the session `awaiting_merge` for `prodigyctl merge`.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

import click

from prodigyctl.client import Client, dumps, is_tty
from prodigyctl.errors import RpcError, fail
from prodigyctl.exitcodes import (
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_UNREACHABLE,
    exit_for_error,
    exit_for_status,
)
from prodigyctl.options import stacked, verbosity
from prodigyd import errorcodes, protocol

if TYPE_CHECKING:
    from prodigyctl.render import Renderer


def _duration(ctx: click.Context, param: click.Parameter, value: str | None) -> float | None:
    if value is None:
        return None
    from prodigyd.durations import parse_duration

    try:
        seconds = parse_duration(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None
    if seconds <= 0:
        raise click.BadParameter("must be more than 0")
    return seconds


#: `--budget-usd`, `--budget-tokens`, `--budget-time`: the job's budget, over the
#: workflow's `budget:` (docs/workflows.md, "Budgets").
budget_options = stacked(
    click.option(
        "--budget-usd",
        type=click.FloatRange(min=0, min_open=True),
        metavar="USD",
        help="Stop the job once Claude has cost USD dollars.",
    ),
    click.option(
        "--budget-tokens",
        type=click.IntRange(min=1),
        metavar="N",
        help="Stop the job once Claude has used N tokens (input, output and cache).",
    ),
    click.option(
        "--budget-time",
        callback=_duration,
        metavar="DURATION",
        help="Stop the job after DURATION of wall time (`90s`, `30m`, `2h`).",
    ),
)


def budget_params(options: dict[str, Any]) -> dict[str, Any]:
    """The `budget` param from the `--budget-*` options (taken out of `options`); {} when
    none was given."""
    budget = {
        "cost_usd": options.pop("budget_usd", None),
        "tokens": options.pop("budget_tokens", None),
        "time": options.pop("budget_time", None),
    }
    budget = {key: value for key, value in budget.items() if value is not None}
    return {"budget": budget} if budget else {}


#: `--executor`, `--executor-address`: where the job's map agents run, over the daemon's
#: `[executor]` (docs/dask.md); stored with the job, so a resume keeps it.
executor_options = stacked(
    click.option(
        "--executor",
        type=click.Choice(["local", "dask"]),
        help="Where map agents run: in the daemon (local) or on a Dask cluster (dask); "
        "default: [executor] kind.",
    ),
    click.option(
        "--executor-address",
        metavar="ADDR",
        help="The Dask scheduler map agents run on (tcp://HOST:8786); implies --executor dask.",
    ),
)


def executor_params(options: dict[str, Any]) -> dict[str, Any]:
    """The `executor` param from `--executor`/`--executor-address` (taken out of
    `options`); {} when neither was given."""
    kind, address = options.pop("executor", None), options.pop("executor_address", None)
    if address is not None:
        if kind == "local":
            raise click.UsageError("--executor-address names a Dask scheduler: not with local")
        kind = "dask"
    return {"executor": {"kind": kind, "address": address}} if kind else {}


def submit(
    params: dict[str, Any], *, yes: bool, path: str | None, detach: bool, as_json: bool
) -> int:
    """Submit a job (params name its workflow) from here, then follow it unless `detach`."""
    params = {
        **params,
        "cwd": os.getcwd(),
        "env": dict(os.environ),
        "repo": path,
        "merge": "auto" if yes else "ask",
    }
    with Client.connect() as client:
        early: list[dict[str, Any]] = []  # events sent before the reply (`follow`)
        if not detach:  # subscribed by the submit itself: no second round trip
            params["follow"] = True
            client.on_event = early.append
        record = client.call(protocol.JOBS_SUBMIT, params)
        return after_start(client, record, detach=detach, as_json=as_json, yes=yes, early=early)


def after_start(
    client: Client,
    record: dict[str, Any],
    *,
    detach: bool,
    as_json: bool,
    yes: bool,
    early: list[dict[str, Any]] | None = None,
) -> int:
    """Print the job's id (`detach`) or follow it. A record with a `subscription` came
    from a submit that subscribed this connection already; `early` holds the events that
    arrived before its reply."""
    session_id = record["id"]
    for warning in record.get("warnings") or []:
        click.echo(f"warning: {warning}", err=True)
    if detach:
        click.echo(dumps(record) if as_json else session_id)
        return EXIT_OK
    from prodigyctl.render import Renderer

    renderer = Renderer(as_json=as_json, verbose=verbosity())
    since = None if "subscription" in record else int(record.get("event_seq") or 0)
    final = _follow(client, session_id, since, renderer, early or [])
    if final is None:  # prodigyd died: its next start resumes the job (docs/errors.md)
        fail(
            errorcodes.CONNECTION_LOST,
            f"lost the connection to prodigyd; {session_id} resumes when it starts again "
            f"(`prodigyctl logs -f {session_id}` starts it and follows the job)",
            EXIT_UNREACHABLE,
        )
    return _conclude(client, final, renderer, yes=yes, as_json=as_json)


def _follow(
    client: Client,
    session_id: str,
    since: int | None,
    renderer: Renderer,
    early: list[dict[str, Any]],
) -> dict | None:
    """Render events (`early` first) until the session finishes, subscribing from `since`
    unless the connection is subscribed already (None); Ctrl-C cancels the job."""
    state: dict[str, Any] = {}

    def handle(event: dict[str, Any]) -> None:
        renderer(event)
        if event.get("event_type") == protocol.TERMINAL_EVENT:
            state["final"] = event

    client.on_event = handle
    try:
        for event in early:
            handle(event)
        if since is not None:
            client.call(protocol.EVENTS_SUBSCRIBE, {"session_id": session_id, "since": since})
        if "final" not in state:
            for event in client.events():
                handle(event)
                if "final" in state:
                    break
    except KeyboardInterrupt:
        renderer.close()
        with Client.connect(autostart=False) as other:
            other.call(protocol.JOBS_CANCEL, {"session_id": session_id, "resumable": True})
        click.echo(f"\ninterrupted; resume with: prodigyctl resume {session_id}", err=True)
        raise SystemExit(EXIT_INTERRUPTED) from None
    return state.get("final")


def _what_would_land(client: Client, session_id: str) -> str:
    """The commits and diffstat a merge would bring, for the merge prompt: read from the
    session's worktree against the branch it would land on (git's own words), and the
    files its steps left uncommitted, which the merge commits first (engine/finish.py):
    a workflow that only edits files has no commit of its own to show."""
    import subprocess

    shown = client.call(protocol.SESSIONS_SHOW, {"session_id": session_id})
    worktree, target = shown.get("worktree"), shown.get("original_branch")
    if not worktree or not target:
        return ""
    views = (
        ("", ["log", "--oneline", "--no-decorate", f"{target}..HEAD"]),
        ("", ["diff", "--stat", f"{target}...HEAD"]),
        ("not committed yet (the merge commits them):\n", ["status", "--short"]),
    )
    parts = []
    for title, argv in views:
        done = subprocess.run(
            ["git", "-C", worktree, *argv], capture_output=True, text=True, check=False
        )
        if done.returncode == 0 and done.stdout.strip():
            parts.append(title + done.stdout.rstrip("\n"))
    return "\n".join(["What would land:", *parts]) if parts else ""


def _conclude(
    client: Client, final: dict[str, Any], renderer: Renderer, *, yes: bool, as_json: bool
) -> int:
    status = final.get("status")
    session_id = final["session_id"]
    code = exit_for_status(status, merge_refused=bool(final.get("error")))
    if status != "awaiting_merge":
        return code
    if final.get("error"):  # the automatic merge was refused
        if not as_json:
            click.echo(f"fix the above, then run: prodigyctl merge {session_id}", err=True)
        return code
    if not yes and is_tty() and not as_json:
        renderer.close()
        branch = final.get("branch")
        click.echo(_what_would_land(client, session_id))
        if click.confirm(f"Merge prodigy-{session_id} to {branch}?", default=True):
            try:
                record = client.call(protocol.SESSIONS_MERGE, {"session_id": session_id})
            except RpcError as err:
                click.echo(f"{errorcodes.label(err.errorcode)}: {err.render()}", err=True)
                return exit_for_error(err.code)
            click.echo(f"session {session_id} {record['status']}")
            return EXIT_OK
    if not as_json:
        click.echo(f"to merge it: prodigyctl merge {session_id}")
    return EXIT_OK
