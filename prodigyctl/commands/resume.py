"""`resume`, `resume-job`: queue a failed or interrupted session again from its last
checkpoint, and follow it as `run` does (prodigyctl/jobs.py).
"""

from __future__ import annotations

import os
from typing import Any

import click

from prodigyctl.client import Client
from prodigyctl.commands import command
from prodigyctl.errors import fail
from prodigyctl.exitcodes import EXIT_NOT_FOUND
from prodigyctl.jobs import (
    after_start,
    budget_options,
    budget_params,
    executor_options,
    executor_params,
)
from prodigyctl.options import (
    detach_option,
    id_argument,
    json_option,
    note,
    stacked,
    verbose_option,
    yes_option,
)
from prodigyd import errorcodes, protocol

force_option = click.option(
    "--force",
    is_flag=True,
    help="Resume even if the workflow file changed, or damaged checkpoints lost steps "
    "done (those run again).",
)
#: What resume and resume-job take after their own options.
resume_options = stacked(
    yes_option, force_option, budget_options, executor_options, detach_option, json_option
)


@command("resume")
@verbose_option
@id_argument("session_id", required=False)
@click.option(
    "--from",
    "from_step",
    metavar="STEP",
    help="Run again from this step on (its number, as run shows [2/5], or its name).",
)
@resume_options
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
    are in (not a `dlq retry` whose items all failed again: `dlq retry` runs them). A
    `--budget-*` option replaces that part of the job's budget: the way on after a budget
    ran out (what was spent so far still counts). Map agents run where they ran before
    unless --executor says otherwise.
    """
    with Client.connect() as client:
        session_id = session_id or _latest_resumable(client, as_json)
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


def _latest_resumable(client: Client, as_json: bool) -> str:
    """The newest failed or interrupted session of the repository holding the current
    directory (its top folder, as the daemon records `repo`) that can be resumed, said
    unless --json."""
    from prodigyctl.gittop import repository_top

    top = repository_top()
    repo = str(top) if top is not None else None
    rows = [
        row
        for status in ("failed", "interrupted")
        for row in client.call(protocol.SESSIONS_LIST, {"status": status, "limit": 10_000})
        if repo is not None
        and os.path.realpath(str(row.get("repo"))) == repo
        and row.get("resumable", True)  # not a DLQ retry's dead end (its items are back in
    ]  # its job's DLQ: `dlq retry` runs them)
    if not rows:
        where = f"repository {repo}" if repo else f"{os.getcwd()} (not in a git repository)"
        fail(
            errorcodes.NOTHING_TO_RESUME,
            f"no failed or interrupted session of {where} to resume",
            EXIT_NOT_FOUND,
            hint="`prodigyctl sessions ls` lists every session",
        )
    newest = max(rows, key=lambda row: str(row.get("started_at")))
    note(f"resuming {newest['id']} ({newest['status']}, {newest['workflow']})", as_json)
    return str(newest["id"])


# `resume` for a MapReduce job, with its progress first: setup and finished items are not
# run again, items that were in flight are, and reduce runs once at the end.
@command("resume-job")
@verbose_option
@id_argument("job_id")
@resume_options
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
    if not as_json and job["status"] in ("failed", "interrupted"):  # else refused: say only why
        click.echo(f"Resuming MapReduce job {job_id} ({job['status']})")
        click.echo(
            f"{job['processed_items']} of {job['total_items']} items done, "
            f"{job['failed_items']} failed"
        )
    return resume(session_id=job_id, yes=yes, force=force, detach=detach, as_json=as_json, **budget)
