"""A map agent: one work item through the `agent_template`, and `execute`, its portable half.

An agent's attempt is two halves (reference §4.8.4). `execute` runs wherever the
AgentRunner puts it: given a worktree checked out at the parent's commit, it runs the
template's steps through the same step pipeline as any phase (so every step field works
in agents; the original ignored `when`, `capture`, `timeout`, `retry` and `validate` there,
and let a failing step without a handler pass) within the agent's timeout, and commits what
they left. Its input (`AgentJob`) and output (`AgentRun`) are plain data that `to_dict`
and `from_dict` turn to JSON and back; no session, pool, lock or socket crosses it, so it
can run in another process or on another machine, from a clone of a git bundle. Its
events go to the sink it is given, which a remote runner forwards. `deliver`, the half
that always runs in the daemon, is merge_queue.py.

Uncommitted changes an agent leaves are committed, as a session's are: nothing an agent
did is silently dropped. A failed agent's work is committed too when `keep_failed` keeps
it (on a branch, for a person to look at).

The job carries the secrets of the session (values and names) with its environment: the
steps need them, and the agent masks them itself in what it writes (commit messages,
Claude logs) before any of it leaves.
"""

from __future__ import annotations

import asyncio
import copy
import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from prodigyd.engine.budget import Ledger, Meter
from prodigyd.engine.context import EngineSettings, EventSink, RunContext
from prodigyd.engine.gitvars import GitTracker
from prodigyd.engine.mask import Masker
from prodigyd.engine.phase import PhaseOutcome, no_checkpoint, run_sequential
from prodigyd.engine.step import StepRunner
from prodigyd.errors import ProdigyError
from prodigyd.failure import FailureReason
from prodigyd.git import merge as git_merge
from prodigyd.git import repo as git_repo
from prodigyd.git.cli import git
from prodigyd.workflow.interpolate import VariableStore
from prodigyd.workflow.model import Budget, RetrySpec, Step

#: How much of an agent's step output its result keeps (`${map.results}` stays small).
RESULT_OUTPUT_CHARS = 4000


@dataclass(frozen=True)
class WorkItem:
    index: int  # 0-based position after filter/sort/offset/max_items
    value: Any
    total: int

    @property
    def item_id(self) -> str:
        return f"item_{self.index}"


@dataclass(frozen=True)
class AgentSpec:
    """What every agent of one map phase runs with."""

    session_id: str
    workflow_name: str
    template: tuple[Step, ...]
    variables: dict[str, Any]  # the parent's variables after setup (JSON values)
    env: dict[str, str]  # the job environment
    secrets: dict[str, str | None]  # value -> name: the session's Masker (Masker.of)
    settings: EngineSettings
    timeout: float | None  # the whole agent's (agent_timeout_secs)
    track_git: bool  # the workflow mentions git variables: HEAD is read around each step
    strict_variables: bool
    keep_failed: bool  # commit a failed agent's work, to keep it on a branch
    retry_defaults: RetrySpec | None = None  # the workflow's retry_defaults:
    dynamic_env: dict[str, str] = field(default_factory=dict)  # RunContext.dynamic_env
    budget: Budget | None = None  # each agent's own (`map.budget`)


