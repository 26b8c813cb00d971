"""`goal_seek:` and the built-in validators, run by the engine in real worktrees with real
shell commands (scores come from scripted shell validators), the fake claude for claude
attempts. The daemon, the CLI and resuming after a crash: tests/integration/test_goal_seek.py.
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from prodigyd.engine.session import Session
from prodigyd.store.sessions import Status
from tests.enginekit import ListSink, resume, run_workflow, write_workflow
from tests.gitutil import git

#: Scores 30, 60, 90, ... as attempts add lines to n.txt (JSON, with the lines still missing).
COUNTING_VALIDATOR = (
    "n=$(wc -l < n.txt); "
    'echo "{\\"score\\": $((n * 30)), \\"gaps\\": [\\"need $((3 - n)) more\\"]}"'
)


def scores(out) -> list[float]:
    return [e["score"] for e in out.sink.of("goal_attempt")]


def finished(out) -> dict:
    (event,) = out.sink.of("goal_finished")
    return event


async def test_attempts_repeat_until_the_threshold_each_seeing_the_ones_before(
    tmp_path: Path, repo: Path
):
    log = tmp_path / "seen.log"
    wf = write_workflow(
        tmp_path,
        f"""
- goal_seek:
    goal: "three lines"
    shell: >-
      echo x >> n.txt && git add n.txt && git commit -qm "line ${{goal.attempt}}" &&
      echo "${{goal.attempt}}|${{goal.last_score}}|${{goal.gaps}}|${{goal.scores}}|$PRODIGY_GOAL_ATTEMPT|$PRODIGY_GOAL_LAST_SCORE|$PRODIGY_GOAL_GAPS|$PRODIGY_VALIDATION_SCORE|$PRODIGY_GOAL" >> {log}
    validate: '{COUNTING_VALIDATOR}'
    threshold: 90
    max_attempts: 5
  commit_required: true
- shell: "test $(wc -l < n.txt) -eq 3"
""",
    )
    out = await run_workflow(wf, repo)
    assert out.status == "completed", out.record.error
    assert git(repo, "show", "main:n.txt") == "x\nx\nx\n"
    assert log.read_text().splitlines() == [
        "1||||1||[]||three lines",
        '2|30|need 2 more|[30]|2|30|["need 2 more"]|30|three lines',
        '3|60|need 1 more|[30,60]|3|60|["need 1 more"]|60|three lines',
    ]
    assert scores(out) == [30, 60, 90]
    event = finished(out)
    assert (event["reason"], event["success"], event["scores"]) == (
        "threshold_reached",
        True,
        [30, 60, 90],
    )
    assert event["message"] == "Goal reached: score 90 ≥ 90 after 3 attempts (scores: 30, 60, 90)"


async def test_converging_scores_stop_early_and_fail_the_step(tmp_path: Path, repo: Path):
    wf = write_workflow(
        tmp_path,
        """
- goal_seek:
    goal: "never quite"
    shell: "echo x >> n.txt"
    validate: 'echo "score: $((50 + $(wc -l < n.txt) % 2))"'
    threshold: 95
    max_attempts: 10
- shell: "echo never > ran.txt"
""",
    )
    out = await run_workflow(wf, repo)
    assert out.status == "failed"
    assert scores(out) == [51, 50, 51]
    assert finished(out)["reason"] == "converged"
    assert (
        "Goal not reached: converged (the last 3 scores are within 2 points); best score 51, "
        "threshold 95 (scores: 51, 50, 51)"
    ) in (out.record.error or "")
    error = out.record.error or ""
    assert error.count("Goal not reached") == 1 and "=== Error Output" not in error  # its
    # output is that same message: said once
    assert not (Path(out.record.worktree) / "ran.txt").exists()


async def test_attempts_exhausted_without_fail_on_incomplete_lets_the_workflow_go_on(
    tmp_path: Path, repo: Path
):
    wf = write_workflow(
        tmp_path,
        """
- goal_seek:
    goal: "unreachable"
    shell: "echo x >> n.txt"
    validate: 'echo "$(( $(wc -l < n.txt) * 10 ))/100"'
    threshold: 100
    max_attempts: 2
    fail_on_incomplete: false
  id: seek
- shell: "echo '${seek.output}' > after.txt && git add -A && git commit -qm after"
""",
    )
    out = await run_workflow(wf, repo)
    assert out.status == "completed", out.record.error
    event = finished(out)
    assert (event["reason"], event["success"], event["attempts"]) == (
        "attempts_exhausted",
        False,
        2,
    )
    assert git(repo, "show", "main:after.txt") == (
        "Goal not reached: 2 attempts used; best score 20, threshold 100 (scores: 10, 20)\n"
    )


@pytest.mark.timeout(120)
async def test_timeout_kills_the_running_attempt(tmp_path: Path, repo: Path):
    wf = write_workflow(
        tmp_path,
        """
- goal_seek:
    goal: "hangs"
    shell: "echo started >> started.txt; sleep 1000"
    validate: "echo score: 100"
    timeout_seconds: 1
    max_attempts: 3
