"""Finishing a session: its branch merged into the user's branch, verified, then its worktree
and branch given back (reference §4.7). `Session.merge` holds the merge lock and records
the statuses; the git work is here.

Decisions:
- Changes a workflow left uncommitted in its worktree are committed before the merge
  ("prodigy: uncommitted changes from <workflow>"): removing the worktree must never lose
  work, and users expect files a workflow wrote to land on their branch.
- A custom `merge:` workflow runs first, in the worktree, with the `${merge.*}` variables;
  it may merge by itself. Prodigy then finishes the job with a plain, verified
  `git merge --no-ff` if the branch is not merged yet.
- A run that is never merged (`on: files`: it started from a snapshot of the user's
  uncommitted files) ends as a merged one does, without the merge (`end_unmerged`): held
  `awaiting_merge` for a merge that is always refused, it kept a busy worktree for ever.
  Its branch is its result, kept unless the run changed nothing.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path

from prodigyd import errorcodes
from prodigyd.engine.context import EventSink, RunContext
from prodigyd.engine.gitvars import GitTracker
from prodigyd.engine.phase import no_checkpoint, run_sequential
from prodigyd.engine.step import StepRunner
from prodigyd.errors import GitError, MergeRefused, ProdigyError
from prodigyd.eventtypes import EventType
from prodigyd.git import merge as git_merge
from prodigyd.git import repo as git_repo
from prodigyd.git import worktree as git_worktree
from prodigyd.git.cli import git
from prodigyd.pool import WorktreePool
from prodigyd.store.sessions import SessionRecord
from prodigyd.workflow.model import MergeSpec

log = logging.getLogger("prodigyd.session")


def holds_worktree(record: SessionRecord, pool: WorktreePool) -> bool:
    """Whether the session still has its worktree. After its clean-up the slot may serve
    another session: the pool's record of the owner decides, not the folder."""
    return bool(record.worktree) and pool.holds(record.id, Path(record.worktree))


async def merge_branch(
    record: SessionRecord,
    *,
    held: bool,
    merge_spec: MergeSpec | None,
    context: Callable[[], Awaitable[RunContext]],
    save: Callable[[SessionRecord], None],
    leave_out: tuple[str, ...] = (),
) -> tuple[git_merge.MergeOutcome, git_repo.WorktreeState | None]:
    """Merge the session branch into its target (under the caller's merge lock). `held`:
    the session still has its worktree; `context` makes a merge workflow's run context;
    `leave_out`: files the last commit of leftovers must not take (the map input);
    `save` stores the record (the merge workflow's marks: `_merge_workflow`).

    Also returns the worktree's state as read here when nothing has touched the worktree
    since (nothing to commit, no merge workflow, nothing merged: a session that changed
    nothing, as a check or a test run): its release then needs no second status, a git
    process of ~3 ms on every such job's way to `session_finished` (`clean_up`)."""
    repo = Path(record.repo)
    if not await git_repo.branch_exists(repo, record.original_branch):
        raise MergeRefused(
            f"target branch {record.original_branch!r} no longer exists",
            hint=f"recreate it (`git branch {record.original_branch} <commit>`) or merge "
            f"{record.branch} yourself; the worktree {record.worktree} is kept",
        )
    if not held and not await git_repo.branch_exists(repo, record.branch):
        # prodigy deletes a session branch only after a verified merge (or when it had
        # nothing to merge): a stop after that left only the final bookkeeping undone
        return git_merge.MergeOutcome(False, None, "already merged and cleaned up"), None
    untouched = None
    try:
        if held and merge_spec is not None:
            await _merge_workflow(record, merge_spec, context, save, leave_out)
        elif held:
            state = await commit_leftovers(record, leave_out, then=f"prodigyctl merge {record.id}")
            untouched = None if state.changed else state
        # else: a run stopped during its clean-up: the branch alone carries the result (it
        # may be merged already, which merge_branch reports as nothing to merge)
        outcome = await git_merge.merge_branch(
            repo,
            record.branch,
            record.original_branch,
            message=f"{git_merge.PRODIGY_MERGE_PREFIX}{record.id} ({record.workflow_name})",
            base=record.base_commit,  # a run that committed nothing: no git spent on it
        )
    except ProdigyError:  # a try that ended: the next (`prodigyctl merge`) runs it anew
        _forget_merge_workflow(record, save)
        raise
    _forget_merge_workflow(record, save)
    return outcome, None if outcome.merged else untouched


