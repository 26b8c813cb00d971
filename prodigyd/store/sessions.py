"""Session records, kept in the job journal (`journal.db`, see store/journal.py).

The record is what `prodigyctl sessions ls|show` prints and what `resume` and `merge` start
from. It is saved on every status change (a handful of times per run), never per step:
per-step progress lives in the checkpoint journal.

On a full disk a change the engine makes on its own (a step started, a session ended) is
not lost and does not stop anything: `save(..., defer=True)` keeps the newest record in
memory, every read here sees it, and it is written with the next save that fits or by
`flush_unsaved` (the daemon's mender). A change a client asked for (a resume, the cancel
of a job that is not running) is never deferred: the client is told NoSpace at once and
nothing happens later behind its back. Cancelling a running job is the one exception: the
job stops whatever the disk, and its end is saved like any end the engine records (kept
in memory when it does not fit; the client is answered with it all the same). A daemon
stopped before the disk has room loses only the deferred records; the next one finds
those sessions as they were last written (`running`: recovered as after a crash).
"""

from __future__ import annotations

import json
import re
import sqlite3
from collections.abc import Collection
from enum import StrEnum
from typing import Any, Unpack

from pydantic import BaseModel, Field, ValidationError

from prodigyd import errorcodes
from prodigyd.clock import now_iso
from prodigyd.config import ExecutorConfig
from prodigyd.errors import NoSpace, NotFound, StoreError
from prodigyd.store import journal, locks
from prodigyd.store.ids import KIND_WORDS, check_id, is_id
from prodigyd.workflow.model import Budget


class Status(StrEnum):
    QUEUED = "queued"  # accepted, waiting for a free slot
    RUNNING = "running"
    AWAITING_MERGE = "awaiting_merge"  # succeeded; waiting for `prodigyctl merge`
    COMPLETED = "completed"  # succeeded and merged (or had nothing to merge)
    FAILED = "failed"  # a step failed; worktree kept, resumable
    INTERRUPTED = "interrupted"  # cancelled by Ctrl-C or a daemon stop; resumable
    CANCELLED = "cancelled"  # cancelled for good

    @property
    def resumable(self) -> bool:
        return self in (Status.FAILED, Status.INTERRUPTED)

    @property
    def active(self) -> bool:
        return self in (Status.QUEUED, Status.RUNNING)

    @property
    def finished(self) -> bool:
        """Over for good: no step of it can run again (resume and merge refuse it), so the
        environment it was submitted with is no longer kept (store/journal.py)."""
        return self in (Status.COMPLETED, Status.CANCELLED)

    @property
    def keeps_worktree(self) -> bool:
        """Still needs its worktree and branch: running, or able to run or merge again."""
        return self.active or self.resumable or self is Status.AWAITING_MERGE


class DlqRetry(BaseModel):
    """A job that re-runs dead letters of `job_id` (prodigyctl dlq retry)."""

    job_id: str
    item_ids: list[str]
    max_parallel: int | None = None  # None: the workflow's max_parallel
    attempts: int = 1  # runs per item in this retry


class Runs(BaseModel):
    """How often a standard workflow's steps run in one session (`run -n`, `--map`,
    `--each-arg`; engine/runs.py): once per input (the `--args` values when `each_arg`,
    then the `files` matched by `--map`), `iterations` times each."""

    iterations: int = 1
    each_arg: bool = False
    files: list[str] = []  # resolved at submission: a resume runs the same inputs
    fail_fast: bool = False

    def inputs(self, args: list[str] | tuple[str, ...]) -> list[str]:
        """The inputs in the order they run (None-free; empty: not iterative mode)."""
        return [*(args if self.each_arg else ()), *self.files]

    def count(self, args: list[str] | tuple[str, ...]) -> int:
        """How many times the steps run in all."""
        return max(1, len(self.inputs(args))) * self.iterations


