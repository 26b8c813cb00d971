"""Commit tracking for `commit_required` and the git context variables (reference §3.2).

`${step.files_added}` … describe the step that ran last; `${workflow.*}` everything since the
session started. Reading HEAD costs a process spawn, so it happens only for steps that need
it: a `commit_required` step, or any step of a workflow whose text mentions these variables.
"""

from __future__ import annotations

import re
from pathlib import Path

from prodigyd.git import cli
from prodigyd.git.changes import ChangeSummary, summarize_changes
from prodigyd.git.repo import commit_all, head_sha
from prodigyd.workflow.interpolate import SpaceList, VariableStore
from prodigyd.workflow.load.references import GIT_NAMES
from prodigyd.workflow.model import Step, Workflow

_REFERENCE = re.compile(r"\b(?:step|workflow)\.(?:" + "|".join(GIT_NAMES) + r")\b")


def references_git_variables(workflow: Workflow) -> bool:
    """Whether any text in the workflow uses a git context variable.

    Scanned once per workflow object, not once per run: the scan dumps the whole workflow
    (~30-100 µs) and ran on every job's way to its first step, while the loader hands
    every job of the same text the same (frozen) object (workflow/load: its cache)."""
    known = _SCANNED.get(id(workflow))
    if known is not None and known[0] is workflow:
        return known[1]
    found = bool(_REFERENCE.search(workflow.model_dump_json()))
    if len(_SCANNED) >= _SCANNED_MAX:
        _SCANNED.pop(next(iter(_SCANNED)))
    _SCANNED[id(workflow)] = (workflow, found)  # held: its id is not reused meanwhile
    return found


#: Workflows scanned, by identity; the oldest is dropped when it is full.
_SCANNED: dict[int, tuple[Workflow, bool]] = {}
_SCANNED_MAX = 128


class GitTracker:
    """Reads HEAD around steps. Holds nothing about any one step: the HEAD a step started
    at is returned to its caller and handed back, because the items of a parallel `foreach`
    run their steps through one tracker at the same time."""

    def __init__(self, worktree: Path, base: str | None, *, track: bool) -> None:
        self.worktree = worktree
        self.base = base  # the worktree's HEAD when the session started
        self.track = track

    async def before_step(self, step: Step) -> str | None:
        """HEAD as `step` starts, when anything will need it (else None)."""
        return await head_sha(self.worktree) if self.track or step.commit_required else None

    async def step_committed(self, step: Step, message: str, before: str | None) -> bool:
        """Did the step add a commit since `before`? With `auto_commit`, commit a dirty
        tree for it."""
        if before is not None and await head_sha(self.worktree) != before:
            return True
        return step.auto_commit and await commit_all(self.worktree, message) is not None

    async def last_commit_files(self) -> list[str]:
        """Files the newest commit touched (for the legacy `outputs:` file patterns)."""
        head = await head_sha(self.worktree)
        parent = await cli.git(
            self.worktree, "rev-parse", "--verify", "--quiet", f"{head}^", check=False
        )
        if parent.returncode != 0:
            return []  # the root commit: nothing before it
        return (await summarize_changes(self.worktree, parent.stdout.strip(), head)).files_changed

    async def after_step(self, store: VariableStore, before: str | None) -> None:
        """Publish `${step.*}` (since `before`) and `${workflow.*}` (since the start)."""
        if not self.track or before is None:
            return
        head = await head_sha(self.worktree)
        _publish(store, "step", await summarize_changes(self.worktree, before, head))
        if self.base:
            _publish(store, "workflow", await summarize_changes(self.worktree, self.base, head))


def _publish(store: VariableStore, scope: str, summary: ChangeSummary) -> None:
    store.update(
        {
            f"{scope}.files_added": SpaceList(summary.files_added),
            f"{scope}.files_modified": SpaceList(summary.files_modified),
            f"{scope}.files_deleted": SpaceList(summary.files_deleted),
            f"{scope}.files_changed": SpaceList(summary.files_changed),
            f"{scope}.commits": SpaceList(summary.commits),
            f"{scope}.commit_count": len(summary.commits),
            f"{scope}.insertions": summary.insertions,
            f"{scope}.deletions": summary.deletions,
        }
    )