@dataclass(frozen=True)
class AgentJob:
    """One attempt of one item: everything `execute` needs."""

    spec: AgentSpec
    item: WorkItem
    attempt: int
    start: str  # the parent's commit the agent's worktree is checked out at
    worker: int = 0  # which of the phase's `max_parallel` workers runs it (`${worker.id}`)

    @property
    def agent_id(self) -> str:
        return f"{self.spec.session_id}_agent_{self.item.index}"

    @property
    def branch(self) -> str:
        """A branch for the agent's work: only while Claude resolves its merge conflict, or
        kept with a failed agent's work (`keep_failed`)."""
        return f"prodigy-agent-{self.spec.session_id}/{self.item.item_id}"

    def to_dict(self) -> dict[str, Any]:
        spec = self.spec
        log_dir = spec.settings.claude_log_dir
        settings = {**asdict(spec.settings), "claude_log_dir": log_dir and str(log_dir)}
        return {
            "spec": {
                **{name: getattr(spec, name) for name in _PLAIN_SPEC_FIELDS},
                "template": [step.model_dump(mode="json") for step in spec.template],
                "settings": settings,
                "retry_defaults": spec.retry_defaults
                and spec.retry_defaults.model_dump(mode="json"),
                "budget": spec.budget and spec.budget.model_dump(mode="json"),
            },
            "item": asdict(self.item),
            "attempt": self.attempt,
            "start": self.start,
            "worker": self.worker,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> AgentJob:
        spec, settings = data["spec"], dict(data["spec"]["settings"])
        log_dir = settings.pop("claude_log_dir")
        return cls(
            spec=AgentSpec(
                **{name: spec[name] for name in _PLAIN_SPEC_FIELDS},
                template=tuple(Step.model_validate(step) for step in spec["template"]),
                retry_defaults=_retry_spec(spec.get("retry_defaults")),
                dynamic_env=spec.get("dynamic_env", {}),
                budget=Budget.model_validate(spec["budget"]) if spec.get("budget") else None,
                settings=EngineSettings(
                    **{**settings, "claude_extra_args": tuple(settings["claude_extra_args"])},
                    claude_log_dir=Path(log_dir) if log_dir is not None else None,
                ),
            ),
            item=WorkItem(**data["item"]),
            attempt=data["attempt"],
            start=data["start"],
            worker=data["worker"],
        )


def _retry_spec(data: Mapping[str, Any] | None) -> RetrySpec | None:
    return None if data is None else RetrySpec.model_validate(data)


_PLAIN_SPEC_FIELDS = (
    "session_id",
    "workflow_name",
    "variables",
    "env",
    "secrets",
    "timeout",
    "track_git",
    "strict_variables",
    "keep_failed",
)


@dataclass
class AgentRun:
    """What `execute` returns."""

    output: str = ""  # the tail of its steps' output
    head: str | None = None  # its last commit (`start` when it made none); None: failed, unkept
    commits: list[str] = field(default_factory=list)  # start..head, oldest first
    files_modified: list[str] = field(default_factory=list)
    error: str | None = None  # set when it failed, with `reason`
    reason: FailureReason | None = None
    exit_code: int | None = None  # of the step that failed
    step: str | None = None  # the step that failed, as its events show it
    clean: bool = False  # its worktree holds no ignored files (nothing to scrub)

    @property
    def ok(self) -> bool:
        return self.reason is None

    @classmethod
    def failure(
        cls,
        error: str,
        reason: FailureReason,
        *,
        output: str = "",
        exit_code: int | None = None,
        step: str | None = None,
    ) -> AgentRun:
        return cls(output=output, error=error, reason=reason, exit_code=exit_code, step=step)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> AgentRun:
        run = cls(**data)
        run.reason = FailureReason(run.reason) if run.reason is not None else None
        return run


@dataclass
class AgentResult:
    """One element of `${map.results}`: the original's AgentResult plus `success` and
    `item`, which its documentation's jq examples use (reference §5.6 [R])."""

    item_id: str
    item_index: int
    item: Any
    status: str  # success | failed | timeout
    attempts: int = 1
    output: str = ""
    commits: list[str] = field(default_factory=list)
    files_modified: list[str] = field(default_factory=list)
    duration: float = 0.0
    error: str | None = None
    failure_reason: FailureReason | None = None  # set where it failed
    exit_code: int | None = None
    failed_step: str | None = None  # the step that failed (`shell: make test`), if one did
    worktree_path: str | None = None
    worker: str | None = None  # where it ran: "local", or a Dask worker's address
    branch_name: str | None = None  # a failed agent's kept work (keep_failed)
    log_path: str | None = None
    started_at: str | None = None
    completed_at: str | None = None

    @property
    def success(self) -> bool:
        return self.status == "success"

    def fail(
        self,
        error: str,
        reason: FailureReason,
        exit_code: int | None = None,
        step: str | None = None,
    ) -> None:
        self.status = "timeout" if reason is FailureReason.TIMEOUT else "failed"
        self.error, self.failure_reason, self.exit_code = error, reason, exit_code
        self.failed_step = step

    def as_dict(self) -> dict[str, Any]:
        """Its fields in a new dict (the lists and the item copied: the dict outlives
        changes to the result), with `success`. Made by hand: dataclasses.asdict's generic
        walk took ~50 µs, twice per item of a map phase."""
        data = {name: getattr(self, name) for name in self.__dataclass_fields__}
        data["commits"], data["files_modified"] = list(self.commits), list(self.files_modified)
        data["item"] = copy.deepcopy(self.item)
        data["success"] = self.success
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> AgentResult:
        known = {name for name in cls.__dataclass_fields__}
        result = cls(**{key: value for key, value in data.items() if key in known})
        if result.failure_reason is not None:
            result.failure_reason = FailureReason(result.failure_reason)
        return result


async def execute(
    job: AgentJob,
    worktree: str,
    events: EventSink,
    stop: asyncio.Event | None = None,
    budget: Ledger | None = None,
) -> AgentRun | None:
    """Run one attempt in `worktree` (checked out at `job.start`): the template's steps,
    within the agent's timeout and budget, then a commit of what they left. None: `stop`
    was set before the steps ended (the attempt runs again on resume). `budget` is the
    job's ledger, shared live with the other agents, when the agent runs in the daemon;
    the agent's own `map.budget` comes with the job and is enforced wherever it runs."""
    path = Path(worktree)
    stop = stop if stop is not None else asyncio.Event()
    ledger = budget or Ledger()
    if job.spec.budget is not None and not job.spec.budget.empty:
        ledger = ledger.plus(Meter("agent", job.spec.budget, session_id=job.spec.session_id))
    ctx = _context(job, path, events, stop, ledger)
    completed: list[dict[str, Any]] = []
    outcome = await _run_template(job, ctx, completed)
    if outcome.stopped:
        return None
    output = "\n".join(str(entry.get("output") or "") for entry in completed)
    output = output[-RESULT_OUTPUT_CHARS:]
    if not outcome.ok:
        reason = outcome.reason or FailureReason.UNKNOWN
        run = AgentRun.failure(
            outcome.error or "a step failed",
            reason,
            output=output,
            exit_code=outcome.exit_code,
            step=outcome.step,
        )
        if job.spec.keep_failed:
            run.head = await _keep(job, path)
        return run
    try:
        return await _commit(job, path, output)
    except ProdigyError as exc:  # its worktree could not be read or committed
        return AgentRun.failure(exc.render(), FailureReason.WORKTREE_ERROR, output=output)


async def _run_template(
    job: AgentJob, ctx: RunContext, completed: list[dict[str, Any]]
) -> PhaseOutcome:
    spec = job.spec
    runner = StepRunner(ctx, GitTracker(ctx.worktree, job.start, track=spec.track_git))
    phase = run_sequential(
        spec.template,
        runner,
        ctx.variables,
        completed=completed,
        checkpoint=no_checkpoint,
        stop=ctx.stop,
        prefix=f"{job.item.item_id}/",
    )
    try:
        return await asyncio.wait_for(phase, spec.timeout)
    except TimeoutError:
        error = f"agent timed out after {spec.timeout:g} seconds"
        return PhaseOutcome(False, error=error, reason=FailureReason.TIMEOUT)


async def _commit(job: AgentJob, worktree: Path, output: str) -> AgentRun:
    """Commit what the steps left; the agent's commits and the files they changed."""
    state = await git_repo.worktree_state(worktree)
    head = state.head
    if state.changed:
        message = f"prodigy: uncommitted changes from agent {job.item.item_id}"
        head = await git_repo.commit_all(worktree, message) or head
    run = AgentRun(output=output, head=head, clean=not state.ignored)
    if head != job.start:
        done = await git(worktree, "log", "--reverse", "--format=%H", f"{job.start}..{head}", "--")
        files = await git(worktree, "diff", "--name-only", "-z", job.start, head, "--")
        run.commits, run.files_modified = done.stdout.split(), git_merge.split_nul(files.stdout)
    return run


async def _keep(job: AgentJob, worktree: Path) -> str | None:
    """A failed agent's work, committed to be kept (None when that failed: nothing kept)."""
    try:
        message = f"prodigy: work of failed agent {job.item.item_id}"
        return await git_repo.commit_all(worktree, message) or await git_repo.head_sha(worktree)
    except ProdigyError:
        return None


def legacy_item_aliases(value: Any) -> dict[str, Any]:
    """The original's deprecated names for the item: `${ARG}`/`${ARGUMENT}` (its `value`
    field, else the item) and `${FILE}`/`${FILE_PATH}` (its `path` field, else a text item).
    In an agent they replace the `--args` `${ARG}`, which names the item there."""
    is_object = isinstance(value, dict)
    arg = value.get("value", value) if is_object else value
    path = value.get("path") if is_object else value if isinstance(value, str) else None
    aliases = {"ARG": arg, "ARGUMENT": arg}
    if path is not None:
        aliases.update(FILE=path, FILE_PATH=path)
    return aliases


def agent_variables(job: AgentJob, worktree: Path) -> dict[str, Any]:
    """What an agent's steps see besides the phase's variables: its item, and which
    worker runs it."""
    item = job.item
    return {
        "item": item.value,
        "item_json": json.dumps(item.value, ensure_ascii=False),
        "item_id": item.item_id,
        "item_index": item.index,
        "item_total": item.total,
        "worker.id": job.worker,
        "PROJECT_ROOT": str(worktree),
        "WORKTREE": worktree.name,
        **legacy_item_aliases(item.value),
    }


def _context(
    job: AgentJob, worktree: Path, events: EventSink, stop: asyncio.Event, budget: Ledger
) -> RunContext:
    spec, item = job.spec, job.item
    store = VariableStore()
    store.update(spec.variables)
    store.update(agent_variables(job, worktree))
    env = {
        **spec.env,
        "PRODIGY_ITEM_ID": item.item_id,
        "PRODIGY_AGENT_ID": job.agent_id,
        "PRODIGY_WORKTREE": str(worktree),
    }
    return RunContext(
        session_id=spec.session_id,
        worktree=worktree,
        variables=store,
        env=env,
        masker=Masker.of(spec.secrets),
        events=events,
        settings=spec.settings,
        strict_variables=spec.strict_variables,
        retry_defaults=spec.retry_defaults,
        dynamic_env=dict(spec.dynamic_env),
        stop=stop,
        budget=budget,
    )