class BudgetUse(BaseModel):
    """What a session spent against its job budget over all its runs (engine/budget.py),
    so a resume continues the account instead of starting a new one."""

    cost_usd: float = 0.0
    tokens: int = 0
    seconds: float = 0.0


class SessionRecord(BaseModel):
    """Everything needed to show, resume or merge a session."""

    id: str
    workflow: str  # absolute path of the workflow file
    workflow_name: str
    workflow_sha256: str
    status: Status = Status.QUEUED
    started_at: str = Field(default_factory=now_iso)
    updated_at: str = Field(default_factory=now_iso)
    completed_at: str | None = None
    repo: str  # the user's repository root
    repo_id: str
    original_branch: str
    worktree: str  # "" until the session starts and the pool hands it one
    branch: str
    base_commit: str | None = None  # where the session branch started (for ${workflow.*})
    cwd: str
    args: list[str] = []
    params: dict[str, Any] = {}  # the workflow's parameters, resolved at submission
    profile: str | None = None
    merge_policy: str = "ask"  # auto | ask | never
    strict: bool = False
    mode: str = "standard"  # standard | mapreduce
    phase: str | None = None  # mapreduce: setup | map | reduce, while it runs
    total_items: int = 0  # mapreduce: work items, processed so far, failed so far
    processed_items: int = 0
    failed_items: int = 0
    total_steps: int = 0
    completed_steps: int = 0
    current_step: int | None = None
    error: str | None = None
    merged: bool = False
    merge_commit: str | None = None
    merge_done: bool = False  # the verified merge is over (merged, or nothing to merge)
    # While a `merge:` workflow runs: the session branch's commit as it started (None
    # once it ended); `merge_workflow_done`: it ran to its end, the merge itself did not
    # yet. A crash leaves them set, so the next try undoes a cut-off run, or skips a
    # finished one, instead of running its steps again over it (engine/finish.py).
    merge_workflow_base: str | None = None
    merge_workflow_done: bool = False
    cost_usd: float = 0.0
    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_creation_tokens: int = 0
    warnings: list[str] = []  # from loading the workflow (unknown keys, deprecations)
    dlq_retry: DlqRetry | None = None
    triggered_by: str | None = None  # the git event that submitted it (an `on:` trigger)
    start_commit: str | None = None  # the commit id it starts from, when not the branch's tip
    budget: Budget | None = None  # the command line's --budget-*, over the workflow's budget:
    budget_used: BudgetUse = Field(default_factory=BudgetUse)
    runs: Runs | None = None  # None: the steps run once
    executor: ExecutorConfig | None = None  # where its map agents run, chosen at submission

    def summary(self) -> dict[str, Any]:
        """The `sessions ls --json` shape: stable keys scripts can rely on."""
        return {
            "id": self.id,
            "workflow": self.workflow,
            "workflow_name": self.workflow_name,
            "status": self.status.value,
            "started_at": self.started_at,
            "updated_at": self.updated_at,
            "completed_at": self.completed_at,
            "repo": self.repo,
            "branch": self.original_branch,
            "steps": f"{self.completed_steps}/{self.total_steps}",
            "mode": self.mode,
            "items": (
                f"{self.processed_items}/{self.total_items}" if self.mode == "mapreduce" else None
            ),
            "failed_items": self.failed_items if self.mode == "mapreduce" else None,
            "executor": (
                self.executor.kind if self.mode == "mapreduce" and self.executor else None
            ),
            "error": self.error,
        }


def create(
    record: SessionRecord,
    env: dict[str, str],
    args: list[str] | tuple[str, ...] = (),
    *,
    priority: int = 0,
    idempotency_key: str | None = None,
) -> SessionRecord:
    """Durably record a new job; with a reused idempotency key, return the earlier job.

    `env` and `args` are kept verbatim in the private part of the journal (resume needs
    them; `save` drops `env` when the job is finished); `record.args` is what clients see
    and should already be masked.
    """
    existing = journal.insert(
        record.id,
        status=record.status.value,
        record=record.model_dump(mode="json"),
        private={"env": env, "args": list(args)},
        priority=priority,
        idempotency_key=idempotency_key,
    )
    return record if existing is None else _validated(existing, record.id)


