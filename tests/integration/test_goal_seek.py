"""goal_seek end to end: `prodigyctl goal-seek`, `prodigyctl validate`, and attempts
checkpointed across a `kill -9` of the daemon and across `prodigyctl resume`, with the
real daemon, real git, the fake claude and scripted shell validators."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tests.cli import ctl, json_lines, wait_for
from tests.daemonkit import Daemon, rpc
from tests.gitutil import git

#: 25 points per line of n.txt: four lines reach 100.
QUARTERS = 'echo "score: $(( $(wc -l < n.txt) * 25 ))"'


def goal_events(session_id: str, kind: str) -> list[dict]:
    listed = ctl("events", "ls", "--session", session_id, "--type", kind, "--json", check=True)
    return json_lines(listed.stdout)


def test_goal_seek_command_runs_claude_until_the_goal_and_merges(
    daemon: Path, repo: Path, tmp_path: Path
):
    scenario = tmp_path / "scenario.json"
    scenario.write_text(
        json.dumps(
            {
                "rules": [
                    {
                        "match": "add a line",
                        "actions": [
                            {"append": "n.txt", "content": "x\n"},
                            {"commit": "one more line"},
                        ],
                    }
                ]
            }
        )
    )
    log = tmp_path / "claude.jsonl"
    env = {**os.environ, "FAKE_CLAUDE_SCENARIO": str(scenario), "FAKE_CLAUDE_LOG": str(log)}
    done = ctl(
        "goal-seek",
        "four lines",
        "--command",
        "/add a line (last score: ${goal.last_score})",
        "--validate",
        QUARTERS,
        "--threshold",
        "100",
        cwd=repo,
        env=env,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "🎯 attempt 1/5: score 25 (threshold 100)" in done.stdout
    assert "Goal reached: score 100 ≥ 100 after 4 attempts (scores: 25, 50, 75, 100)" in done.stdout
    assert git(repo, "show", "main:n.txt") == "x\n" * 4
    prompts = [json.loads(line)["prompt"] for line in log.read_text().splitlines()]
    assert prompts[:2] == ["/add a line (last score: )", "/add a line (last score: 25)"]
    assert json.loads(log.read_text().splitlines()[3])["env"]["PRODIGY_GOAL_ATTEMPT"] == "4"


def test_goal_seek_command_exits_1_when_the_goal_is_not_reached(daemon: Path, repo: Path):
    args = ("goal-seek", "unreachable", "-c", "echo x >> n.txt", "--validate", "echo 10%")
    done = ctl(*args, "--max-attempts", "2", "--json", cwd=repo)
    assert done.returncode == 1
    events = json_lines(done.stdout)
    (finished,) = [e for e in events if e["event_type"] == "goal_finished"]
    assert (finished["reason"], finished["scores"]) == ("attempts_exhausted", [10, 10])
    final = events[-1]
    assert final["status"] == "failed"
    assert "Goal not reached: 2 attempts used; best score 10, threshold 90" in final["error"]
    assert "n.txt" not in git(repo, "ls-tree", "--name-only", "main")
    kept = ctl(*args, "--max-attempts", "1", "--no-fail-on-incomplete", cwd=repo)
    assert kept.returncode == 0, kept.stdout + kept.stderr
    assert git(repo, "show", "main:n.txt") == "x\n"  # an incomplete goal's work, merged


def _blocking_workflow(tmp_path: Path) -> tuple[Path, Path, Path]:
    """Attempt 3 blocks the first time it runs (until its process is killed); each attempt
    start is logged outside the worktree."""
    starts, blocked = tmp_path / "starts.log", tmp_path / "blocked"
    workflow = tmp_path / "seek.yml"
    workflow.write_text(
        f"""
- goal_seek:
    goal: "four lines"
    shell: |
      echo "$PRODIGY_GOAL_ATTEMPT ${{goal.scores}}" >> {starts}
      if [ "$PRODIGY_GOAL_ATTEMPT" = 3 ] && [ ! -e {blocked} ]; then
        touch {blocked}; sleep 1000
      fi
      echo x >> n.txt
    validate: '{QUARTERS}'
    threshold: 100
    max_attempts: 4
