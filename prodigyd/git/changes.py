"""What a step (or a whole workflow) changed, for the step.* and workflow.* variables.

Both come from commits: the engine records HEAD before a step and summarises base..HEAD
after it. Renames are not detected (`--no-renames`): a renamed file is reported as the old
path deleted and the new path added, which is simple, exact and what a glob filter on
`files_added` expects.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from pathlib import Path

from prodigyd.git.cli import git

_KINDS = {"A": "added", "D": "deleted"}  # anything else (M, T) counts as modified


@dataclass
class ChangeSummary:
    """Files and line counts between two commits, and the commits themselves."""

    files_added: list[str] = field(default_factory=list)
    files_modified: list[str] = field(default_factory=list)
    files_deleted: list[str] = field(default_factory=list)
    commits: list[str] = field(default_factory=list)  # full shas, oldest first
    insertions: int = 0
    deletions: int = 0

    @property
    def files_changed(self) -> list[str]:
        """Every path added, modified or deleted, sorted."""
        return sorted({*self.files_added, *self.files_modified, *self.files_deleted})


async def summarize_changes(path: Path, base: str, head: str = "HEAD") -> ChangeSummary:
    """The committed changes from `base` to `head` in the repository at `path`.

    Uses the plumbing `diff-tree`, which ignores the user's diff configuration (external
    diff drivers, textconv, rename settings) that would change what porcelain prints.
    """
    if base == head:
        return ChangeSummary()
    status, numstat, revs = await asyncio.gather(
        git(path, "diff-tree", "-r", "-z", "--no-renames", "--name-status", base, head),
        git(path, "diff-tree", "-r", "-z", "--no-renames", "--numstat", base, head),
        git(path, "rev-list", "--reverse", f"{base}..{head}", "--"),
    )
    summary = ChangeSummary(commits=revs.stdout.split())
    sort_files(summary, status.stdout)
    count_lines(summary, numstat.stdout)
    return summary


def sort_files(summary: ChangeSummary, name_status: str) -> None:
    """File the paths of `diff-tree -z --name-status` output under added/modified/deleted."""
    fields = iter(name_status.split("\0"))
    buckets = {
        "added": summary.files_added,
        "modified": summary.files_modified,
        "deleted": summary.files_deleted,
    }
    for status in fields:
        if status:
            buckets[_KINDS.get(status[0], "modified")].append(next(fields))


def count_lines(summary: ChangeSummary, numstat: str) -> None:
    """Add up `diff-tree -z --numstat` output; a binary file ("-\\t-") counts no lines."""
    for entry in numstat.split("\0"):
        added, _, rest = entry.partition("\t")
        deleted = rest.partition("\t")[0]
        summary.insertions += int(added) if added.isdigit() else 0
        summary.deletions += int(deleted) if deleted.isdigit() else 0
