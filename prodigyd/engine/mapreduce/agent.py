"""One map agent: a work item's `agent_template`, in a worktree of its own, merged into the
parent session's worktree when it made commits (reference §4.8.4).

The agent's worktree comes from the pool, detached at the parent's current HEAD (so it
sees setup's work and every agent merged before it started). Its steps go through the same
step pipeline as any other phase, so every step field works in agents (the original
ignored `when`, `capture`, `timeout`, `retry` and `validate` there, and let a failing step
without a handler pass).

Merging back is serialised (one merge into the parent at a time): a plain `git merge
--no-ff`; on a conflict, Claude (the configured executable) is asked to resolve it, with the
conflicted files and both branch names in the prompt, and the result is verified: no
unmerged paths, no conflict markers, the merge commit present, the tree clean. A merge that
cannot be verified is undone, and the agent fails: it is never reported as a success.

Uncommitted changes an agent leaves are committed before the merge, as a session's are:
nothing an agent did is silently dropped.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, TextIO

from prodigyd.engine.context import EventSink, RunContext
from prodigyd.engine.gitvars import GitTracker
from prodigyd.engine.mask import Masker
from prodigyd.engine.phase import PhaseOutcome, no_checkpoint, run_sequential
from prodigyd.engine.step import StepRunner
from prodigyd.errors import ProdigyError
from prodigyd.failure import FailureReason
from prodigyd.git import merge as git_merge
from prodigyd.git import repo as git_repo
from prodigyd.git.cli import git
from prodigyd.git.pool import WorktreePool
from prodigyd.store.sessions import now_iso
from prodigyd.workflow.model import Step

#: How much of an agent's step output its result keeps (`${map.results}` stays small).
RESULT_OUTPUT_CHARS = 4000

#: Every merge commit of an agent says which item it carries, so a resumed map phase can
#: tell which agents' work already reached the parent (see `merged_item_ids`).
MERGE_MESSAGE = "Merge agent {agent_id} ({item_id})"
MERGED_ITEM = re.compile(r"^Merge agent \S+ \((item_\d+)\)$")


@dataclass(frozen=True)
class WorkItem:
    index: int  # 0-based position after filter/sort/offset/max_items
    value: Any
    total: int

    @property
    def item_id(self) -> str:
        return f"item_{self.index}"


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
    worktree_path: str | None = None
    branch_name: str | None = None  # a failed agent's kept work (keep_failed)
    log_path: str | None = None
    started_at: str | None = None
    completed_at: str | None = None

    @property
    def success(self) -> bool:
        return self.status == "success"

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "success": self.success}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> AgentResult:
        known = {name for name in cls.__dataclass_fields__}
        result = cls(**{key: value for key, value in data.items() if key in known})
        if result.failure_reason is not None:
            result.failure_reason = FailureReason(result.failure_reason)
        return result


@dataclass
class AgentHost:
    """What every agent of one map phase shares."""

    parent: RunContext  # the session's context: parent worktree, variables after setup, env
    parent_branch: str
    repo: Path
    pool: WorktreePool
    template: tuple[Step, ...]
    timeout: float | None
    track_git: bool
    stop: asyncio.Event
    keep_failed: bool
    log_dir: Path
    merge_lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    @property
    def session_id(self) -> str:
        return self.parent.session_id

    async def parent_head(self) -> str:
        """The commit the session's worktree is at: where a new agent starts."""
        return await git_repo.branch_tip(self.parent.worktree, self.parent_branch)

    def agent_branch(self, item_id: str) -> str:
        """A branch for an agent's work: only while Claude resolves its merge conflict, or
        kept with a failed agent's worktree (`keep_failed`)."""
        return f"prodigy-agent-{self.session_id}/{item_id}"


class AgentSink:
    """The parent's sink, with every event tagged by agent and item, and the agent's
    output also written to its own log file (what a DLQ entry points to)."""

    def __init__(
        self, inner: EventSink, agent_id: str, item_id: str, log: TextIO, masker: Masker
    ) -> None:
        self.inner, self.agent_id, self.item_id = inner, agent_id, item_id
        self.log, self.masker = log, masker

    def emit(self, event_type: str, /, **fields: Any) -> None:
        if event_type == "step_output":
            self.log.write(self.masker.mask(f"{fields.get('line', '')}\n"))
        elif event_type in ("step_started", "step_failed"):
            line = f"== {event_type} {fields.get('step')}: {fields.get('display')}\n"
            self.log.write(self.masker.mask(line))
        self.inner.emit(event_type, agent_id=self.agent_id, item_id=self.item_id, **fields)


