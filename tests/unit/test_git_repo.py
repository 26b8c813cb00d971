"""prodigyd.git.cli and prodigyd.git.repo against real repositories."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

from prodigyd.errors import GitError
from prodigyd.git import (
    branch_exists,
    commit_all,
    current_branch,
    dirty_paths,
    git,
    git_env,
    head_sha,
    is_dirty,
    repo_root,
)
from prodigyd.git import repo as repo_module
from prodigyd.git.repo import ref_sha
from tests.gitutil import git as run_git
from tests.gitutil import make_repo


def test_git_env_drops_repository_pinning_but_keeps_credentials_and_identity() -> None:
    base = {
        "GIT_DIR": "/hook/.git",
        "GIT_INDEX_FILE": "/hook/.git/index",
        "GIT_WORK_TREE": "/hook",
        "GIT_SSH_COMMAND": "ssh -i key",
        "GIT_ASKPASS": "/bin/askpass",
        "GIT_CONFIG_GLOBAL": "/dev/null",
        "GIT_AUTHOR_NAME": "Ada",
        "PATH": "/usr/bin",
    }
    env = git_env(base)
    assert not {"GIT_DIR", "GIT_INDEX_FILE", "GIT_WORK_TREE"} & env.keys()
    assert env["GIT_SSH_COMMAND"] == "ssh -i key"
    assert env["GIT_ASKPASS"] == "/bin/askpass"
    assert env["GIT_CONFIG_GLOBAL"] == "/dev/null"
    assert env["GIT_AUTHOR_NAME"] == "Ada"
    assert env["GIT_TERMINAL_PROMPT"] == "0"
    assert env["LC_ALL"] == "C"
    assert base["GIT_DIR"] == "/hook/.git"  # the caller's mapping is not modified


async def test_git_ignores_an_inherited_git_dir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    mine = make_repo(tmp_path / "mine")
    other = make_repo(tmp_path / "other", {"other.txt": "x\n"})
    expected = run_git(mine, "rev-parse", "HEAD").strip()
    monkeypatch.setenv("GIT_DIR", str(other / ".git"))  # as a git hook would export it
    assert await head_sha(mine) == expected


async def test_git_failure_names_the_command_and_carries_its_output(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo")
    with pytest.raises(GitError) as caught:
        await git(repo, "rev-parse", "--verify", "no-such-branch")
    assert "`git rev-parse --verify no-such-branch` failed" in caught.value.message
    assert caught.value.details is not None
    assert "exit code 128" in caught.value.details
    assert "stderr:\n    fatal:" in caught.value.details


async def test_git_in_a_missing_directory_is_a_git_error(tmp_path: Path) -> None:
    with pytest.raises(GitError) as caught:
        await git(tmp_path / "missing", "status")
    assert caught.value.message.startswith("Cannot run `git status`")


async def test_git_without_check_returns_the_failure(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo")
    done = await git(repo, "rev-parse", "--verify", "--quiet", "nope", check=False)
    assert done.returncode == 1


async def test_repo_root_finds_the_top_from_a_subdirectory(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo", {"src/pkg/mod.py": "x = 1\n"})
    assert await repo_root(repo / "src" / "pkg") == repo.resolve()


@pytest.mark.parametrize("inside", ["plain", "missing"])
async def test_repo_root_outside_a_repository(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, inside: str
) -> None:
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path))
    path = tmp_path / inside
    if inside == "plain":
        path.mkdir()
    with pytest.raises(GitError) as caught:
        await repo_root(path)
    assert caught.value.message == f"Not a git repository: {path}"
    assert caught.value.hint is not None and "-p/--path" in caught.value.hint


async def test_current_branch_and_head_sha(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo", branch="trunk")
    assert await current_branch(repo) == "trunk"
    assert await head_sha(repo) == run_git(repo, "rev-parse", "HEAD").strip()


async def test_current_branch_refuses_a_detached_head(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo")
    run_git(repo, "checkout", "--quiet", "--detach")
    with pytest.raises(GitError) as caught:
        await current_branch(repo)
    assert caught.value.message == f"HEAD is detached in {repo}"
    assert caught.value.hint is not None and "check out a branch" in caught.value.hint


async def test_current_branch_refuses_a_repository_without_commits(tmp_path: Path) -> None:
    repo = tmp_path / "empty"
    repo.mkdir()
    run_git(repo, "init", "--quiet", "-b", "main")
    with pytest.raises(GitError) as caught:
        await current_branch(repo)
    assert "has no commits yet" in caught.value.message
    assert caught.value.hint is not None and "first commit" in caught.value.hint


async def test_branch_exists_sees_only_local_branches(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo")
    run_git(repo, "tag", "v1")
    assert await branch_exists(repo, "main")
    assert not await branch_exists(repo, "v1")
    assert not await branch_exists(repo, "nope")


async def test_a_worktree_whose_git_dir_lost_its_head_is_left_to_git(tmp_path: Path) -> None:
    """Read from the ref files, a branch of a broken linked worktree (its admin folder
    without HEAD) would just be missing: git is asked instead, and says what is wrong."""
    repo = make_repo(tmp_path / "repo")
    linked = tmp_path / "linked"
    run_git(repo, "worktree", "add", "--quiet", "--detach", str(linked))
    (repo / ".git" / "worktrees" / "linked" / "HEAD").unlink()
    with pytest.raises(GitError):
        await branch_exists(linked, "main")
    assert await branch_exists(repo, "main")  # the repository itself reads as before


async def test_a_path_turned_to_another_checkout_is_answered_about_the_new_one(
    tmp_path: Path,
) -> None:
    """What was found about a repository's top is kept while its `.git` is the same: a
    symlink turned to another checkout names another `.git`, and is found again."""
    first = make_repo(tmp_path / "first", branch="one")
    second = make_repo(tmp_path / "second", branch="two")
    link = tmp_path / "current"
    link.symlink_to(first)
    assert await current_branch(link) == "one"
    link.unlink()
    link.symlink_to(second)
    assert await current_branch(link) == "two"
    assert await head_sha(link) == run_git(second, "rev-parse", "HEAD").strip()


async def test_a_moved_worktree_is_found_again_through_its_rewritten_git_file(
    tmp_path: Path,
) -> None:
    repo = make_repo(tmp_path / "repo")
    linked = tmp_path / "linked"
    run_git(repo, "worktree", "add", "--quiet", "-b", "side", str(linked))
    assert await current_branch(linked) == "side"
    moved = tmp_path / "moved"
    run_git(repo, "worktree", "move", str(linked), str(moved))
    run_git(repo, "worktree", "add", "--quiet", "-b", "other", str(linked))  # same path
    assert await current_branch(linked) == "other"
    assert await current_branch(moved) == "side"


async def test_a_link_whose_checkout_moved_away_is_not_answered_about_the_new_one_there(
    tmp_path: Path,
) -> None:
    """`current` leads to `mine`, which is moved to `moved` (its `.git` the same inode) and
    `current` turned to follow it; a new repository is made where `mine` was. What was
    found through `current` named the old place: it is found again."""
    mine = make_repo(tmp_path / "mine", branch="mine")
    link = tmp_path / "current"
    link.symlink_to(mine)
    assert await current_branch(link) == "mine"
    mine.rename(tmp_path / "moved")
    link.unlink()
    link.symlink_to(tmp_path / "moved")
    make_repo(tmp_path / "mine", branch="fresh")
    assert await current_branch(link) == "mine"
    assert await repo_root(link) == tmp_path / "moved"


def test_a_reftable_store_made_since_is_left_to_git(tmp_path: Path) -> None:
    """The ref files are not where the refs are once a reftable store exists (`git refs
    migrate`, or a clone made with it at the same path): what was found about the
    repository is not trusted then (read through the private finder: git 2.39 has no
    reftable, so `branch_exists` answers alike either way)."""
    repo = make_repo(tmp_path / "repo")
    assert repo_module._git_dirs_around(repo) is not None
    (repo / ".git" / "reftable").mkdir()
    assert repo_module._git_dirs_around(repo) is None


async def test_a_repository_made_in_a_subfolder_is_seen_from_it(tmp_path: Path) -> None:
    """Only a repository's own top is remembered: asked from a subfolder, the answer is
    looked for every time, so a repository made there since is found."""
    outer = make_repo(tmp_path / "outer", branch="outer")
    inner = outer / "inner"
    inner.mkdir()
    assert await repo_root(inner) == outer
    make_repo(inner, branch="inner")
    assert await repo_root(inner) == inner
    assert await current_branch(inner) == "inner"


async def test_dirty_paths_covers_modified_staged_untracked_and_renamed(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo", {"a.txt": "a\n", "b.txt": "b\n", "old name.txt": "o\n"})
    assert not await is_dirty(repo)
    assert await dirty_paths(repo) == set()
    (repo / "a.txt").write_text("changed\n")
    (repo / "b.txt").write_text("staged\n")
    run_git(repo, "add", "b.txt")
    (repo / "new" / "deep").mkdir(parents=True)
    (repo / "new" / "deep" / "c.txt").write_text("c\n")
    run_git(repo, "mv", "old name.txt", "new name.txt")
    assert await is_dirty(repo)
    assert await dirty_paths(repo) == {
        "a.txt",
        "b.txt",
        "new/deep/c.txt",
        "old name.txt",
        "new name.txt",
    }


async def test_ignored_files_do_not_make_a_checkout_dirty(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo", {".gitignore": "build/\n"})
    (repo / "build").mkdir()
    (repo / "build" / "out.o").write_text("binary\n")
    assert not await is_dirty(repo)


async def test_commit_all_commits_everything_or_nothing(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo", {"a.txt": "a\n", "gone.txt": "g\n"})
    assert await commit_all(repo, "nothing") is None
    before = await head_sha(repo)
    (repo / "a.txt").write_text("changed\n")
    (repo / "new.txt").write_text("new\n")
    (repo / "gone.txt").unlink()
    sha = await commit_all(repo, "prodigy: auto-commit")
    assert sha == await head_sha(repo) != before
    assert not await is_dirty(repo)
    assert run_git(repo, "log", "-1", "--format=%s").strip() == "prodigy: auto-commit"
    changed = run_git(repo, "diff", "--name-status", before, sha).split()
    assert changed == ["M", "a.txt", "D", "gone.txt", "A", "new.txt"]


async def test_commit_all_reports_a_failing_commit(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo")
    hook = repo / ".git" / "hooks" / "pre-commit"
    hook.parent.mkdir(exist_ok=True)  # the suite's empty GIT_TEMPLATE_DIR installs no hooks/
    hook.write_text("#!/bin/sh\necho 'lint says no' >&2\nexit 1\n")
    hook.chmod(0o755)
    (repo / "a.txt").write_text("a\n")
    with pytest.raises(GitError) as caught:
        await commit_all(repo, "blocked")
    assert caught.value.details is not None and "lint says no" in caught.value.details


def test_refs_read_from_files_never_wait_on_a_fifo_nor_choke_on_bytes(tmp_path: Path) -> None:
    """A ref file a step (or anyone) replaced by a FIFO would hold the event loop for ever
    if it were opened blocking; garbage in one is no commit. Either way the daemon reads
    None and asks git, which is always right."""
    repo = make_repo(tmp_path / "repo")
    heads = repo / ".git" / "refs" / "heads"
    os.mkfifo(heads / "fifo")
    (heads / "garbage").write_bytes(b"\xff\xfe not a sha \x80\n")
    found: list[str | None] = []
    reader = threading.Thread(
        target=lambda: found.extend(
            ref_sha(repo / ".git", f"refs/heads/{name}") for name in ("fifo", "garbage", "main")
        ),
        daemon=True,
    )
    reader.start()
    reader.join(timeout=10)
    assert not reader.is_alive(), "reading a FIFO ref blocked"
    assert found == [None, None, run_git(repo, "rev-parse", "main").strip()]


def test_only_a_linked_worktrees_own_top_has_its_git_dirs_read_from_files(tmp_path: Path) -> None:
    """What a pool slot's start and end read without git: a linked worktree's top; not
    the main working tree, nor a folder inside a worktree."""
    repo = make_repo(tmp_path / "repo")
    linked = tmp_path / "linked"
    run_git(repo, "worktree", "add", "--quiet", "--detach", str(linked))
    (linked / "sub").mkdir()
    assert repo_module.linked_worktree_dirs(linked) == (
        repo / ".git" / "worktrees" / "linked",
        repo / ".git",
    )
    assert repo_module.linked_worktree_dirs(repo) is None
    assert repo_module.linked_worktree_dirs(linked / "sub") is None
