"""git/reflock.py: ref files written under git's lock, with inodes a slot was stocked with.

Real git reads what was written; a lock git holds is respected with or without a spare."""

from __future__ import annotations

import asyncio
import os
import stat
from pathlib import Path

import pytest

from prodigyd import proc
from prodigyd.git import reflock
from prodigyd.git.worktree import point_idle_slot, stock_slot, worktree_git_dir
from prodigyd.pool import PoolSettings, WorktreePool
from tests.gitutil import git


def _head_sha(repo: Path) -> str:
    return git(repo, "rev-parse", "HEAD").strip()


def _slot(repo: Path, tmp_path: Path) -> tuple[Path, Path]:
    """A worktree parked detached at the repository's HEAD, and its admin folder."""
    path = tmp_path / "slot"
    git(repo, "worktree", "add", "--quiet", "--detach", str(path), "HEAD")
    git_dir = worktree_git_dir(path)
    assert git_dir is not None
    return path, git_dir


async def test_a_stocked_slot_is_pointed_with_its_spares_and_git_reads_it(
    repo: Path, tmp_path: Path
):
    path, git_dir = _slot(repo, tmp_path)
    parked = (git_dir / "HEAD").read_text()
    stock_slot(path)
    spares = [git_dir / reflock.REF_SPARE, git_dir / reflock.HEAD_SPARE]
    assert all(spare.exists() for spare in spares)
    ref_inode = spares[0].stat().st_ino
    commit = await point_idle_slot(path, _head_sha(repo), "prodigy-workflow-1-aaaaaa")
    assert commit == _head_sha(repo)
    assert not any(spare.exists() for spare in spares)  # both writes took theirs
    ref = repo / ".git" / "refs" / "heads" / "prodigy-workflow-1-aaaaaa"
    assert ref.stat().st_ino == ref_inode
    assert ref.read_text() == f"{commit}\n"  # the spare's newlines cut off
    assert (git_dir / "HEAD").read_text() == "ref: refs/heads/prodigy-workflow-1-aaaaaa\n"
    assert stat.S_IMODE(ref.stat().st_mode) == proc.as_user_mode(0o644)
    assert git(path, "branch", "--show-current").strip() == "prodigy-workflow-1-aaaaaa"
    assert git(path, "rev-parse", "HEAD").strip() == commit
    assert git(path, "status", "--porcelain") == ""
    assert (git_dir / reflock.HEAD_KEPT).read_text() == parked  # the old HEAD, not freed
    assert not list(git_dir.glob("*.lock")) and not list(ref.parent.glob("*.lock"))
    git(repo, "fsck", "--no-progress")
    # the slot's next stocking frees that HEAD and keeps the current one
    stock_slot(path)
    assert (
        git_dir / reflock.HEAD_KEPT
    ).read_text() == "ref: refs/heads/prodigy-workflow-1-aaaaaa\n"
    assert (git_dir / "HEAD").stat().st_nlink == 2


async def test_a_slot_never_stocked_is_pointed_all_the_same(repo: Path, tmp_path: Path):
    path, git_dir = _slot(repo, tmp_path)
    await point_idle_slot(path, _head_sha(repo), "prodigy-workflow-2-bbbbbb")
    assert git(path, "branch", "--show-current").strip() == "prodigy-workflow-2-bbbbbb"
    assert not (git_dir / reflock.HEAD_KEPT).exists()


async def test_a_branch_whose_ref_folder_is_new_gets_it_and_git_reads_the_ref(
    repo: Path, tmp_path: Path
):
    """refs/heads/team/x: the swap makes refs/heads/team (no stat of it beforehand)."""
    path, git_dir = _slot(repo, tmp_path)
    stock_slot(path)
    sha = await point_idle_slot(path, _head_sha(repo), "team/x")
    assert sha == _head_sha(repo)
    assert not (git_dir / reflock.REF_SPARE).exists()  # written by the swap, not by git
    assert git(path, "symbolic-ref", "HEAD").strip() == "refs/heads/team/x"
    assert git(repo, "rev-parse", "refs/heads/team/x").strip() == sha
    assert not list(git_dir.glob("*.lock")) and not list(
        (repo / ".git/refs/heads/team").glob("*.lock")
    )


async def test_a_lock_git_holds_is_respected_with_or_without_a_spare(repo: Path, tmp_path: Path):
    _, git_dir = _slot(repo, tmp_path)
    stock_slot(tmp_path / "no-such-slot")  # nothing to stock: nothing done, no error
    reflock.stock(git_dir)
    head = git_dir / "HEAD"
    before = head.read_text()
    lock = git_dir / "HEAD.lock"
    lock.write_text("git's\n")  # a git writing HEAD right now
    spare = git_dir / reflock.HEAD_SPARE
    for offered in (spare, None):
        assert not reflock.swap(head, "ref: refs/heads/x\n", lambda: True, spare=offered)
        assert lock.read_text() == "git's\n" and head.read_text() == before
    assert spare.exists()  # not taken: it is there for the next write
    lock.unlink()
    assert reflock.swap(head, "ref: refs/heads/x\n", lambda: True, spare=spare)
    assert head.read_text() == "ref: refs/heads/x\n" and not spare.exists()


