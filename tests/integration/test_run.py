"""`prodigyctl run/resume/merge/sessions` end to end: the real client, daemon and socket."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

from tests.cli import ctl, ctl_started, json_lines, wait_for
from tests.daemonkit import rpc
from tests.gitutil import git
from tests.hostile import billion_laughs


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_run_yes_merges_and_reports_success(daemon: Path, repo: Path, tmp_path: Path):
    wf = write(
        tmp_path / "wf.yml",
        """
name: greet
commands:
  - shell: "echo hello > hello.txt && git add hello.txt && git commit -qm hello"
    commit_required: true
  - shell: "echo from $ARG"
""",
    )
    done = ctl("run", str(wf), "-y", "--args", "tester", cwd=repo)
    assert done.returncode == 0, done.stderr + done.stdout
    assert "[2/2] shell: echo from tester" in done.stdout
    assert "│ from tester" in done.stdout
    assert "completed" in done.stdout
    assert git(repo, "show", "main:hello.txt") == "hello\n"
    rows = json.loads(ctl("sessions", "ls", "--json", check=True).stdout)
    assert rows[0]["status"] == "completed"
    assert {"id", "workflow", "status", "started_at"} <= rows[0].keys()
    assert rows[0]["workflow"] == str(wf)


def test_json_output_is_one_event_per_line(daemon: Path, repo: Path, tmp_path: Path):
    wf = write(tmp_path / "wf.yml", "- shell: 'echo hi'\n")
    done = ctl("run", str(wf), "-y", "--json", cwd=repo)
    assert done.returncode == 0, done.stderr
    events = json_lines(done.stdout)
    kinds = [e["event_type"] for e in events]
    assert kinds[0] == "session_started"
    assert kinds[-1] == "session_finished" and events[-1]["status"] == "completed"
    assert "step_completed" in kinds and "merge_completed" in kinds
    seqs = [e["seq"] for e in events]
    assert seqs == list(range(seqs[0], seqs[0] + len(seqs)))  # consecutive: none lost or repeated


def test_failure_exits_1_and_resume_finishes(daemon: Path, repo: Path, tmp_path: Path):
    flag = tmp_path / "ok"
    wf = write(
        tmp_path / "wf.yml",
        f"""
