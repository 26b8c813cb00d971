"""The retention policy (prodigyd/retention.py, store/removals.py): which sessions go, that
one goes whole even when a pass is cut off, and the other files it tidies."""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path

import pytest

from prodigyd import paths
from prodigyd import retention as retention_module
from prodigyd.api import events as events_api
from prodigyd.api import schemas
from prodigyd.errors import NotFound
from prodigyd.retention import DAY, INLINE_GRACE_SECONDS, Policy, Retention, plan, tidy_files
from prodigyd.store import claude_invocations, journal, removals
from prodigyd.store import sessions as session_store
from prodigyd.store import worktrees as pool_rows
from prodigyd.store.removals import Job
from prodigyd.store.sessions import Status
from prodigyd.store.worktrees import Strategy
from tests.retentionkit import add_dead_letter, age, make_session, session_files

NOW = 1_000_000_000.0


def job(name: str, status: str, days_old: float, dlq_job: str | None = None) -> Job:
    return Job(name, status, NOW - days_old * DAY, "r", "/w.yml", "w", "", dlq_job)


def chosen(jobs: list[Job], **settings: object) -> tuple[list[tuple[str, str]], list[str]]:
    """(id, reason) of the sessions the plan removes, and the ids it keeps past their age."""
    options: dict[str, object] = {
        "sizes": {},
        "dead_letters": set(),
        "busy": set(),
        "policy": Policy(max_total_bytes=None),
        "older_than": None,
    }
    options.update(settings)
    made = plan(jobs, now=NOW, **options)  # type: ignore[arg-type]
    return [(r.id, r.reason) for r in made.remove], [k.id for k in made.kept]


def test_finished_sessions_go_after_max_age_and_resumable_ones_after_their_longer_one():
    jobs = [
        job("done-old", "completed", 31),
        job("cancelled-old", "cancelled", 40),
        job("done-young", "completed", 29),
        job("failed-31", "failed", 31),
        job("waiting-91", "awaiting_merge", 91),
        job("interrupted-89", "interrupted", 89),
        job("queued-old", "queued", 400),
        job("running-old", "running", 400),
    ]
    removed, kept = chosen(jobs)
    assert removed == [("waiting-91", "age"), ("cancelled-old", "age"), ("done-old", "age")]
    assert kept == []


def test_older_than_replaces_the_finished_age_and_only_ever_lengthens_the_resumable_one():
    jobs = [job("done-2d", "completed", 2), job("failed-2d", "failed", 2)]
    assert chosen(jobs, older_than=1 * DAY)[0] == [("done-2d", "age")]
    jobs = [job("failed-100d", "failed", 100), job("failed-150d", "failed", 150)]
    assert chosen(jobs, older_than=120 * DAY)[0] == [("failed-150d", "age")]


def test_a_limit_turned_off_removes_nothing_by_age():
    jobs = [job("done", "completed", 1000), job("failed", "failed", 1000)]
    policy = Policy(max_age=None, resumable_max_age=None, max_total_bytes=None)
    assert chosen(jobs, policy=policy) == ([], [])


def test_sessions_with_dead_letters_and_busy_ones_stay():
    jobs = [job("dlq", "completed", 100), job("busy", "completed", 100)]
    removed, kept = chosen(jobs, dead_letters={"dlq"}, busy={"busy"})
    assert removed == [] and kept == ["dlq"]


def test_a_job_a_kept_dlq_retry_needs_stays_and_goes_with_it():
    original = job("original", "completed", 100)
    young_retry = job("retry", "failed", 1, dlq_job="original")
    removed, kept = chosen([original, young_retry])
    assert removed == [] and kept == ["original"]
    old_retry = job("retry", "completed", 100, dlq_job="original")
    removed, kept = chosen([original, old_retry])
    assert sorted(removed) == [("original", "age"), ("retry", "age")] and kept == []


def test_over_the_size_budget_the_oldest_finished_sessions_go_never_a_resumable_one():
    jobs = [
        job("a", "completed", 3),
        job("b", "cancelled", 2),
        job("c", "completed", 1),
        job("f", "failed", 9),
        job("d", "completed", 5),
    ]
    sizes = {"a": 100, "b": 100, "c": 100, "f": 500, "d": 100}
    policy = Policy(max_total_bytes=700)
    removed, _ = chosen(jobs, sizes=sizes, policy=policy, dead_letters={"d"})
    assert removed == [("a", "size"), ("b", "size")]  # "d" has dead letters; "f" waits


