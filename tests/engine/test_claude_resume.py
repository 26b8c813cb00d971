"""When a Claude step resumes its conversation and when it starts over, with the fake CLI
(whose `--resume ID` always finds the conversation). tests/claude_api/test_resume.py runs
the same decisions against the real CLI."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from prodigyd.claude import session_files
from prodigyd.engine.claude_sessions import CONTINUE_PROMPT, open_conversations
from prodigyd.engine.session import Session
from prodigyd.store import checkpoints
from prodigyd.store.sessions import Status
from tests.enginekit import resume, run_workflow, write_workflow
from tests.gitutil import git


def _fake(tmp_path: Path, rules: list[dict[str, Any]]) -> tuple[dict[str, str], Path]:
    scenario = tmp_path / "scenario.json"
    scenario.write_text(json.dumps({"rules": rules}))
    log = tmp_path / "claude-calls.jsonl"
    return {**os.environ, "FAKE_CLAUDE_SCENARIO": str(scenario), "FAKE_CLAUDE_LOG": str(log)}, log


def _calls(log: Path) -> list[dict[str, Any]]:
    """Each claude run: its prompt, and the id it was told to start (`new`) or `resume`."""
    calls = []
    for line in log.read_text().splitlines():
        argv = json.loads(line)["argv"]

        def value(flag: str, argv: list[str] = argv) -> str | None:
            return argv[argv.index(flag) + 1] if flag in argv else None

        calls.append(
            {
                "prompt": json.loads(line)["prompt"],
                "new": value("--session-id"),
                "resume": value("--resume"),
                "persist": "--no-session-persistence" not in argv,
            }
        )
    return calls


async def test_a_timed_out_claude_step_resumes_and_its_earlier_commit_counts(
    tmp_path: Path, repo: Path
):
    env, log = _fake(
        tmp_path,
        [
            {
                "match": "^/implement",
                "times": 1,
                "actions": [
                    {"write": "impl.txt", "content": "x\n"},
                    {"commit": "implement"},
                    {"sleep": 60},
                ],
            }
        ],
    )
    wf = write_workflow(tmp_path, "- claude: /implement\n  commit_required: true\n  timeout: 3s\n")
    first = await run_workflow(wf, repo, env=env)
    assert first.status == "failed" and "timed out" in (first.record.error or "")
    again = await resume(first.record.id, env=env)
    assert again.status == "completed", again.record.error
    started, resumed = _calls(log)
    assert started["prompt"] == "/implement" and started["new"] and started["persist"]
    assert resumed == {
        "prompt": CONTINUE_PROMPT,
        "new": None,
        "resume": started["new"],
        "persist": True,
    }
    (event,) = again.sink.of("claude_session_resumed")
    assert event["claude_session_id"] == started["new"] and event["step"] == "1"
    assert git(repo, "show", "main:impl.txt") == "x\n"  # committed before the timeout
    assert open_conversations(checkpoints.records(first.record.id, "main")) == {}


async def test_a_claude_run_that_failed_by_itself_is_retried_afresh(tmp_path: Path, repo: Path):
    env, log = _fake(tmp_path, [{"match": "^/flaky", "times": 1, "errors": ["overloaded"]}])
    wf = write_workflow(tmp_path, "- claude: /flaky\n  retry: {attempts: 2, delay: 0s}\n")
    out = await run_workflow(wf, repo, env=env)
    assert out.status == "completed", out.record.error
    first, second = _calls(log)
    assert second["prompt"] == "/flaky" and second["resume"] is None
    assert second["new"] and second["new"] != first["new"]
    assert not out.sink.of("claude_session_resumed")


async def test_a_conversation_the_cli_cannot_find_starts_afresh_with_a_warning(
    tmp_path: Path, repo: Path
):
    env, log = _fake(
        tmp_path,
        [
            {"match": "^/task", "times": 1, "actions": [{"sleep": 60}]},
            {
                "match": "interrupted before it finished",
                "errors": ["No conversation found with session ID: gone"],
            },
        ],
    )
    wf = write_workflow(tmp_path, "- claude: /task\n  timeout: 3s\n")
    first = await run_workflow(wf, repo, env=env)
    assert first.status == "failed"
    again = await resume(first.record.id, env=env)
    assert again.status == "completed", again.record.error
    started, tried, fresh = _calls(log)
    assert tried["resume"] == started["new"]
    assert fresh["prompt"] == "/task" and fresh["new"] not in (None, started["new"])
    (warning,) = again.sink.of("claude_resume_failed")
    assert warning["claude_session_id"] == started["new"]
    assert "No conversation found" in warning["error"]


async def test_claude_runs_nothing_can_resume_save_no_conversation(tmp_path: Path, repo: Path):
    env, log = _fake(tmp_path, [])
    wf = write_workflow(
        tmp_path,
        """
mode: mapreduce
map:
  input: "printf 'a\\n'"
  agent_template:
    - claude: "/agent ${item}"
reduce:
  - claude: "/reduce"
""",
    )
    out = await run_workflow(wf, repo, env=env)
    assert out.status == "completed", out.record.error
    persist = {call["prompt"]: call["persist"] for call in _calls(log)}
    assert persist == {"/agent a": False, "/reduce": True}  # an agent reruns whole


def test_pruning_deletes_only_the_files_of_that_conversation(tmp_path: Path):
    config = tmp_path / ".claude"
    ours = "0b7c3d4e-1f2a-4b3c-8d9e-0a1b2c3d4e5f"
    project = config / "projects" / "-w-wt-1"
    (project / "memory").mkdir(parents=True)
    (project / f"{ours}.jsonl").write_text("{}\n")
    (project / ours / "subagents").mkdir(parents=True)
    (config / "session-env" / ours).mkdir(parents=True)
    other = config / "projects" / "-home-me" / "theirs.jsonl"
    other.parent.mkdir()
    other.write_text("{}\n")
    assert session_files.prune(config, ours) == 1
    assert not project.exists()  # emptied: its folder goes too
    assert not (config / "session-env" / ours).exists()
    assert other.read_text() == "{}\n"
    assert session_files.prune(config, "../../etc") == 0  # only ids prodigy makes


async def test_a_claude_step_stopped_by_ctrl_c_resumes_its_conversation(tmp_path: Path, repo: Path):
    env, log = _fake(tmp_path, [{"match": "^/long", "times": 1, "actions": [{"sleep": 60}]}])
    wf = write_workflow(tmp_path, "- claude: /long\n")
    sessions: list[Session] = []
    running = asyncio.create_task(run_workflow(wf, repo, env=env, created=sessions.append))
    await _until(lambda: log.exists() and log.read_text().strip() != "")
    sessions[0].cancel(Status.INTERRUPTED)  # as `prodigyctl run` does on Ctrl-C
    running.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await running
    assert sessions[0].record.status is Status.INTERRUPTED
    again = await resume(sessions[0].record.id, env=env)
    assert again.status == "completed", again.record.error
    started, resumed = _calls(log)
    assert resumed["resume"] == started["new"] and resumed["prompt"] == CONTINUE_PROMPT


async def _until(condition: Callable[[], bool]) -> None:
    async with asyncio.timeout(30):
        while not condition():
            await asyncio.sleep(0.02)
