"""The worktree pool: git worktrees per repository, reused across sessions, agents and jobs.

`git worktree add` of a 2,000-file repository costs ~100 ms (ARCHITECTURE.md); pointing an
existing worktree at another commit costs one `git checkout --force`, a small fraction of
that. A map phase with hundreds of agents, and every session start on a warm daemon, take
their worktrees from here.

Lifecycle of a slot (rows in store/worktrees.py, written before the git work they describe):

    acquire: the owner's own worktree (a resumed owner re-adopts it), else an idle slot
             (claimed, then checked out at `start`), else a new `git worktree add`
    spare:   when an acquire leaves its repository with fewer than `spare` idle slots it
             could take (it took the last one, or made a new one), more are made in the
             background once its own checkout is done, never awaited by it (one task per
             repository; never more idle than `size`; not `on_demand`, not named), parked
             detached at its `start`, where the next acquire likely starts. A spare's row
             is registered busy for SPARE (no session) before the git work, so nothing
             hands it out half made; the collector would take that row for an orphan, so
             `_making` keeps it off (in memory: the row alone cannot tell this daemon's
             spare from a dead daemon's). A crash leaves the row busy and unowned: gc
             reclaims it, or removes it when half made. `close` (shutdown) cancels one
             being made and removes what it made.
    release: scrubbed (detached, changes and untracked files removed) and idle again; or
             removed, when allocation is on demand; or kept, for a person to look at.
             Idle slots beyond `size` (more ran at once: a map phase with `max_parallel`
             as large as the pool, plus its session's own) are removed `trim_after`
             seconds after their last use, in the background, unless taken again
             meanwhile: a map job run again soon reuses them instead of making and
             removing one worktree per run, on its agents' critical path
    hand over: a map agent's worktree left pristine (`release`'s `pristine`) goes to the
             phase's next agent as it is, claimed for it and pointed at its start, never
             idle in between (engine/mapreduce/runner.py); the phase's last ones are
             released as it ends, and a crash leaves them busy, as one that cut a
             release off
    gc:      busy worktrees whose owner is gone (its session finished or was cancelled, a
             crash cut its release off) are reclaimed, or removed when only half made;
             kept ones stay until cleaned;
             idle slots past their idle timeout, age or the disk budget are removed, folders
             and `prodigy-*` branches nothing refers to are deleted (a branch with commits
             merged nowhere is reported and kept, and so is a folder with changes not
             committed or commits no ref has: nothing is lost); while a journal is set
             aside or lost (store/aside.py) no folder or branch is

Named worktrees (`worktree: NAME` in a workflow) are never pooled: they stay on disk between
runs, in their last state, until `prodigyctl worktree clean NAME`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import secrets
import shutil
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from prodigyd import paths
from prodigyd.errors import Conflict, GitError, NotFound, ProdigyError
from prodigyd.files import subfolders
from prodigyd.git.cli import git
from prodigyd.git.repo import WorktreeState, commit_all, commit_id, worktree_state
from prodigyd.git.worktree import (
    add_worktree,
    checkout_fresh,
    clear_stale_locks,
    has_unfinished_rebase,
    list_worktrees,
    park_unchanged,
    point_idle_slot,
    remove_worktree,
    repository_of,
    scrub,
    stock_slot,
)
from prodigyd.proc import kill_processes_in
from prodigyd.store import aside, space
from prodigyd.store import worktrees as rows
from prodigyd.store.worktrees import BUSY, IDLE, KEPT, Strategy, WorktreeRow

log = logging.getLogger("prodigyd.pool")

#: The owner of a spare slot while the pool makes it; no session or agent has this id.
SPARE = "spare"

#: Branches prodigy makes: session branches and the branches kept for failed map agents.
#: Only these are ever deleted by the garbage collector.
PRODIGY_BRANCH = re.compile(r"prodigy-(?:agent-)?((?:workflow|mapreduce)-[A-Za-z0-9._-]+)(/.+)?")


def branch_session(name: str) -> str | None:
    """The session a prodigy branch belongs to: `prodigy-<session>` for a session,
    `prodigy-agent-<session>/<item>` for a failed map agent's kept work."""
    match = PRODIGY_BRANCH.fullmatch(name)
    return match.group(1) if match else None


