"""prodigyd.pool against real repositories: reuse, strategies, spares, crash
re-adoption, gc."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from prodigyd import paths
from prodigyd.errors import Conflict
from prodigyd.git import cli, objects
from prodigyd.git.worktree import park_unchanged
from prodigyd.pool import SPARE, PoolSettings, WorktreePool, branch_session
from prodigyd.store import worktrees as rows
from prodigyd.store.worktrees import Strategy, WorktreeRow
from tests.gitutil import commit_files, git, make_repo, use_own_config

Pools = Callable[..., WorktreePool]

#: Pool settings for tests of something else than spares: no slot is made behind their back.
NO_SPARE = {"spare": 0}


@pytest.fixture
async def pools() -> AsyncIterator[Pools]:
    """Makes the test's pools; each is closed at the end, as the daemon closes its own, so
    no spare is still being made when the test's store goes away."""
    made: list[WorktreePool] = []

    def make(settings: PoolSettings | None = None) -> WorktreePool:
        made.append(WorktreePool(settings))
        return made[-1]

    yield make
    for pool in made:
        await pool.close()


def _status(path: Path) -> str:
    return git(path, "status", "--porcelain", "--ignored")


async def _idle_slots(repo: Path, count: int) -> list[WorktreeRow]:
    """Wait until `repo` has `count` idle slots (spares are made in the background)."""
    for _ in range(3000):
        idle = rows.idle_in(repo)
        if len(idle) >= count:
            return idle
        await asyncio.sleep(0.01)
    raise AssertionError(f"{repo} never had {count} idle slots: {rows.all_rows(repo)}")


@dataclass
class Gate:
    """A post-checkout hook that holds the first detached checkout (a spare's `git worktree
    add`: sessions' worktrees are on a branch) until `release` exists; `entered` marks
    that it holds one. Real git, stopped at a known point of making a spare."""

    entered: Path
    release: Path

    @classmethod
    def install(cls, repo: Path, folder: Path) -> Gate:
        gate = cls(folder / "entered", folder / "release")
        hook = repo / ".git" / "hooks" / "post-checkout"
        hook.parent.mkdir(exist_ok=True)
        hook.write_text(
            "#!/bin/sh\n"
            "git symbolic-ref -q HEAD >/dev/null && exit 0\n"
            f"mv {folder}/gate {folder}/gate.taken 2>/dev/null || exit 0\n"
            f": > {gate.entered}\n"
            f"while [ ! -e {gate.release} ]; do sleep 0.01; done\n"
        )
        hook.chmod(0o755)
        (folder / "gate").touch()
        return gate

    async def held(self) -> None:
        for _ in range(3000):
            if self.entered.exists():
                return
            await asyncio.sleep(0.01)
        raise AssertionError("no spare was being made")


def _live(*sessions: str):
    return lambda session_id: session_id in sessions


async def test_a_released_slot_is_reused_pristine_at_the_new_commit(repo: Path, pools: Pools):
    pool = pools()
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