def test_age_removals_count_towards_the_size_budget():
    jobs = [job("old", "completed", 40), job("new", "completed", 1)]
    sizes = {"old": 1000, "new": 10}
    removed, _ = chosen(jobs, sizes=sizes, policy=Policy(max_total_bytes=500))
    assert removed == [("old", "age")]


# -- removal, whole or not at all ----------------------------------------------------------


def retention(**policy: object) -> Retention:
    return Retention(Policy(**policy), busy=set, forget=lambda _: None)  # type: ignore[arg-type]


def test_a_pass_removes_old_sessions_whole_and_keeps_the_rest(isolated: Path):
    old, young = make_session(1), make_session(2)
    failed, dlq = make_session(3, Status.FAILED), make_session(4)
    add_dead_letter(dlq)
    for session_id in (old, young):
        claude_invocations.add(session_id, {"step": "1", "started_at": "2026-01-01T00:00:00Z"})
    for session_id in (old, failed, dlq):
        age(session_id, 40)
    report = asyncio.run(retention().apply())
    assert [s.id for s in report.sessions] == [old]
    assert [(k.id, k.reason) for k in report.kept] == [(dlq, "dead_letters")]
    assert report.sessions[0].bytes > 0 and report.usage["events"] > 0
    assert not any(path.exists() for path in session_files(old))
    for kept in (young, failed, dlq):
        assert all(path.exists() for path in session_files(kept))
    assert {r.id for r in session_store.list_all()} == {young, failed, dlq}
    with pytest.raises(NotFound):
        session_store.load(old)
    assert removals.pending() == []
    assert claude_invocations.of_session(old) == []  # its records went with it
    assert len(claude_invocations.of_session(young)) == 1


def test_a_dry_run_changes_nothing(isolated: Path):
    old = make_session(1)
    age(old, 40)
    report = asyncio.run(retention().apply(dry_run=True))
    assert [s.id for s in report.sessions] == [old]
    assert all(path.exists() for path in session_files(old))
    assert session_store.load(old).id == old


def test_a_pass_cut_off_after_the_records_went_leaves_no_half_session(isolated: Path):
    gone = [make_session(n) for n in range(5)]
    kept = make_session(9)
    assert removals.remove((session_id, "repo-0123abcd") for session_id in gone) == gone
    # the crash: no file deleted yet. The store is consistent as it is:
    assert [r.id for r in session_store.list_all()] == [kept]
    listed = events_api.list_events(schemas.EventsQuery())  # reads the folders left behind
    assert kept in {e["session_id"] for e in listed}
    with pytest.raises(NotFound):
        events_api.list_events(schemas.EventsQuery(session_id=gone[0]))
    assert {sid for sid, _ in removals.pending()} == set(gone)
    journal.close_all()  # the next daemon: a pass finishes the removal, whatever the policy
    report = asyncio.run(retention(max_age=None, resumable_max_age=None).apply())
    assert report.sessions == [] and report.errors == []
    assert removals.pending() == []
    assert not any(path.exists() for session_id in gone for path in session_files(session_id))
    assert all(path.exists() for path in session_files(kept))


def test_a_session_with_dead_letters_is_never_removed_by_the_store_whatever_asked(isolated: Path):
    session_id = make_session(1)
    add_dead_letter(session_id)
    assert removals.remove([(session_id, "repo-0123abcd")]) == []
    assert session_store.load(session_id).id == session_id and removals.pending() == []


def test_kept_worktrees_of_a_removed_session_go_to_the_collector_named_ones_stay(isolated: Path):
    session_id = make_session(1)
    for name, path in ((None, "/wt/kept"), ("exp", "/wt/named")):
        pool_rows.register(
            Path(path),
            Path("/repo"),
            owner=session_id,
            session_id=session_id,
            affinity=None,
            strategy=Strategy.POOLED,
            name=name,
        )
        pool_rows.set_state(path, pool_rows.KEPT)
    removals.remove([(session_id, "repo-0123abcd")])
    kept, named = pool_rows.get("/wt/kept"), pool_rows.get("/wt/named")
    assert kept is not None and kept.state == pool_rows.BUSY  # an owner gone: gc reclaims it
    assert named is not None and named.state == pool_rows.KEPT


# -- other files ----------------------------------------------------------------------------


def _old(path: Path, seconds: float) -> Path:
    stamp = time.time() - seconds
    os.utime(path, (stamp, stamp))
    return path


