"""Session worktrees: one branch and one checkout per session, beside the user's own.

Created and removed with `git worktree` (a subprocess: deps-probe §1b measured it as fast
as pygit2 without stalling the event loop, and pygit2 cannot remove a worktree at all).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from dataclasses import dataclass
from pathlib import Path

from prodigyd.errors import GitError
from prodigyd.files import subfolders
from prodigyd.git import objects, reflock
from prodigyd.git.cli import git, raise_failure
from prodigyd.git.plain import common_dir, git_dir_of, read_git_text
from prodigyd.git.repo import (
    HEADS,
    WorktreeState,
    branch_exists,
    commit_id,
    linked_worktree_dirs,
    ref_sha,
    worktree_state,
)


@dataclass
class WorktreeInfo:
    """One entry of `git worktree list`.

    `branch` is the short name (`main`, not `refs/heads/main`) and None when the worktree is
    detached or bare; `head` is None when there is no commit yet.
    """

    path: Path
    head: str | None
    branch: str | None


async def add_worktree(repo: Path, path: Path, start: str, branch: str | None) -> str:
    """A new worktree at `path` on commit `start`: on `branch` (created or reset there) or
    detached. Returns the commit checked out.

    The pool's way in (pool.py): an existing branch is reset rather than refused,
    because a branch name the pool is given belongs to the caller (a session re-making
    its own worktree after a crash resets its branch, as `checkout -B` would). `start` is
    resolved to its id first (`commit_id`), so git never reads a moving branch twice.
    """
    commit = await commit_id(repo, start)
    path.parent.mkdir(parents=True, exist_ok=True)
    target = ["-B", branch] if branch else ["--detach"]
    await git(repo, "worktree", "add", "--quiet", "-f", *target, "--", str(path), commit)
    await verify_checkout(path, commit)
    return commit


async def checkout_fresh(path: Path, start: str, branch: str | None) -> str:
    """Point an existing worktree at commit `start`, on `branch` (created or reset) or
    detached, discarding every change to tracked files: the cost of reusing a slot.
    Returns the commit checked out.

    `start` is resolved to its id first (`commit_id`): given a branch name, `checkout -B`
    reads it once for the files and again for the branch, and a merge landing in between
    leaves the branch at the new tip over the old tip's files (issue 8).
    """
    commit = await commit_id(path, start)
    target = ["-B", branch] if branch else ["--detach"]
    argv = ["checkout", "--quiet", "--force", "--no-recurse-submodules", *target, commit]
    await git(path, *argv)
    if not await checkout_matches(path, commit):  # cannot split by id; if it does: redo once
        await git(path, *argv)
        await verify_checkout(path, commit)
    return commit


async def checkout_matches(path: Path, commit: str) -> bool:
    """Whether the worktree at `path` has `commit` checked out: HEAD is that commit and the
    index holds its tree (what a commit made there next is based on). HEAD is read from
    the ref files when they are plain; the index is compared with `commit`'s tree by
    libgit2 (~0.3 ms), else by `git diff-index` (~3 ms)."""
    try:
        head = await commit_id(path, "HEAD")  # from the ref files when they are plain
    except GitError:  # no commit checked out at all
        return False
    if head != commit:
        return False
    same = await asyncio.to_thread(objects.index_holds, path, commit)
    if same is not None:
        return same
    done = await git(path, "diff-index", "--cached", "--quiet", commit, "--", check=False)
    if done.returncode not in (0, 1):  # 1 = they differ; anything else is an error
        raise_failure(done, path)
    return done.returncode == 0


async def verify_checkout(path: Path, commit: str) -> None:
    """The guard after a checkout: a worktree whose branch and index disagree would make
    its next commit revert whatever lies between them, so it is refused loudly."""
    if not await checkout_matches(path, commit):
        raise GitError(
            f"The worktree {path} is not cleanly at {commit[:12]} after checking it out "
            "(HEAD or the index is elsewhere)",
            hint="another git process changed it meanwhile; the worktree is not used",
        )


async def scrub(path: Path, *, keep_ignored: bool, park_at: str | None = None) -> None:
    """Make a used worktree pristine for its next user: detached (at commit `park_at`, or
    where it is), every change and untracked file gone (and ignored files too, unless
    `keep_ignored` keeps caches). Parking it where the next user will likely start lets
    that user skip the checkout (`point_idle_slot`).

    `checkout --force` also forgets a merge the last user left half done (MERGE_HEAD).
    """
    at = [await commit_id(path, park_at)] if park_at is not None else []
    await git(path, "checkout", "--quiet", "--force", "--detach", *at)
    await git(path, "clean", "-ffdq" if keep_ignored else "-ffdxq")


async def point_idle_slot(path: Path, start: str, branch: str | None) -> str:
    """`checkout_fresh` for a pristine pool slot, without git when it is parked at `start`;
    returns the commit now checked out.

    Checking out the commit a slot already has changes no file: all `git checkout -B`
    would do is write the branch ref and HEAD, and a git process costs a session start
    several milliseconds (its first step should start within 5 ms of the submission).
    So, when the repository stores refs as files, the slot is detached at `start`'s
    commit and the branch does not exist yet, those two files are written here, each a
    compare-and-swap under git's own lock (git/reflock.py); in every other case, or when
    either changed meanwhile, git does the work.
    """
    commit = await commit_id(path, start)
    dirs = linked_worktree_dirs(path)
    if dirs is None:
        return await checkout_fresh(path, commit, branch)
    git_dir, common = dirs
    if branch is None:
        if _parked_at(git_dir, commit):
            return commit
        return await checkout_fresh(path, commit, branch)
    ref = f"{HEADS}{branch}"
    swapped = (
        _parked_at(git_dir, commit)
        and ref_sha(common, ref) is None  # an existing branch is git's to reset
        and reflock.swap(
            f"{common}/{ref}",
            f"{commit}\n",
            lambda: ref_sha(common, ref) is None,
            spare=f"{git_dir}/{reflock.REF_SPARE}",
        )
        and reflock.swap(
            f"{git_dir}/HEAD",
            f"ref: {ref}\n",
            lambda: _parked_at(git_dir, commit),
            spare=f"{git_dir}/{reflock.HEAD_SPARE}",
        )
    )
    if not swapped:
        return await checkout_fresh(path, commit, branch)
    return commit


#: What a git command running, or left half done, leaves in a worktree's admin folder: a
#: slot holding one is scrubbed by git (`checkout --force` forgets a merge; a rebase, or
#: an index.lock a killed checkout left, makes it unusable and it is removed).
_UNDER_WAY = frozenset(
    (
        "index.lock",
        "MERGE_HEAD",
        "CHERRY_PICK_HEAD",
        "REVERT_HEAD",
        "rebase-merge",
        "rebase-apply",
    )
)


async def park_unchanged(
    path: Path,
    park_at: str | None,
    *,
    keep_ignored: bool,
    seen: WorktreeState | None = None,
) -> bool:
    """`scrub` without its git processes, when it would change no file; False, with
    nothing done, when it would (the caller scrubs).

    That is when the worktree is at `park_at`'s commit, holds nothing uncommitted (nor
    ignored files, unless they are kept) and no git command is under way there (a merge,
    a rebase, an index.lock: `_UNDER_WAY`): all a scrub would do is detach HEAD there.
    HEAD is written here instead, a compare-and-swap under git's lock (git/reflock.py). A
    session that committed nothing (a check, a test run: what a commit's trigger often
    starts) ends so; its scrub cost two git processes (~10 ms here), this a status
    (`worktree_state`: in process when pygit2 is loaded, else one git process), or none
    when the caller read one with nothing run in the worktree since (`seen`: its
    session's merge, finding nothing to commit or merge). A worktree elsewhere is
    scrubbed at once, without a status.
    """
    dirs = linked_worktree_dirs(path)
    if dirs is None:
        return False
    git_dir = dirs[0]
    head = _head_of(git_dir)
    if head is None:
        return False
    at = await commit_id(path, "HEAD")
    if park_at is not None and await commit_id(path, park_at) != at:
        return False
    if _under_way(git_dir):
        return False
    state = seen or await worktree_state(path, load=False)
    if state.head != at or state.changed or (state.ignored and not keep_ignored):
        return False
    if head.strip() == at:  # already detached there
        return True
    if not head.startswith("ref: "):
        return False
    try:
        return reflock.swap(f"{git_dir}/HEAD", f"{at}\n", lambda: _head_of(git_dir) == head)
    except OSError:
        return False


def _head_of(git_dir: Path) -> str | None:
    """The text of a worktree's HEAD file; None when it cannot be read."""
    try:
        return read_git_text(f"{git_dir}/HEAD")
    except OSError:
        return None


def _under_way(git_dir: Path) -> bool:
    """Whether a git command left one of _UNDER_WAY in the admin folder: one listing of
    it, where a stat per name (and a Path join each) cost a session's start ~40 µs."""
    try:
        return not _UNDER_WAY.isdisjoint(os.listdir(git_dir))
    except OSError:
        return True  # unreadable: git decides what the slot is


def _parked_at(git_dir: Path, sha: str) -> bool:
    head = _head_of(git_dir)
    return head is not None and head.strip() == sha


def stock_slot(path: Path) -> None:
    """Stock the pool slot at `path` for its next ref writes (git/reflock.py: blocking,
    for a worker thread)."""
    git_dir = worktree_git_dir(path)
    if git_dir is not None:
        reflock.stock(git_dir)


def has_unfinished_rebase(path: Path) -> bool:
    """A rebase left in a worktree survives `checkout --force`: such a slot is not reused."""
    git_dir = worktree_git_dir(path)
    return git_dir is not None and any(
        (git_dir / name).exists() for name in ("rebase-merge", "rebase-apply")
    )


def worktree_git_dir(worktree: Path) -> Path | None:
    """The worktree's own admin folder (`.git/worktrees/<name>`), read from its `.git` file."""
    try:
        line = read_git_text(worktree / ".git").strip()
    except OSError:
        return None
    if not line.startswith("gitdir:"):
        return None
    return Path(line.removeprefix("gitdir:").strip())


def repository_of(worktree: Path) -> Path | None:
    """The repository a linked worktree belongs to (its main working tree), or None."""
    git_dir = worktree_git_dir(worktree)
    common = common_dir(git_dir) if git_dir is not None else None
    return common.parent if common is not None and common.name == ".git" else None


async def remove_worktree(repo: Path, path: Path) -> None:
    """Delete the worktree at `path`, uncommitted changes and all.

    A directory someone already deleted is not an error: `git worktree prune` then drops
    the bookkeeping git still holds for it, which is all that is left to remove. A locked
    worktree is removed too (`--force` twice): the lock on one of ours can only be the
    "initializing" one a `git worktree add` killed halfway left, which `prune` never drops.
    """
    if not path.exists():
        await git(repo, "worktree", "prune")
        return
    await git(repo, "worktree", "remove", "--force", "--force", str(path))


async def delete_branch(repo: Path, branch: str) -> None:
    """Delete `branch` even if unmerged; a branch that is already gone is not an error.

    A session branch is usually a loose ref file (and its reflog) and nothing else: it is
    then deleted here as git deletes one (`_delete_loose`), not by a git process (~6 ms
    here). Anything more is git's to delete."""
    if await branch_exists(repo, branch) and not _delete_loose(repo, branch):
        await git(repo, "branch", "--quiet", "-D", branch)


def _delete_loose(repo: Path, branch: str) -> bool:
    """Delete `refs/heads/<branch>` as `git branch -D` would when it is a loose ref only:
    under the ref's lock, only while it still holds the commit read first, then its
    reflog. False, with nothing deleted, when git must do it: a reftable store, a packed
    copy (also one a concurrent `git pack-refs` made meanwhile: git then deletes it), a
    `[branch]` section in the config, or a worktree that has the branch checked out or is
    rebasing (git refuses those)."""
    ref = f"{HEADS}{branch}"
    if "/" in branch:  # git also removes the folders a deleted ref leaves empty
        return False
    try:
        git_dir = git_dir_of(repo / ".git")
        common = common_dir(git_dir) or git_dir
        if (common / "reftable").exists() or _checked_out_anywhere(common, ref):
            return False
        config = read_git_text(common / "config")
    except OSError:
        return False
    sha = ref_sha(common, ref)
    if sha is None or f'[branch "{branch}"]' in config or _packed(common, ref):
        return False
    path = common / ref
    lock = path.with_name(path.name + ".lock")
    try:
        fd = os.open(lock, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    except OSError:  # taken: git is changing it
        return False
    try:
        os.close(fd)
        if read_git_text(path).strip() != sha:
            return False
        path.unlink()
    except OSError:
        return False
    finally:
        lock.unlink(missing_ok=True)
    with contextlib.suppress(OSError):  # a log left behind names no branch
        (common / "logs" / ref).unlink(missing_ok=True)
    return not _packed(common, ref)


def _packed(common: Path, ref: str) -> bool:
    """Whether packed-refs lists `ref`; True too when it cannot be read (git decides)."""
    try:
        packed = read_git_text(common / "packed-refs")
    except FileNotFoundError:
        return False
    except OSError:
        return True
    return any(line.partition(" ")[2] == ref for line in packed.splitlines())


def _checked_out_anywhere(common: Path, ref: str) -> bool:
    """Whether the main worktree or a linked one has `ref` checked out or is rebasing
    (OSError when a HEAD cannot be read: the caller leaves the question to git)."""
    admin = [common, *subfolders(common / "worktrees")]
    for git_dir in admin:
        if (git_dir / "rebase-merge").exists() or (git_dir / "rebase-apply").exists():
            return True
        try:
            head = read_git_text(git_dir / "HEAD").strip()
        except FileNotFoundError:
            continue  # the main git dir of a bare repository, a half-made worktree
        if head == f"ref: {ref}":
            return True
    return False


async def list_worktrees(repo: Path) -> list[WorktreeInfo]:
    """Every worktree of `repo`, the main one first."""
    done = await git(repo, "worktree", "list", "--porcelain", "-z")
    return parse_worktree_list(done.stdout)


def parse_worktree_list(output: str) -> list[WorktreeInfo]:
    """Parse `git worktree list --porcelain -z` (git >= 2.36).

    Each attribute ends in NUL and each record in one more NUL; attributes we do not use
    (bare, detached, locked, prunable) are skipped.
    """
    worktrees: list[WorktreeInfo] = []
    for record in output.split("\0\0"):
        attributes: dict[str, str] = {}
        for line in filter(None, record.split("\0")):
            key, _, value = line.partition(" ")
            attributes[key] = value
        if "worktree" not in attributes:
            continue
        head = attributes.get("HEAD", "")
        branch = attributes.get("branch")
        worktrees.append(
            WorktreeInfo(
                path=Path(attributes["worktree"]),
                head=head if head.strip("0") else None,  # an unborn branch shows all zeros
                branch=branch.removeprefix(HEADS) if branch else None,
            )
        )
    return worktrees


def clear_stale_locks(worktree: Path, branch: str | None = None) -> list[str]:
    """Remove git lock files a killed git (or daemon) left in a worktree's own git dir, and
    the lock of its own `branch`.

    Only for prodigy's worktrees, after their processes were killed: nothing else uses
    them (or that branch), so a lock there can only be stale. The shared repository's
    other locks are never touched. Returns the paths removed.
    """
    git_dir = worktree_git_dir(worktree)
    if git_dir is None:
        return []
    locks = [git_dir / "index.lock", git_dir / "HEAD.lock"]
    common = common_dir(git_dir)
    if branch is not None and common is not None:
        locks.append(common / HEADS / f"{branch}.lock")
    removed = []
    for lock in locks:
        try:
            lock.unlink()
            removed.append(str(lock))
        except FileNotFoundError:
            continue
    return removed
