"""prodigyd.git.pool against real repositories: reuse, strategies, crash re-adoption, gc."""

from __future__ import annotations

from pathlib import Path

import pytest

from prodigyd.errors import Conflict
from prodigyd.git.pool import PoolSettings, WorktreePool, branch_session
from prodigyd.store import worktrees as rows
from prodigyd.store.worktrees import Strategy
from tests.gitutil import commit_files, git


def _status(path: Path) -> str:
    return git(path, "status", "--porcelain", "--ignored")


def _live(*sessions: str):
    return lambda session_id: session_id in sessions


async def test_a_released_slot_is_reused_pristine_at_the_new_commit(repo: Path):
    pool = WorktreePool()
    first = await pool.acquire(
        repo, owner="s1", session_id="s1", start="HEAD", branch="prodigy-workflow-1-aaaaaa"
    )
    assert not first.reused
    (first.path / ".gitignore").write_text("cache/\n")
    (first.path / "cache").mkdir()
    (first.path / "cache" / "big.bin").write_text("x")
    (first.path / "README.md").write_text("changed\n")
    await pool.release(first.path)
    assert rows.get(first.path).state == "idle"
    assert _status(first.path) == ""  # untracked, ignored and modified files are all gone
    new_tip = commit_files(repo, {"new.txt": "n\n"})
    second = await pool.acquire(
        repo, owner="s2", session_id="s2", start=new_tip, branch="prodigy-workflow-2-bbbbbb"
    )
    assert second.path == first.path and second.reused
    assert git(second.path, "rev-parse", "HEAD").strip() == new_tip
    assert git(second.path, "branch", "--show-current").strip() == "prodigy-workflow-2-bbbbbb"
    assert (second.path / "new.txt").exists() and rows.get(second.path).uses == 2


async def test_reuse_keeps_ignored_caches_and_prefers_the_same_workflow(repo: Path):
    commit_files(repo, {".gitignore": "target/\n"})
    pool = WorktreePool(PoolSettings(strategy=Strategy.REUSE))
    a = await pool.acquire(repo, owner="a", session_id="a", start="HEAD", workflow="build")
    b = await pool.acquire(repo, owner="b", session_id="b", start="HEAD", workflow="lint")
    (a.path / "target").mkdir()
    (a.path / "target" / "cache.o").write_text("warm")
    await pool.release(a.path)
    await pool.release(b.path)  # b is now the most recently used slot
    again = await pool.acquire(repo, owner="c", session_id="c", start="HEAD", workflow="build")
    assert again.path == a.path
    assert (again.path / "target" / "cache.o").read_text() == "warm"


async def test_dedicated_slots_serve_only_their_workflow(repo: Path):
    pool = WorktreePool(PoolSettings(strategy=Strategy.DEDICATED))
    a = await pool.acquire(repo, owner="a", session_id="a", start="HEAD", workflow="build")
    await pool.release(a.path)
    other = await pool.acquire(repo, owner="b", session_id="b", start="HEAD", workflow="lint")
    assert other.path != a.path and not other.reused


async def test_on_demand_and_a_full_pool_remove_worktrees_on_release(repo: Path):
    on_demand = WorktreePool(PoolSettings(strategy=Strategy.ON_DEMAND))
    lease = await on_demand.acquire(repo, owner="sess-1", session_id="sess-1", start="HEAD")
    assert lease.path.name == "sess-1"  # named for its owner, as before the pool
    await on_demand.release(lease.path)
    assert not lease.path.exists() and rows.get(lease.path) is None
    small = WorktreePool(PoolSettings(size=1))
    one = await small.acquire(repo, owner="x", session_id="x", start="HEAD")
    two = await small.acquire(repo, owner="y", session_id="y", start="HEAD")
    await small.release(one.path)
    await small.release(two.path)
    assert one.path.exists() and not two.path.exists()
    assert str(lease.path) not in git(repo, "worktree", "list")