""",
    )
    out = await run_workflow(wf, repo)
    assert out.status == "failed"
    event = finished(out)
    assert (event["reason"], event["attempts"]) == ("timeout", 0)
    assert "Goal not reached: timed out after 1s" in (out.record.error or "")
    assert (Path(out.record.worktree) / "started.txt").read_text() == "started\n"


async def test_a_validator_without_a_score_is_an_error_naming_its_output(
    tmp_path: Path, repo: Path
):
    wf = write_workflow(
        tmp_path,
        """
- goal_seek:
    goal: "g"
    shell: "true"
    validate: "echo all good; exit 3"
    fail_on_incomplete: false
""",
    )
    out = await run_workflow(wf, repo)
    assert out.status == "failed"
    error = out.record.error or ""
    assert (
        "Goal seek stopped at attempt 1: no score in the output of the quality validator " in error
    )
    assert "`echo all good; exit 3` (it exited with code 3)" in error
    assert "the output was:\nall good" in error
    assert finished(out)["reason"] == "error"


async def test_claude_attempts_get_the_gaps_in_their_prompt_and_environment(
    tmp_path: Path, repo: Path
):
    log = tmp_path / "claude.jsonl"
    scenario = tmp_path / "scenario.json"
    scenario.write_text(
        json.dumps(
            {"rules": [{"match": "fix", "actions": [{"append": "n.txt", "content": "x\n"}]}]}
        )
    )
    wf = write_workflow(
        tmp_path,
        f"""
- goal_seek:
    goal: "three lines"
    claude: "/fix ${{goal.gaps}} (attempt ${{goal.attempt}})"
    validate: '{COUNTING_VALIDATOR}'
    threshold: 90
""",
    )
    env = {**os.environ, "FAKE_CLAUDE_LOG": str(log), "FAKE_CLAUDE_SCENARIO": str(scenario)}
    out = await run_workflow(wf, repo, env=env)
    assert out.status == "completed", out.record.error
    calls = [json.loads(line) for line in log.read_text().splitlines()]
    assert [c["prompt"] for c in calls] == [
        "/fix  (attempt 1)",
        "/fix need 2 more (attempt 2)",
        "/fix need 1 more (attempt 3)",
    ]
    assert calls[1]["env"]["PRODIGY_GOAL_GAPS"] == '["need 2 more"]'
    assert calls[1]["env"]["PRODIGY_VALIDATION_GAPS"] == '["need 2 more"]'
    assert calls[2]["env"]["PRODIGY_GOAL_SCORES"] == "[30, 60]"


async def test_tests_validator_scores_the_share_of_tests_passing(tmp_path: Path, repo: Path):
    """`validate: {tests: ...}` on a step: pytest's summary is the completion, the failing
    tests are the gaps its on_incomplete command is given."""
    (repo / "test_math.py").write_text(
        "def test_one():\n    assert 1 == 1\n\n"
        "def test_two():\n    assert 2 == 3\n\n"
        "def test_three():\n    assert 3 == 3\n\n"
        "def test_four():\n    assert 4 == 4\n"
    )
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "tests")
    pytest_cmd = f"{sys.executable} -m pytest -q -p no:cacheprovider -p no:asyncio test_math.py"
    wf = write_workflow(
        tmp_path,
        f"""
- shell: "true"
  validate:
    tests: "{pytest_cmd}"
    threshold: 100
    on_incomplete:
      shell: "echo '${{validation.completion}} ${{validation.gaps}}' > gaps.txt && sed -i 's/2 == 3/2 == 2/' test_math.py"
      max_attempts: 1
""",
    )
    out = await run_workflow(wf, repo)
    assert out.status == "completed", out.record.error
    assert [e["completion"] for e in out.sink.of("validation")] == [75, 100]
    assert (Path(out.record.worktree) / "gaps.txt").read_text() == "75.0 test_math.py::test_two\n"


async def test_tests_validator_scores_a_build_that_runs_no_test_as_zero(tmp_path: Path, repo: Path):
    """No summary from a failing command (a compile error) is score 0, not an error: the
    next attempt can fix the build. Here the second attempt writes the missing test."""
    wf = write_workflow(
        tmp_path,
        f"""
- goal_seek:
    goal: "a passing test"
    shell: "test ${{goal.attempt}} -eq 1 || printf 'def test_ok():\\n    pass\\n' > test_ok.py"
    validate:
      tests: "test -f test_ok.py || {{ echo 'error: could not compile'; exit 101; }}; {sys.executable} -m pytest -q -p no:cacheprovider -p no:asyncio test_ok.py"
""",
    )
    out = await run_workflow(wf, repo)
    assert out.status == "completed", out.record.error
    attempts = out.sink.of("goal_attempt")
    assert [a["score"] for a in attempts] == [0, 100]
    assert attempts[0]["gaps"][0].startswith("no test ran: `test -f test_ok.py")
    assert attempts[0]["gaps"][1] == "error: could not compile"


async def test_spec_validator_counts_the_requirements_the_code_references(
    tmp_path: Path, repo: Path
):
    (repo / "specs").mkdir()
    (repo / "specs" / "auth.md").write_text(
        "# Auth\n\n- REQ-1 log in\n- REQ-2 log out\n- REQ-3 reset password\n- REQ-4 lock out\n"
    )
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "spec")
    log = tmp_path / "gaps.log"
    wf = write_workflow(
        tmp_path,
        f"""