@pytest.mark.parametrize("libgit2", ["loaded", "not loaded"])
async def test_a_slot_its_session_left_unchanged_goes_back_without_a_scrub(
    repo: Path, pools: Pools, monkeypatch: pytest.MonkeyPatch, libgit2: str
):
    """A session that changed and committed nothing (a check, a test run) leaves a slot
    that only needs its HEAD detached: no scrub (two git processes) but a status, in
    process when pygit2 is loaded (a daemon watching a repository), else one `git status`
    (pygit2 is not imported for it); the slot is as a scrub leaves it, for git and for the
    next session."""
    use_own_config(monkeypatch)  # the in-process status answers (git/objects.py)
    if libgit2 == "loaded":
        objects.load()
    else:
        monkeypatch.setattr(objects, "loaded", lambda: False)
    pool = pools(PoolSettings(**NO_SPARE))
    lease = await pool.acquire(
        repo, owner="s1", session_id="s1", start="HEAD", branch="prodigy-workflow-1-aaaaaa"
    )
    ran: list[list[str]] = []

    async def recorded(argv: list[str], **kwargs: Any) -> Any:
        ran.append(argv)
        return await real_run(argv, **kwargs)

    real_run = cli.run
    with monkeypatch.context() as patch:
        patch.setattr(cli, "run", recorded)
        await pool.release(lease.path, park_at="refs/heads/main")
    if libgit2 == "loaded":
        assert ran == []
    else:  # one git process, and it is a status
        assert len(ran) == 1 and "status" in ran[0], ran
    assert rows.get(lease.path).state == "idle"
    assert git(lease.path, "rev-parse", "--abbrev-ref", "HEAD").strip() == "HEAD"  # detached
    assert _head(lease.path) == _head(repo) and _status(lease.path) == ""
    assert "detached" in git(repo, "worktree", "list", "--porcelain")
    assert not (git_dir(lease.path) / "HEAD.lock").exists()
    assert git(repo, "branch", "--list", "prodigy-workflow-1-aaaaaa").strip()  # kept: not its job
    again = await pool.acquire(
        repo, owner="s2", session_id="s2", start="HEAD", branch="prodigy-workflow-2-bbbbbb"
    )
    assert again.path == lease.path and again.reused
    assert git(again.path, "branch", "--show-current").strip() == "prodigy-workflow-2-bbbbbb"


def git_dir(worktree: Path) -> Path:
    return Path(git(worktree, "rev-parse", "--absolute-git-dir").strip())


@pytest.mark.parametrize(
    "leftover",
    [
        "untracked file",
        "ignored file",
        "changed file",
        "target moved on",
        "merge under way",
        "index locked",
    ],
)
async def test_a_slot_with_anything_to_scrub_is_scrubbed_by_git(
    repo: Path, pools: Pools, monkeypatch: pytest.MonkeyPatch, leftover: str
):
    use_own_config(monkeypatch)
    commit_files(repo, {".gitignore": "*.log\n"})
    pool = pools(PoolSettings(**NO_SPARE))
    lease = await pool.acquire(
        repo, owner="s1", session_id="s1", start="HEAD", branch="prodigy-workflow-1-aaaaaa"
    )
    slot = lease.path
    if leftover == "untracked file":
        (slot / "new.txt").write_text("new\n")
    elif leftover == "ignored file":
        (slot / "debug.log").write_text("log\n")
    elif leftover == "changed file":
        (slot / "README.md").write_text("changed\n")
    elif leftover == "target moved on":
        commit_files(repo, {"next.txt": "next\n"})
    elif leftover == "merge under way":
        (git_dir(slot) / "MERGE_HEAD").write_text(_head(slot) + "\n")
    else:  # a git command running there, or killed mid-way
        (git_dir(slot) / "index.lock").touch()
    assert not await park_unchanged(slot, "refs/heads/main", keep_ignored=False)
    assert git(slot, "branch", "--show-current").strip() == "prodigy-workflow-1-aaaaaa"  # as it was
    await pool.release(slot, park_at="refs/heads/main")
    if leftover == "index locked":  # git refuses to scrub it: the slot is removed
        assert rows.get(slot) is None and not slot.exists()
        return
    assert git(slot, "rev-parse", "--abbrev-ref", "HEAD").strip() == "HEAD"
    assert _head(slot) == _head(repo) and _status(slot) == ""
    assert not (git_dir(slot) / "MERGE_HEAD").exists()


async def test_reuse_keeps_ignored_caches_and_prefers_the_same_workflow(repo: Path, pools: Pools):
    commit_files(repo, {".gitignore": "target/\n"})
    pool = pools(PoolSettings(strategy=Strategy.REUSE))
    a = await pool.acquire(repo, owner="a", session_id="a", start="HEAD", workflow="build")
    b = await pool.acquire(repo, owner="b", session_id="b", start="HEAD", workflow="lint")
    (a.path / "target").mkdir()
    (a.path / "target" / "cache.o").write_text("warm")
    await pool.release(a.path)
    await pool.release(b.path)  # b is now the most recently used slot
    again = await pool.acquire(repo, owner="c", session_id="c", start="HEAD", workflow="build")
    assert again.path == a.path
    assert (again.path / "target" / "cache.o").read_text() == "warm"


