"""`daemon start|stop|status`: manage the per-user prodigyd.

`daemon status` is `prodigyctl status` (commands/status.py): it never starts a daemon and
exits 5 when none answers. `start` is a no-op when one runs already; `stop` waits until the
daemon has exited, so a following `start` is clean.
"""

from __future__ import annotations

import time

import click

from prodigyctl.client import Client, DaemonUnreachable, dumps
from prodigyctl.errors import EXIT_OK
from prodigyd import paths, protocol

#: How long `daemon stop` waits for the daemon to finish interrupting jobs and exit.
STOP_WAIT_SECONDS = 30.0


def start(*, as_json: bool) -> int:
    with Client.connect() as client:
        info = client.call(protocol.DAEMON_STATUS)
    click.echo(dumps(info) if as_json else f"prodigyd running (pid {info['pid']})")
    if info.get("store_problem") and not as_json:
        click.echo(f"warning: prodigyd cannot write its store: {info['store_problem']}", err=True)
    return EXIT_OK


def stop(*, as_json: bool, drain: bool = False) -> int:
    """Stop the daemon; with `drain`, only after every queued and running job finished."""
    try:
        with Client.connect(autostart=False) as client:
            client.call(protocol.DAEMON_STOP, {"drain": drain})
    except DaemonUnreachable:
        click.echo("prodigyd is not running")
        return EXIT_OK
    deadline = None if drain else time.monotonic() + STOP_WAIT_SECONDS
    # The pid file goes last in every mode (a socket-activated daemon leaves its socket).
    while paths.pid_file().exists() and (deadline is None or time.monotonic() < deadline):
        time.sleep(0.02)
    click.echo(dumps({"stopped": True}) if as_json else "prodigyd stopped")
    return EXIT_OK
