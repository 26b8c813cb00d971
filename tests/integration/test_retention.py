"""The retention policy against the real daemon: `prodigyctl clean`, the daemon's own
passes, a `kill -9` in the middle of a big clean, and `sessions replay`."""

from __future__ import annotations

import json
import re
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from prodigyd import paths
from prodigyd.store import aside, journal
from tests.cli import ctl, json_lines, wait_for
from tests.daemonkit import Daemon
from tests.gitutil import git
from tests.integration.test_dlq import WORKFLOW as DLQ_WORKFLOW
from tests.retentionkit import REPO_ID, age, make_session, session_files

TWO_STEPS = """
name: two-steps
commands:
  - shell: "echo one"
  - shell: "echo two > two.txt"
"""

COMMITS_THEN_FAILS = """
name: half-done
commands:
  - shell: "echo work > work.txt && git add work.txt && git commit -qm work"
  - shell: "exit 3"
"""


def _run(repo: Path, tmp_path: Path, text: str, name: str) -> dict:
    wf = tmp_path / f"{name}.yml"
    wf.write_text(text)
    ctl("run", str(wf), "-y", cwd=repo)
    return json.loads(ctl("sessions", "ls", "--json", check=True).stdout)[0]


def _show(session_id: str) -> dict:
    return json.loads(ctl("sessions", "show", session_id, "--json", check=True).stdout)


def _pool() -> dict[str, dict]:
    return {
        row["path"]: row for row in json.loads(ctl("worktree", "ls", "--json", check=True).stdout)
    }


def _ids() -> set[str]:
    return {row["id"] for row in json.loads(ctl("sessions", "ls", "--json", check=True).stdout)}


def test_clean_removes_old_sessions_whole_and_keeps_young_failed_and_dlq_ones(
    daemon: Path, repo: Path, tmp_path: Path
):
    old = _run(repo, tmp_path, TWO_STEPS, "old")["id"]
    young = _run(repo, tmp_path, TWO_STEPS, "young")["id"]
    failed = _run(repo, tmp_path, COMMITS_THEN_FAILS, "failed")
    dead = _run(repo, tmp_path, DLQ_WORKFLOW, "dlq")["id"]
    assert failed["status"] == "failed"
    folders = {sid: paths.events_dir(paths.repo_id(repo), sid) for sid in (old, young)}
    assert folders[old].is_dir() and paths.checkpoints_dir(old).is_dir()
    age(old, 10, daemon)
    age(failed["id"], 10, daemon)
    age(dead, 100, daemon)

    dry = json.loads(ctl("clean", "--older-than", "5d", "--dry-run", "--json", check=True).stdout)
    assert [s["id"] for s in dry["sessions"]] == [old]
    assert dry["sessions"][0]["reason"] == "age" and dry["sessions"][0]["bytes"] > 0
    assert dry["kept"] == [{"id": dead, "status": "completed", "reason": "dead_letters"}]
    assert dry["freed_bytes"] >= dry["sessions"][0]["bytes"]
    assert dry["usage"]["events"] > 0 and dry["usage"]["journal"] > 0
    assert folders[old].is_dir() and old in _ids()  # a dry run removes nothing
    shown = ctl("clean", "--older-than", "5d", "--dry-run", check=True).stdout
    assert "would remove 1 session" in shown and old in shown and "would free" in shown
    assert f"kept {dead} (completed) past its age: has dead letters" in shown

    done = json.loads(ctl("clean", "--older-than", "5d", "--json", check=True).stdout)
    assert [s["id"] for s in done["sessions"]] == [old] and done["errors"] == []
    assert not folders[old].exists() and not paths.state_dir(old).exists()
    assert folders[young].is_dir()
    assert _ids() == {young, failed["id"], dead}
    missing = ctl("sessions", "show", old)
    assert missing.returncode == 3 and "no session" in missing.stderr
    listed = json_lines(ctl("events", "ls", "--json", "--limit", "100000", check=True).stdout)
    assert old not in {e["session_id"] for e in listed} and young in {
        e["session_id"] for e in listed
    }
    assert len(json.loads(ctl("dlq", "ls", dead, "--json", check=True).stdout)) == 1

    # the failed session waits for its own, longer limit; then it goes, and its worktree
    # goes back to the pool, its committed work kept on its branch
    kept = json.loads(ctl("clean", "--older-than", "5d", "--json", check=True).stdout)
    assert kept["sessions"] == []
    worktree = _show(failed["id"])["worktree"]
    assert _pool()[worktree]["session_id"] == failed["id"]  # kept for `resume`
    age(failed["id"], 100, daemon)
    gone = json.loads(ctl("clean", "--json", check=True).stdout)
    assert [s["id"] for s in gone["sessions"]] == [failed["id"]]
    report = json.loads(ctl("worktree", "gc", "--json", check=True).stdout)
    assert report["reclaimed"] == [worktree]
    assert _pool()[worktree]["state"] == "idle"
    assert f"{repo}:prodigy-{failed['id']}" in report["branches_kept"]
    assert git(repo, "show", f"prodigy-{failed['id']}:work.txt") == "work\n"


