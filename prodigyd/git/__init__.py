"""git, driven through its command line: repositories, worktrees, merges, change summaries."""

from __future__ import annotations

from prodigyd.git.changes import ChangeSummary, summarize_changes
from prodigyd.git.cli import git, git_env
from prodigyd.git.merge import MergeOutcome, commits_ahead, merge_branch, merge_variables
from prodigyd.git.repo import (
    branch_exists,
    commit_all,
    current_branch,
    dirty_paths,
    head_sha,
    is_dirty,
    repo_root,
)
from prodigyd.git.worktree import (
    WorktreeInfo,
    add_worktree,
    delete_branch,
    list_worktrees,
    remove_worktree,
)

__all__ = [
    "ChangeSummary",
    "MergeOutcome",
    "WorktreeInfo",
    "add_worktree",
    "branch_exists",
    "commit_all",
    "commits_ahead",
    "current_branch",
    "delete_branch",
    "dirty_paths",
    "git",
    "git_env",
    "head_sha",
    "is_dirty",
    "list_worktrees",
    "merge_branch",
    "merge_variables",
    "remove_worktree",
    "repo_root",
    "summarize_changes",
]