async def test_dedicated_slots_serve_only_their_workflow(repo: Path, pools: Pools):
    pool = pools(PoolSettings(strategy=Strategy.DEDICATED))
    a = await pool.acquire(repo, owner="a", session_id="a", start="HEAD", workflow="build")
    await pool.release(a.path)
    other = await pool.acquire(repo, owner="b", session_id="b", start="HEAD", workflow="lint")
    assert other.path != a.path and not other.reused


async def test_on_demand_and_a_full_pool_remove_worktrees_on_release(repo: Path, pools: Pools):
    on_demand = pools(PoolSettings(strategy=Strategy.ON_DEMAND))
    lease = await on_demand.acquire(repo, owner="sess-1", session_id="sess-1", start="HEAD")
    assert lease.path.name == "sess-1"  # named for its owner, as before the pool
    await on_demand.release(lease.path)
    assert not lease.path.exists() and rows.get(lease.path) is None
    small = pools(PoolSettings(size=1, trim_after=0, **NO_SPARE))
    one = await small.acquire(repo, owner="x", session_id="x", start="HEAD")
    two = await small.acquire(repo, owner="y", session_id="y", start="HEAD")
    await small.release(one.path)
    await small.release(two.path)
    assert one.path.exists() and not two.path.exists()
    assert str(lease.path) not in git(repo, "worktree", "list")


async def test_idle_slots_beyond_the_size_are_reused_until_trim_after_then_removed(
    repo: Path, pools: Pools
):
    """A map phase as wide as the pool, plus its session's worktree, needs one slot more
    than `size`: run again soon, it takes the extra slot back instead of making one (and
    removing one at its end); left idle, the extra slots go, the least recently used."""
    pool = pools(PoolSettings(size=1, trim_after=0.3, **NO_SPARE))
    one = await pool.acquire(repo, owner="x", session_id="x", start="HEAD")
    two = await pool.acquire(repo, owner="y", session_id="y", start="HEAD")
    await pool.release(one.path)
    await pool.release(two.path)
    assert [row.path for row in rows.idle_in(repo)] == [str(two.path), str(one.path)]
    again = await pool.acquire(repo, owner="z", session_id="z", start="HEAD")
    more = await pool.acquire(repo, owner="w", session_id="w", start="HEAD")
    assert again.reused and more.reused  # no `git worktree add`
    await pool.release(more.path)
    await pool.release(again.path)
    for _ in range(500):  # the rows go first, then the folders, then git's admin entries
        if (
            len(rows.idle_in(repo)) == 1
            and not more.path.exists()
            and str(more.path) not in git(repo, "worktree", "list")
        ):
            break
        await asyncio.sleep(0.01)
    assert [row.path for row in rows.idle_in(repo)] == [str(again.path)]
    assert again.path.exists() and not more.path.exists()
    assert str(more.path) not in git(repo, "worktree", "list")


async def test_an_owner_gets_its_own_worktree_back_after_a_crash(repo: Path, pools: Pools):
    pool = pools()
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


async def test_a_slot_registered_but_never_made_is_made_on_the_next_acquire(
    repo: Path, pools: Pools
):
    pool = pools()
    path = Path(str(repo) + "-never-made")
    rows.register(path, repo, owner="s1", session_id="s1", affinity=None, strategy=Strategy.POOLED)
    lease = await pool.acquire(repo, owner="s1", session_id="s1", start="HEAD")
    assert (lease.path / "README.md").exists() and pool.holds("s1", lease.path)


