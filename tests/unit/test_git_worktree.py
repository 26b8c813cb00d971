"""prodigyd.git.worktree against real repositories."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

import pytest

from prodigyd.errors import GitError
from prodigyd.git import (
    WorktreeInfo,
    add_worktree,
    branch_exists,
    cli,
    delete_branch,
    head_sha,
    list_worktrees,
    remove_worktree,
)
from tests.gitutil import commit_files, make_repo, no_git_process
from tests.gitutil import git as run_git


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return make_repo(tmp_path / "repo", {"a.txt": "a\n"}).resolve()


async def test_add_list_remove_and_delete_branch(repo: Path, tmp_path: Path) -> None:
    path = tmp_path.resolve() / "worktrees" / "repo" / "session-1"
    await add_worktree(repo, path, "HEAD", "prodigy-session-1")
    assert (path / "a.txt").read_text() == "a\n"
    assert await branch_exists(repo, "prodigy-session-1")
    sha = await head_sha(repo)
    assert await list_worktrees(repo) == [
        WorktreeInfo(path=repo, head=sha, branch="main"),
        WorktreeInfo(path=path, head=sha, branch="prodigy-session-1"),
    ]

    (path / "scratch.txt").write_text("uncommitted work is discarded\n")
    await remove_worktree(repo, path)
    assert not path.exists()
    assert [w.path for w in await list_worktrees(repo)] == [repo]

    await delete_branch(repo, "prodigy-session-1")
    assert not await branch_exists(repo, "prodigy-session-1")


async def test_add_worktree_branches_from_start_or_detaches(repo: Path, tmp_path: Path) -> None:
    first = await head_sha(repo)
    commit_files(repo, {"b.txt": "b\n"})
    path = tmp_path / "wt"
    await add_worktree(repo, path, first, "from-first")
    assert await head_sha(path) == first
    assert not (path / "b.txt").exists()
    detached = tmp_path / "detached"
    await add_worktree(repo, detached, "HEAD", None)
    assert run_git(detached, "branch", "--show-current").strip() == ""
    assert (detached / "b.txt").exists()


async def test_add_worktree_resets_a_branch_the_caller_owns(repo: Path, tmp_path: Path) -> None:
    first = await head_sha(repo)
    commit_files(repo, {"b.txt": "b\n"})
    run_git(repo, "branch", "mine")  # at the new commit, say left by a crashed run
    await add_worktree(repo, tmp_path / "wt", first, "mine")
    assert run_git(repo, "rev-parse", "mine").strip() == first


async def test_add_worktree_refuses_an_existing_folder(repo: Path, tmp_path: Path) -> None:
    path = tmp_path / "wt"
    path.mkdir()
    (path / "keep.txt").write_text("mine\n")
    with pytest.raises(GitError):
        await add_worktree(repo, path, "HEAD", "fresh")
    assert (path / "keep.txt").read_text() == "mine\n"


async def test_remove_worktree_whose_directory_is_already_gone(repo: Path, tmp_path: Path) -> None:
    path = tmp_path / "wt"
    await add_worktree(repo, path, "HEAD", "gone")
    shutil.rmtree(path)
    await remove_worktree(repo, path)
    await remove_worktree(repo, path)  # and again: still not an error
    assert [w.path for w in await list_worktrees(repo)] == [repo]
    await delete_branch(repo, "gone")  # the branch is free again once git forgot the worktree
    assert not await branch_exists(repo, "gone")


async def test_delete_branch_that_does_not_exist_is_quiet(repo: Path) -> None:
    await delete_branch(repo, "never-existed")


async def test_a_loose_branch_is_deleted_as_git_deletes_it_without_git(
    repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A session branch is a ref file and its reflog: deleted without a git process, and
    git then knows nothing of it (its log included), as after `git branch -D`."""
    run_git(repo, "branch", "prodigy-session-1")
    reflog = repo / ".git" / "logs" / "refs" / "heads" / "prodigy-session-1"
    assert reflog.exists()
    with monkeypatch.context() as patch:
        patch.setattr(cli, "run", no_git_process)
        await delete_branch(repo, "prodigy-session-1")
    assert run_git(repo, "branch", "--list", "prodigy-session-1") == ""
    assert not reflog.exists()
    assert not (repo / ".git" / "refs" / "heads" / "prodigy-session-1.lock").exists()
    run_git(repo, "branch", "prodigy-session-1")  # the name is free again