@dataclass(frozen=True)
class PoolSettings:
    """`[worktree_config]` of config.toml (see docs/config.md)."""

    strategy: Strategy = Strategy.POOLED
    size: int = 8  # parallel_worktrees: idle slots kept per repository
    spare: int = 1  # idle slots made ahead, in the background, per repository acquired from
    trim_after: float = 60.0  # seconds an idle slot beyond `size` is kept (0: removed at once)
    idle_timeout: float | None = 1800.0  # seconds an idle slot may wait for its next user
    max_age: float | None = None  # seconds after which an idle slot is re-made
    cleanup_on_complete: bool = True  # a completed session's worktree goes back to the pool
    keep_failed: bool = False  # keep a failed map agent's worktree (and branch) to inspect
    max_disk_mb: int | None = None  # budget for the idle slots of one repository
    gc_interval: float | None = 600.0  # seconds between two collections by the daemon


@dataclass
class Lease:
    """A worktree handed to an owner; `reused` tells a pooled slot from a new one; `commit`
    is the id of the commit it has checked out (what `start` named when it was resolved)."""

    path: Path
    reused: bool
    commit: str


#: Whether a session still needs its worktree and branch (queued, running, failed,
#: interrupted or awaiting merge). Asked at the moment of each decision, never cached: a
#: session that starts while the collector runs must not lose what it just made.
Live = Callable[[str], bool]


@dataclass
class GcReport:
    """What `gc` did (or, with dry_run, would do)."""

    reclaimed: list[str] = field(default_factory=list)  # returned to the pool
    removed: list[str] = field(default_factory=list)  # worktrees deleted
    branches_deleted: list[str] = field(default_factory=list)
    branches_kept: list[str] = field(default_factory=list)  # stale but holding unmerged work
    held: list[str] = field(default_factory=list)  # nobody's, kept: an earlier job's, or work
    errors: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, list[str]]:
        return {
            "reclaimed": self.reclaimed,
            "removed": self.removed,
            "branches_deleted": self.branches_deleted,
            "branches_kept": self.branches_kept,
            "held": self.held,
            "errors": self.errors,
        }