async def _merge_workflow(
    record: SessionRecord,
    spec: MergeSpec,
    context: Callable[[], Awaitable[RunContext]],
    save: Callable[[SessionRecord], None],
    leave_out: tuple[str, ...],
) -> None:
    """Commit the leftovers and run the `merge:` workflow, once. Its steps keep no
    checkpoint, so a daemon that died while it ran left marks in the record: a run cut
    off is undone (its commits and files) before it runs again from its start, and one
    that finished is not run again, the merge alone being left to do. Without that, a
    step that committed ran twice, and its commit landed twice."""
    worktree = Path(record.worktree)
    if record.merge_workflow_done:
        return
    if record.merge_workflow_base is not None:
        await git(worktree, "reset", "--hard", "--quiet", record.merge_workflow_base)
        await git(worktree, "clean", "-fdq")
    await commit_leftovers(record, leave_out, then=f"prodigyctl merge {record.id}")
    record.merge_workflow_base = await git_repo.commit_id(worktree, "HEAD")
    save(record)
    await _run_merge_workflow(record, spec, await context())
    record.merge_workflow_base, record.merge_workflow_done = None, True
    save(record)


def _forget_merge_workflow(record: SessionRecord, save: Callable[[SessionRecord], None]) -> None:
    """The merge try ended (merged, or refused): the merge workflow's marks go with it."""
    if record.merge_workflow_base is not None or record.merge_workflow_done:
        record.merge_workflow_base, record.merge_workflow_done = None, False
        save(record)


async def commit_leftovers(
    record: SessionRecord, leave_out: tuple[str, ...], *, then: str
) -> git_repo.WorktreeState:
    """Commit what the workflow left uncommitted in its worktree to the session branch, so
    that the worktree's clean-up loses no work; returns the worktree's state as read
    before. `then`: the command that goes on once a worktree found off its branch (a
    refusal) is put back on it."""
    worktree = Path(record.worktree)
    await _check_worktree_head(record, worktree, then)
    state = await git_repo.worktree_state(worktree, load=False)
    if state.changed:  # else: no `git add`
        await git_repo.commit_all(
            worktree,
            f"prodigy: uncommitted changes from {record.workflow_name}",
            leave_out=leave_out,
        )
    return state


#: session_finished's `message` for a run that had nothing to merge.
NOTHING_TO_MERGE = "it changed nothing: nothing to merge"


async def unchanged(
    record: SessionRecord, pool: WorktreePool, merge_spec: MergeSpec | None
) -> git_repo.WorktreeState | None:
    """The worktree's state when the run left nothing to merge (its HEAD still at the
    commit it started from, nothing to commit) and no `merge:` workflow is to run at its
    merge; else None. Such a run waiting for `prodigyctl merge` (a check run without -y, a
    triggered linter that found nothing) held a worktree and a branch for nothing."""
    if merge_spec is not None or not holds_worktree(record, pool):
        return None
    worktree, branch = Path(record.worktree), f"{git_repo.HEADS}{record.branch}"
    try:  # read from git's files first, where a status costs a git
        for where, rev in ((worktree, "HEAD"), (Path(record.repo), branch)):
            if await git_repo.commit_id(where, rev) != record.base_commit:
                return None  # it committed (on its branch, or checked out something else)
        state = await git_repo.worktree_state(worktree, load=False)
    except GitError:  # a HEAD the run broke: its merge says what is wrong
        return None
    return None if state.changed else state


async def end_unmerged(
    record: SessionRecord,
    pool: WorktreePool,
    events: EventSink,
    *,
    snapshot: str,
    leave_out: tuple[str, ...] = (),
) -> str:
    """End a run that started from `snapshot` (`on: files`) and is never merged: what it
    left uncommitted is committed to its branch, then the worktree goes back to the pool
    and the branch is kept, as `clean_up` does after a merge (deleted only when the run
    made no commit on the snapshot: nothing to look at). No longer held (a stop cut its
    clean-up off, then a resume), the branch alone has the result. Returns where the
    result is, for its `session_finished`."""
    if holds_worktree(record, pool):
        await commit_leftovers(record, leave_out, then=f"prodigyctl resume {record.id}")
    await clean_up(record, pool, events)
    snap = snapshot[:12]
    why = f"not merged: it started from a snapshot of uncommitted files ({snap})"
    if not await git_repo.branch_exists(Path(record.repo), record.branch):
        return f"{why}, and changed nothing"
    return (
        f"{why}; its result is on branch {record.branch}: "
        f"`git diff {snap} {record.branch}` shows what it changed"
    )


