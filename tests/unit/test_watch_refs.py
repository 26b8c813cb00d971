"""The repository watcher's parts: ref snapshots and their changes, `on: ref` matching,
`${trigger.*}`, the durable watch list, and a watch that cannot use inotify."""

from __future__ import annotations

import asyncio
import errno
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from prodigyd import paths
from prodigyd.store.events import read_events
from prodigyd.watch import refs, repos, variables
from prodigyd.watch.dropped import FOLDER, repository
from prodigyd.watch.fire import Sighting, env_of, key_of
from prodigyd.watch.refwatch import RepoWatcher
from prodigyd.watch.triggers import Firing, commit_occasion
from prodigyd.workflow.model import Trigger
from tests.cli import wait_for
from tests.gitutil import commit_files, git, make_repo

A, B = "a" * 40, "b" * 40


def test_changes_are_each_ref_created_updated_or_deleted():
    moved = refs.changes(
        {"refs/heads/main": A, "refs/heads/gone": A, "refs/tags/v1": A},
        {"refs/heads/main": B, "refs/heads/new": A, "refs/tags/v1": A},
    )
    assert [(c.ref, c.event, c.branch, c.tag) for c in moved] == [
        ("refs/heads/gone", "deleted", "gone", None),
        ("refs/heads/main", "updated", "main", None),
        ("refs/heads/new", "created", "new", None),
    ]
    [deleted] = refs.changes({"refs/tags/v1": A}, {})
    assert (deleted.tag, deleted.branch, deleted.event) == ("v1", None, "deleted")


@pytest.mark.parametrize(
    ("trigger", "ref", "fires"),
    [
        (Trigger(event="ref"), "refs/heads/main", True),
        (Trigger(event="ref"), "refs/tags/v1", True),
        (Trigger(event="ref", branches=("x*",)), "refs/heads/x1", True),
        (Trigger(event="ref", branches=("x*",)), "refs/heads/main", False),
        (Trigger(event="ref", branches=("x*",)), "refs/tags/x1", False),  # branches only
        (Trigger(event="ref", tags=("v*",)), "refs/tags/v1", True),
        (Trigger(event="ref", tags=("v*",)), "refs/heads/v1", False),  # tags only
        (Trigger(event="ref", branches=("main",), tags=("v*",)), "refs/tags/v2", True),
    ],
)
def test_ref_triggers_match_by_kind_and_glob(trigger: Trigger, ref: str, fires: bool):
    assert refs.ref_matches(trigger, refs.RefChange(ref, None, A)) is fires


async def test_a_snapshot_sees_packed_and_loose_refs_alike(repo: Path):
    sha = git(repo, "rev-parse", "HEAD").strip()
    git(repo, "tag", "v1")
    before = await refs.snapshot(repo)
    git(repo, "pack-refs", "--all")  # the ref files vanish; no ref moved
    assert await refs.snapshot(repo) == before == {"refs/heads/main": sha, "refs/tags/v1": sha}


def test_hook_and_watcher_sightings_of_one_commit_share_a_key(tmp_path: Path):
    repo = make_repo(tmp_path / "repo")
    linked = tmp_path / "linked"
    git(repo, "worktree", "add", "-q", "-b", "topic", str(linked))
    trigger = Trigger(event="commit")
    occasion = commit_occasion("topic", A, None, None)

    def firing(folder: Path, reason: str) -> Firing:
        workflow = folder / ".prodigy" / "workflows" / "w.yml"
        return Firing(
            workflow, trigger, "topic", reason, None, occasion.identity, occasion.variables
        )

    hook = Sighting(linked, firing(linked, "commit (post-commit hook)"), {"HOME": "/h"})
    watcher = Sighting(repo, firing(repo, "commit (ref watcher)"))
    assert repository(linked) == repo
    assert key_of(hook) == key_of(watcher)
    other = commit_occasion("topic", B, None, None)
    assert key_of(Sighting(repo, Firing(repo, trigger, "topic", "x", None, other.identity))) != (
        key_of(watcher)
    )
    assert env_of(hook) == {
        "HOME": "/h",
        **variables.environment(event="commit", ref="refs/heads/topic", after=A, branch="topic"),
    }
    assert variables.variables(env_of(hook))["trigger.after"] == A
    assert variables.variables({"HOME": "/h"}) == {}  # not triggered: no trigger.* at all


def test_the_watch_list_is_kept_and_a_corrupt_one_set_aside(isolated: Path):
    assert repos.load() == []
    entries = [repos.Watched("/a", "2026-01-01T00:00:00.000Z")]
    repos.save(entries)
    assert repos.load() == entries
    (isolated / "watched.json").write_text("{not json")
    assert repos.load() == []
    assert list(isolated.glob("watched.json.corrupt*"))