async def test_a_half_made_worktree_holding_the_branch_is_cleared_on_the_next_acquire(
    repo: Path, pools: Pools
):
    """A daemon killed inside `git worktree add -B BRANCH`: git had registered the worktree
    (BRANCH is checked out there, for git) but not yet written its `.git` file. The next
    acquire for the same owner must not fail with "cannot force update the branch ...
    checked out at": the half-made worktree is removed first."""
    pool = pools(PoolSettings(**NO_SPARE))
    branch = "prodigy-workflow-1-dddddd"
    lease = await pool.acquire(repo, owner="s1", session_id="s1", start="HEAD", branch=branch)
    (lease.path / ".git").unlink()  # what the kill left: registered, not usable
    again = await pool.acquire(repo, owner="s1", session_id="s1", start="HEAD", branch=branch)
    assert (again.path / "README.md").exists() and pool.holds("s1", again.path)
    assert git(again.path, "rev-parse", "--abbrev-ref", "HEAD").strip() == branch


async def test_named_worktrees_persist_and_are_exclusive(repo: Path, pools: Pools):
    pool = pools()
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
    assert await pool.clean("experiment-a", _live()) == [str(lease.path)]
    assert not lease.path.exists() and rows.get(lease.path) is None


async def test_clean_refuses_busy_worktrees_and_removes_idle_ones(repo: Path, pools: Pools):
    pool = pools(PoolSettings(**NO_SPARE))
    busy = await pool.acquire(repo, owner="s1", session_id="s1", start="HEAD")
    idle = await pool.acquire(repo, owner="s2", session_id="s2", start="HEAD")
    await pool.release(idle.path)
    with pytest.raises(Conflict, match="in use by s1"):
        await pool.clean(str(busy.path), _live("s1"))
    assert await pool.clean("all", _live("s1")) == [str(idle.path)]
    assert not idle.path.exists() and busy.path.exists()


async def test_clean_removes_a_busy_worktree_whose_session_is_over_keeping_its_work(
    repo: Path, pools: Pools
):
    """A session cancelled while an older daemon ran holds its slot until gc: `worktree
    clean` may take it, and what it left uncommitted is committed on its branch first."""
    pool = pools(PoolSettings(**NO_SPARE))
    branch = "prodigy-workflow-1-eeeeee"
    lease = await pool.acquire(repo, owner="s1", session_id="s1", start="HEAD", branch=branch)
    (lease.path / "left.txt").write_text("half done\n")
    assert await pool.clean(lease.path.name, _live()) == [str(lease.path)]
    assert not lease.path.exists() and rows.get(lease.path) is None
    assert git(repo, "show", f"{branch}:left.txt") == "half done\n"


async def test_gc_reclaims_orphans_and_deletes_only_merged_stale_branches(
    repo: Path, isolated: Path, pools: Pools
):
    pool = pools()
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


async def test_gc_holds_a_worktree_nobody_owns_while_deleting_it_would_lose_work(
    repo: Path, pools: Pools
):
    """Folders no row owns (a journal lost with no trace of it left): the collector removes
    the clean one, and keeps the one with changes not committed and the one whose commits
    (made detached) no ref has, which deleting would lose."""
    folder = paths.worktrees_dir(paths.repo_id(repo))
    clean, changed, detached = (folder / f"wt-left{n}" for n in range(3))
    for path in (clean, changed, detached):
        git(repo, "worktree", "add", "--quiet", "--detach", str(path))
    (changed / "precious.txt").write_text("precious\n")
    made = commit_files(detached, {"made.txt": "made\n"}, "made detached")

    report = await pools(PoolSettings(**NO_SPARE)).gc(_live())

    assert report.removed == [str(clean)] and not clean.exists()
    assert report.held == [str(changed), str(detached)]
    assert (changed / "precious.txt").read_text() == "precious\n"
    assert git(detached, "rev-parse", "HEAD").strip() == made


