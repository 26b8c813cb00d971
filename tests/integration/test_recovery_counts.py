"""What the daemon shows after a forced resume and a restart: step counts and locks."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from tests import cli
from tests.cli import ctl, wait_for
from tests.daemonkit import Daemon, rpc


def test_resume_force_of_a_mapreduce_job_keeps_its_step_count(
    daemon: Path, repo: Path, tmp_path: Path
):
    flag = tmp_path / "fixed"
    wf = tmp_path / "wf.yml"
    wf.write_text(f"""
mode: mapreduce
setup:
  - shell: "echo setup"
map:
  input: "printf '1\\n2\\n'"
  agent_template:
    - shell: "echo ${{item}} > out-${{item}}.txt"
reduce:
  - shell: "echo reduce"
  - shell: "test -f {flag}"
""")
    assert ctl("run", str(wf), "-y", cwd=repo).returncode == 1
    sid = json.loads(ctl("sessions", "ls", "--json", check=True).stdout)[0]["id"]
    wf.write_text(wf.read_text() + "# edited\n")  # --force: run the edited file
    flag.touch()
    again = ctl("resume", sid, "--force", "-y", cwd=repo)
    assert again.returncode == 0, again.stdout + again.stderr
    (row,) = json.loads(ctl("sessions", "ls", "--json", check=True).stdout)[:1]
    assert row["status"] == "completed" and row["steps"] == "3/3", row


def test_daemon_start_clears_every_lock_a_stopped_daemon_left(isolated: Path):
    dead = int(subprocess.run(["sh", "-c", "echo $$"], capture_output=True, text=True).stdout)
    folder = isolated / "locks"
    folder.mkdir(parents=True)
    stale = folder / "stale-session.lock"
    stale.write_text(json.dumps({"job_id": "stale-session", "process_id": dead}))
    # A process id given to another process since (after a reboot): this test's, alive.
    reused = folder / "reused-session.lock"
    reused.write_text(json.dumps({"job_id": "reused-session", "process_id": os.getpid()}))
    odd = folder / "odd-session.lock"
    odd.mkdir()  # no lock file: left alone
    cli.ctl("daemon", "start", check=True)
    try:
        assert not stale.exists() and not reused.exists()
        assert odd.is_dir()
    finally:
        cli.ctl("daemon", "stop", check=True)


def test_a_job_a_kill_9_cut_off_shows_the_steps_its_journal_holds(
    isolated: Path, repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    """A record counts its steps at its start and end; a daemon killed between them left
    `sessions ls` saying 0 steps done of a job whose first step had run."""
    monkeypatch.setenv("PRODIGY_AUTO_RESUME", "false")  # the counts as recovery left them
    started = tmp_path / "started"
    wf = tmp_path / "wf.yml"
    wf.write_text(f"- shell: 'true'\n- shell: 'touch {started}; sleep 60'\n- shell: 'true'\n")
    daemon = Daemon(isolated)
    daemon.start()
    try:
        params = {"workflow": str(wf), "cwd": str(repo), "env": dict(os.environ)}
        job = rpc(isolated, "jobs.submit", params)["id"]
        wait_for(started.exists, timeout=60, what="the second step")
        daemon.kill()
        daemon.start()
        row = rpc(isolated, "sessions.list", {})[0]
    finally:
        cli.ctl("daemon", "stop")
    assert (row["id"], row["status"], row["steps"]) == (job, "interrupted", "1/3")
