"""The merge queue: each map agent's work `deliver`ed into the parent worktree, one at a time.

`deliver` is the half of an agent that always runs in the daemon, wherever its `execute`
ran (agent.py): it fetches the agent's commits when they arrive as a git bundle (an agent
run from a clone), and merges them into the session's worktree under the queue's lock
(reference §4.8.4): a plain `git merge --no-ff`; on a conflict, Claude (the configured
executable) is asked to resolve it, with the conflicted files and both branch names in the
prompt, and the result is verified: no unmerged paths, no conflict markers, the merge
commit present, the tree clean. A merge that cannot be verified is undone, and the agent
fails: it is never reported as a success. What `deliver` returns is the item's result.

Every merge commit says which item it carries (MERGE_MESSAGE), so a resumed map phase can
tell which agents' work already reached the parent (MERGED_ITEM, `merged_item_ids`).
"""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

from prodigyd.engine.context import EventSink, RunContext
from prodigyd.engine.gitvars import GitTracker
from prodigyd.engine.mapreduce.agent import AgentJob, AgentResult, AgentRun
from prodigyd.engine.step import StepRunner
from prodigyd.errors import ProdigyError
from prodigyd.eventtypes import EventType
from prodigyd.failure import FailureReason
from prodigyd.git import merge as git_merge
from prodigyd.git import repo as git_repo
from prodigyd.git.cli import git
from prodigyd.workflow.model import Step

MERGE_MESSAGE = "Merge agent {agent_id} ({item_id})"
MERGED_ITEM = re.compile(r"^Merge agent \S+ \((item_\d+)\)$")


class MergeQueue:
    """The agents' way into one parent worktree (the session's, on its branch)."""

    def __init__(self, parent: RunContext, branch: str, repo: Path) -> None:
        self.parent = parent  # the session's context: its worktree, variables, events
        self.branch = branch
        self.repo = repo  # the user's repository, of which the parent is a worktree
        self.lock = asyncio.Lock()
        self._head: str | None = None  # the branch's tip as last read; None: read it again
        self._merges = 0  # merges finished: a read that a merge overlapped is not kept

    async def head(self) -> str:
        """The commit the parent is at: where a new agent starts. Only a merge here moves
        the session's branch during the phase, so the tip is read again only after one
        (an agent that made no commit costs no read)."""
        if self._head is not None:
            return self._head
        merges = self._merges
        tip = await git_repo.branch_tip(self.parent.worktree, self.branch)
        if merges == self._merges and not self.lock.locked():  # no merge ran meanwhile
            self._head = tip
        return tip

    async def deliver(
        self, job: AgentJob, run: AgentRun, events: EventSink, *, bundle: str | None = None
    ) -> AgentResult:
        """The item's result: `run`'s commits merged into the parent (fetched from `bundle`
        first, when the agent ran from a clone), or why not."""
        item = job.item
        result = AgentResult(
            item.item_id,
            item.index,
            item.value,
            "failed",
            attempts=job.attempt,
            output=run.output,
            commits=run.commits,
            files_modified=run.files_modified,
        )
        try:
            if bundle is not None:  # the objects only: no ref of the repository moves
                await git(self.parent.worktree, "bundle", "unbundle", bundle)
        except ProdigyError as exc:
            result.fail(
                f"the agent's commits could not be fetched: {exc.render()}",
                FailureReason.MERGE_CONFLICT,
            )
            return result
        if run.reason is not None:
            result.fail(run.error or "a step failed", run.reason, run.exit_code, run.step)
            return result
        if run.head == job.start:
            result.status = "success"
            return result
        assert run.head is not None  # a run that succeeded has its head
        problem = await self._merge(job, run.head)
        if problem is None:
            result.status = "success"
            events.emit(EventType.WORKTREE_MERGED, target_branch=self.branch, commit=run.head)
        else:
            result.fail(
                f"merge into the parent worktree failed: {problem}", FailureReason.MERGE_CONFLICT
            )
        return result

    async def _merge(self, job: AgentJob, sha: str) -> str | None:
        """Merge `sha` into the parent, one agent at a time; on conflict let Claude resolve
        it. None: merged."""
        message = MERGE_MESSAGE.format(agent_id=job.agent_id, item_id=job.item.item_id)
        parent = self.parent.worktree
        try:
            async with self.lock:
                before = await git_repo.branch_tip(parent, self.branch)
                self._head = None  # the merge moves it (or puts it back)
                try:
                    return await self._merge_locked(job, sha, message, before)
                finally:
                    self._merges += 1
        except ProdigyError as exc:  # git itself failed in the parent worktree
            return exc.render()

    async def _merge_locked(self, job: AgentJob, sha: str, message: str, before: str) -> str | None:
        """The merge itself, under the lock; a failed resolution puts the parent back at
        `before`."""
        parent = self.parent.worktree
        conflicted = await git_merge.merge_into_worktree(parent, sha, message)
        if not conflicted:
            return None
        await git(parent, "branch", "--force", job.branch, sha)  # a name for Claude
        try:
            problem = await self._resolve_with_claude(job, conflicted)
            if problem is None:
                problem = await git_merge.conclude_merge(parent, sha, conflicted)
        finally:
            await git(parent, "branch", "--quiet", "-D", job.branch, check=False)
        if problem is not None:
            await git_merge.abort_merge(parent, before)
        return problem

    async def _resolve_with_claude(self, job: AgentJob, conflicted: list[str]) -> str | None:
        prompt = (
            f"Resolve the git merge conflicts in this worktree. Branch {job.branch} (the work "
            f"of map agent {job.agent_id}) is being merged into {self.branch}. Conflicted "
            f"files: {', '.join(conflicted)}. Edit each file so that it keeps the intent of "
            "both sides, remove every conflict marker, then `git add` the files and finish "
            "the merge with `git commit --no-edit`."
        )
        step = Step(kind="claude", command=prompt, name="resolve merge conflict")
        runner = StepRunner(self.parent, GitTracker(self.parent.worktree, None, track=False))
        store = self.parent.variables.child()
        report = await runner.run(step, label=f"merge.{job.agent_id}", store=store)
        return None if report.success else f"Claude could not resolve it: {report.error}"