async def run_agent(item: WorkItem, host: AgentHost, attempt: int = 1) -> AgentResult | None:
    """Run one attempt of an item; None when the phase was asked to stop first (the item
    then runs again on resume)."""
    agent_id = f"{host.session_id}_agent_{item.index}"
    result = AgentResult(item.item_id, item.index, item.value, "failed", attempts=attempt,
                         started_at=now_iso())  # fmt: skip
    log_path = host.log_dir / f"{item.item_id}.attempt-{attempt}.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    result.log_path = str(log_path)
    started = time.monotonic()
    with open(log_path, "w", encoding="utf-8") as log:
        events = AgentSink(host.parent.events, agent_id, item.item_id, log, host.parent.masker)
        outcome = await _attempt(item, host, result, events, agent_id)
    result.duration = round(time.monotonic() - started, 6)
    result.completed_at = now_iso()
    if outcome is None:
        return None
    if result.success:
        events.emit("agent_completed", duration=result.duration, commits=result.commits,
                    attempt=attempt)  # fmt: skip
    else:
        events.emit("agent_failed", error=result.error, failure_reason=result.failure_reason,
                    attempt=attempt, log_path=result.log_path)  # fmt: skip
    return result


async def _attempt(
    item: WorkItem, host: AgentHost, result: AgentResult, events: AgentSink, agent_id: str
) -> bool | None:
    """Worktree → steps → commit → merge → release; fills `result`. None: stopped."""
    try:
        start = await host.parent_head()
        lease = await host.pool.acquire(
            host.repo, owner=f"{host.session_id}/{item.item_id}", session_id=host.session_id,
            start=start, workflow=host.parent.workflow.name,
        )  # fmt: skip
    except (ProdigyError, OSError) as exc:
        _fail(result, f"could not make the agent's worktree: {exc}", FailureReason.WORKTREE_ERROR)
        return False
    result.worktree_path = str(lease.path)
    events.emit("agent_started", worktree=str(lease.path), attempt=result.attempts,
                item_index=item.index, item_total=item.total)  # fmt: skip
    ctx = _agent_context(item, host, lease.path, events, agent_id)
    completed: list[dict[str, Any]] = []
    pristine = False  # nothing left in the worktree to clean before the pool reuses it
    try:
        outcome = await _run_template(ctx, host, item, start, completed)
        result.output = "\n".join(str(e.get("output") or "") for e in completed)[
            -RESULT_OUTPUT_CHARS:
        ]
        if outcome is None:
            await host.pool.release(lease.path)
            return None
        if outcome.ok:
            pristine = await _deliver(item, host, result, ctx, start, agent_id)
        else:
            reason = outcome.reason or FailureReason.UNKNOWN
            _fail(result, outcome.error or "a step failed", reason, outcome.exit_code)
    except ProdigyError as exc:  # the agent's worktree could not be read or committed
        _fail(result, exc.render(), FailureReason.WORKTREE_ERROR)
    await _finish_worktree(host, result, lease.path, pristine)
    return result.success


async def _run_template(
    ctx: RunContext, host: AgentHost, item: WorkItem, start: str, completed: list[dict[str, Any]]
) -> PhaseOutcome | None:
    """The agent's steps, within its timeout; None when the phase stops before the end."""
    runner = StepRunner(ctx, GitTracker(ctx.worktree, start, track=host.track_git))
    phase = run_sequential(
        host.template, runner, ctx.variables, completed=completed, checkpoint=no_checkpoint,
        stop=host.stop, prefix=f"{item.item_id}/",
    )  # fmt: skip
    try:
        outcome = await asyncio.wait_for(phase, host.timeout)
    except TimeoutError:
        error = f"agent timed out after {host.timeout:g} seconds"
        return PhaseOutcome(False, error=error, reason=FailureReason.TIMEOUT)
    return None if outcome.stopped else outcome


async def _deliver(
    item: WorkItem, host: AgentHost, result: AgentResult, ctx: RunContext, start: str,
    agent_id: str,
) -> bool:  # fmt: skip
    """Commit what the agent left, and merge its commits into the parent. Returns whether
    the worktree is left with nothing to clean (no ignored files either)."""
    worktree = ctx.worktree
    state = await git_repo.worktree_state(worktree)
    head = state.head
    if state.changed:
        message = f"prodigy: uncommitted changes from agent {item.item_id}"
        head = await git_repo.commit_all(worktree, message) or head
    if head == start:
        result.status = "success"
        return not state.ignored
    result.commits, result.files_modified = await _changes(worktree, start, head)
    message = MERGE_MESSAGE.format(agent_id=agent_id, item_id=item.item_id)
    try:
        async with host.merge_lock:
            problem = await _merge_into_parent(item, host, head, message, agent_id)
    except ProdigyError as exc:  # git itself failed in the parent worktree
        problem = exc.render()
    if problem is None:
        result.status = "success"
        ctx.events.emit("worktree_merged", target_branch=host.parent_branch, commit=head)
    else:
        error = f"merge into the parent worktree failed: {problem}"
        _fail(result, error, FailureReason.MERGE_CONFLICT)
    return not state.ignored


