"""Starting a worktree from a branch that moves meanwhile (issue 8: merged work reverted).

git resolves a start point it is given by name more than once in one command: `checkout
-B b main` reads `main` for the files, then again for the branch. A session merge landing
in between left the session branch at the new tip over the old tip's files, and the
session's next commit reverted the merge. Here `main` moves at exactly that moment, every
time: a smudge filter on the file being checked out moves it (with a compare-and-swap, so
only once).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from prodigyd.errors import GitError
from prodigyd.git import merge_branch
from prodigyd.git.worktree import checkout_fresh, verify_checkout
from prodigyd.pool import PoolSettings, WorktreePool
from tests.gitutil import commit_files, git

BRANCH = "prodigy-workflow-1-aaaaaa"

#: No spare slots: one made in the background would check `x.dat` out too, and move `main`
#: before the checkout under test.
NO_SPARE = PoolSettings(spare=0)


def _main_moves_during_checkout(repo: Path) -> tuple[str, str]:
    """`main` at commit A, which adds `x.dat`; checking `x.dat` out moves `main` from A to
    B (which adds `landed.txt`: another session's merge). Returns (A, B). The user's
    checkout is detached, so merges into `main` touch no working tree."""
    first = commit_files(repo, {".gitattributes": "*.dat filter=mover\n", "x.dat": "d\n"}, "A")
    landed = commit_files(repo, {"landed.txt": "merged work\n"}, "B: a merge lands")
    git(repo, "checkout", "--quiet", "--detach")
    git(repo, "branch", "--force", "main", first)
    mover = f"git --git-dir={repo / '.git'} update-ref refs/heads/main {landed} {first}"
    git(repo, "config", "filter.mover.smudge", f"{mover} 2>/dev/null; cat")
    return first, landed


async def _parked_slot(pool: WorktreePool, repo: Path) -> Path:
    """An idle pool slot at the repository's first commit (before `x.dat`)."""
    lease = await pool.acquire(repo, owner="s0", session_id="s0", start="HEAD")
    await pool.release(lease.path)
    return lease.path


async def test_a_merge_landing_during_checkout_is_not_reverted_by_the_session(repo: Path):
    pool = WorktreePool(NO_SPARE)
    slot = await _parked_slot(pool, repo)
    first, landed = _main_moves_during_checkout(repo)

    lease = await pool.acquire(
        repo, owner="s1", session_id="s1", start="refs/heads/main", branch=BRANCH
    )

    assert lease.path == slot
    assert git(repo, "rev-parse", "main").strip() == landed  # the merge did land meanwhile
    commit_files(slot, {"session.txt": "the session's work\n"}, "session step")
    outcome = await merge_branch(repo, BRANCH, "main")
    assert outcome.merged
    on_main = git(repo, "ls-tree", "--name-only", "main").split()
    assert {"landed.txt", "session.txt", "x.dat"} <= set(on_main)  # nothing reverted
    assert lease.commit == first  # what the session records as its base commit


async def test_an_owner_taking_its_worktree_back_gets_one_commit(repo: Path):
    pool = WorktreePool(NO_SPARE)
    lease = await pool.acquire(repo, owner="s1", session_id="s1", start="HEAD", branch=BRANCH)
    first, _ = _main_moves_during_checkout(repo)

    again = await pool.acquire(
        repo, owner="s1", session_id="s1", start="refs/heads/main", branch=BRANCH
    )

    assert again.path == lease.path
    assert git(lease.path, "status", "--porcelain") == ""  # branch and files agree
    assert git(lease.path, "rev-parse", BRANCH).strip() == first == again.commit


async def test_checkout_fresh_by_name_checks_out_one_commit(repo: Path, tmp_path: Path):
    slot = tmp_path / "slot"
    git(repo, "worktree", "add", "--quiet", "--detach", str(slot), "HEAD")
    first, _ = _main_moves_during_checkout(repo)

    checked_out = await checkout_fresh(slot, "refs/heads/main", BRANCH)

    assert git(slot, "status", "--porcelain") == ""  # branch and files agree
    assert git(slot, "rev-parse", BRANCH).strip() == first == checked_out


async def test_the_checkout_guard_refuses_an_index_that_is_not_heads_tree(repo: Path):
    before = git(repo, "rev-parse", "HEAD").strip()
    after = commit_files(repo, {"new.txt": "n\n"})
    await verify_checkout(repo, after)  # a clean checkout passes
    git(repo, "read-tree", before)  # the index now holds the older tree: HEAD and index split
    with pytest.raises(GitError, match="not cleanly at"):
        await verify_checkout(repo, after)
    git(repo, "read-tree", after)
    with pytest.raises(GitError, match="not cleanly at"):
        await verify_checkout(repo, before)  # HEAD is not the commit asked for