class Unsaved:
    """A record the journal could not take yet, with the columns to set alongside it."""

    def __init__(self, record: SessionRecord, columns: journal.Columns, problem: str) -> None:
        self.record = record
        self.columns = columns
        self.problem = problem


#: session id → its newest record not yet in the journal (a full disk), oldest first.
_unsaved: dict[str, Unsaved] = {}


def save(
    record: SessionRecord,
    *,
    durable: bool = False,
    defer: bool = False,
    **columns: Unpack[journal.Columns],
) -> None:
    """Store the record; `durable` when a client is told about the change (journal.update).

    A finished record drops the job's environment in the same statement: the user's tokens
    are kept only while a step of the job may still run (queued, running, failed or
    interrupted for a resume, awaiting a merge whose `merge:` workflow runs steps).

    NoSpace is raised, unless `defer`: then the record is kept to be written later (see
    the module docstring) and `unsaved(record.id)` says why."""
    record.updated_at = now_iso()
    earlier = _unsaved.get(record.id)
    merged: journal.Columns = {**earlier.columns, **columns} if earlier is not None else columns
    try:
        journal.update(
            record.id,
            record=record.model_dump(mode="json"),
            forget_env=record.status.finished,
            durable=durable,
            **merged,
        )
    except NoSpace as exc:
        if not defer:
            raise
        _unsaved.pop(record.id, None)  # re-inserted last: flushed in the order of changes
        _unsaved[record.id] = Unsaved(record.model_copy(deep=True), merged.copy(), exc.message)
        return
    _unsaved.pop(record.id, None)
    flush_unsaved()


def unsaved(session_id: str) -> str | None:
    """Why the session's latest change is not in the journal yet, or None when it is."""
    entry = _unsaved.get(session_id)
    return entry.problem if entry is not None else None


def unsaved_ids() -> list[str]:
    return list(_unsaved)


def flush_unsaved() -> bool:
    """Write the kept records, oldest first; True when none is left. Stops at the first
    that still does not fit (NoSpace is not raised: the caller retries later)."""
    while _unsaved:
        session_id, entry = next(iter(_unsaved.items()))
        try:
            record = entry.record
            journal.update(
                session_id,
                record=record.model_dump(mode="json"),
                forget_env=record.status.finished,
                **entry.columns,
            )
        except NoSpace:
            return False
        del _unsaved[session_id]
    return True


def forget_finished_environments() -> int:
    """Drop the environment of finished jobs that still have one (they ended under a
    prodigyd that kept it); run once at startup."""
    finished = tuple(status.value for status in Status if status.finished)
    return journal.forget_env_where(finished)


class AmbiguousId(ValueError):
    """A prefix that starts several ids (a ValueError: a bad param, named as one)."""

    SHOWN = 5  # ids listed in the message

    def __init__(self, ref: str, ids: list[str]) -> None:
        listed = ", ".join(ids[: self.SHOWN]) + (" and more" if len(ids) > self.SHOWN else "")
        super().__init__(f"{ref!r} starts more than one id ({listed}): give more of it")


#: A job's tag: the 6 hex digits that end its id, which `run`, `follow` and `events ls` show
#: for it (prodigyctl/render.py `job_tag`).
_TAG = re.compile(r"[0-9a-f]{6}")