def test_old_crash_logs_rejected_entries_and_unused_inline_workflows_go(isolated: Path):
    logs, rejected, inline = (
        paths.logs_dir(),
        paths.rejected_spool_dir(),
        paths.inline_workflows_dir(),
    )
    for folder in (logs, rejected, inline):
        folder.mkdir(parents=True)
    old_crash, entry = logs / "prodigyctl-crash-1.log", rejected / "x.event"
    for path in (old_crash, entry):
        path.write_text("old")
        _old(path, 40 * DAY)
    (logs / "prodigyctl-crash-2.log").write_text("new")
    unused, used, fresh = (inline / f"inline-{n}.yml" for n in ("a", "b", "c"))
    for path in (unused, used, fresh):
        path.write_text("name: x\n")
    _old(unused, INLINE_GRACE_SECONDS + 60)
    _old(used, INLINE_GRACE_SECONDS + 60)
    found, errors = tidy_files(Policy(), {str(used)}, now=time.time(), dry_run=False)
    assert errors == []
    assert sorted((Path(f.path).name, f.kind) for f in found) == [
        ("inline-a.yml", "inline_workflow"),
        ("prodigyctl-crash-1.log", "crash_log"),
        ("x.event", "rejected_spool"),
    ]
    assert sorted(p.name for p in logs.iterdir()) == ["prodigyctl-crash-2.log"]
    assert sorted(p.name for p in inline.iterdir()) == ["inline-b.yml", "inline-c.yml"]
    assert not entry.exists()


def test_daemon_output_past_its_size_is_cut_to_its_newest_half(isolated: Path):
    out = paths.daemon_output_file()
    out.parent.mkdir(parents=True)
    out.write_bytes(b"a" * 1500 + b"b" * 500)
    policy = Policy(daemon_log_bytes=1000)
    dry, _ = tidy_files(policy, set(), now=time.time(), dry_run=True)
    assert [(f.kind, f.bytes) for f in dry] == [("daemon_output", 1500)]
    assert out.stat().st_size == 2000
    tidy_files(policy, set(), now=time.time(), dry_run=False)
    assert out.read_bytes() == b"b" * 500


def test_policy_from_config_turns_zero_into_no_limit():
    from prodigyd.config import RetentionConfig

    policy = Policy.from_config(RetentionConfig(max_age_days=0.5, max_total_mb=0, interval_secs=0))
    assert policy.max_age == 0.5 * DAY and policy.max_total_bytes is None
    assert policy.interval is None and policy.resumable_max_age == 90 * DAY


def test_with_no_interval_the_daemon_only_finishes_a_cut_off_removal(isolated: Path):
    cut_off, old = make_session(1), make_session(2)
    removals.remove([(cut_off, "repo-0123abcd")])
    age(old, 400)
    asyncio.run(retention(interval=None).run())
    assert removals.pending() == [] and not any(p.exists() for p in session_files(cut_off))
    assert session_store.load(old).id == old  # the policy waits for `prodigyctl clean`


def test_the_daemon_finishes_a_cut_off_removal_at_start_and_its_first_pass_waits(
    isolated: Path, monkeypatch: pytest.MonkeyPatch
):
    """A pass reads every job: it must not hold up the first requests of a daemon just
    started, so it comes FIRST_PASS_SECONDS after start (what a crash cut off, at once).
    The waits are the test's: each sleep of the task is held until the test lets it go."""
    cut_off, old = make_session(1), make_session(2)
    removals.remove([(cut_off, "repo-0123abcd")])
    age(old, 400)
    delays: list[float] = []

    async def start() -> tuple[list[str], bool]:
        sleeping, wake = asyncio.Event(), asyncio.Event()

        async def held_sleep(delay: float) -> None:
            delays.append(delay)
            sleeping.set()
            await wake.wait()
            wake.clear()

        monkeypatch.setattr(retention_module.asyncio, "sleep", held_sleep)
        task = asyncio.create_task(retention(interval=3600).run())
        await sleeping.wait()  # the start's work is done: it waits for the first pass
        at_start = (removals.pending(), session_store.load(old).id == old)
        sleeping.clear()
        wake.set()
        await sleeping.wait()  # the first pass is done: it waits for the next
        task.cancel()
        return at_start

    pending, old_kept = asyncio.run(start())
    assert pending == [] and not any(p.exists() for p in session_files(cut_off))
    assert old_kept
    assert delays == [retention_module.FIRST_PASS_SECONDS, 3600]
    with pytest.raises(NotFound):  # the first pass removed it
        session_store.load(old)
