"""The daemon's lifecycle as users meet it: start, stop, crash, several jobs at once."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from prodigyd import no_openssl
from tests.cli import ctl, ctl_started, wait_for
from tests.gitutil import git


def daemon_pid(home: Path) -> int:
    return int((home / "prodigyd.pid").read_text())


def shown(session_id: str) -> dict:
    """`sessions show ID --json`."""
    return json.loads(ctl("sessions", "show", session_id, "--json", check=True).stdout)


def last_session(home: Path) -> dict:
    return json.loads(ctl("sessions", "ls", "--json", check=True).stdout)[0]


def test_start_is_idempotent_and_status_reports(daemon: Path):
    first = daemon_pid(daemon)
    assert ctl("daemon", "start").returncode == 0
    assert daemon_pid(daemon) == first
    status = json.loads(ctl("daemon", "status", "--json", check=True).stdout)
    assert status["running"] is True and status["pid"] == first
    # named so (not python3.11) for `pgrep prodigyd` and the git hook's pid check
    assert Path(f"/proc/{first}/comm").read_text() == "prodigyd\n"


def test_a_daemon_started_in_a_users_folder_works_from_root_with_its_own_libraries(
    isolated: Path, repo: Path, tmp_path: Path
):
    folder = tmp_path / "project"
    folder.mkdir()
    (folder / "yaml.py").write_text("raise SystemExit('the project yaml.py was imported')\n")
    ctl("daemon", "start", cwd=folder, check=True)
    try:
        status = json.loads(ctl("daemon", "status", "--json", check=True).stdout)
        assert os.readlink(f"/proc/{status['pid']}/cwd") == "/"
        wf = tmp_path / "wf.yml"
        wf.write_text("- shell: 'true'\n")  # the daemon's workflow loader imports yaml
        done = ctl("run", str(wf), "-y", cwd=repo)
        assert done.returncode == 0, done.stdout + done.stderr
    finally:
        ctl("daemon", "stop", check=True)


def test_start_and_stop_json_say_running_as_status_json_does(isolated: Path):
    none = ctl("daemon", "stop", "--json")
    assert (none.returncode, none.stderr) == (0, "")
    assert json.loads(none.stdout) == {"running": False, "stopped": False}
    try:
        started = json.loads(ctl("daemon", "start", "--json", check=True).stdout)
        again = json.loads(ctl("daemon", "start", "--json", check=True).stdout)
        told = ctl("daemon", "start", check=True).stdout
        status = json.loads(ctl("daemon", "status", "--json", check=True).stdout)
    finally:
        stopped = ctl("daemon", "stop", "--json", check=True)
    assert started["running"] is True and set(started) == {*status, "started"}
    assert started["pid"] == status["pid"] == again["pid"]
    assert (started["started"], again["started"]) == (True, False)
    assert told.startswith(f"prodigyd running (pid {status['pid']}), already: with the settings")
    assert json.loads(stopped.stdout) == {"running": False, "stopped": True}
    process = Path(f"/proc/{status['pid']}/stat")  # "stopped" is said once it has exited
    state = process.read_text().rpartition(")")[2].split()[0] if process.exists() else "gone"
    assert state in ("gone", "Z", "X"), state


@pytest.mark.parametrize("name", ["prodigyd.sock", "prodigyd.lock"])
def test_a_folder_in_place_of_the_socket_or_lock_fails_the_start_naming_it(
    isolated: Path, name: str
):
    isolated.mkdir(parents=True, exist_ok=True)
    (isolated / name / "kept").mkdir(parents=True)  # someone's folder: never removed
    started = ctl("daemon", "start")
    assert started.returncode == 2, started.stdout + started.stderr  # the user's to fix
    assert f"{isolated / name} is a folder, not " in started.stderr
    assert "Traceback" not in started.stderr
    assert (isolated / name / "kept").is_dir()
    assert json.loads(ctl("daemon", "status", "--json").stdout)["running"] is False


def test_stop_lets_the_step_finish_then_the_next_daemon_resumes(
    isolated: Path, repo: Path, tmp_path: Path
):
    gate = tmp_path / "gate"
    started = tmp_path / "started"
    runs = tmp_path / "runs.log"
    wf = tmp_path / "wf.yml"
    wf.write_text(f"""
