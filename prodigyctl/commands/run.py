"""`run`, `exec`, `batch`, `goal-seek`, `resume`, `resume-job`, `merge`, `cancel`: start or
finish a session and follow it to the end.

Following = subscribe to the session's events from the point the job was accepted, render
them, stop at `session_finished`. Ctrl-C while following cancels the job (it is recorded as
interrupted and stays resumable) and exits 130. A successful run without `-y` asks on a TTY
whether to merge; elsewhere it leaves the session `awaiting_merge` for `prodigyctl merge`.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import click

from prodigyctl.client import Client, dumps, is_tty
from prodigyctl.commands import command
from prodigyctl.errors import RpcError, fail
from prodigyctl.exitcodes import (
    EXIT_CONFLICT,
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_NOT_FOUND,
    EXIT_OK,
    exit_for_error,
)
from prodigyctl.options import (
    F,
    detach_option,
    id_argument,
    json_option,
    path_option,
    verbose_option,
    verbosity,
    yes_option,
)
from prodigyd import errorcodes, protocol

if TYPE_CHECKING:
    from prodigyctl.render import Renderer

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
force_option = click.option(
    "--force", is_flag=True, help="Resume even if the workflow file changed."
)


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


def budget_options(function: F) -> F:
    """`--budget-usd`, `--budget-tokens`, `--budget-time`: the job's budget, over the
    workflow's `budget:` (docs/workflows.md, "Budgets")."""
    options = (
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
    for option in reversed(options):
        function = option(function)
    return function


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


def executor_options(function: F) -> F:
    """`--executor`, `--executor-address`: where the job's map agents run, over the
    daemon's `[executor]` (docs/dask.md); stored with the job, so a resume keeps it."""
    function = click.option(
        "--executor-address",
        metavar="ADDR",
        help="The Dask scheduler map agents run on (tcp://HOST:8786); implies --executor dask.",
    )(function)
    return click.option(
        "--executor",
        type=click.Choice(["local", "dask"]),
        help="Where map agents run: in the daemon (local) or on a Dask cluster (dask); "
        "default: [executor] kind.",
    )(function)


def executor_params(options: dict[str, Any]) -> dict[str, Any]:
    """The `executor` param from `--executor`/`--executor-address` (taken out of
    `options`); {} when neither was given."""
    kind, address = options.pop("executor", None), options.pop("executor_address", None)
    if address is not None:
        if kind == "local":
            raise click.UsageError("--executor-address names a Dask scheduler: not with local")
        kind = "dask"
    return {"executor": {"kind": kind, "address": address}} if kind else {}


@command("run")
@verbose_option
@click.argument("workflow", type=click.Path(dir_okay=False))
@yes_option
@click.option(
    "--args",
    "args",
    multiple=True,
    metavar="VALUE",
    help="Positional value for $ARG / ${ARG_1}... (repeatable).",
)
@click.option(
    "-n",
    "--max-iterations",
    type=click.IntRange(1, 10_000),
    default=1,
    show_default=True,
    metavar="N",
    help="Run the whole step list N times (per input with --map/--each-arg).",
)
@click.option(
    "--map",
    "map_patterns",
    multiple=True,
    metavar="PATTERN",
    help="Run the workflow once per committed file matching PATTERN, as batch matches "
    "(${FILE}, ${ARG}, ${INDEX}, ${TOTAL}; repeatable).",
)
@click.option(
    "--each-arg",
    is_flag=True,
    help="Run the workflow once per --args value (${ARG}, ${INDEX}, ${TOTAL}), as --map does.",
)
@click.option(
    "--fail-fast",
    is_flag=True,
    help="With --map/--each-arg: stop at the first input that fails (default: run them all).",
)
@click.option(
    "--param",
    "param",
    multiple=True,
    metavar="NAME=VALUE",
    help="A workflow parameter, ${NAME} (repeatable; typed as the workflow declares it).",
)
@click.option(
    "--param-file",
    type=click.Path(dir_okay=False),
    metavar="FILE",
    help="Parameters from a YAML or JSON mapping (--param values win).",
)
@click.option("--profile", metavar="NAME", help="Activate an environment profile of the workflow.")
@path_option
@detach_option
@click.option(
    "--strict", is_flag=True, help="Unknown workflow keys and unresolved variables are errors."
)
@click.option(
    "--dry-run",
    is_flag=True,
    help="Show the plan (phases, steps, how many items) and run nothing.",
)
@click.option(
    "--priority",
    type=click.IntRange(-1000, 1000),
    default=0,
    show_default=True,
    help="Higher starts first among queued jobs (first come, first served within one).",
)
@click.option(
    "--idempotency-key",
    metavar="KEY",
    help="Run at most once per KEY: a run with a key already used follows that earlier job.",
)
@budget_options
@executor_options
@json_option
def run(
    *,
    workflow: str,
    yes: bool,
    args: tuple[str, ...],
    max_iterations: int,
    map_patterns: tuple[str, ...],
    each_arg: bool,
    fail_fast: bool,
    param: tuple[str, ...],
    param_file: str | None,
    profile: str | None,
    path: str | None,
    detach: bool,
    strict: bool,
    dry_run: bool,
    priority: int,
    idempotency_key: str | None,
    as_json: bool,
    **budget: Any,
) -> int:
    """Run WORKFLOW in a new worktree and merge the result back to your branch.

    WORKFLOW `-` reads the workflow from standard input.
    """
    if fail_fast and not (map_patterns or each_arg):
        raise click.UsageError("--fail-fast applies to a run over inputs (--map, --each-arg)")
    if each_arg and not args:
        raise click.UsageError("--each-arg runs once per --args value: give at least one")
    if dry_run:
        return _dry_run(workflow, path, strict=strict, as_json=as_json)
    source = {"workflow_text": _stdin_workflow()} if workflow == "-" else {"workflow": workflow}
    values = {**_param_file(param_file), **dict(_assignment(text) for text in param)}
    params: dict[str, Any] = {**source, "args": list(args), "profile": profile, "strict": strict}
    if values:
        params["params"] = values
    if priority:
        params["priority"] = priority
    if max_iterations > 1:
        params["max_iterations"] = max_iterations
    if map_patterns or each_arg:
        params.update(map=list(map_patterns), each_arg=each_arg, fail_fast=fail_fast)
    if idempotency_key is not None:
        params["idempotency_key"] = idempotency_key
    params.update(executor_params(budget))
    params.update(budget_params(budget))
    return submit(params, yes=yes, path=path, detach=detach, as_json=as_json)


def _assignment(text: str) -> tuple[str, str]:
    name, sep, value = text.partition("=")
    if not sep or not name.strip():
        raise click.UsageError(f"--param {text!r}: expected NAME=VALUE")
    return name.strip(), value


def _dry_run(workflow: str, path: str | None, *, strict: bool, as_json: bool) -> int:
    """`run --dry-run`: the plan (prodigyctl/plan.py); no daemon, nothing submitted."""
    from pathlib import Path

    from prodigyctl import plan
    from prodigyctl.gittop import repository_top
    from prodigyd.workflow.load import load_workflow, parse_workflow

    # a ProdigyError (the file cannot be loaded) goes to the error handler with its code
    if workflow == "-":
        loaded = parse_workflow(_stdin_workflow(), source="<stdin>", strict=strict)
    else:
        loaded = load_workflow(Path(workflow).absolute(), strict=strict)
    repo = repository_top(path) or Path(path or ".").resolve()
    data = plan.plan(loaded.workflow, repo)
    # as `run` warns: unknown keys, and `${name}`s nothing defines (nor this environment)
    data["warnings"] = [*loaded.warnings, *loaded.variable_warnings(os.environ)]
    if as_json:
        click.echo(dumps(data))
    else:
        for warning in data["warnings"]:
            click.echo(f"warning: {warning}", err=True)
        plan.show(data, workflow)
    return EXIT_OK


def _param_file(path: str | None) -> dict[str, Any]:
    """The mapping in a --param-file, read as workflow files are (YAML 1.2, of which JSON is
    a part: `yes` stays text); its values keep their types, and the daemon checks them
    against the workflow's declarations."""
    if path is None:
        return {}
    from pathlib import Path

    from prodigyd.errors import ProdigyError
    from prodigyd.workflow.limits import Deadline
    from prodigyd.workflow.load.nodes import plain
    from prodigyd.workflow.load.source import parse_text, read_source

    file = Path(path).absolute()
    if not file.is_file():
        raise click.UsageError(f"--param-file {path}: no such file")
    try:
        data = plain(parse_text(read_source(file)[0], str(file), Deadline())[0])
    except ProdigyError as exc:
        raise click.UsageError(f"--param-file: {exc.render()}") from None
    if not isinstance(data, dict) or not all(isinstance(key, str) for key in data):
        raise click.UsageError(f"--param-file {path}: expected a mapping of NAME: value")
    return data


@command("exec")
@verbose_option
@click.argument("command")
@retry_option
@timeout_option
@budget_options
@path_option
@detach_option
@json_option
def exec_(**options: Any) -> int:
    """Run one COMMAND in a new worktree and merge its result back to your branch.

    `claude: /cmd args` runs a Claude command and `shell: cmd` a shell command, as in
    the original prodigy; without a prefix, a COMMAND starting with `/` is a Claude
    command, anything else a shell command.
    """
    return generated("exec", **options)


@command("batch")
@verbose_option
@click.argument("pattern")
@click.option(
    "-c",
    "--command",
    required=True,
    help="Run for each file; ${item} is its path (`claude: /cmd` or a leading `/`: a "
    "Claude command; `shell: cmd` or anything else: a shell command).",
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
@budget_options
@path_option
@detach_option
@json_option
def batch(**options: Any) -> int:
    """Run --command once per file matching PATTERN, each in its own agent, and merge.

    PATTERN is a `find -name` pattern (`'*.py'`), or a path pattern when it holds a `/`
    (`'src/*/api.py'`). Files are the committed ones of your branch, outside `.git`.
    A batch in which every file failed exits 1 (the files are in the DLQ).
    """
    return generated("batch", **options)


@command("goal-seek")
@click.argument("goal")
@click.option(
    "-c",
    "--command",
    required=True,
    help="Run on each attempt (a leading `/`: a Claude command); it sees ${goal.*} and "
    "PRODIGY_GOAL_*.",
)
@click.option(
    "--validate",
    required=True,
    metavar="COMMAND",
    help="Shell command printing a score after each attempt (`score: N`, `N%`, `N/100`, "
    '`N out of 100`, {"score": N, "gaps": [...]}).',
)
@click.option(
    "-t",
    "--threshold",
    type=click.FloatRange(0, 100),
    default=90,
    show_default=True,
    help="The score that reaches the goal.",
)
@click.option(
    "-m",
    "--max-attempts",
    type=click.IntRange(min=1),
    default=5,
    show_default=True,
    help="Attempts at most.",
)
@click.option(
    "--timeout",
    type=click.FloatRange(min=0, min_open=True),
    metavar="SECS",
    help="Give up after SECS seconds in all (the running attempt is killed).",
)
@click.option(
    "--fail-on-incomplete/--no-fail-on-incomplete",
    default=True,
    show_default=True,
    help="Whether a goal not reached fails (and nothing is merged) or its work is merged.",
)
@path_option
@detach_option
@json_option
def goal_seek(**options: Any) -> int:
    """Run --command until --validate scores GOAL as reached, then merge the result.

    Stops when the score reaches --threshold, after --max-attempts, at --timeout, or when
    the last three scores are within 2 points. Exit status 1 when the goal is not reached.
    """
    return generated("goal-seek", **options)


def generated(kind: str, *, path: str | None, detach: bool, as_json: bool, **options: Any) -> int:
    """`exec`, `batch` and `goal-seek`: a workflow written from their options
    (prodigyd.workflow.generate), submitted as text and merged without asking."""
    from prodigyd.workflow import generate

    if kind == "batch" and "${item" not in options["command"]:
        click.echo(
            "warning: --command does not use ${item}: every agent runs the same command",
            err=True,
        )
    builders: dict[str, Callable[..., str]] = {
        "exec": generate.exec_workflow,
        "batch": generate.batch_workflow,
        "goal-seek": generate.goal_seek_workflow,
    }
    build = builders[kind]
    budget = budget_params(options)
    try:
        text = build(**options)
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    params = {"workflow_text": text, **budget}
    return submit(params, yes=True, path=path, detach=detach, as_json=as_json)


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
        record = client.call(protocol.JOBS_SUBMIT, params)
        return after_start(client, record, detach=detach, as_json=as_json, yes=yes)


def _stdin_workflow() -> str:
    with click.open_file("-") as stdin:
        text = stdin.read()
    if not text.strip():
        raise click.UsageError("no workflow on standard input (WORKFLOW `-` reads it there)")
    return text


@command("resume")
@verbose_option
@id_argument("session_id", required=False)
@click.option(
    "--from",
    "from_step",
    metavar="STEP",
    help="Run again from this step on (its number, as run shows [2/5], or its name).",
)
@yes_option
@force_option
@budget_options
@executor_options
@detach_option
@json_option
def resume(
    *,
    session_id: str | None,
    from_step: str | None = None,
    yes: bool,
    force: bool,
    detach: bool,
    as_json: bool,
    **budget: Any,
) -> int:
    """Resume a failed or interrupted session from its last checkpoint.

    Without SESSION_ID: the newest failed or interrupted session of the repository you
    are in. A `--budget-*` option replaces that part of the job's budget: the way on
    after a budget ran out (what was spent so far still counts). Map agents run where
    they ran before unless --executor says otherwise.
    """
    with Client.connect() as client:
        session_id = session_id or _latest_resumable(client)
        params = {
            "session_id": session_id,
            "force": force,
            "merge": "auto" if yes else None,
            "env": dict(os.environ),  # a variable fixed since the failure counts on resume
            **executor_params(budget),
            **budget_params(budget),
        }
        if from_step is not None:
            params["from_step"] = from_step
        record = client.call(protocol.SESSIONS_RESUME, params)
        return after_start(client, record, detach=detach, as_json=as_json, yes=yes)


def _latest_resumable(client: Client) -> str:
    """The newest failed or interrupted session of the repository holding the current
    directory (its top folder, as the daemon records `repo`)."""
    from prodigyctl.gittop import repository_top

    top = repository_top()
    repo = str(top) if top is not None else None
    rows = [
        row
        for status in ("failed", "interrupted")
        for row in client.call(protocol.SESSIONS_LIST, {"status": status, "limit": 10_000})
        if repo is not None and os.path.realpath(str(row.get("repo"))) == repo
    ]
    if not rows:
        where = f"repository {repo}" if repo else f"{os.getcwd()} (not in a git repository)"
        fail(
            errorcodes.NOTHING_TO_RESUME,
            f"no failed or interrupted session of {where} to resume",
            EXIT_NOT_FOUND,
            hint="`prodigyctl sessions ls` lists every session",
        )
    newest = max(rows, key=lambda row: str(row.get("started_at")))
    click.echo(f"resuming {newest['id']} ({newest['status']}, {newest['workflow']})", err=True)
    return str(newest["id"])


# `resume` for a MapReduce job, with its progress first: setup and finished items are not
# run again, items that were in flight are, and reduce runs once at the end.
@command("resume-job")
@verbose_option
@id_argument("job_id")
@yes_option
@force_option
@budget_options
@executor_options
@detach_option
@json_option
def resume_job(
    *, job_id: str, yes: bool, force: bool, detach: bool, as_json: bool, **budget: Any
) -> int:
    """Resume a MapReduce job: finished setup and items are kept, the rest run."""
    with Client.connect() as client:
        job = client.call(protocol.SESSIONS_SHOW, {"session_id": job_id})
    if job.get("mode") != "mapreduce":
        raise click.UsageError(
            f"{job_id} is not a MapReduce job; resume it with `prodigyctl resume {job_id}`"
        )
    if not as_json:
        click.echo(f"Resuming MapReduce job {job_id} ({job['status']})")
        click.echo(
            f"{job['processed_items']} of {job['total_items']} items done, "
            f"{job['failed_items']} failed"
        )
    return resume(session_id=job_id, yes=yes, force=force, detach=detach, as_json=as_json, **budget)


@command("merge")
@id_argument("session_id")
@json_option
def merge(*, session_id: str, as_json: bool) -> int:
    """Merge a session that is awaiting_merge into the branch it started from."""
    from prodigyctl.render import Renderer

    with Client.connect() as client:
        renderer = Renderer(as_json=as_json)
        seq = _current_seq(client, session_id)
        client.on_event = renderer
        client.call(protocol.EVENTS_SUBSCRIBE, {"session_id": session_id, "since": seq})
        record = client.call(protocol.SESSIONS_MERGE, {"session_id": session_id})
        if not as_json:
            click.echo(f"session {session_id}: {record['status']}")
        return EXIT_OK


@command("cancel")
@id_argument("session_id")
@json_option
def cancel(*, session_id: str, as_json: bool) -> int:
    """Cancel a queued or running session for good (Ctrl-C on `run` interrupts instead)."""
    with Client.connect() as client:
        record = client.call(protocol.JOBS_CANCEL, {"session_id": session_id, "resumable": False})
    click.echo(dumps(record) if as_json else f"session {session_id}: {record['status']}")
    return EXIT_OK


def _current_seq(client: Client, session_id: str) -> int:
    shown = client.call(protocol.SESSIONS_SHOW, {"session_id": session_id})
    return int(shown.get("event_seq") or 0)


def after_start(
    client: Client, record: dict[str, Any], *, detach: bool, as_json: bool, yes: bool
) -> int:
    session_id = record["id"]
    for warning in record.get("warnings") or []:
        click.echo(f"warning: {warning}", err=True)
    if detach:
        click.echo(dumps(record) if as_json else session_id)
        return EXIT_OK
    from prodigyctl.render import Renderer

    renderer = Renderer(as_json=as_json, verbose=verbosity())
    final = _follow(client, session_id, int(record.get("event_seq") or 0), renderer)
    if final is None:
        fail(errorcodes.CONNECTION_LOST, "lost the connection to prodigyd", EXIT_FAILED)
    return _conclude(client, final, renderer, yes=yes, as_json=as_json)


def _follow(client: Client, session_id: str, since: int, renderer: Renderer) -> dict | None:
    """Render events until the session finishes; Ctrl-C cancels the job."""
    state: dict[str, Any] = {}

    def handle(event: dict[str, Any]) -> None:
        renderer(event)
        if event.get("event_type") == protocol.TERMINAL_EVENT:
            state["final"] = event

    client.on_event = handle
    try:
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
    session's worktree against the branch it would land on (git's own words)."""
    import subprocess

    shown = client.call(protocol.SESSIONS_SHOW, {"session_id": session_id})
    worktree, target = shown.get("worktree"), shown.get("original_branch")
    if not worktree or not target:
        return ""
    views = (
        ["log", "--oneline", "--no-decorate", f"{target}..HEAD"],
        ["diff", "--stat", f"{target}...HEAD"],
    )
    parts = []
    for argv in views:
        done = subprocess.run(
            ["git", "-C", worktree, *argv], capture_output=True, text=True, check=False
        )
        if done.returncode == 0 and done.stdout.strip():
            parts.append(done.stdout.rstrip("\n"))
    return "\n".join(["What would land:", *parts]) if parts else ""


def _conclude(
    client: Client, final: dict[str, Any], renderer: Renderer, *, yes: bool, as_json: bool
) -> int:
    status = final.get("status")
    session_id = final["session_id"]
    if status == "completed":
        return EXIT_OK
    if status == "interrupted":
        return EXIT_INTERRUPTED
    if status != "awaiting_merge":
        return EXIT_FAILED
    if final.get("error"):  # the automatic merge was refused
        if not as_json:
            click.echo(f"fix the above, then run: prodigyctl merge {session_id}", err=True)
        return EXIT_CONFLICT
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
