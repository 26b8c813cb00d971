"""`on: files` pieces with real git: which paths count, when git is busy, and the snapshot
a run starts from (the user's index and files untouched)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from prodigyd.git import objects
from prodigyd.watch import files
from prodigyd.workflow.model import Trigger
from tests.gitutil import commit_files, git


@pytest.fixture(params=["libgit2", "git"])
def engine(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Who answers: libgit2 in process when git reads no other configuration than it
    does, else git (the suite points GIT_CONFIG_GLOBAL at /dev/null)."""
    if request.param == "libgit2":
        for name in objects.CONFIG_VARS:
            monkeypatch.delenv(name, raising=False)
    return str(request.param)


@pytest.mark.parametrize("marker", files.BUSY)
def test_git_is_busy_while_any_of_its_markers_exists(repo: Path, marker: str):
    git_dir = repo / ".git"
    assert files.busy(git_dir) is None
    (git_dir / marker).mkdir() if marker.startswith("rebase") else (git_dir / marker).touch()
    assert files.busy(git_dir) == marker


def test_git_and_prodigys_home_are_never_watched_files(repo: Path, isolated: Path):
    assert files.watched_file(repo, repo / "src" / "a.py") == "src/a.py"
    assert files.watched_file(repo, repo / ".git" / "index") is None
    assert files.watched_file(repo, repo / ".git") is None
    assert files.watched_file(repo, repo.parent / "elsewhere.py") is None
    inside = isolated / "worktrees" / "x"
    assert files.watched_file(inside, inside / "a.py") is None  # one of prodigy's worktrees


def test_paths_and_ignore_globs():
    trigger = Trigger(event="files", paths=("src/**",), ignore=("src/gen/**",))
    assert files.matches(trigger, "src/a.py")
    assert not files.matches(trigger, "src/gen/a.py")
    assert not files.matches(trigger, "docs/a.md")
    assert files.matches(Trigger(event="files"), "anything")


def test_git_says_what_is_ignored_and_a_tracked_file_never_is(repo: Path, engine: str):
    commit_files(repo, {".gitignore": "*.log\nbuild/\n"}, "ignore logs")
    (repo / "kept.log").write_text("tracked anyway\n")
    git(repo, "add", "-f", "kept.log")
    names = ["a.py", "b.log", "kept.log", "sub/c.log", "build/x.o"]
    assert files.not_ignored(repo, names) == ["a.py", "kept.log"]
    assert files.not_ignored(repo, []) == []
    assert (objects.ignored(repo, names) is not None) == (engine == "libgit2")


@pytest.mark.parametrize("copy_index", [True, False])
def test_the_snapshot_holds_the_working_tree_and_touches_nothing(
    repo: Path, copy_index: bool, engine: str
):
    commit_files(repo, {".gitignore": "*.log\n", "a.txt": "committed\n"}, "base")
    (repo / "a.txt").write_text("edited\n")
    (repo / "staged.txt").write_text("staged\n")
    git(repo, "add", "staged.txt")
    (repo / "new.txt").write_text("untracked\n")
    (repo / "out.log").write_text("ignored\n")
    (repo / "README.md").unlink()
    (repo / "run.sh").write_text("#!/bin/sh\n")
    (repo / "run.sh").chmod(0o755)
    (repo / "link").symlink_to("a.txt")
    index = repo / ".git" / "index"
    before = (
        index.read_bytes(),
        os.stat(index).st_mtime_ns,
        git(repo, "--no-optional-locks", "status", "--porcelain"),
    )
    head = git(repo, "rev-parse", "HEAD").strip()
    commit, tree = files.snapshot(repo, head, repo / ".git" if copy_index else None)
    assert git(repo, "rev-parse", f"{commit}^{{tree}}").strip() == tree
    assert git(repo, "rev-parse", f"{commit}^").strip() == head
    listed = git(repo, "ls-tree", "-r", "--name-only", commit).split()
    assert sorted(listed) == [".gitignore", "a.txt", "link", "new.txt", "run.sh", "staged.txt"]
    assert git(repo, "show", f"{commit}:a.txt") == "edited\n"
    modes = git(repo, "ls-tree", commit, "run.sh", "link").split()[::4]
    assert modes == ["120000", "100755"]  # link, run.sh
    assert (
        index.read_bytes(),
        os.stat(index).st_mtime_ns,
        git(repo, "--no-optional-locks", "status", "--porcelain"),
    ) == before
    assert git(repo, "rev-parse", "HEAD").strip() == head
    assert (objects.snapshot(repo, head, "m", {}) is not None) == (engine == "libgit2")