def resolve(ref: str) -> str:
    """The session id `ref` names: itself, or the one id it is a unique prefix of, with or
    without the id's `workflow-`/`mapreduce-` word (`17962057` for
    `workflow-1796205782603-796f0e`), as git and docker take ids, or whose tag it is (the
    id's last 6 hex digits, `796f0e`) when it starts none. A `ref` that names none
    comes back unchanged, so the caller reports it missing as before; one that names
    several is a ValueError listing them. A `ref` that is no id at all is left to the
    caller's own check, which names the problem."""
    if not is_id(ref) or ref in _unsaved or journal.get(ref) is not None:
        return ref
    prefixes = [ref] if ref.startswith(KIND_WORDS) else [ref, *(w + ref for w in KIND_WORDS)]
    found = {sid for sid in _unsaved if sid.startswith(tuple(prefixes))}
    for prefix in prefixes:
        found.update(journal.ids_starting(prefix, AmbiguousId.SHOWN + 1))
    if not found and _TAG.fullmatch(ref):  # the tag output shows for a job (its id's end)
        found = {sid for sid in _unsaved if sid.endswith(f"-{ref}")}
        found.update(journal.ids_ending(f"-{ref}", AmbiguousId.SHOWN + 1))
    if len(found) > 1:
        raise AmbiguousId(ref, sorted(found))
    return found.pop() if found else ref


def load(session_id: str) -> SessionRecord:
    check_id(session_id)
    entry = _unsaved.get(session_id)
    if entry is not None:
        return entry.record.model_copy(deep=True)
    row = journal.get(session_id)
    if row is None:
        raise NotFound(
            f"no session {session_id!r}",
            hint="`prodigyctl sessions ls` lists sessions",
            code=errorcodes.SESSION_NOT_FOUND,
        )
    return _from_row(row)


def load_private(session_id: str) -> tuple[dict[str, str], list[str]]:
    """The environment and arguments the session was submitted (or last resumed) with."""
    private = journal.private_of(check_id(session_id))
    if private is None:
        raise NotFound(f"no session {session_id!r}", code=errorcodes.SESSION_NOT_FOUND)
    return dict(private.get("env") or {}), list(private.get("args") or [])


def save_private(session_id: str, env: dict[str, str], args: list[str]) -> None:
    journal.update(check_id(session_id), private={"env": env, "args": args})


def next_queued(also_skip: Collection[str] = ()) -> sqlite3.Row | None:
    """The job to start next (journal.next_queued), as it is now: a job the journal still
    has `queued` whose newer record is not written yet (it failed to start on a full
    disk, or was cancelled) is not handed out again and again until the disk has room,
    and one being started (its lock held: locks.held) is not handed out twice. Nor those
    of `also_skip` (the caller's, waiting)."""
    moved = [sid for sid, entry in _unsaved.items() if entry.record.status is not Status.QUEUED]
    return journal.next_queued(skip=[*moved, *locks.held(), *also_skip])


def list_all(limit: int = 1000, status: str | Collection[str] | None = None) -> list[SessionRecord]:
    """The newest sessions first (as they are now, written or not): with `status` (one or
    several), those the journal has with it and the unwritten ones, filtered by their
    newest record. Through the journal's status index: `ps` asks for the queued and
    running jobs of a store of thousands without reading the others."""
    wanted = None if status is None else {status} if isinstance(status, str) else set(status)
    changed = list(_unsaved) if wanted is not None else []
    found = []
    for row in journal.recent(limit + len(changed), wanted, also=changed):
        entry = _unsaved.get(row["id"])
        record = entry.record.model_copy(deep=True) if entry is not None else _from_row(row)
        if wanted is None or record.status.value in wanted:
            found.append(record)
    return found[:limit]


def counts() -> dict[str, int]:
    """Jobs per status (journal.counts, with the changes not written yet)."""
    totals = journal.counts()
    for session_id, entry in _unsaved.items():
        row = journal.get(session_id)
        if row is not None and row["status"] != entry.record.status.value:
            totals[row["status"]] -= 1
            totals[entry.record.status.value] = totals.get(entry.record.status.value, 0) + 1
    return {status: n for status, n in totals.items() if n}


def _from_row(row: sqlite3.Row) -> SessionRecord:
    return _validated(json.loads(row["record"]), row["id"])


def _validated(data: object, session_id: str) -> SessionRecord:
    try:
        return SessionRecord.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(p) for p in first["loc"])
        raise StoreError(
            f"the record of session {session_id} is invalid: {field}: {first['msg']}"
        ) from exc
