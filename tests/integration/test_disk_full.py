"""A full disk, for real: PRODIGY_HOME on a small tmpfs, filled with a filler file.

The daemon runs over its socket as users run it. Each test unmounts its tmpfs at teardown,
whatever happened; without the right to mount (not root) the tests are skipped, saying why.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.cli import ctl, json_lines, wait_for
from tests.daemonkit import Daemon, rpc
from tests.gitutil import commit_files, git

EXIT_NO_SPACE = 6  # docs/protocol.md, prodigyctl(1)


class FullableHome:
    """PRODIGY_HOME on its own tmpfs, which `fill` fills up and `free` empties again."""

    def __init__(self, home: Path) -> None:
        self.home = home
        self.filler = home / "filler"

    def fill(self) -> None:
        fd = os.open(self.filler, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            for size in (1 << 20, 4096, 1):  # big chunks, then the last pages and bytes
                with contextlib.suppress(OSError):
                    while True:
                        os.write(fd, b"\0" * size)
        finally:
            os.close(fd)

    def free(self) -> None:
        self.filler.unlink(missing_ok=True)


@pytest.fixture
def fullable(isolated: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[FullableHome]:
    # A daemon stopped while a job waits on the gate would wait its 30 s grace for it.
    monkeypatch.setenv("PRODIGY_SHUTDOWN_GRACE_SECONDS", "1")
    isolated.mkdir(parents=True, exist_ok=True)
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=24m,mode=0700", "tmpfs", str(isolated)],
        capture_output=True,
        text=True,
        check=False,
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs (needs root): {mounted.stderr.strip()}")
    try:
        yield FullableHome(isolated)
    finally:
        subprocess.run(["umount", "-l", str(isolated)], check=False)


@pytest.fixture
def gate(tmp_path: Path) -> Path:
    """A file the workflow's first step waits for: the test decides when it may go on."""
    return tmp_path / "go"


def _workflow(tmp_path: Path, gate: Path) -> Path:
    path = tmp_path / "wf.yml"
    path.write_text(
        f"- shell: 'while [ ! -e {gate} ]; do sleep 0.05; done; echo one'\n"
        "- shell: 'echo two > two.txt'\n"
    )
    return path


def _status(sid: str) -> str:
    return json.loads(ctl("sessions", "show", sid, "--json", check=True).stdout)["status"]


def _stop(daemon: Daemon) -> None:
    """Stop the daemon and wait for it (its pid file may be missing on a full disk)."""
    ctl("daemon", "stop")
    assert daemon.proc is not None
    try:
        daemon.proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        daemon.kill()


@pytest.fixture
def daemon_on(fullable: FullableHome) -> Iterator[Daemon]:
    daemon = Daemon(fullable.home)
    daemon.start()
    try:
        yield daemon
    finally:
        fullable.free()
        _stop(daemon)


def test_submit_on_a_full_disk_fails_at_once_naming_the_disk(
    fullable: FullableHome, daemon_on: Daemon, repo: Path, tmp_path: Path, gate: Path
):
    fullable.fill()
    done = ctl("run", str(_workflow(tmp_path, gate)), "-y", "--detach", cwd=repo)
    assert done.returncode == EXIT_NO_SPACE, done.stderr
    assert f"error[E5001]: no space left on {fullable.home}" in done.stderr
    with pytest.raises(RuntimeError) as err:
        rpc(
            fullable.home,
            "jobs.submit",
            {"workflow": str(tmp_path / "wf.yml"), "cwd": str(repo), "env": dict(os.environ)},
        )
    error = err.value.args[0]
    assert error["code"] == -32007
    assert error["data"]["kind"] == "no_space"
    assert error["data"]["path"].startswith(str(fullable.home))
    status = rpc(fullable.home, "daemon.status", {})
    assert status["store_problem"].startswith(f"no space left on {fullable.home}")
    fullable.free()
    ctl("run", str(tmp_path / "wf.yml"), "-y", "--detach", cwd=repo, check=True)