class WorktreePool:
    """The one way sessions and agents get a worktree. Safe on one event loop: a slot is
    chosen and claimed without an `await` in between, so two acquirers never share one."""

    def __init__(self, settings: PoolSettings | None = None) -> None:
        self.settings = settings or PoolSettings()
        self._spare_tasks: dict[Path, asyncio.Task[None]] = {}  # repository -> making spares
        self._making: dict[Path, Path] = {}  # repository -> the spare it is making (busy)
        self._trims: dict[Path, asyncio.Task[None]] = {}  # repository -> removing extras
        self._stocking: dict[Path, asyncio.Future[None]] = {}  # slot -> stocking it (`_stock`)
        self._closed = False

    async def acquire(
        self,
        repo: Path,
        *,
        owner: str,
        session_id: str,
        start: str,
        branch: str | None = None,
        workflow: str | None = None,
        name: str | None = None,
        strategy: Strategy | None = None,
    ) -> Lease:
        """A worktree of `repo` at commit `start` (on `branch`, or detached) for `owner`.

        `start` may name a branch that other sessions merge into meanwhile: it is resolved
        to one commit id here, once, and only that id is handed to git (`commit_id`).
        """
        strategy = strategy or self.settings.strategy
        start = await commit_id(repo, start)
        mine = rows.owned_by(owner)
        if mine is not None and _usable(Path(mine.path)):  # its own, after a crash
            path = Path(mine.path)
            kill_processes_in(path)  # what a killed daemon's run left behind, and its locks
            clear_stale_locks(path, branch)
            await checkout_fresh(path, start, branch)
            if mine.name is None:  # a fresh start: nothing of the cut-off run (a named
                await git(path, "clean", "-ffdxq")  # worktree keeps its files, as always)
            return Lease(path, reused=True, commit=start)
        if mine is not None and mine.name is None:  # half made when a kill cut `worktree add`
            await self._remove(repo, Path(mine.path))  # off: git may hold its branch there
        if name is not None:
            return await self._acquire_named(repo, name, owner, session_id, start, branch)
        lease = None
        if strategy is not Strategy.ON_DEMAND:
            lease = await self._reuse(repo, owner, session_id, start, branch, workflow, strategy)
        if lease is None:
            path = paths.worktrees_dir(paths.repo_id(repo)) / _slot_name(owner, strategy)
            rows.register(
                path, repo, owner=owner, session_id=session_id, affinity=workflow, strategy=strategy
            )
            await self._create(repo, path, start, branch)
            lease = Lease(path, reused=False, commit=start)
        # after the acquirer's next step (a session's: its first step announced), which
        # counting the idle slots (~40 µs) need not delay
        asyncio.get_running_loop().call_soon(self._keep_spares, repo, start, strategy, workflow)
        return lease

    async def hand_over(
        self,
        repo: Path,
        path: Path,
        *,
        owner: str,
        session_id: str,
        start: str,
        workflow: str | None,
    ) -> Lease | None:
        """The busy slot at `path`, which its owner left pristine (`release`'s `pristine`:
        detached, nothing changed, untracked or ignored), straight to `owner` at commit
        `start`: what `release` and then `acquire` would do, without the slot going idle
        in between (a map phase's next agent takes the slot of one that is done; their
        journal writes and checks were ~0.6 ms an item). None when the pool no longer has
        it, or it cannot be pointed at `start` (it is then removed, as `acquire` removes an
        unusable idle slot)."""
        if not rows.claim(str(path), owner=owner, session_id=session_id, affinity=workflow):
            return None
        try:
            commit = await point_idle_slot(path, start, None)
        except (GitError, OSError) as exc:
            log.warning("pooled worktree %s is unusable (%s): removing it", path, exc)
            await self._remove(repo, path)
            return None
        return Lease(path, reused=True, commit=commit)

    async def release(
        self,
        path: Path,
        *,
        keep: bool = False,
        pristine: bool = False,
        park_at: str | None = None,
        seen: WorktreeState | None = None,
        stock: bool = False,
    ) -> None:
        """Give a worktree back: kept (for inspection), pooled again, or removed.

        `pristine`: the caller just saw it detached with nothing changed, untracked or
        ignored, so it goes back to the pool without being scrubbed. `park_at`: where the
        next user will likely start (a session parks it at its target branch's new tip);
        by default it stays at the commit it has. A scrub that would change no file is
        not run either (`park_unchanged`: a session that committed nothing; `seen`, its
        state as the caller read it with nothing run there since, spares it a status).
        `stock`: prepare it for a session's start (`_stock`), as a session's release asks;
        a map agent's does not: agents start detached, writing no ref, and a 1,000-item
        phase took 10-20% longer stocking every slot it gave back.
        """
        row = rows.get(path)
        if row is not None and row.name is not None:  # a named worktree keeps its files, but
            await git(path, "checkout", "--quiet", "--detach")  # not its owner's branch
            keep = True
        if keep:
            rows.set_state(path, KEPT)
            return
        if row is None or not self._poolable(row):
            await self._remove(Path(row.repo) if row else repository_of(path), path)
            return
        keep_ignored = row.strategy != Strategy.POOLED
        try:
            if not pristine and not await park_unchanged(
                path, park_at, keep_ignored=keep_ignored, seen=seen
            ):
                await scrub(path, keep_ignored=keep_ignored, park_at=park_at)
        except GitError as exc:
            log.warning("cannot scrub %s (%s): removing it", path, exc.message)
            await self._remove(Path(row.repo), path)
            return
        rows.set_state(path, IDLE)
        if stock:
            self._stock(path)
        self._trim_later(Path(row.repo))

    async def clean(self, target: str, live: Live) -> list[str]:
        """Remove one worktree (by path or name) or, with "all", every idle one; refuses one
        still in use (`_in_use`); one whose owner is over goes, its leftovers committed on
        its branch first."""
        chosen = [
            row
            for row in rows.all_rows()
            if target in ("all", row.path, row.name, Path(row.path).name)
        ]
        if not chosen:
            raise NotFound(f"no worktree {target!r}", hint="`prodigyctl worktree ls` lists them")
        if target == "all":
            chosen = [row for row in chosen if row.state == IDLE]
        busy = [row for row in chosen if row.state == BUSY and self._in_use(row, live)]
        if busy:
            owner = busy[0].owner
            raise Conflict(
                f"worktree {busy[0].path} is in use by {owner}",
                hint=f"it holds that session's work, running or kept for a resume or a merge "
                f"(`prodigyctl sessions show {owner}` says which): let it finish, or "
                f"`prodigyctl cancel {owner}`, which gives the worktree back",
            )
        for row in chosen:
            if row.state == BUSY and _usable(Path(row.path)):
                await _save_leftovers(Path(row.path), row.owner or "?")
            await self._remove(Path(row.repo), Path(row.path))
        return [row.path for row in chosen]

    def _in_use(self, row: WorktreeRow, live: Live) -> bool:
        """Whether a busy slot is still someone's: a live session's (its own worktree or
        one of its map agents'), or a spare this daemon is making."""
        return Path(row.path) in self._making.values() or bool(
            row.session_id and live(row.session_id)
        )

    async def reclaim(self, path: Path, owner: str) -> None:
        """Take back the worktree of an owner that is over for good (a cancelled session):
        what it left uncommitted is committed on its branch first, then the slot is
        scrubbed and idle again; the branch stays, with its work, for gc to judge."""
        await _save_leftovers(path, owner)
        await self.release(path)

    def holds(self, owner: str, path: Path) -> bool:
        """Whether `owner` still has the worktree at `path` (not released to another)."""
        if not path.is_dir():
            return False
        row = rows.get(path)
        return row is None or (row.owner == owner and row.state != IDLE)  # None: pre-pool

    def worktrees(self) -> list[WorktreeRow]:
        return rows.all_rows()

    async def close(self) -> None:
        """At daemon shutdown: make no more spares, and cancel those being made (what one
        had made is removed; after a crash instead, the collector removes it)."""
        self._closed = True
        tasks = [*self._spare_tasks.values(), *self._trims.values()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, *self._stocking.values(), return_exceptions=True)

    def _stock(self, path: Path) -> None:
        """Stock the slot's spare inodes (git/reflock.py) in a worker thread, awaited by
        nobody but the slot's removal (its files must not appear while git deletes the
        folder): its next ref writes are faster for them, and no slower without them."""
        if self._closed or path in self._stocking:
            return  # one stocking at a time: one that misses a change only costs time
        stocking = asyncio.get_running_loop().run_in_executor(None, stock_slot, path)
        self._stocking[path] = stocking
        stocking.add_done_callback(lambda _: self._stocking.pop(path, None))

    async def gc(self, live: Live, *, dry_run: bool = False) -> GcReport:
        """Reclaim what nothing owns any more (see the module docstring)."""
        report = GcReport()
        hold = bool(aside.set_aside())  # the jobs of a set-aside or lost journal may own
        for repo in self._repositories():  # what is nobody's here (store/aside.py): keep it
            try:
                await self._gc_repo(repo, live, report, dry_run, hold=hold)
            except ProdigyError as exc:
                report.errors.append(f"{repo}: {exc.message}")
        return report

    # -- acquire ------------------------------------------------------------------------

    async def _reuse(
        self,
        repo: Path,
        owner: str,
        session_id: str,
        start: str,
        branch: str | None,
        workflow: str | None,
        strategy: Strategy,
    ) -> Lease | None:
        """Claim an idle slot and check it out at `start`; None when none is usable."""
        while True:
            row = choose_slot(rows.idle_in(repo), strategy, workflow)
            if row is None:
                return None
            rows.claim(row.path, owner=owner, session_id=session_id, affinity=workflow)
            try:
                commit = await point_idle_slot(Path(row.path), start, branch)
            except (GitError, OSError) as exc:  # deleted by hand, corrupted: use another
                log.warning("pooled worktree %s is unusable (%s): removing it", row.path, exc)
                await self._remove(repo, Path(row.path))
                continue
            return Lease(Path(row.path), reused=True, commit=commit)

    async def _acquire_named(
        self, repo: Path, name: str, owner: str, session_id: str, start: str, branch: str | None
    ) -> Lease:
        row = rows.named(repo, name)
        if row is not None and row.state == BUSY and row.owner != owner:
            raise Conflict(
                f"the named worktree {name!r} is in use by {row.owner}",
                hint="wait for that session to finish, or use another worktree name",
            )
        path = paths.named_worktrees_dir(paths.repo_id(repo)) / name
        if row is not None and _usable(path):
            rows.claim(row.path, owner=owner, session_id=session_id, affinity=None)
            await checkout_fresh(path, start, branch)
            return Lease(path, reused=True, commit=start)
        if row is None and path.exists() and aside.set_aside():  # an earlier job's, maybe
            raise Conflict(
                f"the named worktree {name!r} ({path}) belongs to no job the journal knows, "
                "and a job of a journal set aside or lost may own it: it is kept",
                hint=f"look at it, then move it away to let this run make it again; "
                f"{aside.problem()}",
            )
        rows.register(
            path,
            repo,
            owner=owner,
            session_id=session_id,
            affinity=None,
            strategy=Strategy.DEDICATED,
            name=name,
        )
        await self._create(repo, path, start, branch)
        return Lease(path, reused=False, commit=start)

    async def _create(self, repo: Path, path: Path, start: str, branch: str | None) -> None:
        """`git worktree add`, clearing what a crash may have left at `path` first."""
        if path.exists():
            await self._remove(repo, path, forget=False)
        await add_worktree(repo, path, start, branch)

    # -- spares -------------------------------------------------------------------------

    def _keep_spares(
        self, repo: Path, start: str, strategy: Strategy, workflow: str | None
    ) -> None:
        """After an acquire: when the next one would find fewer than `spare` idle slots to
        take, make them in the background, parked detached at `start` (where the next one
        likely starts). Called once the acquirer's own checkout is done, and never awaited
        by it; one task per repository at a time. Not on a disk known to be full."""
        if (
            strategy is Strategy.ON_DEMAND
            or self._closed
            or repo in self._spare_tasks
            or space.current() is not None
            or not self._short_of_spares(repo, strategy, workflow)
        ):
            return
        self._spare_tasks[repo] = asyncio.create_task(
            self._make_spares(repo, start, strategy, workflow), name=f"spare worktrees of {repo}"
        )

    def _short_of_spares(self, repo: Path, strategy: Strategy, workflow: str | None) -> bool:
        """Asked after every acquire: the idle slots are counted, and read only when not
        every one may serve (`servable`: dedicated ones serve their own workflow)."""
        idle = rows.idle_count(repo)
        if idle + (repo in self._making) >= self.settings.size:  # as _idle_count
            return False
        if strategy != Strategy.DEDICATED:
            return idle < self.settings.spare
        return len(servable(rows.idle_in(repo), strategy, workflow)) < self.settings.spare

    async def _make_spares(
        self, repo: Path, start: str, strategy: Strategy, workflow: str | None
    ) -> None:
        """Make spares until there are enough. A failure (a full disk, git) is logged and
        ends it: a spare only ever saves time, and the next acquire tries again."""
        try:
            while not self._closed and self._short_of_spares(repo, strategy, workflow):
                await self._make_spare(repo, start, strategy, workflow)
        except ProdigyError as exc:  # a full disk, git
            log.warning("cannot make a spare worktree of %s: %s", repo, exc.render())
        except Exception:  # a bug; still never raised into a session
            log.exception("cannot make a spare worktree of %s", repo)
        finally:
            del self._spare_tasks[repo]

    async def _make_spare(
        self, repo: Path, start: str, strategy: Strategy, workflow: str | None
    ) -> None:
        """One spare slot: registered busy for SPARE (so no acquirer takes it half made),
        made, then idle. While it is in `_making` the collector leaves it alone; a crash
        leaves a busy row no session owns, which the collector reclaims or removes."""
        path = paths.worktrees_dir(paths.repo_id(repo)) / _slot_name(SPARE, strategy)
        self._making[repo] = path
        try:
            rows.register(
                path,
                repo,
                owner=SPARE,
                session_id=None,
                affinity=workflow,
                strategy=strategy,
                uses=0,
            )
            await self._create(repo, path, start, None)
            rows.set_state(path, IDLE)
            self._stock(path)
        except BaseException:  # cancelled at shutdown, or failed: nothing half made stays
            with contextlib.suppress(ProdigyError, OSError):  # else the collector removes it
                await self._remove(repo, path)
            raise
        finally:
            del self._making[repo]

    def _idle_count(self, repo: Path) -> int:
        """Idle slots of `repo`, counting the spare being made: never more than `size`."""
        return rows.idle_count(repo) + (repo in self._making)

    # -- release and removal ------------------------------------------------------------

    def _poolable(self, row: WorktreeRow) -> bool:
        if row.strategy == Strategy.ON_DEMAND or has_unfinished_rebase(Path(row.path)):
            return False
        return self.settings.trim_after > 0 or self._idle_count(Path(row.repo)) < self.settings.size

    def _trim_later(self, repo: Path) -> None:
        """When `repo` has more idle slots than `size`: remove the extras once they have
        been idle `trim_after` seconds (one task per repository; not after `close`)."""
        if self._closed or repo in self._trims or self._idle_count(repo) <= self.settings.size:
            return
        self._trims[repo] = asyncio.create_task(self._trim(repo), name=f"trim pool of {repo}")

    async def _trim(self, repo: Path) -> None:
        try:
            while self._idle_count(repo) > self.settings.size:
                await asyncio.sleep(self.settings.trim_after)
                await self._remove_extras(repo)
        except ProdigyError as exc:  # git: the collector tries again
            log.warning("cannot remove an extra worktree of %s: %s", repo, exc.render())
        except Exception:  # a bug; the collector still removes them
            log.exception("cannot remove an extra worktree of %s", repo)
        finally:
            del self._trims[repo]

    async def _remove_extras(self, repo: Path) -> list[str]:
        """Remove the extras (`_extras`); their paths. Every row goes at once, before any
        await, so no acquirer takes one meanwhile; a crash before the folders are gone
        leaves folders no row owns, which the collector removes."""
        extras = [Path(row.path) for row in self._extras(repo)]
        for path in extras:
            rows.forget(path)
        for path in extras:
            await self._remove(repo, path)
        return [str(path) for path in extras]

    def _extras(self, repo: Path) -> list[WorktreeRow]:
        """The idle slots beyond the `size` most recently used that have been idle for
        `trim_after` seconds."""
        due = time.time() - self.settings.trim_after
        idle = rows.idle_in(repo)[self.settings.size :]
        return [row for row in idle if row.last_used_at <= due]

    async def _remove(self, repo: Path | None, path: Path, *, forget: bool = True) -> None:
        """Delete a worktree (its folder and git's record of it), then forget its row."""
        stocking = self._stocking.get(path)
        if stocking is not None:
            await asyncio.wait({stocking})
        if repo is not None and repo.is_dir():
            with contextlib.suppress(GitError):
                await remove_worktree(repo, path)
        if path.exists():  # not a registered worktree (half made), or git refused
            shutil.rmtree(path, ignore_errors=True)
        if repo is not None and repo.is_dir():
            with contextlib.suppress(GitError):
                await git(repo, "worktree", "prune")
        if forget:
            rows.forget(path)

    # -- garbage collection -------------------------------------------------------------

    def _repositories(self) -> list[Path]:
        """Every repository with a worktree of ours: registered ones, and any a folder under
        `$PRODIGY_HOME/worktrees` points to (worktrees of older versions, half-made ones)."""
        found = {Path(row.repo) for row in rows.all_rows()}
        for folder in worktree_folders():
            repo = repository_of(folder)
            if repo is not None:
                found.add(repo)
        return sorted(repo for repo in found if repo.is_dir())

    async def _gc_repo(
        self, repo: Path, live: Live, report: GcReport, dry_run: bool, *, hold: bool
    ) -> None:
        if not dry_run:
            await git(repo, "worktree", "prune")
        for listed in rows.all_rows(repo):
            row = rows.get(listed.path)  # fresh: an earlier await may have let it be claimed
            if row is not None:
                await self._gc_row(row, live, report, dry_run)
        if dry_run:  # extras a stopped daemon did not get to remove
            report.removed.extend(row.path for row in self._extras(repo))
        else:
            report.removed.extend(await self._remove_extras(repo))
        if hold:
            report.held.extend(str(folder) for folder in self._unclaimed(repo, live))
            return
        await self._gc_folders(repo, live, report, dry_run)
        await _gc_branches(repo, live, report, dry_run)

    async def _gc_row(self, row: WorktreeRow, live: Live, report: GcReport, dry_run: bool) -> None:
        path = Path(row.path)
        if path in self._making.values():  # a spare being made: busy, but no session's
            return
        if not path.is_dir():
            report.removed.append(row.path)
            if not dry_run:
                rows.forget(path)
            return
        # kept worktrees (named, kept to look at) stay until `worktree clean`
        owner_gone = row.state == BUSY and not self._in_use(row, live)
        if owner_gone and not _usable(path):  # half made: a crash cut `git worktree add` off
            report.removed.append(row.path)
            if not dry_run:
                await self._remove(Path(row.repo), path)
            return
        if owner_gone:
            report.reclaimed.append(row.path)
            if not dry_run:
                await self.reclaim(path, row.owner or "?")
            return
        if row.state == IDLE and self._expired(row):
            report.removed.append(row.path)
            if not dry_run:
                await self._remove(Path(row.repo), path)

    def _expired(self, row: WorktreeRow) -> bool:
        now, settings = time.time(), self.settings
        if settings.idle_timeout is not None and now - row.last_used_at > settings.idle_timeout:
            return True
        if settings.max_age is not None and now - row.created_at > settings.max_age:
            return True
        return settings.max_disk_mb is not None and _over_budget(row, settings.max_disk_mb)

    async def _gc_folders(self, repo: Path, live: Live, report: GcReport, dry_run: bool) -> None:
        """Remove the folders nothing owns, but for those holding work: no row says that
        work may go (a journal lost without its note, a folder left by hand)."""
        for folder in self._unclaimed(repo, live):
            if await _holds_work(repo, folder):
                report.held.append(str(folder))
                continue
            report.removed.append(str(folder))
            if not dry_run:
                await self._remove(repo, folder)

    def _unclaimed(self, repo: Path, live: Live) -> list[Path]:
        """Folders under our worktrees dir that no row and no live session claims."""
        return [
            folder
            for folder in worktree_folders(paths.worktrees_dir(paths.repo_id(repo)))
            if rows.get(folder) is None and not live(folder.name)  # name: an old layout's id
        ]