- shell: "echo one >> {runs}"
- shell: "touch {started}; while [ ! -f {gate} ]; do sleep 0.05; done; echo two >> {runs}"
- shell: "echo three >> {runs}; echo three > three.txt"
""")
    client = ctl_started("run", str(wf), "-y", cwd=repo)
    try:
        wait_for(started.exists, what="step 2 to start")
        stopper = subprocess.Popen(
            [sys.executable, "-m", "prodigyctl.main", "daemon", "stop"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
        )
        log = isolated / "logs" / "prodigyd.log"
        wait_for(lambda: "shutting down" in log.read_text(), what="the daemon to begin stopping")
        gate.touch()  # step 2 finishes within the grace period
        assert stopper.wait(timeout=60) == 0
        out, err = client.communicate(timeout=60)
    finally:
        client.kill()
    assert client.returncode == 130, out + err
    # the next daemon resumes it by itself: nobody is told to resume it by hand
    assert "it resumes when prodigyd starts again (follow it: prodigyctl logs -f" in out + err
    assert "Resume with" not in out + err
    assert not (isolated / "prodigyd.sock").exists()
    assert runs.read_text() == "one\ntwo\n"  # stopped between steps 2 and 3
    ctl("daemon", "start", check=True)  # auto_resume picks the session up
    try:
        wait_for(lambda: last_session(isolated)["status"] == "completed", what="auto-resume")
    finally:
        ctl("daemon", "stop", check=True)
    assert runs.read_text() == "one\ntwo\nthree\n"  # no completed step ran twice
    assert (repo / "three.txt").read_text() == "three\n"


def test_kill_9_leaves_a_resumable_session_and_a_startable_daemon(
    isolated: Path, repo: Path, tmp_path: Path
):
    gate = tmp_path / "gate"
    pids = tmp_path / "pids"
    wf = tmp_path / "wf.yml"
    wf.write_text(f"""
- shell: "echo one > one.txt"
- shell: "echo $$ > {pids}; while [ ! -f {gate} ]; do sleep 0.05; done"
- shell: "echo three > three.txt"
""")
    session_id = ctl("run", str(wf), "-y", "--detach", cwd=repo, check=True).stdout.strip()
    wait_for(pids.exists, what="step 2 to start")
    os.kill(daemon_pid(isolated), signal.SIGKILL)
    try:
        gate.touch()  # lets the orphaned step end by itself
        # the next daemon finds the session `running`, records it interrupted, resumes it
        wait_for(
            lambda: shown(session_id)["status"] == "completed",
            what="auto-resume after kill -9",
        )
        assert (repo / "three.txt").read_text() == "three\n"
        assert (repo / "one.txt").read_text() == "one\n"
    finally:
        ctl("daemon", "stop")


def test_a_run_whose_daemon_dies_says_how_to_follow_its_job_on(
    isolated: Path, repo: Path, tmp_path: Path
):
    """`run` loses its daemon to a kill -9: it exits 5 (E2003, as `logs -f` does) saying
    the job resumes, and the command it names starts a daemon and follows it to its end."""
    gate, pids = tmp_path / "gate", tmp_path / "pids"
    wf = tmp_path / "wf.yml"
    wf.write_text(f"""
- shell: "echo $$ > {pids}; while [ ! -f {gate} ]; do sleep 0.05; done"
- shell: "echo two > two.txt"
""")
    client = ctl_started("run", str(wf), "-y", cwd=repo)
    try:
        wait_for(pids.exists, what="step 1 to start")
        os.kill(daemon_pid(isolated), signal.SIGKILL)
        out, err = client.communicate(timeout=60)
    finally:
        client.kill()
    assert client.returncode == 5, out + err
    session_id = last_session(isolated)["id"]  # (starts the next daemon: the job resumes)
    assert f"error[E2003]: lost the connection to prodigyd; {session_id} resumes" in err
    gate.touch()
    try:
        follow = ctl("logs", "-f", session_id, cwd=repo)
        assert follow.returncode == 0, follow.stdout + follow.stderr
        assert (repo / "two.txt").read_text() == "two\n"
    finally:
        ctl("daemon", "stop")


def test_a_running_jobs_progress_is_shown_as_it_goes(daemon: Path, repo: Path, tmp_path: Path):
    """`sessions ls` and `sessions show` show the steps a running job completed, not the
    count saved with its start (which read 0/3 until it ended)."""
    gate, started = tmp_path / "gate", tmp_path / "started"
    wf = tmp_path / "wf.yml"
    wf.write_text(f"""