- goal_seek:
    goal: "implement the spec"
    shell: 'mkdir -p src && echo "# REQ-$PRODIGY_GOAL_ATTEMPT" >> src/auth.py && echo "${{goal.gaps}}" >> {log}'
    validate:
      spec: {{file: specs/auth.md, paths: [src]}}
    threshold: 75
""",
    )
    out = await run_workflow(wf, repo)
    assert out.status == "completed", out.record.error
    assert scores(out) == [25, 50, 75]
    assert log.read_text().splitlines() == [
        "",
        "- REQ-2 log out, - REQ-3 reset password, - REQ-4 lock out",
        "- REQ-3 reset password, - REQ-4 lock out",
    ]


async def test_spec_validator_without_requirement_lines_is_an_error(tmp_path: Path, repo: Path):
    (repo / "spec.md").write_text("just prose\n")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "spec")
    wf = write_workflow(
        tmp_path,
        """
- goal_seek: {goal: g, shell: "true", validate: {spec: spec.md}}
""",
    )
    out = await run_workflow(wf, repo)
    assert out.status == "failed"
    assert "the spec spec.md has no requirement lines" in (out.record.error or "")


async def test_goal_seek_as_an_on_failure_handler(tmp_path: Path, repo: Path):
    """The original's shape: a failing step's handler seeks the goal; reaching it recovers
    the step, missing it (fail_on_incomplete: true) fails the workflow."""
    handler = """
  on_failure:
    goal_seek:
      goal: "fixed"
      shell: "{fix}"
      validate: "test -f fixed && echo 'score: 100' || echo 'score: 0'"
      max_attempts: 2
      fail_on_incomplete: true
"""
    wf = write_workflow(
        tmp_path,
        "- shell: 'test -f fixed'" + handler.format(fix="true") + "- shell: 'touch after'\n",
    )
    out = await run_workflow(wf, repo)
    assert out.status == "failed"
    assert "Handler failure is fatal" in (out.record.error or "")
    assert finished(out)["reason"] == "attempts_exhausted"
    wf = write_workflow(
        tmp_path,
        "- shell: 'test -f fixed'" + handler.format(fix="touch fixed") + "- shell: 'touch after'\n",
        name="recovers.yml",
    )
    out = await run_workflow(wf, repo)
    assert out.status == "completed", out.record.error
    assert git(repo, "ls-tree", "--name-only", "main").split() == ["README.md", "after", "fixed"]


@dataclass
class StopAfterAttempt(ListSink):
    """Asks the session to stop (as `daemon stop` does) once an attempt is scored."""

    session: Session | None = None

    def emit(self, event_type: str, /, **fields: Any) -> None:
        super().emit(event_type, **fields)
        if event_type == "goal_attempt" and self.session is not None:
            self.session.stop_after_step(Status.INTERRUPTED, resume_on_start=True)
            self.session = None


async def test_a_stop_between_attempts_resumes_with_the_next_attempt(tmp_path: Path, repo: Path):
    starts = tmp_path / "starts.log"
    wf = write_workflow(
        tmp_path,
        f"""
- goal_seek:
    goal: "three lines"
    shell: "echo ${{goal.attempt}} >> {starts}; echo x >> n.txt"
    validate: '{COUNTING_VALIDATOR}'
    threshold: 90
""",
    )
    sink = StopAfterAttempt()

    def created(session: Session) -> None:
        sink.session = session

    out = await run_workflow(wf, repo, sink=sink, created=created)
    assert out.status == "interrupted", out.record.error
    assert [e["step"] for e in sink.of("step_stopped")] == ["1"]
    assert starts.read_text().split() == ["1"]
    again = await resume(out.record.id)
    assert again.status == "completed", again.record.error
    assert starts.read_text().split() == ["1", "2", "3"]
    assert [e["attempt"] for e in again.sink.of("goal_attempt")] == [2, 3]
    (event,) = again.sink.of("goal_finished")
    assert event["scores"] == [30, 60, 90]


async def test_quality_validator_on_a_step_scores_its_output(tmp_path: Path, repo: Path):
    wf = write_workflow(
        tmp_path,
        """
- shell: "true"
  validate:
    quality: 'echo "linting..."; echo "{\\"score\\": 40, \\"gaps\\": [\\"a.py:1 E501\\"]}"'
    threshold: 90
""",
    )
    out = await run_workflow(wf, repo)
    assert out.status == "failed"
    (verdict,) = out.sink.of("validation")
    assert (verdict["completion"], verdict["missing"]) == (40, ["a.py:1 E501"])
    assert "Validation incomplete: 40.0% complete (threshold: 90.0%)" in (out.record.error or "")