async def test_an_owner_gets_its_own_worktree_back_after_a_crash(repo: Path):
    pool = WorktreePool()
    lease = await pool.acquire(
        repo, owner="s1", session_id="s1", start="HEAD", branch="prodigy-workflow-1-cccccc"
    )
    (lease.path / "work.txt").write_text("half done\n")
    from prodigyd.git.worktree import worktree_git_dir

    (worktree_git_dir(lease.path) / "HEAD.lock").write_text("")  # a killed git's locks
    (repo / ".git" / "refs" / "heads" / "prodigy-workflow-1-cccccc.lock").write_text("")
    again = await pool.acquire(
        repo, owner="s1", session_id="s1", start="HEAD", branch="prodigy-workflow-1-cccccc"
    )
    assert again.path == lease.path  # re-adopted, reset to the start point
    assert not (lease.path / "work.txt").exists()  # a fresh start: the cut-off run's files go
    assert pool.holds("s1", lease.path) and not pool.holds("s2", lease.path)


async def test_a_slot_registered_but_never_made_is_made_on_the_next_acquire(repo: Path):
    pool = WorktreePool()
    path = Path(str(repo) + "-never-made")
    rows.register(path, repo, owner="s1", session_id="s1", affinity=None, strategy=Strategy.POOLED)
    lease = await pool.acquire(repo, owner="s1", session_id="s1", start="HEAD")
    assert (lease.path / "README.md").exists() and pool.holds("s1", lease.path)


async def test_named_worktrees_persist_and_are_exclusive(repo: Path):
    pool = WorktreePool()
    lease = await pool.acquire(repo, owner="s1", session_id="s1", start="HEAD", name="experiment-a")
    assert lease.path.name == "experiment-a"
    with pytest.raises(Conflict, match="in use by s1"):
        await pool.acquire(repo, owner="s2", session_id="s2", start="HEAD", name="experiment-a")
    (lease.path / "notes.txt").write_text("keep me\n")
    await pool.release(lease.path)
    assert rows.get(lease.path).state == "kept" and (lease.path / "notes.txt").exists()
    again = await pool.acquire(repo, owner="s2", session_id="s2", start="HEAD", name="experiment-a")
    assert again.path == lease.path and again.reused
    await pool.release(again.path)
    assert await pool.clean("experiment-a") == [str(lease.path)]
    assert not lease.path.exists() and rows.get(lease.path) is None


async def test_clean_refuses_busy_worktrees_and_removes_idle_ones(repo: Path):
    pool = WorktreePool()
    busy = await pool.acquire(repo, owner="s1", session_id="s1", start="HEAD")
    idle = await pool.acquire(repo, owner="s2", session_id="s2", start="HEAD")
    await pool.release(idle.path)
    with pytest.raises(Conflict, match="in use by s1"):
        await pool.clean(str(busy.path))
    assert await pool.clean("all") == [str(idle.path)]
    assert not idle.path.exists() and busy.path.exists()


async def test_gc_reclaims_orphans_and_deletes_only_merged_stale_branches(
    repo: Path, isolated: Path
):
    pool = WorktreePool()
    gone = await pool.acquire(
        repo,
        owner="workflow-1-aaaaaa",
        session_id="workflow-1-aaaaaa",
        start="HEAD",
        branch="prodigy-workflow-1-aaaaaa",
    )
    live = await pool.acquire(
        repo,
        owner="workflow-2-bbbbbb",
        session_id="workflow-2-bbbbbb",
        start="HEAD",
        branch="prodigy-workflow-2-bbbbbb",
    )
    orphan = isolated / "worktrees" / gone.path.parent.name / "workflow-3-cccccc"
    git(repo, "worktree", "add", "--quiet", "--detach", str(orphan))
    git(repo, "branch", "prodigy-workflow-4-dddddd")  # stale, at main's tip: merged
    git(repo, "branch", "prodigy-workflow-5-eeeeee")
    commit_files(repo, {"x.txt": "x"})  # main moves on; make branch 5 hold its own commit
    git(repo, "checkout", "--quiet", "prodigy-workflow-5-eeeeee")
    commit_files(repo, {"only-here.txt": "y"})
    git(repo, "checkout", "--quiet", "main")
    git(repo, "branch", "my-own-branch")
    alive = _live("workflow-2-bbbbbb")

    dry = await pool.gc(alive, dry_run=True)
    assert dry.reclaimed == [str(gone.path)] and dry.removed == [str(orphan)]
    assert orphan.exists() and rows.get(gone.path).state == "busy"  # dry run: nothing changed

    (gone.path / "unsaved.txt").write_text("last edits\n")
    report = await pool.gc(alive)
    assert report.reclaimed == [str(gone.path)] and rows.get(gone.path).state == "idle"
    assert git(repo, "show", "prodigy-workflow-1-aaaaaa:unsaved.txt") == "last edits\n"
    assert report.removed == [str(orphan)] and not orphan.exists()
    assert rows.get(live.path).state == "busy"
    branches = git(repo, "branch", "--format=%(refname:short)").split()
    assert "prodigy-workflow-4-dddddd" not in branches  # merged into main: deleted
    assert "prodigy-workflow-5-eeeeee" in branches  # holds work merged nowhere: kept
    assert {"prodigy-workflow-2-bbbbbb", "my-own-branch", "main"} <= set(branches)
    assert any(k.endswith(":prodigy-workflow-5-eeeeee") for k in report.branches_kept)