- shell: "git add -A && git commit -qm done"
"""
    )
    return workflow, starts, blocked


def _check_continued(home: Path, repo: Path, session_id: str, starts: Path) -> None:
    assert starts.read_text().splitlines() == [
        "1 ",
        "2 [25]",
        "3 [25,50]",
        "3 [25,50]",  # the killed attempt runs again, with the history before it
        "4 [25,50,75]",
    ]
    assert git(repo, "show", "main:n.txt") == "x\n" * 4
    attempts = goal_events(session_id, "goal_attempt")
    assert [(e["attempt"], e["score"]) for e in attempts] == [(1, 25), (2, 50), (3, 75), (4, 100)]
    (finished,) = goal_events(session_id, "goal_finished")
    assert finished["scores"] == [25, 50, 75, 100]


def _logged_attempts(home: Path) -> int:
    """The `goal_attempt` events in the session's event log files, as written so far."""
    lines = [
        line for log in home.glob("events/*/*/*.jsonl") for line in log.read_text().splitlines()
    ]
    return sum('"event_type":"goal_attempt"' in line for line in lines)


def _finished(home: Path, session_id: str) -> dict:
    return rpc(home, "sessions.show", {"session_id": session_id})


@pytest.mark.timeout(300)
def test_a_killed_daemon_resumes_the_goal_from_its_last_completed_attempt(
    isolated: Path, repo: Path, tmp_path: Path
):
    workflow, starts, blocked = _blocking_workflow(tmp_path)
    daemon = Daemon(isolated)
    daemon.start()
    try:
        params = {"workflow": str(workflow), "cwd": str(repo), "env": dict(os.environ)}
        session_id = rpc(isolated, "jobs.submit", {**params, "merge": "auto"})["id"]
        wait_for(blocked.exists, timeout=120, what="attempt 3 to start")
        # events are written a turn of the loop after they happen, not synced (the
        # checkpoint is the durable record): the kill comes once attempt 2's is written
        wait_for(lambda: _logged_attempts(isolated) >= 2, what="attempt 2's event written")
        daemon.kill()
        daemon.start()  # auto_resume

        def done() -> bool:
            return _finished(isolated, session_id)["status"] in ("completed", "failed")

        wait_for(done, timeout=240, what="the resumed session to finish")
        record = _finished(isolated, session_id)
        assert record["status"] == "completed", record["error"]
        _check_continued(isolated, repo, session_id, starts)
    finally:
        ctl("daemon", "stop")


@pytest.mark.timeout(300)
def test_prodigyctl_resume_continues_the_goal_after_an_interruption(
    daemon: Path, repo: Path, tmp_path: Path
):
    workflow, starts, blocked = _blocking_workflow(tmp_path)
    started = ctl("run", str(workflow), "--detach", cwd=repo, check=True)
    session_id = started.stdout.strip()
    wait_for(blocked.exists, timeout=120, what="attempt 3 to start")
    rpc(daemon, "jobs.cancel", {"session_id": session_id, "resumable": True})  # a Ctrl-C
    wait_for(lambda: _finished(daemon, session_id)["status"] == "interrupted", what="interrupted")
    resumed = ctl("resume", session_id, "-y", cwd=repo)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert "🎯 attempt 3/4: score 75" in resumed.stdout
    assert "attempt 2/4" not in resumed.stdout
    _check_continued(daemon, repo, session_id, starts)


def test_validate_accepts_goal_seek_and_the_built_in_validators(tmp_path: Path):
    good = tmp_path / "good.yml"
    good.write_text(
        """
- goal_seek:
    goal: "tests pass"
    claude: "/fix-tests ${goal.gaps}"
    validate: {tests: "cargo test"}
    threshold: 100
- claude: "/implement spec"
  validate:
    spec: {file: specs/auth.md, pattern: 'AUTH-\\d+', paths: [src]}
    threshold: 80
- shell: "make lint"
  validate: {quality: "./lint-score.sh", threshold: 90}
"""
    )
    done = ctl("validate", "--strict", str(good))
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"✓ Workflow is valid: {good}" in done.stdout
    bad = tmp_path / "bad.yml"
    bad.write_text(
        "- goal_seek:\n    goal: g\n    shell: make\n    validate: {tests: a, spec: b}\n"
    )
    refused = ctl("validate", str(bad))
    assert refused.returncode == 1
    assert f"{bad}:4:26 (commands[0].goal_seek.validate.spec): give one validator" in refused.stdout