async def test_gc_leaves_kept_worktrees_alone_when_their_session_is_over(repo: Path, pools: Pools):
    pool = pools()
    lease = await pool.acquire(repo, owner="s1", session_id="s1", start="HEAD")
    await pool.release(lease.path, keep=True)  # cleanup_on_complete = false, keep_failed
    report = await pool.gc(_live())  # s1 is over
    assert report.reclaimed == [] and rows.get(lease.path).state == "kept"


async def test_gc_removes_idle_slots_past_their_idle_timeout(repo: Path, pools: Pools):
    pool = pools(PoolSettings(idle_timeout=0.0, **NO_SPARE))
    lease = await pool.acquire(repo, owner="s1", session_id="s1", start="HEAD")
    await pool.release(lease.path)
    report = await pool.gc(_live())
    assert report.removed == [str(lease.path)] and not lease.path.exists()


def test_branch_session_names_the_owner():
    assert branch_session("prodigy-workflow-17-abcdef") == "workflow-17-abcdef"
    assert branch_session("prodigy-agent-mapreduce-1-ab12cd/item_3") == "mapreduce-1-ab12cd"
    assert branch_session("prodigy-feature") is None and branch_session("main") is None


async def test_gc_enforces_max_age_and_the_disk_budget(repo: Path, pools: Pools):
    commit_files(repo, {"big.bin": "x" * 300_000})
    aged = pools(PoolSettings(idle_timeout=None, max_age=0.0, **NO_SPARE))
    lease = await aged.acquire(repo, owner="s1", session_id="s1", start="HEAD")
    await aged.release(lease.path)
    assert (await aged.gc(_live())).removed == [str(lease.path)]
    budget = pools(PoolSettings(idle_timeout=None, max_disk_mb=0, **NO_SPARE))  # 0 MB: too big
    one = await budget.acquire(repo, owner="a", session_id="a", start="HEAD")
    await budget.release(one.path)
    roomy = pools(PoolSettings(idle_timeout=None, max_disk_mb=10))
    assert (await roomy.gc(_live())).removed == []  # 0.3 MB fits in 10 MB
    assert (await budget.gc(_live())).removed == [str(one.path)]


async def test_gc_keeps_a_stale_branch_that_moves_while_it_is_collected(repo: Path, pools: Pools):
    """The branch was merged when gc listed it; its session then resumed and committed to
    it, right before the deletion (the last `live` question). That commit must survive."""
    pool = pools()
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


# -- spares ---------------------------------------------------------------------------------


def _head(path: Path | str) -> str:
    return git(Path(path), "rev-parse", "HEAD").strip()


def _worktrees(repo: Path) -> list[str]:
    listed = git(repo, "worktree", "list", "--porcelain").splitlines()
    return [line.removeprefix("worktree ") for line in listed if line.startswith("worktree ")]


async def _spare_rows_after_a_turn(repo: Path) -> list[WorktreeRow]:
    """Spare rows once a task started after an acquire has run its first step (a spare is
    registered before any git work)."""
    for _ in range(5):
        await asyncio.sleep(0)
    return [row for row in rows.all_rows(repo) if row.owner == SPARE or row.uses == 0]


async def test_a_spare_is_ready_for_the_next_acquire_while_the_first_holds_its_slot(
    repo: Path, pools: Pools
):
    pool = pools()
    start = _head(repo)
    held = await pool.acquire(
        repo, owner="s1", session_id="s1", start="HEAD", branch="prodigy-workflow-1-aaaaaa"
    )
    [spare] = await _idle_slots(repo, 1)  # as when a `merge: never` run keeps its worktree
    assert spare.path != str(held.path) and spare.uses == 0 and spare.owner is None
    assert _head(spare.path) == start and _status(Path(spare.path)) == ""  # parked, pristine
    assert git(Path(spare.path), "branch", "--show-current").strip() == ""  # detached
    assert spare.path in _worktrees(repo)
    new_tip = commit_files(repo, {"new.txt": "n\n"})
    taken = await pool.acquire(
        repo, owner="s2", session_id="s2", start=new_tip, branch="prodigy-workflow-2-bbbbbb"
    )
    assert taken.reused and str(taken.path) == spare.path and (taken.path / "new.txt").exists()
    [again] = await _idle_slots(repo, 1)  # it took the last idle slot: another spare
    assert again.path not in (str(held.path), spare.path) and _head(again.path) == new_tip