async def test_gc_leaves_kept_worktrees_alone_when_their_session_is_over(repo: Path):
    pool = WorktreePool()
    lease = await pool.acquire(repo, owner="s1", session_id="s1", start="HEAD")
    await pool.release(lease.path, keep=True)  # cleanup_on_complete = false, keep_failed
    report = await pool.gc(_live())  # s1 is over
    assert report.reclaimed == [] and rows.get(lease.path).state == "kept"


async def test_gc_removes_idle_slots_past_their_idle_timeout(repo: Path):
    pool = WorktreePool(PoolSettings(idle_timeout=0.0))
    lease = await pool.acquire(repo, owner="s1", session_id="s1", start="HEAD")
    await pool.release(lease.path)
    report = await pool.gc(_live())
    assert report.removed == [str(lease.path)] and not lease.path.exists()


def test_branch_session_names_the_owner():
    assert branch_session("prodigy-workflow-17-abcdef") == "workflow-17-abcdef"
    assert branch_session("prodigy-agent-mapreduce-1-ab12cd/item_3") == "mapreduce-1-ab12cd"
    assert branch_session("prodigy-feature") is None and branch_session("main") is None


async def test_gc_enforces_max_age_and_the_disk_budget(repo: Path):
    commit_files(repo, {"big.bin": "x" * 300_000})
    aged = WorktreePool(PoolSettings(idle_timeout=None, max_age=0.0))
    lease = await aged.acquire(repo, owner="s1", session_id="s1", start="HEAD")
    await aged.release(lease.path)
    assert (await aged.gc(_live())).removed == [str(lease.path)]
    budget = WorktreePool(PoolSettings(idle_timeout=None, max_disk_mb=0))  # 0 MB: all too big
    one = await budget.acquire(repo, owner="a", session_id="a", start="HEAD")
    await budget.release(one.path)
    roomy = WorktreePool(PoolSettings(idle_timeout=None, max_disk_mb=10))
    assert (await roomy.gc(_live())).removed == []  # 0.3 MB fits in 10 MB
    assert (await budget.gc(_live())).removed == [str(one.path)]


async def test_gc_keeps_a_stale_branch_that_moves_while_it_is_collected(repo: Path):
    """The branch was merged when gc listed it; its session then resumed and committed to
    it, right before the deletion (the last `live` question). That commit must survive."""
    pool = WorktreePool()
    await pool.release((await pool.acquire(repo, owner="s", session_id="s", start="HEAD")).path)
    git(repo, "branch", "prodigy-workflow-4-dddddd")  # at main's tip: merged, stale
    asked: list[str] = []

    def live(session_id: str) -> bool:
        asked.append(session_id)
        if asked.count("workflow-4-dddddd") == 2:  # the re-check just before deleting
            tree = git(repo, "rev-parse", "HEAD^{tree}").strip()
            new = git(repo, "commit-tree", tree, "-p", "HEAD", "-m", "resumed work").strip()
            git(repo, "update-ref", "refs/heads/prodigy-workflow-4-dddddd", new)
        return False

    report = await pool.gc(live)

    assert asked.count("workflow-4-dddddd") == 2
    log = git(repo, "log", "--format=%s", "prodigy-workflow-4-dddddd")
    assert log.splitlines()[0] == "resumed work"
    assert any(k.endswith(":prodigy-workflow-4-dddddd") for k in report.branches_kept)