- shell: "echo a > a.txt"
- shell: "test -f {flag} || {{ echo 'flag missing' >&2; exit 7; }}"
- shell: "echo c > c.txt"
""",
    )
    done = ctl("run", str(wf), "-y", cwd=repo)
    assert done.returncode == 1
    assert "flag missing" in done.stdout + done.stderr
    session_id = json.loads(ctl("sessions", "ls", "--json").stdout)[0]["id"]
    assert f"prodigyctl resume {session_id}" in done.stdout
    assert "c.txt" not in git(repo, "ls-tree", "--name-only", "main")
    flag.touch()
    again = ctl("resume", session_id, "-y", cwd=repo)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "skipping already completed step 1" in again.stdout
    assert set(git(repo, "ls-tree", "--name-only", "main").split()) >= {"a.txt", "c.txt"}


def test_resume_refuses_a_changed_workflow_unless_forced(daemon: Path, repo: Path, tmp_path: Path):
    wf = write(tmp_path / "wf.yml", "- shell: 'exit 1'\n")
    assert ctl("run", str(wf), "-y", cwd=repo).returncode == 1
    session_id = json.loads(ctl("sessions", "ls", "--json").stdout)[0]["id"]
    write(wf, "- shell: 'exit 0'\n")
    refused = ctl("resume", session_id, "-y")
    assert refused.returncode == 4
    assert "changed since session" in refused.stderr and "--force" in refused.stderr
    forced = ctl("resume", session_id, "-y", "--force")
    assert forced.returncode == 0, forced.stdout + forced.stderr


def test_without_yes_and_no_tty_the_session_awaits_merge(daemon: Path, repo: Path, tmp_path: Path):
    wf = write(tmp_path / "wf.yml", "- shell: 'echo x > x.txt'\n")
    done = ctl("run", str(wf), cwd=repo)
    assert done.returncode == 0, done.stderr
    session_id = json.loads(ctl("sessions", "ls", "--json").stdout)[0]["id"]
    assert f"prodigyctl merge {session_id}" in done.stdout
    assert (
        json.loads(ctl("sessions", "show", session_id, "--json").stdout)["status"]
        == "awaiting_merge"
    )
    assert not (repo / "x.txt").exists()
    merged = ctl("merge", session_id)
    assert merged.returncode == 0, merged.stderr
    assert merged.stdout.splitlines()[-1] == f"session {session_id} completed"
    assert (repo / "x.txt").read_text() == "x\n"


def test_merge_json_prints_its_events_up_to_session_finished(
    daemon: Path, repo: Path, tmp_path: Path
):
    wf = write(tmp_path / "wf.yml", "- shell: 'echo x > x.txt'\n")
    ran = json_lines(ctl("run", str(wf), "--json", cwd=repo, check=True).stdout)
    session_id = ran[-1]["session_id"]
    assert ran[-1]["status"] == "awaiting_merge"
    merged = ctl("merge", session_id[-6:], "--json")  # JSON Lines, as `run --json` prints
    assert (merged.returncode, merged.stderr) == (0, ""), merged.stderr
    events = json_lines(merged.stdout)
    assert [e["event_type"] for e in events] == [
        "merge_started",
        "merge_completed",
        "worktree_cleaned",
        "session_finished",
    ]
    assert {e["session_id"] for e in events} == {session_id}
    assert [e["seq"] for e in events] == list(range(ran[-1]["seq"] + 1, ran[-1]["seq"] + 5))
    assert (events[-1]["status"], events[-1]["merged"]) == ("completed", True)


def test_detach_returns_the_session_id(daemon: Path, repo: Path, tmp_path: Path):
    wf = write(tmp_path / "wf.yml", "- shell: 'echo x'\n")
    done = ctl("run", str(wf), "--detach", "-y", cwd=repo)
    assert done.returncode == 0
    session_id = done.stdout.strip()
    assert session_id.startswith("workflow-")

    def finished() -> bool:
        shown = json.loads(ctl("sessions", "show", session_id, "--json").stdout)
        return shown["status"] == "completed"

    wait_for(finished, what="detached session to complete")


def test_ctrl_c_cancels_the_job_and_exits_130(daemon: Path, repo: Path, tmp_path: Path):
    started = tmp_path / "started"
    wf = write(
        tmp_path / "wf.yml",
        f"""
- shell: "echo one"
- shell: "touch {started}; sleep 60"
- shell: "echo three > three.txt"
""",
    )
    client = ctl_started("run", str(wf), "-y", cwd=repo)
    wait_for(started.exists, what="step 2 to start")
    client.send_signal(signal.SIGINT)
    out, err = client.communicate(timeout=60)
    assert client.returncode == 130, out + err
    session_id = json.loads(ctl("sessions", "ls", "--json").stdout)[0]["id"]
    assert (
        json.loads(ctl("sessions", "show", session_id, "--json").stdout)["status"] == "interrupted"
    )
    assert f"prodigyctl resume {session_id}" in err
    write(wf, wf.read_text().replace("sleep 60", "true"))
    resumed = ctl("resume", session_id, "-y", "--force")
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert (repo / "three.txt").exists()


def test_a_detached_job_cancelled_resumable_resumes_and_one_cancelled_for_good_says_where_its_work_is(
    daemon: Path, repo: Path, tmp_path: Path
):
    started = tmp_path / "started"
    wf = write(
        tmp_path / "wf.yml",
        f"""