def _no_inotify(calls: list[bool]) -> Any:
    """watchfiles' awatch, except that without force_polling it fails as inotify does when
    the user's watches are used up."""
    from watchfiles import awatch

    def watch(*paths: Path, **options: Any) -> AsyncIterator[Any]:
        calls.append(bool(options.get("force_polling")))
        if not options.get("force_polling"):
            raise OSError(errno.ENOSPC, "OS file watch limit reached")
        return awatch(*paths, **options)

    return watch


async def test_no_inotify_watches_left_means_polling_with_a_warning(
    isolated: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
):
    from prodigyd.watch.fire import TriggerPath

    repo = make_repo(tmp_path / "repo")
    commit_files(repo, {".prodigy/workflows/ok.yml": "on: commit\ncommands: [{shell: 'true'}]\n"})
    calls: list[bool] = []
    firing = TriggerPath(scheduler=None)  # type: ignore[arg-type]  # nothing here submits
    watcher = RepoWatcher(firing, _awatch=_no_inotify(calls))
    caplog.set_level(logging.WARNING, logger="prodigyd.watch")
    task = asyncio.create_task(watcher.run())
    try:
        added = await watcher.add(repo)
        assert added["status"] == "polling"
        assert "polling: " in added["problem"] and "limit reached" in added["problem"]
        assert "polling them every" in caplog.text
        (repo / ".prodigy" / "workflows" / "bad.yml").write_text("on: [pull]\n")
        repo_id = paths.repo_id(repository(repo))

        def invalid() -> list[dict]:
            return [
                e for e in read_events(repo_id, FOLDER) if e["event_type"] == "workflow_invalid"
            ]

        await _until(invalid)
        assert calls[:1] == [False] and calls[-1] is True
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        firing.dropped.close()


async def _until(predicate: Any) -> None:
    """wait_for, without blocking the loop the watcher runs on."""
    await asyncio.to_thread(wait_for, predicate, 30.0, "the change seen by polling")


def _sighting(repo: Path, commit: str, branch: str | None) -> Sighting:
    """`commit`, seen on topic, firing the repository's .prodigy/workflows/w.yml (on
    `branch`; None: the one checked out)."""
    seen = commit_occasion("topic", commit, None, None)
    workflow = repo / ".prodigy" / "workflows" / "w.yml"
    firing = Firing(
        workflow,
        Trigger(event="commit"),
        branch,
        f"commit {commit[:7]}",
        None,
        seen.identity,
        seen.variables,
    )
    return Sighting(repo, firing)


class _Jobs:
    """The scheduler's `submit`, keeping the keys it is given (after `delay` seconds)."""

    def __init__(self, delay: float = 0.0) -> None:
        self.delay = delay
        self.submitted: list[str] = []

    async def submit(self, request: Any, *, idempotency_key: str) -> Any:
        from types import SimpleNamespace

        await asyncio.sleep(self.delay)
        self.submitted.append(idempotency_key)
        return SimpleNamespace(id=f"run-{len(self.submitted)}")


async def test_two_firings_at_once_are_admitted_one_after_the_other(tmp_path: Path, isolated):
    """The gate's rate window changes only once the awaited submit is done: two firings of
    one workflow (a hook's and the watcher's of different commits) must not both pass it."""
    from prodigyd.watch import dropped
    from prodigyd.watch.fire import TriggerPath
    from prodigyd.watch.gate import TriggerLimits

    repo = make_repo(tmp_path / "repo")
    jobs = _Jobs(delay=0.05)  # loads the workflow, reads git: the loop goes on
    path = TriggerPath(jobs, TriggerLimits(max_runs=1, per_seconds=3600))  # type: ignore[arg-type]
    first, second = await asyncio.gather(
        path.fire(_sighting(repo, A, None)), path.fire(_sighting(repo, B, None))
    )
    assert len(jobs.submitted) == 1 and [first is None, second is None].count(True) == 1
    path.dropped.close()
    assert [d["why"] for d in await dropped.recent(repo)] == ["rate_limited"]


