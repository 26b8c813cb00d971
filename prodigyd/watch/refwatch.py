"""The daemon's own watch of repositories (`prodigyctl watch add`): refs and workflow
files, with no hook installed.

What is watched, per repository (watch/repos.py keeps the list):

- its refs: `<common dir>/refs/` recursively, and `packed-refs` and `HEAD` in the common
  dir (a linked worktree's refs live there too). Any change re-reads every branch and tag
  with one `git for-each-ref` and compares the snapshot with the last one (watch/refs.py):
  ref files come and go without any ref moving (`git pack-refs`), and one change may move
  several refs (a fetch, a rebase). Whatever moved the refs (commit, `git update-ref`,
  fetch, rebase, another tool) is seen.
- its `.prodigy/workflows/` files: a new, changed or removed file is loaded again at once
  (in a worker thread; the loader caches by content) and a file that does not load is
  reported as a `workflow_invalid` event of the repository's triggers log (watch/dropped.py)
  and in the daemon's log; it never stops the other files from firing. `triggers ls`
  shows its error.

Two watchfiles watches serve every repository, one recursive and one not, started again
whenever the set of folders changes (a repository added or removed, `.prodigy/workflows/`
created): each `awatch` holds a worker thread, so two for all repositories, not two each.

Nothing here is fatal to the daemon. When inotify cannot be used (no more watches: ENOSPC,
a file system without it) the watch polls instead (watchfiles `force_polling`) and says so
in the log and in `watch ls`. Events lost to a queue overflow are made up for by reading
every repository's refs again every RESCAN_SECONDS. A repository that disappears is shown
as `missing` by `watch ls` with a log line, and watched again if it comes back.

The refs acted on are kept per repository (watch/repos.py), ref by ref as its runs are
submitted, and a daemon starts from them rather than from the refs it finds: the watch is
set up after `ready`, so a commit made while the daemon starts, or while it was stopped,
still fires once the watch covers the repository: each ref moved since once, for its
newest tip, through the usual gate. A ref whose runs the scheduler refuses because the
daemon stops is not kept: the next daemon fires it. `close` reads the refs once more when
the jobs are over, so that merges prodigy made while stopping (`daemon stop --drain`) are
dropped as its own: only this daemon knows them (git/merge.py keeps them in memory). A
repository just added (`watch add`), or last watched by an older prodigyd, starts from its
refs as they are.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from prodigyd.clock import now_iso
from prodigyd.errors import GitError, NoSpace, NotFound, ProdigyError, ShuttingDown, StoreError
from prodigyd.eventtypes import EventType
from prodigyd.git import objects
from prodigyd.git import repo as git_repo
from prodigyd.git.cli import git
from prodigyd.watch import files, refs, repos, triggers
from prodigyd.watch.fire import Sighting, TriggerPath

log = logging.getLogger("prodigyd.watch")

DEBOUNCE_MS = 50
STEP_MS = 10
POLL_DELAY_MS = 300
RESCAN_SECONDS = 60.0
RETRY_SECONDS = 1.0
#: How long `close` reads one repository's refs at the daemon's stop; past it, the next
#: daemon reads them (a merge made while stopping may then fire once).
CLOSE_READ_SECONDS = 5.0
#: How long `watch add` waits for the watch to include the new repository.
READY_SECONDS = 10.0
WORKFLOWS = triggers.FOLDER

Watch = Callable[..., AsyncIterator[set[tuple[Any, str]]]]


@dataclass
class _Repo:
    path: Path
    added_at: str
    common: Path | None = None  # the common git dir, where the refs are
    refs: dict[str, str] | None = None  # the refs acted on; None until attached (or gone)
    workflows: dict[Path, tuple[str | None, str | None]] = field(default_factory=dict)
    problem: str | None = None  # why it is not watched now
    fresh: bool = True  # read before the watch covered it: read again once it does
    git_dir: Path | None = None  # its own git dir (where index.lock and MERGE_HEAD are)
    settle: float | None = None  # how long its file changes settle; None: no file triggers
    changed_files: set[str] = field(default_factory=set)  # waiting to settle
    last_change: float = 0.0  # the event loop's time of the last one
    files_task: asyncio.Task[None] | None = None
    dirty_refs: bool = False
    dirty_workflows: bool = False
    task: asyncio.Task[None] | None = None


class RepoWatcher:
    """Watches the listed repositories and fires their triggers through `firing`."""

    def __init__(self, firing: TriggerPath, *, _awatch: Watch | None = None) -> None:
        self.firing = firing
        self.polling: str | None = None  # why the watch polls; None while inotify works
        self._repos: dict[Path, _Repo] = {}
        self._awatch = _awatch
        self._restart = asyncio.Event()
        self._requested = 0  # watch rounds asked for (a repository added or removed)
        self._covered = 0  # the last request a running watch covers
        self._ready = asyncio.Condition()

    async def run(self) -> None:
        """Watch until cancelled; never raises anything else."""
        try:
            for entry in await asyncio.to_thread(repos.load):
                repo = self._repos[Path(entry.path)] = _Repo(Path(entry.path), entry.added_at)
                await self._attach(repo)
        except Exception:  # a bad list or repository: the rescan tries them again
            log.exception("attaching the watched repositories failed")
        rescan = asyncio.create_task(self._rescan(), name="repository rescan")
        try:
            while True:
                try:
                    await self._watch_round()
                except Exception:  # a bug must not end the watching for good
                    log.exception("repository watch failed; starting it again")
                    await asyncio.sleep(RETRY_SECONDS)
        finally:
            rescan.cancel()
            for repo in self._repos.values():
                for task in (repo.task, repo.files_task):
                    if task is not None:
                        task.cancel()

    async def add(self, where: Path) -> dict[str, Any]:
        """Watch the repository holding `where`; returns it as `listing` shows it, with
        `added` false when it was watched already."""
        try:
            root = (await git_repo.repo_root(where)).resolve()
        except GitError as exc:
            what = "Not a git repository" if where.exists() else "No such folder"
            raise GitError(
                f"{what}: {where}",
                hint="`prodigyctl watch add PATH` takes a folder inside a git repository",
                code=exc.code,  # NOT_A_REPO, as every command outside a repository says
            ) from None
        if root in self._repos:
            return {"added": False, **self._describe(self._repos[root])}
        repo = self._repos[root] = _Repo(root, now_iso())
        try:
            await asyncio.to_thread(repos.save, self._entries())
        except BaseException:
            del self._repos[root]
            raise
        await self._attach(repo, kept=False)  # what moved before it was watched fires nothing
        await self._rewatch()
        log.info("watching %s", root)
        return {"added": True, **self._describe(repo)}

    async def remove(self, where: Path) -> dict[str, Any]:
        """Stop watching the repository `where` names (it may be gone already)."""
        repo = self._repos.get(where.resolve())
        if repo is None:
            with contextlib.suppress(GitError):
                repo = self._repos.get((await git_repo.repo_root(where)).resolve())
        if repo is None:
            raise NotFound(
                f"{where} is not watched",
                hint="`prodigyctl watch ls` lists the watched repositories",
            )
        del self._repos[repo.path]
        try:
            await asyncio.to_thread(repos.save, self._entries())
        except BaseException:
            self._repos[repo.path] = repo
            raise
        for task in (repo.task, repo.files_task):
            if task is not None:
                task.cancel()
        await asyncio.to_thread(repos.forget_refs, repo.path)
        await self._rewatch()
        log.info("no longer watching %s", repo.path)
        return {"path": str(repo.path), "removed": True}

    async def close(self) -> None:
        """Read every repository's refs a last time, once `run` is cancelled and the jobs
        are over: their merges into a watched branch are known as prodigy's to this daemon
        only. What the scheduler refuses now is left for the next daemon to fire."""
        tasks = [t for r in self._repos.values() for t in (r.task, r.files_task) if t]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for repo in list(self._repos.values()):
            try:  # bounded: a repository on a hung mount must not hold the daemon's stop
                await asyncio.wait_for(self._refs_moved(repo), CLOSE_READ_SECONDS)
            except Exception:  # the next daemon looks again
                log.exception("watched repository %s", repo.path)

    def watches(self, repo: Path) -> bool:
        """Whether `repo` (its top folder) is watched, and seen now (not gone missing)."""
        entry = self._repos.get(repo)
        return entry is not None and entry.problem is None

    async def listing(self) -> list[dict[str, Any]]:
        """The watched repositories, each checked now: one that is gone says so."""
        for repo in list(self._repos.values()):
            await self._check(repo)
        return [self._describe(repo) for repo in self._repos.values()]

    # -- the watch ---------------------------------------------------------------------

    async def _rewatch(self) -> None:
        """Start the watch again over the current folders, and wait until it runs."""
        self._requested += 1
        wanted = self._requested
        self._restart.set()
        async with self._ready:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(
                    self._ready.wait_for(lambda: self._covered >= wanted), READY_SECONDS
                )

    async def _watch_round(self) -> None:
        """One watch over today's folders, until they change."""
        self._restart.clear()
        request = self._requested
        deep, flat = self._targets()
        stop = asyncio.Event()
        watches = [
            asyncio.create_task(self._consume(targets, recursive, stop))
            for targets, recursive in ((deep, True), (flat, False))
            if targets
        ]
        try:
            await asyncio.sleep(0)  # each watch sets up its inotify watches in its first step
            if not any(task.done() for task in watches):
                await self._covering(request)
            restart = asyncio.create_task(self._restart.wait())
            await asyncio.wait([restart, *watches], return_when=asyncio.FIRST_COMPLETED)
            restart.cancel()
        finally:
            stop.set()  # the watch threads see it within STEP_MS
            await asyncio.gather(*watches, return_exceptions=True)

    async def _covering(self, request: int) -> None:
        """The watch runs: tell `_rewatch`, and read again what was read before it did."""
        for repo in self._repos.values():
            if repo.fresh and repo.problem is None:
                repo.fresh = False
                self._kick(repo, refs=True, workflows=True)
        async with self._ready:
            self._covered = request
            self._ready.notify_all()

    def _targets(self) -> tuple[list[Path], list[Path]]:
        """(folders watched recursively, folders watched alone), of repositories in reach."""
        deep: set[Path] = set()
        flat: set[Path] = set()
        for repo in self._repos.values():
            if repo.problem is not None or repo.common is None:
                continue
            deep.add(repo.common / "refs")
            if repo.settle is not None:  # file triggers: the whole working tree
                deep.add(repo.path)
            flat.update((repo.common, repo.path))
            if (repo.path / WORKFLOWS.parent).is_dir():
                flat.add(repo.path / WORKFLOWS.parent)
            if (repo.path / WORKFLOWS).is_dir():
                deep.add(repo.path / WORKFLOWS)
        return sorted(deep), sorted(flat)

    async def _consume(self, targets: list[Path], recursive: bool, stop: asyncio.Event) -> None:
        """Hand each batch of changes to `_dispatch`; on a watch that cannot be set up, poll
        (inotify) or wait and let the next round try (a folder gone meanwhile)."""
        watch = self._awatch or _watchfiles()
        try:
            async for batch in watch(
                *targets,
                watch_filter=self._wanted,
                recursive=recursive,
                debounce=DEBOUNCE_MS,
                step=STEP_MS,
                stop_event=stop,
                force_polling=True if self.polling else None,
                poll_delay_ms=POLL_DELAY_MS,
            ):
                self._dispatch(path for _, path in batch)
        except FileNotFoundError as exc:  # a folder went away before the watch began
            log.info("a watched folder is gone (%s); watching again", exc)
            for repo in list(self._repos.values()):
                await self._check(repo)
            await asyncio.sleep(RETRY_SECONDS)
        except (OSError, RuntimeError) as exc:  # inotify limits (ENOSPC), no inotify at all
            if self.polling is None:
                self.polling = str(exc) or type(exc).__name__
                log.warning(
                    "cannot watch repositories with inotify (%s); polling them every %g s instead",
                    exc,
                    POLL_DELAY_MS / 1000,
                )
            else:
                log.warning("cannot watch repositories (%s); trying again", exc)
                await asyncio.sleep(RETRY_SECONDS)

    def _wanted(self, _change: object, path: str) -> bool:
        return bool(self._owners(Path(path)))

    def _owners(self, path: Path) -> list[tuple[_Repo, str]]:
        """Which repositories a changed path concerns, and how: `refs`, `workflows`, or
        `layout` (a watched folder itself came or went: the watch starts again)."""
        found = []
        for repo in self._repos.values():
            if repo.common is None or repo.problem is not None:
                continue
            if repo.settle is not None and files.watched_file(repo.path, path) is not None:
                found.append((repo, "files"))
            if path in (repo.path / WORKFLOWS.parent, repo.path / WORKFLOWS):
                found.append((repo, "layout"))
            elif path.name.endswith(".lock"):
                continue
            elif _is_ref_file(repo.common, path):
                found.append((repo, "refs"))
            elif path.parent == repo.path / WORKFLOWS and path.suffix in triggers.SUFFIXES:
                found.append((repo, "workflows"))
        return found

    def _dispatch(self, changed: Iterable[str]) -> None:
        for path in changed:
            for repo, kind in self._owners(Path(path)):
                if kind == "files":
                    self._file_changed(repo, Path(path))
                    continue
                if kind == "layout":
                    self._restart.set()
                self._kick(repo, refs=kind != "workflows", workflows=kind != "refs")

    async def _rescan(self) -> None:
        """Every RESCAN_SECONDS: refs read again (events an overflowing queue lost), and
        repositories that were gone looked for again."""
        while True:
            await asyncio.sleep(RESCAN_SECONDS)
            for repo in list(self._repos.values()):
                try:
                    if repo.problem is not None:
                        if await self._attach(repo):
                            self._restart.set()
                    else:
                        self._kick(repo, refs=True, workflows=True)
                except Exception:  # one repository's trouble must not end the rescans
                    log.exception("rescanning %s failed", repo.path)

    # -- one repository ----------------------------------------------------------------

    def _kick(self, repo: _Repo, *, refs: bool = False, workflows: bool = False) -> None:
        """Mark what changed; one task per repository works it off, in order."""
        repo.dirty_refs |= refs
        repo.dirty_workflows |= workflows
        if repo.task is None or repo.task.done():
            repo.task = asyncio.create_task(self._settle(repo), name=f"watch {repo.path}")

    async def _settle(self, repo: _Repo) -> None:
        try:
            while repo.dirty_refs or repo.dirty_workflows:
                # not attached (`watch add` still reading it, or gone): `_attach` reads it
                if self._repos.get(repo.path) is not repo or repo.refs is None:
                    return
                if repo.dirty_workflows:
                    repo.dirty_workflows = False
                    await self._revalidate(repo)
                if repo.dirty_refs:
                    repo.dirty_refs = False
                    await self._refs_moved(repo)
        except Exception:  # never the daemon's end: the next change tries again
            log.exception("watched repository %s", repo.path)

    async def _attach(self, repo: _Repo, *, kept: bool = True) -> bool:
        """Find the repository's refs and read its workflow files; or say why not. The
        refs the next reading is compared with are those `kept` (the last daemon's, or this
        one's before the repository went missing) when there are, else the refs now."""
        try:
            done = await git(
                repo.path,
                "rev-parse",
                "--path-format=absolute",
                "--show-toplevel",
                "--git-common-dir",
                "--git-dir",
            )
            top, common, git_dir = done.stdout.splitlines()[:3]
            if Path(top).resolve() != repo.path:
                raise GitError(f"{repo.path} is no longer the top of a git repository")
            repo.common, repo.git_dir = Path(common).resolve(), Path(git_dir).resolve()
            await asyncio.to_thread(objects.load)  # not on the way of its first change
            known = await asyncio.to_thread(repos.load_refs, repo.path) if kept else None
            if known is None:
                known = await refs.snapshot(repo.path)
                _keep(repo.path, known)
            repo.refs = known
        except (GitError, ValueError) as exc:
            self._missing(repo, _reason(repo.path, exc))
            return False
        if repo.problem is not None:
            log.info("watched repository %s is back", repo.path)
        repo.problem, repo.fresh = None, True
        await self._revalidate(repo, first=True)
        return True

    async def _check(self, repo: _Repo) -> None:
        """Whether a repository is still there (and one that was gone, back)."""
        if repo.problem is not None:
            if await self._attach(repo):
                self._restart.set()
        elif not (repo.path.is_dir() and repo.common is not None and repo.common.is_dir()):
            self._missing(repo, f"{repo.path} no longer exists")

    def _missing(self, repo: _Repo, problem: str) -> None:
        if repo.problem != problem:
            log.warning("watched repository %s: %s", repo.path, problem)
        repo.problem, repo.refs = problem, None
        self._restart.set()

    async def _refs_moved(self, repo: _Repo) -> None:
        """Read the refs again, fire what their changes start, and keep each ref acted on."""
        before = repo.refs
        if before is None:  # not attached: nothing to compare with
            return
        try:
            now = await refs.snapshot(repo.path)
        except GitError as exc:
            await self._check(repo)
            if repo.problem is None:
                log.warning("cannot read the refs of %s: %s", repo.path, exc.render())
            return
        moved = refs.changes(before, now)
        if not moved:
            return
        found: list[triggers.Found] = []
        try:
            found = await triggers.discover(repo.path)
        except ProdigyError as exc:  # the workflows folder cannot be listed: nothing fires
            self.firing.problem("watched repository", str(repo.path), exc.render())
        acted = dict(before)
        for change in moved:
            if not await self._fire_change(repo, found, change, before):
                # read again (or by the next daemon); the refs after it are still acted on:
                # one of them may be prodigy's own merge, which only this daemon knows
                continue
            if change.after is None:
                del acted[change.ref]
            else:
                acted[change.ref] = change.after
        repo.refs = acted
        _keep(repo.path, acted)

    async def _fire_change(
        self,
        repo: _Repo,
        found: list[triggers.Found],
        change: refs.RefChange,
        before: dict[str, str],
    ) -> bool:
        """Fire what one ref change starts; False when a run cannot be submitted now (the
        daemon stops, the disk is full), the runs already submitted keeping their keys."""
        for firing in await refs.firings(repo.path, found, [change], before):
            try:
                await self.firing.fire(Sighting(repo.path, firing, origin={"watcher": True}))
            except ShuttingDown:
                return False
            except NoSpace as exc:
                why = f"{exc.render()} (tried again until there is room)"
                self.firing.problem("watched repository", str(repo.path), why)
                loop = asyncio.get_running_loop()
                loop.call_later(RETRY_SECONDS, functools.partial(self._kick, repo, refs=True))
                return False
            except ProdigyError as exc:
                self.firing.problem(
                    "watched repository", str(repo.path), f"{firing.workflow}: {exc.render()}"
                )
        return True

    async def _revalidate(self, repo: _Repo, *, first: bool = False) -> None:
        """Load the workflow files again and report what changed (on `first`, only the
        files that do not load)."""
        try:
            found = await triggers.discover(repo.path)
        except ProdigyError as exc:
            self.firing.problem("watched repository", str(repo.path), exc.render())
            return
        now = {f.path: (f.loaded.sha256 if f.loaded else None, f.error) for f in found}
        settle = files.settle_of(found)
        if (settle is None) != (repo.settle is None):
            self._restart.set()  # the working tree is watched from now on, or no longer
        repo.settle = settle
        before, repo.workflows = repo.workflows, now
        for path, (sha, error) in now.items():
            if before.get(path) == (sha, error):
                continue
            if error is not None:
                log.warning("workflow file does not load: %s", error)
                self.firing.dropped.note(
                    repo.path, EventType.WORKFLOW_INVALID, error, workflow=str(path)
                )
            elif not first:
                log.info("workflow file %s loaded", path)
                self.firing.dropped.note(
                    repo.path, EventType.WORKFLOW_LOADED, f"{path} loaded", workflow=str(path)
                )
        for path in before.keys() - now.keys():
            log.info("workflow file %s removed", path)
            self.firing.dropped.note(
                repo.path, EventType.WORKFLOW_REMOVED, f"{path} removed", workflow=str(path)
            )

    # -- on: files ---------------------------------------------------------------------

    def _file_changed(self, repo: _Repo, path: Path) -> None:
        """Note a changed file; one task per repository fires once they settle."""
        name = files.watched_file(repo.path, path)
        if name is None or path.is_dir():  # a folder: its files say what changed in it
            return
        repo.changed_files.add(name)
        # watchfiles hands changes over once STEP_MS went by without a new one: that
        # quiet counts toward the settle
        repo.last_change = asyncio.get_running_loop().time() - STEP_MS / 1000
        if repo.files_task is None or repo.files_task.done():
            repo.files_task = asyncio.create_task(
                self._files_settle(repo), name=f"files {repo.path}"
            )

    async def _files_settle(self, repo: _Repo) -> None:
        """Wait for the writes to settle and git to be done, then fire for the final state
        (changes that come meanwhile join it)."""
        loop = asyncio.get_running_loop()
        try:
            while repo.changed_files:
                if self._repos.get(repo.path) is not repo or repo.problem is not None:
                    return
                wait = repo.last_change + (repo.settle or 0.0) - loop.time()
                if wait > 0:
                    await asyncio.sleep(wait)
                    continue
                if repo.git_dir is not None and files.busy(repo.git_dir):
                    await asyncio.sleep(files.BUSY_POLL_SECONDS)
                    continue
                changed, repo.changed_files = repo.changed_files, set()
                await self._files_fire(repo, changed)
        except ShuttingDown:
            return
        except Exception:  # never the daemon's end: the next change tries again
            log.exception("watched repository %s (on: files)", repo.path)

    async def _files_fire(self, repo: _Repo, changed: set[str]) -> None:
        try:
            found = await triggers.discover(repo.path)
        except ProdigyError as exc:
            self.firing.problem("watched repository", str(repo.path), exc.render())
            return
        wanted = [
            n for n in changed if any(files.matches(t, n) for _, t in files.candidates(found))
        ]
        names = await asyncio.to_thread(files.not_ignored, repo.path, wanted)
        if not names:
            return
        checked_out = await git_repo.checked_out(repo.path)
        if checked_out is None:  # detached; no commit yet
            return
        head, branch = checked_out
        snap = await asyncio.to_thread(files.snapshot, repo.path, head, repo.git_dir)
        for firing in files.firings(found, names, branch, head, snap):
            try:
                await self.firing.fire(Sighting(repo.path, firing, origin={"watcher": True}))
            except ShuttingDown:
                raise
            except ProdigyError as exc:
                self.firing.problem(
                    "watched repository", str(repo.path), f"{firing.workflow}: {exc.render()}"
                )

    def _describe(self, repo: _Repo) -> dict[str, Any]:
        status = "missing" if repo.problem else "polling" if self.polling else "watching"
        return {
            "path": str(repo.path),
            "added_at": repo.added_at,
            "status": status,
            "problem": repo.problem or (self.polling and f"polling: {self.polling}"),
            "workflows": [{"path": str(p), "error": e} for p, (_, e) in repo.workflows.items()],
        }

    def _entries(self) -> list[repos.Watched]:
        return [repos.Watched(str(r.path), r.added_at) for r in self._repos.values()]


def _keep(repo: Path, known: dict[str, str]) -> None:
    """Save the refs acted on for the next daemon. On the loop, in order with the changes
    (a small file, not fsync'd); one that cannot be saved (a full disk) is saved with the
    next change, and until then the next daemon would look again at what moved since."""
    try:
        repos.save_refs(repo, known)
    except (OSError, StoreError) as exc:
        log.warning("cannot keep the refs of %s acted on: %s", repo, exc)


def _is_ref_file(common: Path, path: Path) -> bool:
    """A file git keeps refs in: under `refs/`, `packed-refs`, `HEAD` (lock files are not:
    git renames them into place, and the rename is the change)."""
    if path.parent == common:
        return path.name in ("packed-refs", "HEAD")
    return (common / "refs") in path.parents


def _reason(path: Path, exc: Exception) -> str:
    if not path.is_dir():
        return f"{path} no longer exists"
    if isinstance(exc, ProdigyError):
        return f"{path} is not a git repository any more ({exc.message})"
    return f"{path}: {exc}"


def _watchfiles() -> Watch:
    from watchfiles import awatch  # here: watchfiles starts a Rust runtime on import

    return awatch
