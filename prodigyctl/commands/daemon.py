"""`daemon start|stop|status|install-service`: manage the per-user prodigyd.

`daemon status` is `prodigyctl status` (commands/status.py): it never starts a daemon and
exits 5 when none answers. `start` is a no-op when one runs already; `stop` waits until the
daemon has exited, so a following `start` is clean. `install-service` is commands/service.py,
imported only when it runs (it loads the store).
"""

from __future__ import annotations

import time
from pathlib import Path

import click

from prodigyctl.client import Client, dumps
from prodigyctl.commands import command, group
from prodigyctl.commands import status as status_command
from prodigyctl.errors import DaemonUnreachable
from prodigyctl.exitcodes import EXIT_OK
from prodigyctl.options import json_option
from prodigyd import paths, protocol

#: How long `daemon stop` waits for the daemon to finish interrupting jobs and exit.
STOP_WAIT_SECONDS = 30.0
#: How long it then waits for the process itself to end (past its pid file).
PROCESS_EXIT_SECONDS = 2.0

daemon = group("daemon", "Start, stop or check the prodigyd daemon.")


@command("start", daemon)
@json_option
def start(*, as_json: bool) -> int:
    """Start prodigyd if it is not running. One running already keeps the settings it
    started with (config.toml, PRODIGY_* variables): stop it to start one with yours."""
    try:
        with Client.connect(autostart=False) as client:
            info, started = client.call(protocol.DAEMON_STATUS), False
    except DaemonUnreachable:
        with Client.connect() as client:
            info, started = client.call(protocol.DAEMON_STATUS), True
    if as_json:
        click.echo(dumps({**status_command.status_json(info), "started": started}))
    elif started:
        click.echo(f"prodigyd running (pid {info['pid']})")
    else:
        click.echo(
            f"prodigyd running (pid {info['pid']}), already: with the settings it started "
            "with (`prodigyctl daemon stop`, then start, applies changed ones)"
        )
    if info.get("store_problem") and not as_json:
        click.echo(f"warning: prodigyd's store: {info['store_problem']}", err=True)
    return EXIT_OK


@command("stop", daemon)
@click.option(
    "--drain", is_flag=True, help="Refuse new jobs, finish queued and running ones, then stop."
)
@json_option
def stop(*, drain: bool, as_json: bool) -> int:
    """Stop prodigyd; running sessions stop after their current step and resume at next start.
    A stop without --drain during a drain stops it so at once."""
    try:
        with Client.connect(autostart=False) as client:
            pid = _pid()
            reply = client.call(protocol.DAEMON_STOP, {"drain": drain})
    except DaemonUnreachable:  # --json: `running` as `status --json` has it
        click.echo(
            dumps({"running": False, "stopped": False}) if as_json else "prodigyd is not running"
        )
        return EXIT_OK
    if drain and not as_json and (reply.get("running") or reply.get("queued")):
        click.echo(
            f"prodigyd is draining: {reply.get('running', 0)} running and "
            f"{reply.get('queued', 0)} queued jobs finish first (`prodigyctl daemon stop` "
            "stops it now, running jobs resuming at its next start)",
            err=True,
        )
    deadline = None if drain else time.monotonic() + STOP_WAIT_SECONDS
    # The pid file goes last in every mode (a socket-activated daemon leaves its socket).
    while paths.pid_file().exists() and (deadline is None or time.monotonic() < deadline):
        time.sleep(0.02)
    running = paths.pid_file().exists()  # still, once the wait is over: it is stopping
    # then the interpreter's own exit (~0.1 s): "stopped" is said once the process is gone
    exited = time.monotonic() + PROCESS_EXIT_SECONDS
    while not running and pid is not None and _alive(pid) and time.monotonic() < exited:
        time.sleep(0.005)
    if as_json:
        click.echo(dumps({"running": running, "stopped": not running}))
    elif running:
        click.echo(
            f"prodigyd is stopping: it still runs after {STOP_WAIT_SECONDS:g} s, letting "
            "running steps finish (`prodigyctl daemon status` says when it is gone)"
        )
    else:
        click.echo("prodigyd stopped")
    return EXIT_OK


def _pid() -> int | None:
    """The running daemon's pid, from its pid file (None: none to read)."""
    try:
        return int(paths.pid_file().read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def _alive(pid: int) -> bool:
    """Whether process `pid` still runs: not gone, nor a zombie (its parent, a `run` that
    started it, may not have reaped it). Without /proc, gone once its pid file is."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rpartition(")")[2].split()[:1] not in (["Z"], ["X"])


@command("status", daemon)
@json_option
def status(*, as_json: bool) -> int:
    """Report whether prodigyd runs (never starts it; exit 5 when it does not)."""
    return status_command.status(as_json=as_json)


@command("install-service", daemon)
@click.option("--uninstall", is_flag=True, help="Remove the units install-service wrote.")
@json_option
def install_service(*, uninstall: bool, as_json: bool) -> int:
    """Install prodigyd as a systemd user service, started on demand by prodigyd.socket."""
    from prodigyctl.commands import service  # the store's atomic writes: sqlite3 and more

    return service.install_service(uninstall=uninstall, as_json=as_json)
