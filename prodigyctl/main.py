"""`prodigyctl`: the client of prodigyd.

Every command is a thin click wrapper that passes its options to one plain function
returning the exit code. Command modules are imported inside the wrappers so `--help`
and quick calls stay fast.
"""

from __future__ import annotations

import sys

import click

from prodigyctl.errors import error_handler

json_option = click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option("0.1.0", prog_name="prodigyctl")
def cli() -> None:
    """Run AI-agent workflows in isolated git worktrees, through the prodigyd daemon.

    Starts the daemon on first use. State lives in $PRODIGY_HOME (default ~/.prodigy).
    Exit codes: 0 ok, 1 failed, 2 usage or workflow error, 3 not found, 4 conflict,
    5 daemon unreachable, 130 interrupted.
    """


@cli.command()
@click.argument("workflow", type=click.Path(dir_okay=False))
@click.option("-y", "--yes", is_flag=True, help="Merge the result without asking.")
@click.option(
    "--args",
    "args",
    multiple=True,
    metavar="VALUE",
    help="Positional value for $ARG / ${ARG_1}... (repeatable).",
)
@click.option("--profile", metavar="NAME", help="Activate an environment profile of the workflow.")
@click.option(
    "-p", "--path", metavar="REPO", help="Repository to run in (default: the current one)."
)
@click.option("--detach", is_flag=True, help="Return once the job is accepted; print its id.")
@click.option(
    "--strict", is_flag=True, help="Unknown workflow keys and unresolved variables are errors."
)
@json_option
def run(
    workflow: str,
    yes: bool,
    args: tuple[str, ...],
    profile: str | None,
    path: str | None,
    detach: bool,
    strict: bool,
    as_json: bool,
) -> None:
    """Run WORKFLOW in a new worktree and merge the result back to your branch."""
    from prodigyctl.commands import run as cmd

    sys.exit(
        cmd.run(
            workflow=workflow,
            yes=yes,
            args=args,
            profile=profile,
            path=path,
            detach=detach,
            as_json=as_json,
            strict=strict,
        )
    )


@cli.command()
@click.argument("session_id")
@click.option("-y", "--yes", is_flag=True, help="Merge the result without asking.")
@click.option("--force", is_flag=True, help="Resume even if the workflow file changed.")
@click.option("--detach", is_flag=True, help="Return once the resume is accepted.")
@json_option
def resume(session_id: str, yes: bool, force: bool, detach: bool, as_json: bool) -> None:
    """Resume a failed or interrupted session from its last checkpoint."""
    from prodigyctl.commands import run as cmd

    sys.exit(
        cmd.resume(session_id=session_id, yes=yes, force=force, detach=detach, as_json=as_json)
    )


@cli.command()
@click.argument("session_id")
@json_option
def merge(session_id: str, as_json: bool) -> None:
    """Merge a session that is awaiting_merge into the branch it started from."""
    from prodigyctl.commands import run as cmd

    sys.exit(cmd.merge(session_id=session_id, as_json=as_json))


@cli.command()
@click.argument("session_id")
@json_option
def cancel(session_id: str, as_json: bool) -> None:
    """Cancel a queued or running session for good (Ctrl-C on `run` interrupts instead)."""
    from prodigyctl.commands import run as cmd

    sys.exit(cmd.cancel(session_id=session_id, as_json=as_json))


@cli.group()
def sessions() -> None:
    """List and inspect sessions."""


@cli.command()
@click.option("--recent", default=10, show_default=True, help="How many finished jobs to show.")
@json_option
def ps(recent: int, as_json: bool) -> None:
    """Queued and running jobs, and the most recent finished ones."""
    from prodigyctl.commands import sessions as cmd

    sys.exit(cmd.ps(as_json=as_json, recent=recent))


@sessions.command("ls")
@click.option("--status", help="Only sessions in this status.")
@click.option("--limit", default=100, show_default=True, help="At most this many, newest first.")
@json_option
def sessions_ls(status: str | None, limit: int, as_json: bool) -> None:
    """List sessions, newest first."""
    from prodigyctl.commands import sessions as cmd

    sys.exit(cmd.list_sessions(as_json=as_json, status=status, limit=limit))


@sessions.command("show")
@click.argument("session_id")
@json_option
def sessions_show(session_id: str, as_json: bool) -> None:
    """Show one session and its completed steps."""
    from prodigyctl.commands import sessions as cmd

    sys.exit(cmd.show(session_id=session_id, as_json=as_json))


@cli.group()
def daemon() -> None:
    """Start, stop or check the prodigyd daemon."""


@daemon.command("start")
@json_option
def daemon_start(as_json: bool) -> None:
    """Start prodigyd if it is not running."""
    from prodigyctl.commands import daemon as cmd

    sys.exit(cmd.start(as_json=as_json))


@daemon.command("stop")
@click.option("--drain", is_flag=True,
              help="Refuse new jobs, finish queued and running ones, then stop.")
@json_option
def daemon_stop(drain: bool, as_json: bool) -> None:
    """Stop prodigyd; running sessions stop after their current step and resume at next start."""
    from prodigyctl.commands import daemon as cmd

    sys.exit(cmd.stop(as_json=as_json, drain=drain))


@daemon.command("status")
@json_option
def daemon_status(as_json: bool) -> None:
    """Report whether prodigyd runs (never starts it; exit 5 when it does not)."""
    from prodigyctl.commands import daemon as cmd

    sys.exit(cmd.status(as_json=as_json))


def main() -> None:
    with error_handler():
        cli.main(standalone_mode=False, prog_name="prodigyctl")


if __name__ == "__main__":
    main()
