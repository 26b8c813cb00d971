"""prodigyd.git.changes: the step.* / workflow.* git variables from real commits."""

from __future__ import annotations

from pathlib import Path

import pytest

from prodigyd.git import ChangeSummary, summarize_changes
from tests.gitutil import commit_files, make_repo
from tests.gitutil import git as run_git


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    files = {"keep.txt": "1\n2\n3\n", "old.txt": "x\ny\n", "moved.txt": "m\n", "logo.bin": "a"}
    return make_repo(tmp_path / "repo", files)


async def test_counts_files_lines_and_commits(repo: Path) -> None:
    base = run_git(repo, "rev-parse", "HEAD").strip()
    first = commit_files(repo, {"keep.txt": "1\nTWO\n3\n4\n", "src/new.py": "a\nb\n"}, "one")
    (repo / "old.txt").unlink()
    run_git(repo, "mv", "moved.txt", "renamed.txt")
    (repo / "logo.bin").write_bytes(b"\x00\x01\x02binary")
    second = commit_files(repo, {}, "two")

    summary = await summarize_changes(repo, base)

    assert summary.files_added == ["renamed.txt", "src/new.py"]
    assert summary.files_modified == ["keep.txt", "logo.bin"]
    assert summary.files_deleted == ["moved.txt", "old.txt"]
    assert summary.files_changed == [
        "keep.txt",
        "logo.bin",
        "moved.txt",
        "old.txt",
        "renamed.txt",
        "src/new.py",
    ]
    assert summary.commits == [first, second]
    # keep.txt +2 -1, src/new.py +2, old.txt -2, moved.txt -1, renamed.txt +1, binary 0
    assert (summary.insertions, summary.deletions) == (5, 4)


async def test_between_two_explicit_commits(repo: Path) -> None:
    base = run_git(repo, "rev-parse", "HEAD").strip()
    middle = commit_files(repo, {"keep.txt": "changed\n"})
    commit_files(repo, {"later.txt": "not counted\n"})
    summary = await summarize_changes(repo, base, middle)
    assert summary.files_changed == ["keep.txt"]
    assert summary.commits == [middle]


async def test_same_commit_is_an_empty_summary(repo: Path) -> None:
    assert await summarize_changes(repo, "HEAD") == ChangeSummary()
    head = run_git(repo, "rev-parse", "HEAD").strip()
    assert await summarize_changes(repo, head, head) == ChangeSummary()


async def test_uncommitted_changes_are_not_counted(repo: Path) -> None:
    base = run_git(repo, "rev-parse", "HEAD").strip()
    (repo / "keep.txt").write_text("dirty\n")
    summary = await summarize_changes(repo, base)
    assert summary == ChangeSummary()