async def test_a_ref_changed_under_the_lock_is_not_written_and_the_lock_is_gone(
    repo: Path, tmp_path: Path
):
    _, git_dir = _slot(repo, tmp_path)
    reflock.stock(git_dir)
    head = git_dir / "HEAD"
    before = head.read_text()
    assert not reflock.swap(
        head, "ref: refs/heads/x\n", lambda: False, spare=git_dir / reflock.HEAD_SPARE
    )
    assert head.read_text() == before and not (git_dir / "HEAD.lock").exists()


async def test_stocking_after_a_cut_off_stocking_and_a_used_spare(repo: Path, tmp_path: Path):
    """A stocking cut off (a spare half made under its temporary name) or half used (a
    swap that took one spare) is completed by the next; the ref's spare is empty, HEAD's
    holds a block of newlines (reflock.SPARE_BYTES), git's modes; one of an older prodigy
    (an empty HEAD spare) is made again."""
    _, git_dir = _slot(repo, tmp_path)
    (git_dir / f"{reflock.REF_SPARE}.new").write_text("half")
    (git_dir / reflock.HEAD_SPARE).write_bytes(b"")
    reflock.stock(git_dir)
    for name, held in ((reflock.REF_SPARE, b""), (reflock.HEAD_SPARE, b"\n" * 256)):
        spare = git_dir / name
        assert spare.read_bytes() == held
        assert stat.S_IMODE(spare.stat().st_mode) == proc.as_user_mode(0o644)
    (git_dir / reflock.REF_SPARE).unlink()
    reflock.stock(git_dir)
    assert (git_dir / reflock.REF_SPARE).exists() and (git_dir / reflock.HEAD_SPARE).exists()


async def test_the_pool_stocks_slots_sessions_release_and_removes_them_whole(repo: Path):
    pool = WorktreePool(PoolSettings(spare=0))
    try:
        lease = await pool.acquire(
            repo, owner="s1", session_id="s1", start="HEAD", branch="prodigy-workflow-3-cccccc"
        )
        await pool.release(lease.path, stock=True)  # a session's release
        git_dir = worktree_git_dir(lease.path)
        assert git_dir is not None
        for _ in range(500):  # stocked in a worker thread
            if (git_dir / reflock.HEAD_KEPT).exists():
                break
            await asyncio.sleep(0.01)
        assert (git_dir / reflock.REF_SPARE).exists()
        again = await pool.acquire(
            repo, owner="s2", session_id="s2", start="HEAD", branch="prodigy-workflow-4-dddddd"
        )
        assert again.path == lease.path and again.reused
        assert not (git_dir / reflock.REF_SPARE).exists()  # the start took it
        assert git(again.path, "branch", "--show-current").strip() == "prodigy-workflow-4-dddddd"
        await pool.release(again.path)  # a map agent's: agents write no ref
        await asyncio.sleep(0.2)
        assert not (git_dir / reflock.REF_SPARE).exists()  # not stocked for nothing
        assert await pool.clean("all", lambda session_id: False) == [str(lease.path)]
        assert not lease.path.exists() and not git_dir.exists()
        assert str(lease.path) not in git(repo, "worktree", "list")
    finally:
        await pool.close()


async def test_a_spare_that_shares_its_file_is_not_written_through(repo: Path, tmp_path: Path):
    """A spare with another name still on it (a crash between its link and its unlink,
    an unlink refused) is never written: the write would land in that other file too.
    The swap makes its lock the ordinary way, and the next stocking replaces the spare."""
    _, git_dir = _slot(repo, tmp_path)
    reflock.stock(git_dir)
    spare = git_dir / reflock.HEAD_SPARE
    other = git_dir / "other-name"
    os.link(spare, other)
    head = git_dir / "HEAD"
    assert reflock.swap(head, "ref: refs/heads/y\n", lambda: True, spare=spare)
    assert head.read_text() == "ref: refs/heads/y\n" and head.stat().st_nlink == 1
    assert other.read_bytes() == b"\n" * reflock.SPARE_BYTES  # not written through
    assert not (git_dir / "HEAD.lock").exists()
    os.link(other, spare)  # the crash's leftover: the spare shares its inode again
    reflock.stock(git_dir)
    assert spare.stat().st_nlink == 1 and spare.stat().st_ino != other.stat().st_ino


async def test_a_slot_is_removed_only_once_its_stocking_is_over(
    repo: Path, monkeypatch: pytest.MonkeyPatch
):
    """Removing a slot waits for a stocking under way: its files must not appear in the
    admin folder while git deletes it (git would then fail to remove the folder)."""
    import threading

    from prodigyd import pool as pool_module

    started, go = threading.Event(), threading.Event()

    def slow_stock(path: Path) -> None:
        started.set()
        go.wait(10)
        stock_slot(path)

    monkeypatch.setattr(pool_module, "stock_slot", slow_stock)
    pool = WorktreePool(PoolSettings(spare=0))
    try:
        lease = await pool.acquire(
            repo, owner="s1", session_id="s1", start="HEAD", branch="prodigy-workflow-5-eeeeee"
        )
        await pool.release(lease.path, stock=True)
        assert await asyncio.to_thread(started.wait, 10)
        cleaning = asyncio.ensure_future(pool.clean("all", lambda session_id: False))
        await asyncio.sleep(0.2)
        assert not cleaning.done() and lease.path.exists()  # waits for the stocking
        go.set()
        assert await cleaning == [str(lease.path)]
        assert not lease.path.exists() and str(lease.path) not in git(repo, "worktree", "list")
    finally:
        go.set()
        await pool.close()
