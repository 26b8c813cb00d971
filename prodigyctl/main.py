"""`prodigyctl`: the client of prodigyd.

Every command is a thin click wrapper that passes its options to one plain function
returning the exit code. Command modules are imported inside the wrappers so `--help`
and quick calls stay fast.
"""

from __future__ import annotations

import sys
from typing import Any

import click

from prodigyctl.errors import error_handler

json_option = click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
retry_option = click.option(
    "--retry",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="Attempts in all (backoff between them).",
)
timeout_option = click.option(
    "--timeout",
    type=click.FloatRange(min=0, min_open=True),
    metavar="SECS",
    help="Kill the command (a batch: each agent) after SECS seconds.",
)
path_option = click.option(
    "-p", "--path", metavar="REPO", help="Repository to run in (default: the current one)."
)
detach_option = click.option(
    "--detach", is_flag=True, help="Return once the job is accepted; print its id."
)


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
@path_option
@detach_option
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
    """Run WORKFLOW in a new worktree and merge the result back to your branch.

    WORKFLOW `-` reads the workflow from standard input.
    """
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


@cli.command("exec")
@click.argument("command")
@retry_option
@timeout_option
@path_option
@detach_option
@json_option
def exec_(**options: Any) -> None:
    """Run one COMMAND in a new worktree and merge its result back to your branch.

    A COMMAND starting with `/` is a Claude command, anything else a shell command.
    """
    from prodigyctl.commands import run as cmd

    sys.exit(cmd.generated("exec", **options))


@cli.command()
@click.argument("pattern")
@click.option(
    "-c",
    "--command",
    required=True,
    help="Run for each file; ${item} is its path (a leading `/`: a Claude command).",
)
@click.option(
    "--parallel",
    type=click.IntRange(min=0),
    default=5,
    show_default=True,
    help="Agents at once (0: the default).",
)
@retry_option
@timeout_option
@path_option
@detach_option
@json_option
def batch(**options: Any) -> None:
    """Run --command once per file matching PATTERN, each in its own agent, and merge.

    PATTERN is a `find -name` pattern (`'*.py'`), or a path pattern when it holds a `/`
    (`'src/*/api.py'`). Files are the committed ones of your branch, outside `.git`.
    """
    from prodigyctl.commands import run as cmd

    sys.exit(cmd.generated("batch", **options))


@cli.command()
@click.argument("workflows", nargs=-1, required=True, type=click.Path(dir_okay=False))
@click.option("--strict", is_flag=True, help="Unknown keys are errors, not warnings.")
@json_option
def validate(workflows: tuple[str, ...], strict: bool, as_json: bool) -> None:
    """Check WORKFLOWS without running them (no daemon needed); exit 1 if one has issues."""
    from prodigyctl.commands import validate as cmd

    sys.exit(cmd.validate(workflows=workflows, strict=strict, as_json=as_json))


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


@cli.command("resume-job")
@click.argument("job_id")
@click.option("-y", "--yes", is_flag=True, help="Merge the result without asking.")
@click.option("--force", is_flag=True, help="Resume even if the workflow file changed.")
@click.option("--detach", is_flag=True, help="Return once the resume is accepted.")
@json_option
def resume_job(job_id: str, yes: bool, force: bool, detach: bool, as_json: bool) -> None:
    """Resume a MapReduce job: finished setup and items are kept, the rest run."""
    from prodigyctl.commands import run as cmd

    sys.exit(cmd.resume_job(job_id=job_id, yes=yes, force=force, detach=detach, as_json=as_json))


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
    from prodigyctl.commands import status as cmd

    sys.exit(cmd.status(as_json=as_json))


@cli.command()
@json_option
def status(as_json: bool) -> None:
    """Daemon health: jobs, uptime, store size (never starts it; exit 5)."""
    from prodigyctl.commands import status as cmd

    sys.exit(cmd.status(as_json=as_json))


