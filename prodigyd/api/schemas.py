"""Params of every RPC method, validated daemon-side (the client stays pydantic-free).

A validation failure becomes INVALID_PARAMS naming the field, in the reply to that request.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic_core import PydanticCustomError

from prodigyd import protocol
from prodigyd.config import ExecutorConfig
from prodigyd.workflow import MAX_FILE_BYTES
from prodigyd.workflow.model import Budget

MergePolicy = Literal["auto", "ask", "never"]
#: A client's environment: names as the OS allows them (not empty, no "=").
Environment = dict[Annotated[str, Field(min_length=1, pattern="^[^=]+$")], str]


def _resolve(ref: str) -> str:
    from prodigyd.store import sessions

    try:
        return sessions.resolve(ref)
    except sessions.AmbiguousId as exc:  # its own words, not "Value error, ..."
        raise PydanticCustomError("ambiguous_id", str(exc)) from None


#: A session (job) id a client names: the whole id or a unique prefix of it (store/sessions.py
#: `resolve`), turned into the whole id before any handler sees it.
SessionRef = Annotated[str, Field(min_length=1, max_length=128), AfterValidator(_resolve)]


def _moment(text: str) -> str:
    from prodigyd.clock import stored_time

    try:
        return stored_time(text)
    except ValueError:
        raise PydanticCustomError(  # its template takes {name}, not {name!r}
            "timestamp", "not an ISO 8601 time (2026-11-25T15:22:04Z): {text}", {"text": repr(text)}
        ) from None


#: A time a client names (`since`): any ISO 8601 form, UTC unless it has an offset (as
#: prodigyctl's --since), turned into the stored form, which the stores compare as text: an
#: unchecked one ("yesterday") would be compared so too, and silently match all or nothing.
Timestamp = Annotated[str, Field(min_length=1, max_length=64), AfterValidator(_moment)]


def _absolute(value: str) -> str:
    if not value.startswith("/"):
        raise PydanticCustomError(
            "absolute_path", "expected an absolute path, got {path}", {"path": repr(value)}
        )
    return value


#: A path a client names: the daemon's working folder is not the client's (it is `/`), so
#: only an absolute path means the same to both.
AbsolutePath = Annotated[str, Field(min_length=1, max_length=4096), AfterValidator(_absolute)]


class _Params(BaseModel):
    # Each method's schema is built by its first request, not by the daemon's start.
    # Strict: JSON has the types, and `"limit": true` or `"drain": "yes"` is a client's
    # mistake to be told, not a 1 or a yes to be guessed.
    model_config = ConfigDict(extra="forbid", defer_build=True, strict=True)

    @field_validator("*")
    @classmethod
    def _encodable(cls, value: Any) -> Any:
        """No string in params may hold a NUL or a lone surrogate (JSON's `"\\ud800"`):
        each ends up as a path, an id, an argument, an environment entry or an SQLite
        value; the OS refuses a NUL and UTF-8 a lone surrogate (with an error deep inside a
        handler, instead of one naming the field).

        Every string of a submission is checked (its environment alone holds dozens), so
        they are looked at joined first: one NUL search, and a surrogate is possible only
        in text that is not ASCII. Only then is each string searched."""
        texts = _strings(value)
        whole = "".join(texts)
        if "\0" in whole or not whole.isascii():
            for text in texts:
                if "\0" in text:
                    raise ValueError("contains a NUL character (\\u0000)")
                if _SURROGATE.search(text):
                    raise ValueError("contains a lone UTF-16 surrogate (not a character)")
        return value


_SURROGATE = re.compile("[\ud800-\udfff]")


def _strings(value: Any) -> list[str]:
    """The strings in a validated value: itself, or a list's items, or a dict's keys and
    values (params nest no deeper than that)."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        found = list(value)
        items: Iterable[Any] = value.values()
    elif isinstance(value, list | tuple):
        found, items = [], value
    else:
        return []
    for item in items:
        if isinstance(item, str):
            found.append(item)
        else:
            found.extend(_strings(item))
    return found


class Empty(_Params):
    pass


class BudgetParams(_Params):
    """`--budget-usd`, `--budget-tokens`, `--budget-time` (seconds): the job's budget,
    over the workflow's own `budget:` (model.Budget)."""

    cost_usd: float | None = Field(None, gt=0)
    tokens: int | None = Field(None, ge=1)
    time: float | None = Field(None, gt=0)

    def budget(self) -> Budget | None:
        fields = self.model_dump(exclude_none=True)
        return Budget.model_validate(fields) if fields else None


class SubmitParams(_Params):
    """`workflow` names a file (relative to `cwd`); `workflow_text` is the workflow itself
    (what `prodigyctl exec`, `batch` and `run -` send). Exactly one is given."""

    workflow: str | None = Field(None, min_length=1)
    workflow_text: str | None = Field(
        None, min_length=1, max_length=MAX_FILE_BYTES
    )  # as a file's limit
    cwd: AbsolutePath
    env: Environment
    repo: str | None = None
    # (empty defaults made by a factory: pydantic deep-copies a default `[]` per request)
    args: list[str] = Field(default_factory=list)
    # --param over --param-file values, typed by the daemon
    params: dict[str, Any] = Field(default_factory=dict)
    profile: str | None = None
    merge: MergePolicy = "ask"
    strict: bool = False
    priority: int = Field(0, ge=-1000, le=1000)
    idempotency_key: str | None = Field(None, min_length=1, max_length=200)
    budget: BudgetParams | None = None
    max_iterations: int = Field(1, ge=1, le=10_000)  # run -n
    map: list[str] = Field(default_factory=list)  # run --map patterns
    each_arg: bool = False  # run --each-arg
    fail_fast: bool = False
    executor: ExecutorConfig | None = None  # --executor, --executor-address
    follow: bool = False  # subscribe this connection to the job's events (server.py)

    @model_validator(mode="after")
    def _one_workflow(self) -> SubmitParams:
        if (self.workflow is None) == (self.workflow_text is None):
            raise ValueError("give exactly one of workflow (a file) and workflow_text")
        return self


class SessionParams(_Params):
    session_id: SessionRef


class CancelParams(SessionParams):
    resumable: bool = False  # true: record `interrupted` (Ctrl-C); false: `cancelled`


class CheckpointDeleteParams(SessionParams):
    force: bool = False  # also a session a resume would otherwise continue


class ResumeParams(SessionParams):
    force: bool = False
    merge: MergePolicy | None = None
    env: Environment | None = None  # the resuming client's environment; None keeps the old
    budget: BudgetParams | None = None  # raises (or sets) the job's budget from here on
    from_step: str | None = Field(None, min_length=1, max_length=200)  # a number or a name
    executor: ExecutorConfig | None = None  # None: where it ran before


class SubscribeParams(_Params):
    session_id: SessionRef | None = None  # None: every session
    since: int = Field(0, ge=0)  # with a session: events after this seq (None: live only)


class EventsQuery(_Params):
    session_id: SessionRef | None = None
    event_type: str | None = None
    since: Timestamp | None = None  # events at or after it
    limit: int = Field(1000, ge=1, le=1_000_000)


SessionStatus = Literal[
    "queued", "running", "awaiting_merge", "completed", "failed", "interrupted", "cancelled"
]


class ListParams(_Params):
    limit: int = Field(100, ge=1, le=protocol.MAX_LIST)
    status: SessionStatus | list[SessionStatus] | None = None  # a list: any of them


class StopParams(_Params):
    drain: bool = False  # finish every queued and running job first


class WorktreeCleanParams(_Params):
    target: str = Field(min_length=1, max_length=4096)  # a path, a slot or worktree name, "all"


class GcParams(_Params):
    dry_run: bool = False


class CleanParams(_Params):
    older_than: float | None = Field(None, ge=0, allow_inf_nan=False)  # seconds; None: policy
    dry_run: bool = False


class AnalyticsParams(_Params):
    since: Timestamp | None = None  # jobs started at or after it
    group_by: Literal["workflow", "day", "repo", "status", "tool", "model"] = "workflow"
    top: int = Field(5, ge=0, le=100)  # the costliest jobs listed


class TriggersParams(_Params):
    repo: AbsolutePath  # a folder inside the repository


class WatchParams(_Params):
    path: AbsolutePath  # a folder inside the repository


class DlqListParams(_Params):
    job_id: SessionRef | None = None
    eligible: bool | None = None
    limit: int = Field(1000, ge=1, le=1_000_000)


class DlqItemParams(_Params):
    job_id: SessionRef
    item_id: str = Field(min_length=1, max_length=128)


class DlqStatsParams(_Params):
    job_id: SessionRef | None = None


class DlqPurgeParams(_Params):
    job_id: SessionRef | None = None  # None: every job
    item_ids: list[str] = Field(default_factory=list)  # only these items (needs job_id)
    older_than: float | None = Field(None, ge=0)  # seconds since the last failure


class DlqRetryParams(_Params):
    job_id: SessionRef
    item_ids: list[str] = Field(default_factory=list)  # none: every entry
    filter: str | None = None  # a filter expression over the items
    eligible_only: bool = False  # only entries whose errors a retry may fix by itself
    max_parallel: int | None = Field(None, ge=1)  # default: the workflow's max_parallel
    max_retries: int = Field(1, ge=1, le=100)  # attempts per item in this retry
    env: Environment
    executor: ExecutorConfig | None = None  # None: the job's own
    merge: MergePolicy = "ask"