async def test_a_held_run_the_limit_refuses_again_is_held_not_dropped_twice(
    tmp_path: Path, isolated
):
    """A held commit's trailing try can meet a window still full (a timer run a clock tick
    early): it waits for its turn again, and `triggers ls` lists its drop once."""
    from prodigyd.watch import dropped
    from prodigyd.watch.fire import TriggerPath
    from prodigyd.watch.gate import TriggerLimits

    repo = make_repo(tmp_path / "repo")
    jobs = _Jobs()
    path = TriggerPath(jobs, TriggerLimits(max_runs=1, per_seconds=0.5))  # type: ignore[arg-type]
    assert await path.fire(_sighting(repo, A, "topic")) is not None
    held = _sighting(repo, B, "topic")
    assert await path.fire(held) is None  # refused: dropped, and held for its turn
    assert await path.fire(held, again=True) is None  # its turn came too soon
    await asyncio.to_thread(wait_for, lambda: len(jobs.submitted) == 2, 10.0, "the held run")
    assert jobs.submitted[1] == key_of(held)
    path.dropped.close()
    assert [d["why"] for d in await dropped.recent(repo)] == ["rate_limited"]


async def test_a_commit_whose_run_does_not_fit_on_the_disk_is_fired_again(
    isolated: Path, tmp_path: Path
):
    """The watcher keeps its old snapshot when a run cannot be submitted (a full disk), so
    the next read of the refs fires it again; the hook path keeps its spool entry alike."""
    from prodigyd.errors import NoSpace
    from prodigyd.watch.refwatch import _Repo

    repo = make_repo(tmp_path / "repo")
    commit_files(repo, {".prodigy/workflows/c.yml": "on: commit\ncommands: [{shell: 'true'}]\n"})
    tries: list[str] = []

    class FullDisk:
        problems: list[str] = []

        async def fire(self, sighting: Sighting) -> None:
            tries.append(sighting.firing.reason)
            if len(tries) == 1:
                raise NoSpace("no space left on /tmp", path="/tmp/journal.db")

        def problem(self, what: str, event: str, message: str) -> None:
            self.problems.append(message)

    watcher = RepoWatcher(FullDisk())  # type: ignore[arg-type]
    watched = _Repo(repo, "now", refs=await refs.snapshot(repo))
    commit_files(repo, {"a.txt": "a\n"}, "a user commit")
    await watcher._refs_moved(watched)
    await watcher._refs_moved(watched)  # the retry (the mender's pace in the daemon)
    assert len(tries) == 2 and tries[0] == tries[1]
    assert "tried again until there is room" in FullDisk.problems[0]
    await watcher._refs_moved(watched)  # fired: nothing new to fire
    assert len(tries) == 2
    if watched.task is not None:  # the retry the watcher scheduled for itself
        watched.task.cancel()
        await asyncio.gather(watched.task, return_exceptions=True)


def test_the_drop_log_keeps_the_last_runs_only(isolated: Path, tmp_path: Path):
    """One file per daemon run and repository: a new run deletes all but the newest ones."""
    import os

    from prodigyd.watch import dropped

    repo = make_repo(tmp_path / "repo")
    folder = paths.events_dir(paths.repo_id(repository(repo)), FOLDER)
    folder.mkdir(parents=True)
    for run in range(12):
        old = folder / f"events-2026010{run // 10}_{run:06d}-1.jsonl"
        old.write_text('{"seq": 1, "event_type": "trigger_dropped"}\\n')
        os.utime(old, (1_000 + run, 1_000 + run))
    log = dropped.DropLog()
    log.record(repo, "rate_limited", "w.yml: too many")
    log.close()
    kept = sorted(folder.glob("events-*.jsonl"), key=lambda p: p.stat().st_mtime)
    assert len(kept) == dropped.KEPT_RUNS
    assert kept[0].name == "events-20260100_000003-1.jsonl"  # the 9 newest old ones stay


async def test_routine_drops_do_not_push_the_others_out(isolated: Path, tmp_path: Path):
    """Each committing triggered run drops its own commit's event (prodigy_commit): 60 of
    them around two rate limits leave those two shown, with the latest few routine ones."""
    from prodigyd.watch import dropped

    repo = make_repo(tmp_path / "repo")
    log = dropped.DropLog()
    log.record(repo, "rate_limited", "first")
    for number in range(30):
        log.record(repo, "prodigy_commit", f"routine {number}")
    log.record(repo, "queue_full", "second")
    for number in range(30, 60):
        log.record(repo, "prodigy_commit", f"routine {number}")
    log.close()
    shown = [(d["why"], d["message"]) for d in await dropped.recent(repo)]
    assert shown == [
        ("rate_limited", "first"),
        ("queue_full", "second"),
        *(("prodigy_commit", f"routine {n}") for n in range(55, 60)),
    ]


class Jobs:
    """The scheduler as triggered runs meet it: what was submitted, or, `stopping`, the
    refusal of a daemon shutting down."""

    def __init__(self, *, stopping: bool = False) -> None:
        self.stopping = stopping
        self.submitted: list[Any] = []

    async def submit(self, request: Any, *, idempotency_key: str) -> Any:
        from types import SimpleNamespace

        from prodigyd.errors import ShuttingDown

        if self.stopping:
            raise ShuttingDown("prodigyd is shutting down and accepts no new work")
        self.submitted.append(request)
        return SimpleNamespace(id=f"run-{len(self.submitted)}")