- shell: "true"
- shell: "touch {started}; while [ ! -f {gate} ]; do sleep 0.05; done"
- shell: "true"
""")
    session_id = ctl("run", str(wf), "-y", "--detach", cwd=repo, check=True).stdout.strip()
    try:
        wait_for(started.exists, what="step 2 to start")
        listed = json.loads(ctl("sessions", "ls", "--json", check=True).stdout)[0]
        assert (listed["status"], listed["steps"]) == ("running", "1/3")
        record = shown(session_id)
        assert record["completed_steps"] == 1 and len(record["completed"]) == 1
    finally:
        gate.touch()
    wait_for(lambda: last_session(daemon)["steps"] == "3/3", what="the job to end")


def test_a_merge_workflow_a_kill_9_cut_off_runs_again_from_its_start_not_over_itself(
    isolated: Path, repo: Path, tmp_path: Path
):
    """Its steps keep no checkpoint: the commit its first step made before the crash is
    undone before it runs again, so it lands once (it landed twice)."""
    gate, started = tmp_path / "gate", tmp_path / "started"
    wf = tmp_path / "wf.yml"
    wf.write_text(f"""
commands:
  - shell: "echo work > work.txt"
merge:
  - shell: "echo m >> merged.txt && git add merged.txt && git commit -qm merge-step"
  - shell: "touch {started}; while [ ! -f {gate} ]; do sleep 0.05; done"