async def _check_worktree_head(record: SessionRecord, worktree: Path, then: str) -> None:
    """A workflow that left its branch (detached HEAD, other branch) would lose those
    commits in the cleanup: refuse and keep the worktree instead."""
    try:
        branch = await git_repo.current_branch(worktree)
    except ProdigyError:
        branch = None
    if branch != record.branch:
        where = f"on branch {branch!r}" if branch else "detached"
        raise MergeRefused(
            f"the session worktree is {where}, not on {record.branch}: its commits would be lost",
            hint=f"check out {record.branch} in {record.worktree} (keeping the commits you "
            f"want), then run `{then}`",
        )


async def _run_merge_workflow(record: SessionRecord, spec: MergeSpec, ctx: RunContext) -> None:
    ctx.stop = asyncio.Event()  # a merge workflow runs to its end (or its timeout)
    ctx.variables.update(
        await git_merge.merge_variables(
            Path(record.repo),
            record.branch,
            record.original_branch,
            worktree=ctx.worktree,
            session_id=record.id,
        )
    )
    runner = StepRunner(ctx, GitTracker(ctx.worktree, None, track=False))
    phase = run_sequential(
        spec.steps, runner, ctx.variables, completed=[], checkpoint=no_checkpoint
    )
    try:
        outcome = await asyncio.wait_for(phase, spec.timeout)
    except TimeoutError:
        raise MergeRefused(
            f"merge workflow timed out after {spec.timeout:g} seconds",
            code=errorcodes.MERGE_WORKFLOW_FAILED,
        ) from None
    if not outcome.ok:
        raise MergeRefused(
            f"merge workflow failed: {outcome.error}", code=errorcodes.MERGE_WORKFLOW_FAILED
        )


async def _commits_unmerged(repo: Path, record: SessionRecord) -> int:
    """How many commits of the session branch its target lacks (a run never merged: its
    snapshot lacks, the run's own), compared by id (each ref read once, from its file:
    commits_ahead then needs no git when there are none)."""
    return await git_merge.commits_ahead(
        repo,
        record.start_commit
        or await git_repo.commit_id(repo, f"{git_repo.HEADS}{record.original_branch}"),
        await git_repo.commit_id(repo, f"{git_repo.HEADS}{record.branch}"),
    )


async def clean_up(
    record: SessionRecord,
    pool: WorktreePool,
    events: EventSink,
    *,
    seen: git_repo.WorktreeState | None = None,
) -> None:
    """Give the worktree back to the pool and delete the branch, once the merge is
    verified or, for a run never merged, once its leftovers are committed (its branch goes
    only when it holds nothing of the run's); `cleanup_on_complete = false` keeps both, to
    look at. `seen`: the worktree's state as `merge_branch` read it, nothing having
    touched it since.

    The merge (if any) is done by now, so a failure here (a concurrent git operation, a file
    still open) is reported, not fatal: the session still completes, and what is left
    is named in a `cleanup_failed` event and the daemon log (the pool's collector
    reclaims it later).
    """
    repo = Path(record.repo)
    keep = not pool.settings.cleanup_on_complete
    try:
        if holds_worktree(record, pool):  # parked where the next run of this branch starts
            park = f"{git_repo.HEADS}{record.original_branch}"
            await pool.release(
                Path(record.worktree), keep=keep, park_at=park, seen=seen, stock=True
            )
        if (
            not keep
            and await git_repo.branch_exists(repo, record.branch)
            and (record.merged or not await _commits_unmerged(repo, record))
        ):
            await git_worktree.delete_branch(repo, record.branch)
    except ProdigyError as exc:
        log.warning("session %s: clean-up failed: %s", record.id, exc.message)
        events.emit(EventType.CLEANUP_FAILED, worktree=record.worktree, error=exc.render())
        return
    events.emit(EventType.WORKTREE_CLEANED, worktree=record.worktree, branch=record.branch)