async def _read_by_a_new_daemon(repo: Path, jobs: Jobs, *, kept: bool = True) -> Any:
    """A daemon's watcher attaching `repo` (from the refs kept, unless it is newly added)
    and reading its refs once its watch covers it; returns the repository as it sees it."""
    from prodigyd.watch.fire import TriggerPath
    from prodigyd.watch.refwatch import _Repo

    firing = TriggerPath(jobs)  # type: ignore[arg-type]
    watcher = RepoWatcher(firing)
    watched = _Repo(repo, "now")
    try:
        assert await watcher._attach(watched, kept=kept)
        await watcher._refs_moved(watched)
    finally:
        firing.dropped.close()
    return watched


async def test_a_ref_the_stopping_daemon_could_not_fire_is_fired_by_the_next_once(
    isolated: Path, tmp_path: Path
):
    """The refs acted on are kept, and a daemon starts from them: a commit made while the
    daemon stopped (or started) fires, with the tip it moved from; one acted on, never
    again."""
    repo = make_repo(tmp_path / "repo")
    commit_files(repo, {".prodigy/workflows/c.yml": "on: commit\ncommands: [{shell: 'true'}]\n"})
    old = git(repo, "rev-parse", "HEAD").strip()
    await _read_by_a_new_daemon(repo, Jobs(), kept=False)  # `watch add`
    sha = commit_files(repo, {"a.txt": "a\n"}, "while the daemon stops")
    stopping = Jobs(stopping=True)
    await _read_by_a_new_daemon(repo, stopping)
    assert stopping.submitted == []
    jobs = Jobs()
    await _read_by_a_new_daemon(repo, jobs)
    [run] = jobs.submitted
    assert run.triggered_by == f"commit {sha[:12]} on main (ref watcher)"
    assert (run.env["PRODIGY_TRIGGER_BEFORE"], run.env["PRODIGY_TRIGGER_AFTER"]) == (old, sha)
    again = Jobs()
    await _read_by_a_new_daemon(repo, again)
    assert again.submitted == []


async def test_a_repository_whose_refs_are_not_read_yet_fires_nothing(
    isolated: Path, tmp_path: Path
):
    """`watch add` lists the repository before it has read its refs; a watch round starting
    meanwhile (the first of a daemon `watch add` just started) must not take every ref as
    new: that fired a run for the commit already there."""
    from prodigyd.watch.fire import TriggerPath
    from prodigyd.watch.refwatch import _Repo

    repo = make_repo(tmp_path / "repo")
    commit_files(repo, {".prodigy/workflows/c.yml": "on: commit\ncommands: [{shell: 'true'}]\n"})
    jobs = Jobs()
    firing = TriggerPath(jobs)  # type: ignore[arg-type]
    watcher = RepoWatcher(firing)
    being_added = watcher._repos[repo] = _Repo(repo, "now")
    await watcher._covering(1)
    if being_added.task is not None:
        await being_added.task
    firing.dropped.close()
    assert jobs.submitted == []


async def test_a_refused_ref_leaves_the_refs_after_it_acted_on(isolated: Path, tmp_path: Path):
    """A stopping daemon refuses a run: that ref is read again by the next daemon, but the
    refs after it are kept as acted on, since one of them may be prodigy's own merge, which
    only the stopping daemon can tell from a user's commit."""
    from prodigyd.watch import repos

    repo = make_repo(tmp_path / "repo")
    commit_files(repo, {".prodigy/workflows/c.yml": "on: commit\ncommands: [{shell: 'true'}]\n"})
    old = git(repo, "rev-parse", "HEAD").strip()
    await _read_by_a_new_daemon(repo, Jobs(), kept=False)  # `watch add`
    sha = commit_files(repo, {"a.txt": "a\n"}, "while the daemon stops")  # refs/heads/main
    git(repo, "tag", "v1")  # refs/tags/v1, after it: fires no `on: commit` run
    await _read_by_a_new_daemon(repo, Jobs(stopping=True))
    kept = repos.load_refs(repo)
    assert kept is not None
    assert (kept["refs/heads/main"], kept["refs/tags/v1"]) == (old, sha)
    jobs = Jobs()
    await _read_by_a_new_daemon(repo, jobs)
    [run] = jobs.submitted  # main's commit, once
    assert run.env["PRODIGY_TRIGGER_AFTER"] == sha