def test_a_session_that_cannot_record_its_end_is_reported_then_recorded_and_resumable(
    fullable: FullableHome, daemon_on: Daemon, repo: Path, tmp_path: Path, gate: Path
):
    workflow = _workflow(tmp_path, gate)
    sid = ctl("run", str(workflow), "-y", "--detach", cwd=repo, check=True).stdout.strip()
    wait_for(lambda: _status(sid) == "running", what="the session to run")
    follower = subprocess.Popen(
        [os.sys.executable, "-m", "prodigyctl.main", "logs", "-f", sid, "--json"],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        fullable.fill()
        gate.touch()
        out, _ = follower.communicate(timeout=120)  # ends: it does not hang
    finally:
        if follower.poll() is None:
            follower.kill()
            follower.wait()
    final = [e for e in json_lines(out) if e["event_type"] == "session_finished"][-1]
    assert final["status"] == "failed"
    assert final["error"].startswith(f"no space left on {fullable.home}")
    assert final["not_recorded"].startswith(f"no space left on {fullable.home}")
    assert _status(sid) == "failed"  # what the daemon says: not `running` forever
    refused = ctl("resume", sid, "-y", "--detach")
    assert refused.returncode == EXIT_NO_SPACE, refused.stderr
    assert "no space left on" in refused.stderr

    fullable.free()
    wait_for(
        lambda: rpc(fullable.home, "daemon.status", {})["store_problem"] is None,
        timeout=60,
        what="the daemon to write what it held back",
    )
    row = _journal_row(fullable.home, sid)
    assert row == "failed"  # recorded now, without any request
    resumed = ctl("resume", sid, "-y", cwd=repo)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert _status(sid) == "completed"


def _journal_row(home: Path, sid: str) -> str:
    """The status the journal holds (not the daemon's memory), read like a crash would."""
    conn = sqlite3.connect(f"file:{home / 'journal.db'}?mode=ro", uri=True)
    try:
        return conn.execute("SELECT status FROM jobs WHERE id = ?", (sid,)).fetchone()[0]
    finally:
        conn.close()


def test_the_daemon_restarts_on_a_full_disk_and_recovers_once_there_is_room(
    fullable: FullableHome, repo: Path, tmp_path: Path, gate: Path
):
    workflow = _workflow(tmp_path, gate)
    daemon = Daemon(fullable.home)
    daemon.start()
    try:
        queued = ctl("run", str(workflow), "-y", "--detach", cwd=repo, check=True).stdout.strip()
        ctl("run", str(workflow), "-y", "--detach", cwd=repo, check=True)
        _stop(daemon)
        # as SQLite leaves a journal closed cleanly: no -wal or -shm file to read it with
        conn = sqlite3.connect(fullable.home / "journal.db")
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        conn.close()
        fullable.fill()

        daemon.start()  # answers ping (Daemon.start waits for it)
        status = rpc(fullable.home, "daemon.status", {})
        assert status["store_problem"].startswith(f"no space left on {fullable.home}")
        shown = ctl("status")
        assert shown.returncode == 0
        assert f"prodigyd's store: no space left on {fullable.home}" in shown.stderr
        listed = json.loads(ctl("sessions", "ls", "--json", check=True).stdout)
        assert {r["id"] for r in listed} >= {queued}  # it reads what it has

        fullable.free()
        gate.touch()
        wait_for(
            lambda: (
                {
                    r["status"]
                    for r in json.loads(ctl("sessions", "ls", "--json", check=True).stdout)
                }
                == {"completed"}
            ),
            timeout=120,
            what="the acknowledged jobs to run once there is room",
        )
        assert rpc(fullable.home, "daemon.status", {})["store_problem"] is None
    finally:
        fullable.free()
        _stop(daemon)


def test_a_hook_event_waits_in_the_spool_on_a_full_disk_and_runs_once_there_is_room(
    fullable: FullableHome, repo: Path
):
    commit_files(
        repo,
        {".prodigy/workflows/t.yml": "on: commit\ncommands:\n  - shell: 'echo hi > hi.txt'\n"},
        "trigger",
    )
    head = git(repo, "rev-parse", "HEAD").strip()
    daemon = Daemon(fullable.home)
    daemon.start()  # makes the store, then stops: the entry is read by the next daemon
    _stop(daemon)
    spool = fullable.home / "spool"
    (spool / "1.00-1.env").write_bytes(f"PATH={os.environ['PATH']}\0".encode())
    (spool / "1.00-1.event").write_text(
        f"version=1\nhook=post-commit\nrepo={repo}\nhead={head}\nbranch=refs/heads/main\nend=1\n"
    )
    fullable.fill()
    daemon.start()
    try:
        wait_for(lambda: _trigger_problems(repo), what="the inbox to try the entry")
        [problem] = _trigger_problems(repo)
        assert "it waits in the spool until there is room: no space left on" in problem["error"]
        assert sorted(p.name for p in spool.iterdir()) == ["1.00-1.env", "1.00-1.event"]

        fullable.free()
        wait_for(
            lambda: not any(spool.glob("1.00-1.*")),
            timeout=60,
            what="the entry to be submitted once there is room",
        )
        wait_for(
            lambda: (
                [
                    s["status"]
                    for s in json.loads(ctl("sessions", "ls", "--json", check=True).stdout)
                ]
                == ["awaiting_merge"]
            ),
            timeout=60,
            what="the triggered job to run",
        )
    finally:
        fullable.free()
        _stop(daemon)


def _trigger_problems(repo: Path) -> list[dict]:
    return json.loads(ctl("triggers", "ls", "--json", cwd=repo, check=True).stdout)["problems"]


def test_cancelling_a_running_job_on_a_full_disk_stops_it_and_records_it_once_there_is_room(
    fullable: FullableHome, daemon_on: Daemon, repo: Path, tmp_path: Path, gate: Path
):
    sid = ctl("run", str(_workflow(tmp_path, gate)), "-y", "--detach", cwd=repo, check=True)
    sid = sid.stdout.strip()
    wait_for(lambda: _status(sid) == "running", what="the session to run")
    fullable.fill()
    cancelled = ctl("cancel", sid)
    assert cancelled.returncode == 0, cancelled.stderr  # not refused, as docs/daemon.md says
    assert cancelled.stdout.strip() == f"session {sid}: cancelled"
    assert _status(sid) == "cancelled"

    fullable.free()  # written at once (a WAL reused in place may fit) or by the mender
    wait_for(
        lambda: _journal_row(fullable.home, sid) == "cancelled",
        timeout=60,
        what="the cancel to be recorded",
    )
