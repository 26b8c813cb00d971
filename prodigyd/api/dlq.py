"""The dead-letter queue over RPC: list, show, stats, purge, and choosing what to retry.

A retry is a new job (engine/mapreduce/phases.py `run_dlq_retry`): the chosen items run
again as agents of the original job's workflow, from the branch the original job merges
into, and their work is merged like any job's. An item whose retry succeeds leaves the
queue; one that fails again gets another attempt in its entry.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from prodigyd.api import schemas
from prodigyd.errors import Conflict, NotFound, WorkflowError
from prodigyd.store import dlq
from prodigyd.store import sessions as session_store
from prodigyd.store.ids import check_id
from prodigyd.store.sessions import DlqRetry
from prodigyd.workflow.expr import compile_filter

if TYPE_CHECKING:
    from prodigyd.engine.admission import RunRequest


def job_of(job_id: str | None) -> str | None:
    """The job a request names, checked and known to the store; None for "every job". A job
    that does not exist is NotFound (E6001), as `show` and `retry` say it: an empty list, or
    counts of zero, would read as a job with no dead letters, and a mistyped id as good news.
    (A job keeps its record while it has dead letters: retention never removes it.)"""
    if not job_id:
        return None
    return session_store.load(check_id(job_id, "job id")).id


def show(p: schemas.DlqItemParams) -> dict[str, Any]:
    entry = dlq.get(check_id(p.job_id, "job id"), p.item_id)
    if entry is None:
        session_store.load(p.job_id)  # no such job is said as that, not as a missing entry
        raise NotFound(
            f"no DLQ entry for {p.item_id} of job {p.job_id}",
            hint=f"`prodigyctl dlq ls {p.job_id}` lists the job's entries",
        )
    return entry


def retry_request(p: schemas.DlqRetryParams) -> RunRequest | None:
    """The job a `dlq retry` submits, after choosing its items; None when none is left to
    retry (an empty queue, or a filter that keeps nothing): nothing to do is no error."""
    from prodigyd.engine.admission import RunRequest  # the engine: imported by the first job

    job_id = check_id(p.job_id, "job id")
    original = session_store.load(job_id)
    if original.mode != "mapreduce":
        raise Conflict(f"{job_id} is not a MapReduce job: it has no dead-letter queue")
    if original.status.active:
        raise Conflict(
            f"job {job_id} is still {original.status.value}",
            hint="retry its dead letters once it has finished",
        )
    chosen = _choose(job_id, p)
    if not chosen:
        return None
    _, args = session_store.load_private(job_id)
    return RunRequest(
        workflow=original.workflow,
        cwd=original.cwd,
        env=p.env,
        repo=original.repo,
        args=tuple(args),
        profile=original.profile,
        merge_policy=p.merge,
        branch=original.original_branch,
        executor=p.executor or original.executor,
        dlq_retry=DlqRetry(
            job_id=job_id,
            item_ids=[entry["item_id"] for entry in chosen],
            max_parallel=p.max_parallel,
            attempts=p.max_retries,
        ),
    )


def _choose(job_id: str, p: schemas.DlqRetryParams) -> list[dict[str, Any]]:
    entries = dlq.entries(job_id)
    if p.item_ids:
        by_id = {entry["item_id"]: entry for entry in entries}
        missing = [item for item in p.item_ids if item not in by_id]
        if missing:
            raise NotFound(f"job {job_id} has no DLQ entry for {', '.join(missing)}")
        entries = [by_id[item] for item in p.item_ids]
    if p.filter:
        try:
            keep = compile_filter(p.filter)
        except WorkflowError as exc:
            raise WorkflowError(f"--filter: {exc.message}", details=exc.details) from None
        entries = [entry for entry in entries if keep(entry["item_data"])]
    if p.eligible_only:
        entries = [entry for entry in entries if entry["reprocess_eligible"]]
    return entries
