"""RPC handlers: validate, decide, hand work to the Scheduler. None of them see the socket.

Each takes the daemon state and a validated params model and returns a JSON-able result.
`events.subscribe` and `daemon.stop` are special-cased in `server.py` (they act after the
reply is written); everything else is listed in HANDLERS.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from prodigyd import paths, protocol
from prodigyd.api import analytics, events, schemas
from prodigyd.api import dlq as dlq_api
from prodigyd.errors import Conflict, ProdigyError
from prodigyd.git import repo as git_repo
from prodigyd.retention import Retention
from prodigyd.scheduler import Scheduler, session_live
from prodigyd.store import checkpoints, claude_invocations, inline, journal
from prodigyd.store import dlq as dlq_store
from prodigyd.store import sessions as session_store
from prodigyd.store.ids import check_id
from prodigyd.store.sessions import SessionRecord
from prodigyd.version import version
from prodigyd.watch import dropped, triggers
from prodigyd.watch.inbox import HookInbox
from prodigyd.watch.refwatch import RepoWatcher


@dataclass
class DaemonState:
    scheduler: Scheduler
    started: float
    inbox: HookInbox
    watcher: RepoWatcher
    retention: Retention
    drain: bool = False  # how the daemon was asked to stop (set by daemon.stop)


async def ping(state: DaemonState, _: schemas.Empty) -> dict[str, Any]:
    return {
        "pong": True,
        "pid": os.getpid(),
        "version": version(),
        "protocol": protocol.PROTOCOL_VERSION,
    }


async def daemon_status(state: DaemonState, _: schemas.Empty) -> dict[str, Any]:
    return {
        "pid": os.getpid(),
        "version": version(),
        "uptime": round(time.monotonic() - state.started, 3),
        "home": str(paths.home()),
        "store_bytes": await asyncio.to_thread(_store_bytes),  # a walk of the whole store
        **state.scheduler.status(),
    }


def _store_bytes() -> int:
    """Bytes in the store (journal, events, checkpoints, logs), worktrees not counted."""
    total = 0
    for root, dirs, files in os.walk(paths.home()):
        if root == str(paths.home()):
            dirs[:] = [d for d in dirs if d != paths.worktrees_root().name]
        for name in files:
            with contextlib.suppress(OSError):
                total += os.lstat(os.path.join(root, name)).st_size
    return total


async def submit(state: DaemonState, p: schemas.SubmitParams) -> dict[str, Any]:
    from prodigyd.engine.admission import RunRequest  # the engine: imported by the first job

    workflow = str(inline.store(p.workflow_text)) if p.workflow_text is not None else p.workflow
    assert workflow is not None  # SubmitParams requires one of the two
    request = RunRequest(
        workflow=workflow,
        cwd=p.cwd,
        env=p.env,
        repo=p.repo,
        args=tuple(p.args),
        params=p.params,
        profile=p.profile,
        merge_policy=p.merge,
        strict=p.strict,
        budget=p.budget.budget() if p.budget else None,
        max_iterations=p.max_iterations,
        map_patterns=tuple(p.map),
        each_arg=p.each_arg,
        fail_fast=p.fail_fast,
        executor=p.executor,
    )
    record = await state.scheduler.submit(
        request, priority=p.priority, idempotency_key=p.idempotency_key, follow=p.follow
    )
    return _with_seq(state, record)


async def cancel(state: DaemonState, p: schemas.CancelParams) -> dict[str, Any]:
    record = await state.scheduler.cancel(check_id(p.session_id), resumable=p.resumable)
    return record.model_dump(mode="json")


async def list_sessions(state: DaemonState, p: schemas.ListParams) -> list[dict[str, Any]]:
    live = state.scheduler.live
    listed = []
    for record in map(live, session_store.list_all(p.limit, p.status)):
        summary = record.summary()
        summary["resumable"] = record.status.resumable and not _dead_end(state, record)
        listed.append(summary)
    return listed


def _dead_end(state: DaemonState, record: SessionRecord) -> bool:
    """admission.dead_end, asked of a DLQ retry alone: a listing of other jobs imports
    no engine (the first job does)."""
    if record.dlq_retry is None:
        return False
    from prodigyd.engine.admission import dead_end

    return dead_end(record, state.scheduler.pool)


async def show(state: DaemonState, p: schemas.SessionParams) -> dict[str, Any]:
    record = state.scheduler.live(session_store.load(check_id(p.session_id)))
    return {**_describe(record), "event_seq": state.scheduler.hub(record).seq}


#: What `sessions.show` and `checkpoints.show` tell of each completed step.
_STEP_FIELDS = ("step_index", "command", "duration", "completed_at", "skipped")


def _describe(record: SessionRecord) -> dict[str, Any]:
    """`sessions show` details: the record plus its checkpoint's step list and the records
    of its Claude invocations."""
    data = record.model_dump(mode="json")
    saved = checkpoints.load(record.id) or {}
    data["completed"] = [
        {k: entry.get(k) for k in _STEP_FIELDS} for entry in saved.get("completed_steps") or []
    ]
    data["claude_invocations"] = claude_invocations.of_session(record.id)
    if record.mode == "mapreduce":
        data["agents"] = _agents(record.id)
    return data


def _agents(session_id: str) -> list[dict[str, Any]]:
    """Each finished map item: how it ended and where its agent ran (`worker`: "local",
    or the address of the Dask worker; None for one merged before a daemon restart)."""
    return [
        {key: entry["result"].get(key) for key in ("item_id", "status", "attempts", "worker")}
        for entry in checkpoints.records(session_id, "map")
        if entry.get("kind") == "result"
    ]


async def checkpoints_list(state: DaemonState, p: schemas.ListParams) -> list[dict[str, Any]]:
    """Sessions with checkpoints, newest first: what a resume would continue from."""
    rows = []
    for record in session_store.list_all(p.limit, p.status):
        phases = checkpoints.phases(record.id)
        if phases:
            rows.append(_checkpoint_row(record, phases))
    return rows


def _checkpoint_row(record: SessionRecord, phases: list[str]) -> dict[str, Any]:
    return {
        "id": record.id,
        "workflow": record.workflow,
        "status": record.status.value,
        "resumable": record.status.resumable,
        "phases": phases,
        "steps": f"{record.completed_steps}/{record.total_steps}",
        "bytes": checkpoints.size(record.id),
        "updated_at": record.updated_at,
    }


async def checkpoints_show(state: DaemonState, p: schemas.SessionParams) -> dict[str, Any]:
    """A session's checkpoint, phase by phase: the steps done (secrets stay placeholders),
    the names of the variables a resume restores, and the other records by kind."""
    record = session_store.load(check_id(p.session_id))
    phases = checkpoints.phases(record.id)
    shown = []
    for phase in phases:
        kept = list(checkpoints.records(record.id, phase))
        saved = checkpoints.summary(record.id, kept) or {}
        kinds: dict[str, int] = {}
        for entry in kept:
            if entry.get("kind"):
                kinds[str(entry["kind"])] = kinds.get(str(entry["kind"]), 0) + 1
        shown.append(
            {
                "phase": phase,
                "completed_steps": [
                    {k: step.get(k) for k in _STEP_FIELDS}
                    for step in saved.get("completed_steps") or []
                ],
                "total_steps": saved.get("total_steps"),
                "variables": sorted(saved.get("variable_state") or {}),
                "records": kinds,  # map items' results, goal_seek attempts, conversations
            }
        )
    return {**_checkpoint_row(record, phases), "checkpoints": shown}


async def checkpoints_delete(
    state: DaemonState, p: schemas.CheckpointDeleteParams
) -> dict[str, Any]:
    """Delete a session's checkpoints. Never while it is queued or running; a session a
    resume would continue only with `force` (its resume then runs every step again)."""
    record = session_store.load(check_id(p.session_id))
    if record.status.active:
        raise Conflict(f"session {record.id} is {record.status.value}: its checkpoints are in use")
    if record.status.resumable and not p.force:
        raise Conflict(
            f"session {record.id} is {record.status.value}: a resume continues from its "
            "checkpoints",
            hint="--force deletes them anyway (a resume then runs every step again)",
        )
    freed = checkpoints.size(record.id)
    gone = checkpoints.discard(record.id)  # at once, on the loop: no resume slips in between
    if gone is not None:
        await asyncio.to_thread(shutil.rmtree, gone, True)
    return {"id": record.id, "deleted": gone is not None, "bytes": freed}


async def resume(state: DaemonState, p: schemas.ResumeParams) -> dict[str, Any]:
    record = await state.scheduler.resume(
        check_id(p.session_id),
        force=p.force,
        merge_policy=p.merge,
        env=p.env,
        budget=p.budget.budget() if p.budget else None,
        from_step=p.from_step,
        executor=p.executor,
    )
    return _with_seq(state, record)


async def merge(state: DaemonState, p: schemas.SessionParams) -> dict[str, Any]:
    record = await state.scheduler.merge(check_id(p.session_id))
    return record.model_dump(mode="json")


def _with_seq(state: DaemonState, record: SessionRecord) -> dict[str, Any]:
    """The record plus the event number a follower should subscribe after."""
    return {**record.model_dump(mode="json"), "event_seq": state.scheduler.event_seq(record)}


async def events_list(state: DaemonState, p: schemas.EventsQuery) -> list[dict[str, Any]]:
    return events.list_events(p)


async def events_stats(state: DaemonState, p: schemas.EventsQuery) -> dict[str, Any]:
    return events.stats(p)


async def dlq_list(state: DaemonState, p: schemas.DlqListParams) -> list[dict[str, Any]]:
    return dlq_store.entries(dlq_api.job_of(p.job_id), eligible=p.eligible, limit=p.limit)


async def dlq_show(state: DaemonState, p: schemas.DlqItemParams) -> dict[str, Any]:
    return dlq_api.show(p)


async def dlq_stats(state: DaemonState, p: schemas.DlqStatsParams) -> dict[str, Any]:
    return dlq_store.stats(dlq_api.job_of(p.job_id))


async def dlq_purge(state: DaemonState, p: schemas.DlqPurgeParams) -> dict[str, Any]:
    job = dlq_api.job_of(p.job_id)
    if p.item_ids:
        if job is None:
            raise ProdigyError("purging chosen items needs the job id")
        return {"purged": dlq_store.remove(job, p.item_ids)}
    return {"purged": dlq_store.purge(job, older_than=p.older_than)}


async def dlq_retry(state: DaemonState, p: schemas.DlqRetryParams) -> dict[str, Any]:
    request = dlq_api.retry_request(p)
    if request is None:
        return {"id": None, "message": f"no DLQ entries of job {p.job_id} to retry"}
    record = await state.scheduler.submit(request)
    return _with_seq(state, record)


async def worktrees_list(state: DaemonState, _: schemas.Empty) -> list[dict[str, Any]]:
    return [row.as_dict() for row in state.scheduler.pool.worktrees()]


async def worktrees_clean(state: DaemonState, p: schemas.WorktreeCleanParams) -> dict[str, Any]:
    return {"removed": await state.scheduler.pool.clean(p.target, session_live)}


async def worktrees_gc(state: DaemonState, p: schemas.GcParams) -> dict[str, Any]:
    report = await state.scheduler.pool.gc(session_live, dry_run=p.dry_run)
    return {"dry_run": p.dry_run, **report.as_dict()}


async def triggers_list(state: DaemonState, p: schemas.TriggersParams) -> dict[str, Any]:
    """The repository's triggered workflows (or why each does not load), the latest runs
    its triggers did not start and why (watch/dropped.py), and the latest problems the
    hook inbox met (every repository's: an event names its own)."""
    repo = await git_repo.repo_root(Path(p.repo))
    workflows = [
        {
            "path": str(found.path),
            "name": found.loaded.workflow.name if found.loaded else None,
            "on": [t.model_dump(mode="json") for t in found.loaded.workflow.on]
            if found.loaded
            else [],
            "error": found.error,
        }
        for found in await triggers.discover(repo)
    ]
    return {
        "repo": str(repo),
        # the watcher delivers commit, ref, files; a linked worktree's are its repository's
        "watched": any(state.watcher.watches(top) for top in (repo, dropped.repository(repo))),
        "workflows": workflows,
        "dropped": await dropped.recent(repo),
        "problems": list(state.inbox.problems),
    }


async def watch_add(state: DaemonState, p: schemas.WatchParams) -> dict[str, Any]:
    return await state.watcher.add(Path(p.path))


async def watch_remove(state: DaemonState, p: schemas.WatchParams) -> dict[str, Any]:
    return await state.watcher.remove(Path(p.path))


async def watch_list(state: DaemonState, _: schemas.Empty) -> dict[str, Any]:
    return {"repositories": await state.watcher.listing(), "polling": state.watcher.polling}


async def analytics_summary(state: DaemonState, p: schemas.AnalyticsParams) -> dict[str, Any]:
    jobs = journal.usage(p.since)
    if p.group_by in analytics.INVOCATION_GROUPS:
        groups, total = claude_invocations.totals(p.group_by, p.since)
        return {"since": p.since, **analytics.invocations(p.group_by, groups, total, jobs, p.top)}
    return {"since": p.since, **analytics.summary(jobs, p.group_by, p.top)}


async def retention_clean(state: DaemonState, p: schemas.CleanParams) -> dict[str, Any]:
    """Apply the retention policy now (prodigyd/retention.py), `older_than` replacing its
    age for finished sessions; with `dry_run`, only say what would go."""
    report = await state.retention.apply(older_than=p.older_than, dry_run=p.dry_run, worktrees=True)
    return report.as_dict()


Handler = Callable[[DaemonState, Any], Awaitable[Any]]

#: method → (params model, handler)
HANDLERS: dict[str, tuple[type[BaseModel], Handler]] = {
    protocol.PING: (schemas.Empty, ping),
    protocol.DAEMON_STATUS: (schemas.Empty, daemon_status),
    protocol.JOBS_SUBMIT: (schemas.SubmitParams, submit),
    protocol.JOBS_CANCEL: (schemas.CancelParams, cancel),
    protocol.SESSIONS_LIST: (schemas.ListParams, list_sessions),
    protocol.SESSIONS_SHOW: (schemas.SessionParams, show),
    protocol.CHECKPOINTS_LIST: (schemas.ListParams, checkpoints_list),
    protocol.CHECKPOINTS_SHOW: (schemas.SessionParams, checkpoints_show),
    protocol.CHECKPOINTS_DELETE: (schemas.CheckpointDeleteParams, checkpoints_delete),
    protocol.SESSIONS_RESUME: (schemas.ResumeParams, resume),
    protocol.SESSIONS_MERGE: (schemas.SessionParams, merge),
    protocol.EVENTS_LIST: (schemas.EventsQuery, events_list),
    protocol.EVENTS_STATS: (schemas.EventsQuery, events_stats),
    protocol.DLQ_LIST: (schemas.DlqListParams, dlq_list),
    protocol.DLQ_SHOW: (schemas.DlqItemParams, dlq_show),
    protocol.DLQ_STATS: (schemas.DlqStatsParams, dlq_stats),
    protocol.DLQ_PURGE: (schemas.DlqPurgeParams, dlq_purge),
    protocol.DLQ_RETRY: (schemas.DlqRetryParams, dlq_retry),
    protocol.WORKTREES_LIST: (schemas.Empty, worktrees_list),
    protocol.WORKTREES_CLEAN: (schemas.WorktreeCleanParams, worktrees_clean),
    protocol.WORKTREES_GC: (schemas.GcParams, worktrees_gc),
    protocol.TRIGGERS_LIST: (schemas.TriggersParams, triggers_list),
    protocol.WATCH_ADD: (schemas.WatchParams, watch_add),
    protocol.WATCH_REMOVE: (schemas.WatchParams, watch_remove),
    protocol.WATCH_LIST: (schemas.Empty, watch_list),
    protocol.ANALYTICS_SUMMARY: (schemas.AnalyticsParams, analytics_summary),
    protocol.RETENTION_CLEAN: (schemas.CleanParams, retention_clean),
}
