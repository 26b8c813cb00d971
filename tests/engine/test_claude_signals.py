"""What claude's stream says about API trouble, turn limits and denials decides the step:
the fake claude prints what the real CLI prints (tests/claude_api/captured/)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from prodigyctl.render import Renderer
from tests.enginekit import run_workflow, write_workflow


def fake_env(tmp_path: Path, *rules: dict[str, Any]) -> dict[str, str]:
    scenario = tmp_path / "scenario.json"
    scenario.write_text(json.dumps({"rules": list(rules)}))
    return {**os.environ, "FAKE_CLAUDE_SCENARIO": str(scenario)}


@pytest.mark.parametrize(("retry_on", "runs"), [("server_error", 2), ("network", 1)])
async def test_a_529_is_a_server_error_for_retry_on(
    tmp_path: Path, repo: Path, retry_on: str, runs: int
):
    # the words of a 529 mention no "server error" and no 50x: the status decides
    env = fake_env(
        tmp_path,
        {"match": "hello", "times": 1, "api_retries": [529, 529], "api_error": 529},
        {"match": "hello", "result": "hi"},
    )
    wf = write_workflow(
        tmp_path,
        f"- claude: hello\n  retry: {{attempts: 2, initial_delay: 0s, retry_on: [{retry_on}]}}\n",
    )

    out = await run_workflow(wf, repo, env=env)

    assert len(out.sink.of("claude_session_started")) == runs
    assert (out.status == "completed") is (runs == 2), out.record.error
    assert [e["error_status"] for e in out.sink.of("claude_api_retry")][:2] == [529, 529]


async def test_a_401_names_the_key_and_is_no_message_from_claude(tmp_path: Path, repo: Path):
    env = fake_env(tmp_path, {"match": "hello", "api_error": 401})
    wf = write_workflow(
        tmp_path,
        "- claude: hello\n  retry: {attempts: 3, initial_delay: 0s, retry_on: [network, timeout, server_error, rate_limit]}\n",
    )

    out = await run_workflow(wf, repo, env=env)

    assert out.status == "failed"
    assert len(out.sink.of("claude_session_started")) == 1  # an auth error is not retried
    assert "Claude API error 401 (authentication_error): Invalid API key" in out.record.error
    assert "check ANTHROPIC_API_KEY" in out.record.error
    assert out.sink.of("claude_message") == []
    assert out.sink.of("claude_api_error")[0]["kind"] == "auth"
    assert "Error Output" not in out.record.error  # the CLI's words are no output


async def test_a_denied_commit_is_why_no_changes_were_committed(tmp_path: Path, repo: Path):
    env = fake_env(tmp_path, {"match": "commit", "actions": [{"commit": "x", "denied": True}]})
    wf = write_workflow(tmp_path, "- claude: commit it\n  commit_required: true\n")

    out = await run_workflow(wf, repo, env=env)

    assert out.status == "failed"
    first_line = out.record.error.splitlines()[0]
    assert first_line.endswith(
        "No changes were committed by claude: commit it; Claude was denied permission: "
        "Bash `git add -A && git commit -q -m x`"
    )
    (denied,) = out.sink.of("claude_permission_denied")
    assert denied["tool_name"] == "Bash"


async def test_a_denial_alone_does_not_fail_the_step(tmp_path: Path, repo: Path):
    # Claude may have found another way: only a failure of the step names the denial
    env = fake_env(
        tmp_path,
        {"match": "look", "actions": [{"shell": "ls", "denied": True}], "result": "used Read"},
    )
    wf = write_workflow(tmp_path, "- claude: look around\n")

    out = await run_workflow(wf, repo, env=env)

    assert out.status == "completed", out.record.error
    assert len(out.sink.of("claude_permission_denied")) == 1
    assert out.sink.of("claude_result")[0]["permission_denials"] == 1


async def test_cache_tokens_add_up_in_the_session(tmp_path: Path, repo: Path):
    rule = {"input_tokens": 50, "output_tokens": 9, "cache_read_tokens": 900}
    env = fake_env(tmp_path, {**rule, "cache_creation_tokens": 70})
    wf = write_workflow(tmp_path, "- claude: one\n- claude: two\n")

    out = await run_workflow(wf, repo, env=env)

    assert out.status == "completed", out.record.error
    record = out.record
    assert (record.input_tokens, record.output_tokens) == (100, 18)
    assert (record.cache_read_tokens, record.cache_creation_tokens) == (1800, 140)


def test_run_shows_the_clis_retries_as_progress() -> None:
    event = {
        "event_type": "claude_api_retry",
        "step": "1",
        "attempt": 3,
        "max_retries": 10,
        "retry_delay_ms": 2100,
        "error_status": 529,
        "error": "overloaded",
    }

    line = Renderer(as_json=False).human(event)

    assert line == "  ⟳ Claude API retry 3/10: 529 Overloaded (next try in 2.1s)"