""")
    session_id = ctl("run", str(wf), "-y", "--detach", cwd=repo, check=True).stdout.strip()
    wait_for(started.exists, what="the merge workflow's second step")
    os.kill(daemon_pid(isolated), signal.SIGKILL)
    gate.touch()
    try:
        wait_for(
            lambda: shown(session_id)["status"] == "completed",
            what="auto-resume after kill -9",
        )
        assert (repo / "merged.txt").read_text() == "m\n"
        log = git(repo, "log", "--format=%s", "main")
        assert log.splitlines().count("merge-step") == 1, log
        record = shown(session_id)
        assert record["merge_workflow_base"] is None and not record["merge_workflow_done"]
    finally:
        ctl("daemon", "stop")


def test_concurrent_sessions_in_one_repo_both_merge(daemon: Path, repo: Path, tmp_path: Path):
    ids = []
    for name in ("a", "b", "c"):
        wf = tmp_path / f"{name}.yml"
        wf.write_text(
            f"- shell: 'echo {name} > {name}.txt && git add -A && git commit -qm {name}'\n"
        )
        ids.append(ctl("run", str(wf), "-y", "--detach", cwd=repo, check=True).stdout.strip())

    def all_done() -> bool:
        rows = json.loads(ctl("sessions", "ls", "--json").stdout)
        return all(r["status"] == "completed" for r in rows) and len(rows) == 3

    wait_for(all_done, timeout=60, what="three sessions to complete")
    assert {"a.txt", "b.txt", "c.txt"} <= set(git(repo, "ls-tree", "--name-only", "main").split())
    assert git(repo, "status", "--porcelain") == ""


def test_warnings_are_shown_and_strict_makes_them_errors(daemon: Path, repo: Path, tmp_path: Path):
    wf = tmp_path / "wf.yml"
    wf.write_text("- shell: 'true'\n  timout: 5\n")
    loose = ctl("run", str(wf), "-y", cwd=repo)
    assert loose.returncode == 0
    assert "warning:" in loose.stderr and "did you mean 'timeout'" in loose.stderr
    strict = ctl("run", str(wf), "-y", "--strict", cwd=repo)
    assert strict.returncode == 2 and "timout" in strict.stderr


def test_help_lists_every_command(isolated: Path):
    done = ctl("--help", check=True)
    for command in ("run", "resume", "merge", "cancel", "sessions", "daemon"):
        assert command in done.stdout
    assert not (isolated / "prodigyd.sock").exists()  # --help never starts the daemon


def test_stop_with_live_subscribers_logs_no_tracebacks(daemon: Path, repo: Path, tmp_path: Path):
    follower = subprocess.Popen(
        [sys.executable, "-m", "prodigyctl.main", "follow", "--all"],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert follower.stderr is not None
        assert "Following" in follower.stderr.readline()  # subscribed before the stop
        wf = tmp_path / "wf.yml"
        wf.write_text("- shell: 'echo hi'\n")
        assert ctl("run", str(wf), "-y", cwd=repo).returncode == 0
        ctl("daemon", "stop", check=True)
        follower.wait(timeout=30)
    finally:
        follower.kill()
    assert "Traceback" not in _log(daemon) and "ERROR" not in _log(daemon)
    ctl("daemon", "start", check=True)  # the fixture stops it


def _log(home: Path) -> str:
    return (home / "logs" / "prodigyd.log").read_text()


def test_drain_finishes_queued_and_running_jobs_before_exiting(
    isolated: Path, repo: Path, tmp_path: Path
):
    (isolated).mkdir(parents=True, exist_ok=True)
    (isolated / "config.toml").write_text("max_concurrent_jobs = 1\n")
    gate = tmp_path / "gate"
    wf = tmp_path / "wf.yml"
    wf.write_text(
        f"- shell: 'while [ ! -f {gate} ]; do sleep 0.05; done; echo $PRODIGY_SESSION_ID > \"$PRODIGY_SESSION_ID.txt\"'\n"
    )
    ids = [
        ctl("run", str(wf), "-y", "--detach", cwd=repo, check=True).stdout.strip() for _ in range(2)
    ]
    assert json.loads(ctl("ps", "--json", check=True).stdout)["queued"][0]["id"] == ids[1]
    stopper = subprocess.Popen(
        [sys.executable, "-m", "prodigyctl.main", "daemon", "stop", "--drain"],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
    )
    wait_for(
        lambda: "draining" in (isolated / "logs" / "prodigyd.log").read_text(),
        what="the drain to begin",
    )
    refused = ctl("run", str(wf), "--detach", cwd=repo)
    assert refused.returncode != 0 and "shutting down" in refused.stderr
    gate.touch()
    assert stopper.wait(timeout=120) == 0
    assert not (isolated / "prodigyd.pid").exists()
    files = set(git(repo, "ls-tree", "--name-only", "main").split())
    assert {f"{sid}.txt" for sid in ids} <= files  # both ran to the end, then it stopped


def test_a_stop_during_a_drain_stops_now_and_the_jobs_resume_at_the_next_start(
    isolated: Path, repo: Path, tmp_path: Path
):
    (isolated).mkdir(parents=True, exist_ok=True)
    # a stop lets a step run this long: the drain would wait the whole minute
    (isolated / "config.toml").write_text("max_concurrent_jobs = 1\nshutdown_grace_seconds = 1\n")
    wf = tmp_path / "wf.yml"
    wf.write_text("- shell: 'sleep 60'\n- shell: 'echo done > \"$PRODIGY_SESSION_ID.txt\"'\n")
    ids = [
        ctl("run", str(wf), "-y", "--detach", cwd=repo, check=True).stdout.strip() for _ in range(2)
    ]
    drainer = subprocess.Popen(
        [sys.executable, "-m", "prodigyctl.main", "daemon", "stop", "--drain"],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        said = drainer.stderr.readline()  # the reply came: the drain is under way
        assert said.startswith("prodigyd is draining: 1 running and 1 queued jobs finish first")
        stopped = ctl("daemon", "stop", timeout=60)  # now: the sleep is not waited for
        assert stopped.returncode == 0 and stopped.stdout == "prodigyd stopped\n"
        assert drainer.wait(timeout=30) == 0
    finally:
        drainer.kill()
    held = {**os.environ, "PRODIGY_AUTO_RESUME": "false"}  # as the stop left them
    ctl("daemon", "start", env=held, check=True)
    try:
        rows = json.loads(ctl("sessions", "ls", "--json", check=True).stdout)
    finally:
        ctl("daemon", "stop", check=True)
    statuses = {row["id"]: row["status"] for row in rows}
    assert statuses[ids[0]] == "interrupted"  # stopped mid-step: resumable
    assert statuses[ids[1]] in ("queued", "running")  # never started: this daemon starts it


def test_stop_returns_once_the_store_is_settled(isolated: Path, repo: Path, tmp_path: Path):
    """`daemon stop` returns when the pid file goes, and the daemon removes it last: the
    journal is closed by then (no -wal file left for a backup or a test to race)."""
    (tmp_path / "wf.yml").write_text("- shell: 'true'\n")
    for _ in range(3):
        ctl("run", "-y", str(tmp_path / "wf.yml"), cwd=repo, check=True)  # autostarts
        ctl("daemon", "stop", check=True)
        assert not (isolated / "journal.db-wal").exists()
        assert ctl("daemon", "status").returncode == 5  # stopped: not running


def test_a_job_that_waited_in_the_queue_runs_its_workflow_as_edited_meanwhile(
    isolated: Path, repo: Path, tmp_path: Path
):
    """A job started at once runs what its admission read; one that waited for a slot
    reads its workflow again when it starts, so an edit made while it waited counts."""
    isolated.mkdir(parents=True, exist_ok=True)
    (isolated / "config.toml").write_text("max_concurrent_jobs = 1\n")
    gate = tmp_path / "gate"
    blocker = tmp_path / "blocker.yml"
    blocker.write_text(f"- shell: 'while [ ! -f {gate} ]; do sleep 0.05; done'\n")
    wf = tmp_path / "wf.yml"
    wf.write_text("- shell: 'echo as submitted > said.txt'\n")
    try:
        ctl("run", str(blocker), "-y", "--detach", cwd=repo, check=True)
        waiting = ctl("run", str(wf), "-y", "--detach", cwd=repo, check=True).stdout.strip()
        assert json.loads(ctl("ps", "--json", check=True).stdout)["queued"][0]["id"] == waiting
        wf.write_text("- shell: 'echo as edited > said.txt'\n")
        gate.touch()
        wait_for(
            lambda: (
                json.loads(ctl("sessions", "show", waiting, "--json", check=True).stdout)["status"]
                == "completed"
            ),
            timeout=120,
            what="the job that waited to finish",
        )
        assert git(repo, "show", "main:said.txt").strip() == "as edited"
    finally:
        ctl("daemon", "stop", check=True)


@pytest.mark.parametrize("loop", ["uvloop", "asyncio"])
def test_the_daemon_maps_no_openssl(
    isolated: Path, repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, loop: str
):
    """prodigyd/no_openssl.py: on either event loop, a daemon that ran a job (a step, a
    commit, the merge back) holds neither libssl nor libcrypto (~4.5 MB resident)."""
    if not no_openssl._builtin_hashes():
        pytest.skip("this Python has no built-in hashes: hashlib needs OpenSSL's")
    monkeypatch.setenv("PRODIGY_EVENT_LOOP", loop)
    wf = tmp_path / "wf.yml"
    wf.write_text("- shell: 'echo a > a.txt && git add -A && git commit -qm a'\n")
    ctl("daemon", "start", check=True)
    try:
        ctl("run", str(wf), "-y", cwd=repo, check=True)
        assert "a.txt" in git(repo, "ls-tree", "--name-only", "main")
        pid = daemon_pid(isolated)
        maps = Path(f"/proc/{pid}/maps").read_text()
        exe = os.readlink(f"/proc/{pid}/exe")
    finally:
        ctl("daemon", "stop", check=True)
    assert exe in maps  # the daemon's own maps were read
    assert [line for line in maps.splitlines() if "libssl" in line or "libcrypto" in line] == []


def test_the_daemon_log_has_a_line_for_each_jobs_end(daemon: Path, repo: Path, tmp_path: Path):
    wf = tmp_path / "lint.yml"
    wf.write_text("name: lint\ncommands:\n  - shell: 'exit 3'\n")
    assert ctl("run", str(wf), "-y", cwd=repo).returncode == 1
    [session] = json.loads(ctl("sessions", "ls", "--json", check=True).stdout)
    assert (
        f"session {session['id']} (lint) failed" in (daemon / "logs" / "prodigyd.log").read_text()
    )