- shell: "echo one-$$ > one.txt && git add one.txt && git commit -qm one"
- shell: "touch {started}; sleep 60"
- shell: "echo three > three.txt"
""",
    )

    def detached() -> str:
        started.unlink(missing_ok=True)
        ctl("run", str(wf), "--detach", cwd=repo, check=True)
        wait_for(started.exists, what="step 2 to start")
        return json.loads(ctl("sessions", "ls", "--json").stdout)[0]["id"]

    paused = detached()
    stopped = ctl("cancel", paused, "--resumable", check=True)
    assert stopped.stdout == (
        f"session {paused}: interrupted (resume with: prodigyctl resume {paused})\n"
    )
    write(wf, wf.read_text().replace("sleep 60", "true"))
    resumed = ctl("resume", paused, "-y", "--force")
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert git(repo, "show", "main:three.txt") == "three\n"

    write(wf, wf.read_text().replace("; true", "; sleep 60"))
    gone = detached()
    assert ctl("cancel", gone, check=True).stdout == f"session {gone}: cancelled\n"
    refused = ctl("resume", gone, "-y")
    assert refused.returncode != 0
    assert "is cancelled and cannot be resumed" in refused.stderr
    assert f"`git merge prodigy-{gone}` takes it" in refused.stderr
    assert git(repo, "show", f"prodigy-{gone}:one.txt").startswith("one-")  # as said: there


def test_yaml_error_names_file_line_and_column(daemon: Path, repo: Path, tmp_path: Path):
    wf = write(tmp_path / "bad.yml", "- shell: 'ok'\n- shell: [unclosed\n")
    done = ctl("run", str(wf), cwd=repo)
    assert done.returncode == 2
    assert f"{wf}:" in done.stderr
    assert "^" in done.stderr
    assert "Traceback" not in done.stderr


def test_unknown_step_type_and_wrong_field_type_are_usage_errors(
    daemon: Path, repo: Path, tmp_path: Path
):
    unknown = write(tmp_path / "u.yml", "- shel: 'typo'\n")
    done = ctl("run", str(unknown), cwd=repo)
    assert done.returncode == 2 and "shel" in done.stderr
    wrong = write(tmp_path / "w.yml", "- shell: 'x'\n  timeout: soon\n")
    done = ctl("run", str(wrong), cwd=repo)
    assert done.returncode == 2 and "timeout" in done.stderr


def test_missing_file_not_a_repo_and_detached_head(daemon: Path, repo: Path, tmp_path: Path):
    missing = ctl("run", str(tmp_path / "nope.yml"), cwd=repo)
    assert missing.returncode == 2 and "nope.yml" in missing.stderr
    wf = write(tmp_path / "wf.yml", "- shell: 'true'\n")
    plain = tmp_path / "plain"
    plain.mkdir()
    not_repo = ctl("run", str(wf), cwd=plain)
    assert not_repo.returncode == 2 and "Not a git repository" in not_repo.stderr
    # Both wrong: the workflow's error comes first (fix the file, then the place).
    neither = ctl("run", str(tmp_path / "nope.yml"), cwd=plain)
    assert neither.returncode == 2 and "nope.yml" in neither.stderr
    assert "Not a git repository" not in neither.stderr
    git(repo, "checkout", "-q", "--detach")
    detached = ctl("run", str(wf), cwd=repo)
    assert detached.returncode == 2 and "detached" in detached.stderr


def test_missing_claude_binary_is_a_clear_step_error(daemon: Path, repo: Path, tmp_path: Path):
    wf = write(tmp_path / "wf.yml", "- claude: '/hello'\n")
    env = {**os.environ, "PRODIGY_CLAUDE_BIN": str(tmp_path / "no-claude")}
    done = ctl("run", str(wf), "-y", cwd=repo, env=env)
    assert done.returncode == 2  # an environment error, refused before anything ran
    assert "no-claude" in done.stdout + done.stderr
    assert json.loads(ctl("sessions", "ls", "--json", check=True).stdout) == []


def test_daemon_status_never_starts_a_daemon(isolated: Path):
    done = ctl("daemon", "status")
    assert done.returncode == 5
    assert not (isolated / "prodigyd.sock").exists()


def test_socket_and_folder_are_private(daemon: Path):
    assert (daemon / "prodigyd.sock").stat().st_mode & 0o777 == 0o600
    assert daemon.stat().st_mode & 0o777 == 0o700


def _run_on_a_terminal(args: list[str], cwd: Path, answer: bytes) -> tuple[int, str]:
    """Run prodigyctl with a pseudo-terminal as stdin/stdout; type `answer` at the prompt."""
    import pty

    leader, follower = pty.openpty()
    client = subprocess.Popen(
        [sys.executable, "-m", "prodigyctl.main", *args],
        cwd=cwd,
        stdin=follower,
        stdout=follower,
        stderr=follower,
    )
    os.close(follower)
    seen = b""
    try:
        while b"[Y/n]" not in seen:
            seen += os.read(leader, 4096)
        os.write(leader, answer)
        while True:
            try:
                chunk = os.read(leader, 4096)
            except OSError:  # the terminal closed: the client exited
                break
            if not chunk:
                break
            seen += chunk
    finally:
        os.close(leader)
    return client.wait(timeout=60), seen.decode(errors="replace")


def test_on_a_terminal_run_asks_before_merging(daemon: Path, repo: Path, tmp_path: Path):
    wf = write(tmp_path / "wf.yml", "- shell: 'echo yes > asked.txt'\n")
    code, screen = _run_on_a_terminal(["run", str(wf)], repo, b"y\n")
    assert code == 0, screen
    assert "Merge prodigy-workflow-" in screen and "to main? [Y/n]" in screen
    assert (repo / "asked.txt").read_text() == "yes\n"
    declined = write(tmp_path / "no.yml", "- shell: 'echo no > declined.txt'\n")
    code, screen = _run_on_a_terminal(["run", str(declined)], repo, b"n\n")
    assert code == 0 and "prodigyctl merge" in screen
    assert not (repo / "declined.txt").exists()


def test_a_billion_laughs_is_refused_with_its_line_and_the_daemon_carries_on(
    daemon: Path, repo: Path, tmp_path: Path
):
    laughs = tmp_path / "laughs.yml"
    laughs.write_text(billion_laughs())
    done = ctl("run", str(laughs), cwd=repo, timeout=60)
    assert done.returncode == 2
    assert f"{laughs}:6:10: aliases expand to more than 100,000 nodes" in done.stderr
    assert "Traceback" not in done.stderr
    assert rpc(daemon, "ping", {})["pong"]


def test_prodigy_is_the_same_program_under_the_original_name(
    daemon: Path, repo: Path, tmp_path: Path
):
    prodigy = Path(sys.executable).parent / "prodigy"  # the console script pip installs
    wf = write(tmp_path / "wf.yml", "- shell: 'echo same > same.txt'\n")
    done = subprocess.run(
        [str(prodigy), "run", str(wf), "-y"],
        cwd=repo,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert git(repo, "show", "main:same.txt") == "same\n"
    usage = subprocess.run(
        [str(prodigy), "run", "--help"], capture_output=True, text=True, check=True
    )
    assert usage.stdout.startswith("Usage: prodigy run ")


def test_resume_without_an_id_takes_the_newest_failed_session_of_this_repository(
    daemon: Path, repo: Path, tmp_path: Path
):
    wf = write(tmp_path / "wf.yml", "- shell: 'test -n \"$FIXED\"'\n- shell: 'echo ok > ok.txt'\n")
    older = ctl("run", str(wf), "-y", "--json", cwd=repo)
    newer = ctl("run", str(wf), "-y", "--json", cwd=repo)
    assert older.returncode == newer.returncode == 1
    newest = json_lines(newer.stdout)[-1]["session_id"]
    other = tmp_path / "other"
    other.mkdir()
    subprocess.run(["git", "init", "-q", str(other)], check=True)
    nothing = ctl("resume", cwd=other)
    assert nothing.returncode == 3 and "no failed or interrupted session" in nothing.stderr
    as_json = ctl("resume", "--json", cwd=other)  # the error too is JSON, with its code
    assert json.loads(as_json.stderr)["error"]["code"] == "E6006", as_json.stderr

    done = ctl("resume", "-y", cwd=repo, env={**os.environ, "FIXED": "1"})
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"resuming {newest} (failed" in done.stderr
    assert git(repo, "show", "main:ok.txt") == "ok\n"
    again = ctl("resume", "-y", "--json", cwd=repo, env={**os.environ, "FIXED": "1"})
    assert again.returncode == 0, again.stdout + again.stderr
    assert again.stderr == ""  # no `resuming ...` note: the events name the session
    assert json_lines(again.stdout)[-1]["session_id"] == json_lines(older.stdout)[-1]["session_id"]


def test_sessions_ls_says_when_its_list_is_cut(daemon: Path, repo: Path):
    for _ in range(3):
        ctl("exec", "true", cwd=repo, check=True)
    cut = ctl("sessions", "ls", "--limit", "2", check=True)
    assert "the newest 2 shown; there are more: --all" in cut.stderr
    cut = ctl("sessions", "ls", "--limit", "2", "--json", check=True)
    assert len(json.loads(cut.stdout)) == 2 and cut.stderr == ""  # --limit bounds it
    every = ctl("sessions", "ls", "--all", "--json", check=True)
    assert len(json.loads(every.stdout)) == 3 and every.stderr == ""


def test_run_takes_a_priority_and_an_idempotency_key(daemon: Path, repo: Path, tmp_path: Path):
    wf = write(tmp_path / "wf.yml", "- shell: 'echo once >> once.txt'\n")
    key = ("--idempotency-key", "nightly-2026-12-02")
    first = ctl("run", str(wf), "-y", "--priority", "5", *key, "--json", cwd=repo)
    assert first.returncode == 0, first.stdout + first.stderr
    session_id = json_lines(first.stdout)[-1]["session_id"]
    listed = ctl("events", "ls", "--session", session_id, "--type", "session_queued", "--json")
    assert json_lines(listed.stdout)[0]["priority"] == 5
    again = ctl("run", str(wf), "-y", *key, "--detach", cwd=repo)
    assert again.returncode == 0 and again.stdout.strip() == session_id
    assert len(json.loads(ctl("sessions", "ls", "--json", check=True).stdout)) == 1
    assert git(repo, "show", "main:once.txt") == "once\n"
    refused = ctl("run", str(wf), "--priority", "1001", cwd=repo)
    assert refused.returncode == 2 and "--priority" in refused.stderr


def test_dry_run_shows_the_plan_and_runs_nothing(isolated: Path, repo: Path, tmp_path: Path):
    wf = write(tmp_path / "wf.yml", "- shell: 'touch ran.txt'\n- claude: '/lint src'\n")
    done = ctl("run", str(wf), "--dry-run", cwd=repo)
    assert done.returncode == 0, done.stderr
    assert "[1/2] shell: touch ran.txt" in done.stdout and "[2/2] claude: /lint src" in done.stdout
    assert not (isolated / "prodigyd.sock").exists()  # no daemon, nothing submitted
    (repo / "items.json").write_text('{"items": [{"n": 1}, {"n": 2}, {"n": 3}]}')
    mapreduce = write(
        tmp_path / "map.yml",
        "mode: mapreduce\nmap:\n  input: items.json\n  json_path: '$.items[*]'\n"
        "  filter: 'n > 1'\n  max_parallel: 2\n  agent_template:\n    - shell: 'echo ${item.n}'\n"
        "reduce:\n  - shell: 'echo done'\n",
    )
    shown = json.loads(ctl("run", str(mapreduce), "--dry-run", "--json", cwd=repo).stdout)
    phases = {phase["phase"]: phase for phase in shown["phases"]}
    assert phases["map"]["items"] == 2 and phases["map"]["max_parallel"] == 2
    assert phases["reduce"]["steps"] == ["shell: echo done"]
    text = ctl("run", str(mapreduce), "--dry-run", cwd=repo).stdout
    assert "── map phase: 2 items from items.json, 2 agents at once" in text
    # the book's MapReduce reference writes `item.score`: the item's own field
    mapreduce.write_text(mapreduce.read_text().replace("'n > 1'", "'item.n > 1'"))
    text = ctl("run", str(mapreduce), "--dry-run", cwd=repo).stdout
    assert "── map phase: 2 items from items.json" in text
    mapreduce.write_text(mapreduce.read_text().replace("'item.n > 1'", "'item.m > 1'"))
    text = ctl("run", str(mapreduce), "--dry-run", cwd=repo).stdout
    assert (
        "── map phase: 0 items (the filter 'item.m > 1' kept none of the 3 items; no item has "
        "a field named 'item.m') from items.json"
    ) in text


def test_a_named_step_shows_its_name_and_a_skipped_one_why(
    daemon: Path, repo: Path, tmp_path: Path
):
    wf = write(
        tmp_path / "wf.yml",
        "- name: Build the docs\n  shell: 'echo built > docs.txt'\n"
        "- shell: 'echo never'\n  when: 'false'\n",
    )
    done = ctl("run", str(wf), "-y", cwd=repo)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "[1/2] Build the docs" in done.stdout
    assert "  - skipped: when condition is false" in done.stdout