async def _merge_into_parent(
    item: WorkItem, host: AgentHost, sha: str, message: str, agent_id: str
) -> str | None:
    """Merge `sha` into the parent; on conflict let Claude resolve it. None: merged."""
    parent = host.parent.worktree
    before = await host.parent_head()
    conflicted = await git_merge.merge_into_worktree(parent, sha, message)
    if not conflicted:
        return None
    branch = host.agent_branch(item.item_id)
    await git(parent, "branch", "--force", branch, sha)  # a name for Claude to refer to
    try:
        problem = await _resolve_with_claude(host, branch, conflicted, agent_id)
        if problem is None:
            problem = await git_merge.conclude_merge(parent, sha, conflicted)
    finally:
        await git(parent, "branch", "--quiet", "-D", branch, check=False)
    if problem is not None:
        await git_merge.abort_merge(parent, before)
    return problem


async def _resolve_with_claude(
    host: AgentHost, branch: str, conflicted: list[str], agent_id: str
) -> str | None:
    prompt = (
        f"Resolve the git merge conflicts in this worktree. Branch {branch} (the work of map "
        f"agent {agent_id}) is being merged into {host.parent_branch}. Conflicted files: "
        f"{', '.join(conflicted)}. Edit each file so that it keeps the intent of both sides, "
        "remove every conflict marker, then `git add` the files and finish the merge with "
        "`git commit --no-edit`."
    )
    step = Step(kind="claude", command=prompt, name="resolve merge conflict")
    runner = StepRunner(host.parent, GitTracker(host.parent.worktree, None, track=False))
    store = host.parent.variables.child()
    report = await runner.run(step, label=f"merge.{agent_id}", store=store)
    return None if report.success else f"Claude could not resolve it: {report.error}"


async def _changes(worktree: Path, start: str, head: str) -> tuple[list[str], list[str]]:
    """The agent's commits (oldest first) and the files they changed."""
    done = await git(worktree, "log", "--reverse", "--format=%H", f"{start}..{head}", "--")
    files = await git(worktree, "diff", "--name-only", "-z", start, head, "--")
    return done.stdout.split(), git_merge.split_nul(files.stdout)


async def _finish_worktree(
    host: AgentHost, result: AgentResult, path: Path, pristine: bool
) -> None:
    """Back to the pool (unscrubbed when `pristine`); a failed agent's worktree is kept
    (its work on a branch) when `keep_failed` is on."""
    keep = host.keep_failed and not result.success
    if keep:
        try:
            await git_repo.commit_all(path, f"prodigy: work of failed agent {result.item_id}")
            branch = host.agent_branch(result.item_id)
            await git(path, "checkout", "--quiet", "-B", branch)
            result.branch_name = branch
        except ProdigyError:
            keep = False
    try:
        await host.pool.release(path, keep=keep, pristine=result.success and pristine)
    except ProdigyError as exc:  # the agent's outcome stands; the collector reclaims it later
        host.parent.events.emit("cleanup_failed", worktree=str(path), error=exc.render())


def _agent_context(
    item: WorkItem, host: AgentHost, worktree: Path, events: EventSink, agent_id: str
) -> RunContext:
    parent = host.parent
    store = parent.variables.child()
    store.update(
        {
            "item": item.value,
            "item_json": json.dumps(item.value, ensure_ascii=False),
            "item_id": item.item_id,
            "item_index": item.index,
            "item_total": item.total,
            "PROJECT_ROOT": str(worktree),
            "WORKTREE": worktree.name,
        }
    )
    env = {
        **parent.env,
        "PRODIGY_ITEM_ID": item.item_id,
        "PRODIGY_AGENT_ID": agent_id,
        "PRODIGY_WORKTREE": str(worktree),
    }
    return RunContext(
        session_id=parent.session_id, workflow=parent.workflow, worktree=worktree,
        variables=store, env=env, masker=parent.masker, events=events,
        settings=parent.settings, strict_variables=parent.strict_variables, stop=parent.stop,
    )  # fmt: skip


def _fail(
    result: AgentResult, error: str, reason: FailureReason, exit_code: int | None = None
) -> None:
    result.status = "timeout" if reason is FailureReason.TIMEOUT else "failed"
    result.error = error
    result.failure_reason = reason
    result.exit_code = exit_code