async def test_no_spare_with_spare_0_on_demand_a_named_worktree_or_beyond_the_size(
    repo: Path, pools: Pools
):
    none = pools(PoolSettings(**NO_SPARE))
    await none.acquire(repo, owner="a", session_id="a", start="HEAD")
    on_demand = pools(PoolSettings(strategy=Strategy.ON_DEMAND))
    await on_demand.acquire(repo, owner="b", session_id="b", start="HEAD")
    await pools().acquire(repo, owner="c", session_id="c", start="HEAD", name="experiment")
    assert await _spare_rows_after_a_turn(repo) == []
    small = pools(PoolSettings(size=1, trim_after=0))
    lease = await small.acquire(repo, owner="d", session_id="d", start="HEAD")
    [spare] = await _idle_slots(repo, 1)
    await small.release(lease.path)  # the pool is full with its spare: never more than `size`
    assert [row.path for row in rows.idle_in(repo)] == [spare.path] and not lease.path.exists()


async def test_spares_stop_at_the_size_even_when_more_are_asked_for(repo: Path, pools: Pools):
    pool = pools(PoolSettings(size=2, spare=3))
    await pool.acquire(repo, owner="a", session_id="a", start="HEAD")
    await _idle_slots(repo, 2)
    for _ in range(300):  # until the spares' task is done
        if not pool._spare_tasks:
            break
        await asyncio.sleep(0.01)
    assert len(rows.idle_in(repo)) == 2  # `size` idle slots, not `spare`


async def test_a_spare_being_made_is_neither_handed_out_nor_collected(
    repo: Path, tmp_path: Path, pools: Pools
):
    pool = pools()
    held = await pool.acquire(
        repo, owner="s1", session_id="s1", start="HEAD", branch="prodigy-workflow-1-aaaaaa"
    )
    gate = Gate.install(repo, tmp_path)  # before the spare's task runs: at the next await
    await gate.held()
    [making] = [row for row in rows.all_rows(repo) if row.path != str(held.path)]
    assert (making.state, making.owner, making.session_id) == ("busy", SPARE, None)
    report = await pool.gc(_live("s1"))  # busy, and no session owns it: not an orphan yet
    assert making.path not in report.reclaimed + report.removed
    assert rows.get(making.path).state == "busy"
    other = await pool.acquire(repo, owner="s2", session_id="s2", start="HEAD")
    assert str(other.path) != making.path and not other.reused  # never handed out half made
    gate.release.touch()
    [spare] = await _idle_slots(repo, 1)
    assert spare.path == making.path and _status(Path(spare.path)) == ""


async def test_close_cancels_a_spare_being_made_and_leaves_nothing_behind(
    repo: Path, tmp_path: Path, pools: Pools
):
    pool = pools()
    held = await pool.acquire(
        repo, owner="s1", session_id="s1", start="HEAD", branch="prodigy-workflow-1-aaaaaa"
    )
    gate = Gate.install(repo, tmp_path)
    await gate.held()
    await pool.close()  # the daemon stops
    folder = held.path.parent
    assert [row.path for row in rows.all_rows(repo)] == [str(held.path)]
    assert sorted(folder.iterdir()) == [held.path]
    assert _worktrees(repo) == [str(repo), str(held.path)]
    await pool.acquire(repo, owner="s2", session_id="s2", start="HEAD")  # closed: no more
    assert await _spare_rows_after_a_turn(repo) == []