def test_the_daemon_applies_the_policy_every_interval_by_itself(
    isolated: Path, repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setenv("PRODIGY_RETENTION__INTERVAL_SECS", "0.1")
    monkeypatch.setenv("PRODIGY_RETENTION__MAX_AGE_DAYS", "2")
    monkeypatch.setenv("PRODIGY_RETENTION__DAEMON_LOG_MB", "0.0002")  # 209 bytes
    monkeypatch.setenv("PRODIGY_LOG_LEVEL", "DEBUG")
    ctl("daemon", "start", check=True)
    try:
        first = _run(repo, tmp_path, TWO_STEPS, "first")["id"]
        second = _run(repo, tmp_path, TWO_STEPS, "second")["id"]
        folder = paths.events_dir(paths.repo_id(repo), first)
        assert folder.is_dir()
        age(first, 3, isolated)
        wait_for(lambda: first not in _ids(), what="the daemon's pass to remove the old session")
        assert not folder.exists() and second in _ids()
        logs = paths.logs_dir()  # the daemon log rotates at retention.daemon_log_mb
        assert (logs / "prodigyd.log.1").is_file() and not (logs / "prodigyd.log.2").exists()
        assert (logs / "prodigyd.log").stat().st_size < 1024  # a line may pass the limit
    finally:
        ctl("daemon", "stop", check=True)


def _rows(home: Path) -> tuple[set[str], set[str]]:
    """The journal's session ids and tombstones, read beside a daemon (or after one died)."""
    conn = sqlite3.connect(home / "journal.db", timeout=30)
    try:
        jobs = {row[0] for row in conn.execute("SELECT id FROM jobs")}
        tombs = {row[0] for row in conn.execute("SELECT session_id FROM removals")}
    finally:
        conn.close()
    return jobs, tombs


@pytest.mark.timeout(600)
def test_kill_9_in_the_middle_of_a_big_clean_leaves_every_session_whole_or_gone(isolated: Path):
    made = [make_session(n) for n in range(1500)]
    journal.close_all()
    events_root = paths.events_root() / REPO_ID
    daemon = Daemon(isolated)
    daemon.start()
    cleaning = subprocess.Popen(
        [sys.executable, "-m", "prodigyctl.main", "clean", "--older-than", "0s"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for(lambda: len(list(events_root.iterdir())) < len(made), what="the clean to start")
        daemon.kill()
    finally:
        cleaning.wait(timeout=60)
    jobs, tombs = _rows(isolated)
    assert len(jobs) < len(made)  # it was cut off after some went
    for session_id in jobs:  # a session that is still there is whole
        missing = [path for path in session_files(session_id) if not path.exists()]
        assert not missing, f"{session_id} lost {missing}"
    assert tombs <= set(made) - jobs
    daemon.start()  # its first pass finishes what the crash cut off
    try:
        wait_for(lambda: not _rows(isolated)[1], what="the tombstones to be done")
        for session_id in set(made) - jobs:
            assert not any(path.exists() for path in session_files(session_id)), session_id
        listed = json.loads(ctl("sessions", "ls", "--json", "--limit", "5000", check=True).stdout)
        assert {row["id"] for row in listed} == jobs
        assert ctl("events", "ls", "--json", "--limit", "100000").returncode == 0
        done = json.loads(ctl("clean", "--older-than", "0s", "--json", check=True).stdout)
        assert {s["id"] for s in done["sessions"]} == jobs
        assert not events_root.exists() or not any(events_root.iterdir())
    finally:
        ctl("daemon", "stop", check=True)


def test_replay_prints_the_events_in_order_with_their_timing(
    daemon: Path, repo: Path, tmp_path: Path
):
    session_id = _run(repo, tmp_path, TWO_STEPS, "replayed")["id"]
    stored = json_lines(ctl("events", "ls", "--session", session_id, "--json", check=True).stdout)
    played = json_lines(ctl("sessions", "replay", session_id, "--json", check=True).stdout)
    assert [e["seq"] for e in played] == list(range(1, len(stored) + 1))
    assert [{k: v for k, v in e.items() if k != "elapsed"} for e in played] == stored
    times = [e["elapsed"] for e in played]
    assert times[0] == 0.0 and times == sorted(times) and times[-1] > 0
    assert played[-1]["event_type"] == "session_finished"

    prefix = session_id.split("-")[1]  # any unique prefix names it, as everywhere
    human = ctl("sessions", "replay", prefix, check=True).stdout.splitlines()
    assert human[0].startswith(f"session {session_id}: {len(stored)} events over ")
    stamp = re.compile(r"^ *\+\d+\.\d{3}s  ")
    assert all(stamp.match(line) for line in human[1:])
    logged = ctl("logs", session_id, check=True).stdout.splitlines()
    assert [stamp.sub("", line) for line in human[1:]] == logged  # as `logs` shows them
    assert any("[2/2] shell: echo two > two.txt" in line for line in logged)
    assert (
        ctl("sessions", "replay", session_id, "--speed", "1000", check=True).stdout.splitlines()
        == human
    )

    missing = ctl("sessions", "replay", "workflow-1-nosuch")
    assert missing.returncode == 3 and "no session" in missing.stderr


def test_a_negative_age_is_refused_as_such(isolated: Path):
    done = ctl("clean", "--older-than", "-5d")
    assert done.returncode == 2
    assert done.stderr == (
        "error[E0002]: --older-than -5d: an age is not negative (--older-than 5d removes what "
        "is older than 5d)\n"
    )
    assert not (isolated / "prodigyd.sock").exists()  # refused before any daemon started


def test_sessions_the_journal_lost_are_reported_and_their_worktrees_held(
    isolated: Path, repo: Path, tmp_path: Path
):
    """A damaged journal.db-wal loses the jobs committed in it without a word (SQLite drops
    what fails its checksum): their folders are still in the store, and say so."""
    wf = tmp_path / "wf.yml"
    wf.write_text("- shell: 'exit 3'\n")
    ctl("daemon", "start", check=True)
    try:
        assert ctl("run", str(wf), "-y", cwd=repo).returncode == 1
        [lost] = json.loads(ctl("sessions", "ls", "--json", check=True).stdout)
        assert ctl("clean", check=True).returncode == 0  # a journal that knows them all
        assert not list(isolated.glob("journal.db.unknown-*"))  # says nothing
    finally:
        ctl("daemon", "stop", check=True)
    with sqlite3.connect(isolated / "journal.db") as db:  # its row gone, as with a bad -wal
        db.execute("DELETE FROM jobs WHERE id = ?", (lost["id"],))
    ctl("daemon", "start", check=True)
    try:
        assert ctl("clean", check=True).returncode == 0  # retention's walk finds the folders
        listed = ctl("sessions", "ls")
        status = json.loads(ctl("daemon", "status", "--json", check=True).stdout)
    finally:
        ctl("daemon", "stop", check=True)
    [note] = isolated.glob("journal.db.unknown-*")
    assert f"  {lost['id']}\n" in note.read_text()
    assert "lists no job of sessions whose folders the store holds" in listed.stderr
    assert "lists no job of sessions" in status["store_problem"]
    assert aside.set_aside() == [note]  # so the collector holds what no job owns