def choose_slot(
    idle: Iterable[WorktreeRow], strategy: Strategy, workflow: str | None
) -> WorktreeRow | None:
    """Which idle slot to hand out: the warmest (most recently used, `idle` is ordered so),
    a used one before a spare never used (a used one keeps its caches with `reuse`, and
    is parked where its last user's target went); for `reuse` one that last served the
    same workflow if there is one; for `dedicated` only such a slot."""
    slots = sorted(servable(idle, strategy, workflow), key=lambda row: row.uses == 0)
    same = [row for row in slots if row.affinity == workflow and workflow is not None]
    if strategy == Strategy.REUSE and same:
        return same[0]
    return slots[0] if slots else None


def servable(
    idle: Iterable[WorktreeRow], strategy: Strategy, workflow: str | None
) -> list[WorktreeRow]:
    """The idle slots that may serve `workflow`: any, but for `dedicated` only those that
    served it."""
    if strategy == Strategy.DEDICATED:
        return [row for row in idle if row.affinity == workflow and workflow is not None]
    return list(idle)


async def _gc_branches(repo: Path, live: Live, report: GcReport, dry_run: bool) -> None:
    """Delete `prodigy-*` branches no live session uses and no worktree has checked out,
    when their commits are part of some other branch; report the others.

    Each deletion is a compare-and-swap on the commit found merged: a branch that moved
    since (its session resumed) is left alone rather than deleted with unmerged work.
    """
    checked_out = {info.branch for info in await list_worktrees(repo)}
    done = await git(repo, "for-each-ref", "--format=%(refname:short) %(objectname)", "refs/heads/")
    tips = dict(line.split(" ", 1) for line in done.stdout.splitlines() if " " in line)
    owners = {name: branch_session(name) for name in tips}
    stale = [
        name
        for name, owner in owners.items()
        if owner is not None and name not in checked_out and not live(owner)
    ]
    if not stale:
        return
    merged: set[str] = set()
    for other in (name for name, owner in owners.items() if owner is None):
        listed = await git(repo, "branch", "--format=%(refname:short)", "--merged", other)
        merged.update(listed.stdout.split())
    for name in stale:
        if live(owners[name] or ""):  # started meanwhile
            continue
        if name not in merged:
            report.branches_kept.append(f"{repo}:{name}")
            continue
        if dry_run:
            report.branches_deleted.append(f"{repo}:{name}")
            continue
        gone = await git(repo, "update-ref", "-d", f"refs/heads/{name}", tips[name], check=False)
        if gone.ok:
            report.branches_deleted.append(f"{repo}:{name}")
        else:
            report.branches_kept.append(f"{repo}:{name}")