@cli.command()
@click.argument("session_id")
@click.option("-f", "--follow", is_flag=True, help="Keep printing live events until it finishes.")
@json_option
def logs(session_id: str, follow: bool, as_json: bool) -> None:
    """Print a session's progress from the start, as `run` shows it."""
    from prodigyctl.commands import logs as cmd

    sys.exit(cmd.logs(session_id=session_id, follow=follow, as_json=as_json))


@cli.command()
@click.option("--all", "all_sessions", is_flag=True,
              help="Every job, including ones submitted later, until Ctrl-C.")
@json_option
def follow(all_sessions: bool, as_json: bool) -> None:
    """Watch active jobs live, each line tagged with its job, until they finish."""
    from prodigyctl.commands import logs as cmd

    sys.exit(cmd.follow(all_sessions=all_sessions, as_json=as_json))


def _since(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    from prodigyctl.commands.events import parse_since

    return None if value is None else parse_since(value)


session_filter = click.option("--session", "session_id", metavar="ID", help="Only this session.")
type_filter = click.option("--type", "event_type", metavar="TYPE", help="Only this event type.")
since_filter = click.option(
    "--since", metavar="WHEN", callback=_since,
    help="Only events since WHEN: 30s, 10m, 2h, 3d ago, or an ISO 8601 time (UTC by default).",
)


@cli.group()
def events() -> None:
    """Query, count, export and watch events."""


@events.command("ls")
@session_filter
@type_filter
@since_filter
@click.option("--limit", default=100, show_default=True, type=click.IntRange(1, 1_000_000),
              help="At most this many: the newest matching events, oldest first.")
@click.option("--json", "as_json", is_flag=True, help="One JSON event a line.")
def events_ls(
    session_id: str | None, event_type: str | None, since: str | None, limit: int, as_json: bool
) -> None:
    """List stored events, one a line."""
    from prodigyctl.commands import events as cmd

    sys.exit(cmd.list_events(session_id=session_id, event_type=event_type, since=since,
                             limit=limit, as_json=as_json))


@events.command("follow")
@session_filter
@type_filter
@click.option("--json", "as_json", is_flag=True, help="One JSON event a line.")
def events_follow(session_id: str | None, event_type: str | None, as_json: bool) -> None:
    """Print events as they happen: one session's until it finishes, else all until Ctrl-C."""
    from prodigyctl.commands import events as cmd

    sys.exit(cmd.follow(session_id=session_id, event_type=event_type, as_json=as_json))


@events.command("stats")
@session_filter
@since_filter
@json_option
def events_stats(session_id: str | None, since: str | None, as_json: bool) -> None:
    """Count stored events by type and by session."""
    from prodigyctl.commands import events as cmd

    sys.exit(cmd.stats(session_id=session_id, since=since, as_json=as_json))


@events.command("export")
@session_filter
@type_filter
@since_filter
@click.option("--format", "fmt", type=click.Choice(["json", "csv"]), default="json",
              show_default=True,
              help="A JSON array, or CSV with columns seq,timestamp,session_id,event_type,data.")
@click.option("-o", "--output", metavar="FILE", help="Write to FILE (atomically), not stdout.")
def events_export(
    session_id: str | None, event_type: str | None, since: str | None, fmt: str,
    output: str | None,
) -> None:
    """Export stored events as JSON or CSV."""
    from prodigyctl.commands import events as cmd

    sys.exit(cmd.export(session_id=session_id, event_type=event_type, since=since, fmt=fmt,
                        output=output))


@cli.group()
def dlq() -> None:
    """The dead-letter queue: work items a map phase could not do, with every attempt."""


job_argument = click.argument("job_id", required=False)


@dlq.command("ls")
@job_argument
@click.option("--eligible/--not-eligible", default=None,
              help="Only entries a retry may fix by itself (or only those it may not).")
@click.option("--limit", default=1000, show_default=True, type=click.IntRange(1, 1_000_000))
@json_option
def dlq_ls(job_id: str | None, eligible: bool | None, limit: int, as_json: bool) -> None:
    """Entries of JOB_ID (or of every job), newest failure first; --json includes the items."""
    from prodigyctl.commands import dlq as cmd

    sys.exit(cmd.list_entries(job_id=job_id, eligible=eligible, limit=limit, as_json=as_json))


@dlq.command("show")
@click.argument("job_id")
@click.argument("item_id")
@json_option
def dlq_show(job_id: str, item_id: str, as_json: bool) -> None:
    """One entry: the item and every attempt (error, exit code, log file)."""
    from prodigyctl.commands import dlq as cmd

    sys.exit(cmd.show(job_id=job_id, item_id=item_id, as_json=as_json))


@dlq.command("retry")
@click.argument("job_id")
@click.option("--item", "item_ids", multiple=True, metavar="ITEM_ID",
              help="Retry this item (repeatable); default: every eligible entry.")
@click.option("--filter", "filter_expr", metavar="EXPR",
              help="Only items matching this filter expression (as map.filter).")
@click.option("--force", is_flag=True, help="Also retry items not eligible for reprocessing.")
@click.option("--parallel", type=click.IntRange(1), help="Agents at once (default: max_parallel).")
@click.option("--max-retries", default=1, show_default=True, type=click.IntRange(1, 100),
              help="Attempts per item in this retry.")
@click.option("-y", "--yes", is_flag=True, help="Merge the result without asking.")
@click.option("--detach", is_flag=True, help="Return once the retry job is accepted.")
@json_option
def dlq_retry(job_id: str, item_ids: tuple[str, ...], filter_expr: str | None, force: bool,
              parallel: int | None, max_retries: int, yes: bool, detach: bool,
              as_json: bool) -> None:
    """Re-run dead letters of JOB_ID as agents of a new job and merge their work."""
    from prodigyctl.commands import dlq as cmd

    sys.exit(cmd.retry(job_id=job_id, item_ids=item_ids, filter_expr=filter_expr, force=force,
                       parallel=parallel, max_retries=max_retries, yes=yes, detach=detach,
                       as_json=as_json))


@dlq.command("export")
@job_argument
@click.option("--format", "fmt", type=click.Choice(["json", "csv"]), default="json",
              show_default=True)
@click.option("-o", "--output", metavar="FILE", help="Write to FILE (atomically), not stdout.")
def dlq_export(job_id: str | None, fmt: str, output: str | None) -> None:
    """Export entries (of JOB_ID, or all) as JSON or CSV."""
    from prodigyctl.commands import dlq as cmd

    sys.exit(cmd.export(job_id=job_id, fmt=fmt, output=output))


@dlq.command("purge")
@job_argument
@click.option("--item", "item_ids", multiple=True, metavar="ITEM_ID",
              help="Only this item (repeatable; needs JOB_ID).")
@click.option("--older-than", metavar="AGE", help="Only entries last failed longer ago (7d).")
@click.option("--yes", is_flag=True, help="Do not ask (required when not on a terminal).")
@json_option
def dlq_purge(job_id: str | None, item_ids: tuple[str, ...], older_than: str | None, yes: bool,
              as_json: bool) -> None:
    """Delete entries for good (entries never expire by themselves)."""
    from prodigyctl.commands import dlq as cmd

    sys.exit(cmd.purge(job_id=job_id, item_ids=item_ids, older_than=older_than, yes=yes,
                       as_json=as_json))


@dlq.command("stats")
@job_argument
@json_option
def dlq_stats(job_id: str | None, as_json: bool) -> None:
    """Counts by job, error type and error signature (the commonest causes first)."""
    from prodigyctl.commands import dlq as cmd

    sys.exit(cmd.stats(job_id=job_id, as_json=as_json))


@cli.group()
def worktree() -> None:
    """The pool of git worktrees that sessions and map agents run in."""


@worktree.command("ls")
@json_option
def worktree_ls(as_json: bool) -> None:
    """Every worktree prodigy keeps: idle pool slots, busy ones and kept ones."""
    from prodigyctl.commands import worktree as cmd

    sys.exit(cmd.list_worktrees(as_json=as_json))


@worktree.command("clean")
@click.argument("target", default="all")
@json_option
def worktree_clean(target: str, as_json: bool) -> None:
    """Remove TARGET (a path, a slot name or a named worktree), or every idle one (all)."""
    from prodigyctl.commands import worktree as cmd

    sys.exit(cmd.clean(target=target, as_json=as_json))


@worktree.command("gc")
@click.option("--dry-run", is_flag=True, help="Report what would be collected; change nothing.")
@json_option
def worktree_gc(dry_run: bool, as_json: bool) -> None:
    """Reclaim orphaned worktrees and stale prodigy-* branches now (prodigyd also does it
    at start and every worktree_config.gc_interval_secs)."""
    from prodigyctl.commands import worktree as cmd

    sys.exit(cmd.gc(dry_run=dry_run, as_json=as_json))


@daemon.command("install-service")
@click.option("--uninstall", is_flag=True, help="Remove the units install-service wrote.")
@json_option
def daemon_install_service(uninstall: bool, as_json: bool) -> None:
    """Install prodigyd as a systemd user service, started on demand by prodigyd.socket."""
    from prodigyctl.commands import service as cmd

    sys.exit(cmd.install_service(uninstall=uninstall, as_json=as_json))


@cli.group()
def config() -> None:
    """Show or edit $PRODIGY_HOME/config.toml (prodigyd reads it when it starts)."""


@config.command("show")
@json_option
def config_show(as_json: bool) -> None:
    """Every setting, its value and where the value comes from (default, file or env)."""
    from prodigyctl.commands import config as cmd

    sys.exit(cmd.show(as_json=as_json))


@config.command("get")
@click.argument("key")
@json_option
def config_get(key: str, as_json: bool) -> None:
    """Print the value of KEY (dotted, e.g. claude.model)."""
    from prodigyctl.commands import config as cmd

    sys.exit(cmd.get(key=key, as_json=as_json))


# ignore_unknown_options: `config set claude.extra_args --verbose` passes `--verbose` as VALUE.
@config.command("set", context_settings={"ignore_unknown_options": True})
@click.argument("key")
@click.argument("value")
def config_set(key: str, value: str) -> None:
    """Write KEY = VALUE to the config file; applies when prodigyd restarts."""
    from prodigyctl.commands import config as cmd

    sys.exit(cmd.set_(key=key, value=value))


@config.command("unset")
@click.argument("key")
def config_unset(key: str) -> None:
    """Remove KEY from the config file, so its default applies; applies when prodigyd restarts."""
    from prodigyctl.commands import config as cmd

    sys.exit(cmd.unset(key=key))


@config.command("path")
def config_path() -> None:
    """Print where the config file is (or would be)."""
    from prodigyctl.commands import config as cmd

    sys.exit(cmd.path())


@cli.group()
def hooks() -> None:
    """Git hooks (post-commit, pre-push) that start the repository's triggered workflows."""


@hooks.command("install")
@path_option
@json_option
def hooks_install(path: str | None, as_json: bool) -> None:
    """Install the hooks; a hook already there is kept and run first."""
    from prodigyctl.commands import hooks as cmd

    sys.exit(cmd.install(path=path, as_json=as_json))


@hooks.command("uninstall")
@path_option
@json_option
def hooks_uninstall(path: str | None, as_json: bool) -> None:
    """Remove prodigy's hooks and put back the ones they chained."""
    from prodigyctl.commands import hooks as cmd

    sys.exit(cmd.uninstall(path=path, as_json=as_json))


@hooks.command("status")
@path_option
@json_option
def hooks_status(path: str | None, as_json: bool) -> None:
    """Whether each hook is installed (exit 1 when one is not)."""
    from prodigyctl.commands import hooks as cmd

    sys.exit(cmd.status(path=path, as_json=as_json))


@cli.group()
def watch() -> None:
    """Repositories the daemon watches itself: their triggers fire without git hooks."""


@watch.command("add")
@click.argument("path", required=False, metavar="[PATH]")
@json_option
def watch_add(path: str | None, as_json: bool) -> None:
    """Watch the repository holding PATH (default: the current one)."""
    from prodigyctl.commands import watch as cmd

    sys.exit(cmd.add(path=path, as_json=as_json))


@watch.command("rm")
@click.argument("path", required=False, metavar="[PATH]")
@json_option
def watch_rm(path: str | None, as_json: bool) -> None:
    """Stop watching the repository holding PATH (default: the current one)."""
    from prodigyctl.commands import watch as cmd

    sys.exit(cmd.remove(path=path, as_json=as_json))


@watch.command("ls")
@json_option
def watch_ls(as_json: bool) -> None:
    """The watched repositories: watching, polling, or missing."""
    from prodigyctl.commands import watch as cmd

    sys.exit(cmd.list_watched(as_json=as_json))


@cli.group()
def triggers() -> None:
    """Workflows in .prodigy/workflows/ that git events start (their `on:` triggers)."""


@triggers.command("ls")
@path_option
@json_option
def triggers_ls(path: str | None, as_json: bool) -> None:
    """The repository's triggered workflows, and the latest problems with hook events."""
    from prodigyctl.commands import hooks as cmd

    sys.exit(cmd.list_triggers(path=path, as_json=as_json))

@cli.command()
@click.option(
    "--since", metavar="WHEN", callback=_since,
    help="Only sessions started since WHEN: 30s, 10m, 2h, 3d ago, or an ISO 8601 time.",
)  # fmt: skip
@click.option(
    "--by",
    "group_by",
    type=click.Choice(["workflow", "day", "repo", "status"]),
    default="workflow",
    show_default=True,
    help="One row per workflow, day, repository or status.",
)
@click.option("--top", type=click.IntRange(0, 100), default=5, show_default=True,
              help="List this many of the costliest sessions.")  # fmt: skip
@json_option
def analytics(since: str | None, group_by: str, top: int, as_json: bool) -> None:
    """Cost, tokens, outcomes and time of your sessions, the costliest groups first."""
    from prodigyctl.commands import analytics as cmd

    sys.exit(cmd.analytics(since=since, group_by=group_by, top=top, as_json=as_json))


@cli.group("man")
def man() -> None:
    """Man pages: prodigyctl(1) and one per command, prodigyd(8), prodigy-workflow(5),
    prodigy-config(5)."""


@man.command("ls")
@json_option
def man_ls(as_json: bool) -> None:
    """The pages shipped with prodigyctl."""
    from prodigyctl.commands import man as cmd

    sys.exit(cmd.list_pages(as_json=as_json))


@man.command("show")
@click.argument("topic", nargs=-1, required=True)
def man_show(topic: tuple[str, ...]) -> None:
    """Read one page: a command (`dlq retry`) or a page name (`prodigy-workflow`)."""
    from prodigyctl.commands import man as cmd

    sys.exit(cmd.show(topic=" ".join(topic)))


@man.command("install")
@click.option(
    "--dir",
    "folder",
    metavar="DIR",
    help="Man folder to install into (default: $XDG_DATA_HOME/man, ~/.local/share/man).",
)
@click.option("--uninstall", is_flag=True, help="Remove the pages instead.")
@json_option
def man_install(folder: str | None, uninstall: bool, as_json: bool) -> None:
    """Install the pages where `man` finds them (man1/, man5/, man8/ of DIR)."""
    from prodigyctl.commands import man as cmd

    sys.exit(cmd.install(folder=folder, uninstall=uninstall, as_json=as_json))


def main() -> None:
    with error_handler():
        cli.main(standalone_mode=False, prog_name="prodigyctl")


if __name__ == "__main__":
    main()