@pytest.mark.parametrize("kind", ["packed", "configured", "with a slash", "locked"])
async def test_a_branch_with_more_than_a_loose_ref_is_deleted_by_git(repo: Path, kind: str) -> None:
    branch = "team/prodigy-session-1" if kind == "with a slash" else "prodigy-session-1"
    run_git(repo, "branch", branch)
    if kind == "packed":
        run_git(repo, "pack-refs", "--all")
    elif kind == "configured":
        run_git(repo, "config", f"branch.{branch}.remote", "origin")
    elif kind == "locked":  # another git is changing it: git's own answer (a failure)
        (repo / ".git" / "refs" / "heads" / f"{branch}.lock").write_text("")
        with pytest.raises(GitError):
            await delete_branch(repo, branch)
        assert await branch_exists(repo, branch)
        return
    await delete_branch(repo, branch)
    assert run_git(repo, "branch", "--list", branch) == ""
    assert "prodigy-session-1" not in run_git(repo, "config", "--list", "--local")
    assert not (repo / ".git" / "refs" / "heads" / "team").exists()


async def test_a_branch_checked_out_in_a_worktree_is_refused_by_git(
    repo: Path, tmp_path: Path
) -> None:
    await add_worktree(repo, tmp_path / "wt", "HEAD", "prodigy-session-1")
    with pytest.raises(GitError):
        await delete_branch(repo, "prodigy-session-1")
    assert run_git(tmp_path / "wt", "branch", "--show-current").strip() == "prodigy-session-1"


async def test_list_worktrees_reports_a_detached_worktree(repo: Path, tmp_path: Path) -> None:
    path = tmp_path / "detached"
    run_git(repo, "worktree", "add", "--quiet", "--detach", str(path))
    detached = (await list_worktrees(repo))[1]
    assert detached.branch is None
    assert detached.head == await head_sha(repo)


async def test_a_worktree_another_git_is_adding_does_not_fail_ours(
    repo: Path, tmp_path: Path
) -> None:
    """git dies reading a half-written admin folder of a worktree being added (its
    `commondir` exists but is empty); such a command is retried until the folder is whole."""
    half = repo / ".git" / "worktrees" / "being-added"
    half.mkdir(parents=True)
    (half / "gitdir").write_text(f"{tmp_path / 'being-added'}/.git\n")
    (half / "commondir").write_text("")
    with pytest.raises(GitError) as failed:  # never finished: git's own error, after retries
        await add_worktree(repo, tmp_path / "one", "HEAD", "one")
    assert "failed to read" in failed.value.details and "commondir" in failed.value.details

    async def finish_adding() -> None:
        await asyncio.sleep(0.01)
        (half / "commondir").write_text("../..\n")
        (half / "HEAD").write_text(f"{await head_sha(repo)}\n")

    await asyncio.gather(finish_adding(), add_worktree(repo, tmp_path / "two", "HEAD", "two"))
    assert await head_sha(tmp_path / "two") == await head_sha(repo)
    assert await branch_exists(repo, "two")


async def test_parallel_adds_all_succeed(repo: Path, tmp_path: Path) -> None:
    """Many sessions and agents start at once: git 2.39 fails about one add in forty when
    adds race (measured), and every one must succeed."""
    paths = [tmp_path / f"wt-{n}" for n in range(24)]
    await asyncio.gather(*(add_worktree(repo, path, "HEAD", None) for path in paths))
    assert all((path / "a.txt").read_text() == "a\n" for path in paths)


async def test_remove_worktree_that_a_killed_worktree_add_left_locked(
    repo: Path, tmp_path: Path
) -> None:
    path = tmp_path / "wt"
    await add_worktree(repo, path, "HEAD", None)
    run_git(repo, "worktree", "lock", "--reason", "initializing", str(path))  # as git leaves it
    await remove_worktree(repo, path)
    assert not path.exists()
    assert [w.path for w in await list_worktrees(repo)] == [repo]  # and git forgot it