async def _save_leftovers(path: Path, owner: str) -> None:
    """Before a reclaimed worktree is scrubbed, commit what its owner left uncommitted on
    its prodigy branch (a cancelled session's last edits): the collector deletes no work."""
    done = await git(path, "branch", "--show-current", check=False)
    if done.ok and branch_session(done.stdout.strip()) is not None:
        with contextlib.suppress(GitError):
            await commit_all(path, f"prodigy: uncommitted changes left by {owner}")


async def _holds_work(repo: Path, folder: Path) -> bool:
    """Whether deleting the worktree at `folder` would lose work: changes not committed, or
    a HEAD no ref of `repo` keeps (commits made detached). A half-made one holds none; one
    git cannot read is kept rather than guessed at."""
    if not _usable(folder):
        return False
    try:
        state = await worktree_state(folder, load=False)
        refs = await git(repo, "for-each-ref", "--count=1", "--contains", state.head)
    except GitError:
        return True
    return state.changed or not refs.stdout.strip()


def _usable(path: Path) -> bool:
    return (path / ".git").is_file()


def _slot_name(owner: str, strategy: Strategy) -> str:
    """On-demand worktrees are named for their owner (as before the pool); pool slots get a
    neutral name, since they serve many owners."""
    if strategy == Strategy.ON_DEMAND:
        return owner.replace("/", "--")
    return f"wt-{secrets.token_hex(4)}"


def worktree_folders(root: Path | None = None) -> list[Path]:
    """Worktree folders under `root` (default: every repository's), named ones included."""
    bases = [root] if root is not None else subfolders(paths.worktrees_root())
    found = []
    for base in bases:
        for child in subfolders(base):
            named = child == paths.named_worktrees_dir(base.name)
            found.extend(subfolders(child) if named else [child])
    return found


def _over_budget(row: WorktreeRow, max_disk_mb: int) -> bool:
    """Whether this idle slot, with the idle slots used after it, exceeds the budget: the
    least recently used slots are the ones removed first."""
    newer = [r for r in rows.idle_in(Path(row.repo)) if r.last_used_at >= row.last_used_at]
    return sum(_disk_bytes(Path(r.path)) for r in newer) > max_disk_mb * 1024 * 1024


def _disk_bytes(folder: Path) -> int:
    total = 0
    for root, dirs, files in os.walk(folder):
        dirs[:] = [d for d in dirs if d != ".git"]
        for name in files:
            with contextlib.suppress(OSError):
                total += os.lstat(os.path.join(root, name)).st_size
    return total