async def test_a_spare_that_cannot_be_made_is_logged_and_removed(
    repo: Path, pools: Pools, caplog: pytest.LogCaptureFixture
):
    hook = repo / ".git" / "hooks" / "post-checkout"
    hook.parent.mkdir(exist_ok=True)
    hook.write_text("#!/bin/sh\ngit symbolic-ref -q HEAD >/dev/null || exit 1\n")  # detached
    hook.chmod(0o755)
    pool = pools()
    held = await pool.acquire(
        repo, owner="s1", session_id="s1", start="HEAD", branch="prodigy-workflow-1-aaaaaa"
    )
    for _ in range(3000):
        if "cannot make a spare worktree" in caplog.text:
            break
        await asyncio.sleep(0.01)
    assert "cannot make a spare worktree" in caplog.text
    assert held.path.is_dir() and not held.reused  # the acquirer never knew
    assert [row.path for row in rows.all_rows(repo)] == [str(held.path)]
    assert sorted(held.path.parent.iterdir()) == [held.path]


async def test_gc_cleans_up_the_spares_a_crash_cut_off(repo: Path, isolated: Path, pools: Pools):
    home = make_repo(isolated, {"dotfile": "mine\n"})  # the store inside a repository: git
    folder = paths.worktrees_dir(paths.repo_id(repo))  # run in a half-made folder reaches it
    made, half, locked, unmade = (folder / f"wt-crash{n}" for n in range(4))
    for path in (made, half, locked, unmade):
        rows.register(
            path,
            repo,
            owner=SPARE,
            session_id=None,
            affinity=None,
            strategy=Strategy.POOLED,
            uses=0,
        )
    git(repo, "worktree", "add", "--quiet", "--detach", str(made))  # git outlived the daemon
    half.mkdir(parents=True)  # cut off before git wrote its .git file
    (half / "README.md").write_text("# de")
    git(repo, "worktree", "add", "--quiet", "--detach", str(locked))  # killed mid-checkout:
    git(repo, "worktree", "lock", "--reason", "initializing", str(locked))  # locked, and
    (repo / ".git" / "worktrees" / locked.name / "index.lock").touch()  # its index too

    await pools().gc(_live())  # the next daemon's collector

    assert rows.get(made).state == "idle" and _status(made) == ""  # a good slot: reclaimed
    for gone in (half, locked, unmade):
        assert rows.get(gone) is None and not gone.exists()
    assert _worktrees(repo) == [str(repo), str(made)]
    assert git(home, "branch", "--show-current").strip() == "main"  # untouched


async def test_a_pristine_slot_is_handed_over_at_the_new_commit_without_going_idle(
    repo: Path, pools: Pools
):
    """A map agent's slot goes to the next agent as it is: claimed for it, detached at its
    start; one deleted by hand is removed and not handed over, nor one the pool forgot."""
    pool = pools(PoolSettings(**NO_SPARE))
    first = await pool.acquire(repo, owner="s/item_0", session_id="s", start="HEAD")
    new_tip = commit_files(repo, {"new.txt": "n\n"})
    handed = await pool.hand_over(
        repo, first.path, owner="s/item_1", session_id="s", start=new_tip, workflow=None
    )
    assert handed is not None and handed.path == first.path and handed.commit == new_tip
    row = rows.get(first.path)
    assert (row.state, row.owner, row.uses) == ("busy", "s/item_1", 2)
    assert git(first.path, "rev-parse", "HEAD").strip() == new_tip
    assert (first.path / "new.txt").exists()

    cli_remove = await cli.git(repo, "worktree", "remove", "--force", str(first.path))
    assert cli_remove.returncode == 0
    gone = await pool.hand_over(
        repo, first.path, owner="s/item_2", session_id="s", start=new_tip, workflow=None
    )
    assert gone is None and rows.get(first.path) is None  # removed, not handed over
    assert (
        await pool.hand_over(
            repo, first.path, owner="s/item_3", session_id="s", start=new_tip, workflow=None
        )
        is None
    )
