"""What the real CLI's stream says reaches the user: tokens, retries, API errors, turn
limits and permission denials, through the real daemon and `prodigyctl run`."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.claude_api import agreement
from tests.claude_api.capture import SCENARIOS, capture
from tests.claude_api.turns import Api, bash_turn, text_turn
from tests.cli import ctl
from tests.gitutil import git


def overloaded(times: int | None = None) -> dict[str, Any]:
    turn: dict[str, Any] = {
        "error": {"status": 529, "type": "overloaded_error", "message": "Overloaded"},
        "content": [{"type": "text", "text": "Answered."}],
    }
    if times is not None:
        turn["times"] = times
    return turn


def one_prompt(match: str, *turns: dict[str, Any]) -> dict[str, Any]:
    return {"conversations": [{"match": match, "turns": list(turns)}]}


def run(repo: Path, tmp_path: Path, workflow: str) -> tuple[Any, dict[str, Any], list[dict]]:
    """`prodigyctl run` a workflow; its process, `sessions show --json` and its events."""
    wf = tmp_path / "wf.yml"
    wf.write_text(workflow)
    done = ctl("run", str(wf), "-y", cwd=repo, timeout=300)
    session = json.loads(ctl("sessions", "ls", "--json", check=True).stdout)[0]
    shown = json.loads(ctl("sessions", "show", session["id"], "--json", check=True).stdout)
    listed = ctl("events", "ls", "--session", session["id"], "--json", check=True).stdout
    return done, shown, [json.loads(line) for line in listed.splitlines() if line.strip()]


def of(events: list[dict], event_type: str) -> list[dict]:
    return [e for e in events if e["event_type"] == event_type]


@pytest.fixture
def configured_daemon(isolated: Path) -> Iterator[Callable[..., None]]:
    """`start(key=value, ...)`: set `claude.*` config keys, then start the daemon."""
    started = []

    def start(**claude: str) -> None:
        for key, value in claude.items():
            ctl("config", "set", f"claude.{key}", value, check=True)
        ctl("daemon", "start", check=True)
        started.append(True)

    yield start
    if started:
        ctl("daemon", "stop", check=True)


def test_tokens_with_cache_reads_reach_the_session_and_the_events(
    daemon: Path, repo: Path, api: Api, tmp_path: Path
):
    first = bash_turn(
        "echo hi > hi.txt && git add hi.txt && git commit -qm hi",
        input_tokens=120,
        output_tokens=30,
        cache_read_input_tokens=9000,
        cache_creation_input_tokens=700,
    )
    last = text_turn("Done.", input_tokens=200, output_tokens=12, cache_read_input_tokens=9700)
    api(one_prompt("say hi", first, last))

    done, shown, events = run(repo, tmp_path, "- claude: 'say hi'\n  commit_required: true\n")

    assert done.returncode == 0, done.stdout + done.stderr
    assert (shown["input_tokens"], shown["output_tokens"]) == (320, 42)
    assert (shown["cache_read_tokens"], shown["cache_creation_tokens"]) == (18700, 700)
    usage = of(events, "claude_token_usage")  # one per API message, not per printed line
    assert [(e["cache_read_tokens"], e["cache_creation_tokens"]) for e in usage] == [
        (9000, 700),
        (9700, 0),
    ]
    (result,) = of(events, "claude_result")
    assert (result["cache_read_tokens"], result["output_tokens"]) == (18700, 42)


def test_the_clis_own_retries_are_shown_as_progress_and_events(
    daemon: Path, repo: Path, api: Api, tmp_path: Path
):
    api(one_prompt("say hello", overloaded(times=2)), retries=10)

    done, _, events = run(repo, tmp_path, "- claude: 'say hello'\n")

    assert done.returncode == 0, done.stdout + done.stderr
    assert "Claude API retry 1/10: 529 Overloaded" in done.stdout
    assert "Claude API retry 2/10: 529 Overloaded" in done.stdout
    retries = of(events, "claude_api_retry")
    assert [(e["attempt"], e["max_retries"], e["error_status"]) for e in retries] == [
        (1, 10, 529),
        (2, 10, 529),
    ]


def test_a_529_the_cli_gave_up_on_is_retried_by_retry_on_server_error(
    daemon: Path, repo: Path, api: Api, tmp_path: Path
):
    # the CLI tries 3 times (CLAUDE_CODE_MAX_RETRIES=2) and gives up; prodigy's retry wins
    server = api(one_prompt("say hello", overloaded(times=3)))
    workflow = (
        "- claude: 'say hello'\n"
        "  retry: {attempts: 2, initial_delay: 0s, retry_on: [server_error]}\n"
    )

    done, _, events = run(repo, tmp_path, workflow)

    assert done.returncode == 0, done.stdout + done.stderr
    assert len(of(events, "step_retrying")) == 1
    (api_error,) = of(events, "claude_api_error")
    assert (api_error["status"], api_error["kind"]) == (529, "server_error")
    assert len(server.conversations()) == 4


def test_a_401_fails_with_a_hint_and_is_not_shown_as_claudes_words(
    daemon: Path, repo: Path, api: Api, tmp_path: Path
):
    error = {"status": 401, "type": "authentication_error", "message": "invalid x-api-key"}
    api(one_prompt("say hello", {"error": error}), retries=0)

    done, shown, events = run(repo, tmp_path, "- claude: 'say hello'\n")

    assert done.returncode != 0
    expected = "Claude API error 401 (authentication_error): Invalid API key"
    assert expected in done.stdout + done.stderr
    assert "ANTHROPIC_API_KEY" in shown["error"] and expected in shown["error"]
    assert of(events, "claude_message") == []


def test_max_turns_is_named_in_the_steps_error(
    configured_daemon: Callable[..., None], repo: Path, api: Api, tmp_path: Path
):
    configured_daemon(extra_args='["--max-turns", "1"]')
    api(one_prompt("loop", bash_turn("true"), bash_turn("true"), text_turn("done")))

    done, shown, _ = run(repo, tmp_path, "- claude: 'loop forever'\n")

    assert done.returncode != 0
    assert "Claude stopped after reaching max turns (1)" in shown["error"]


def test_a_denied_commit_is_named_when_commit_required_fails(
    configured_daemon: Callable[..., None], repo: Path, api: Api, tmp_path: Path
):
    configured_daemon(skip_permissions="false", extra_args='["--permission-mode", "dontAsk"]')
    api(
        one_prompt(
            "commit please",
            bash_turn("git commit --allow-empty -qm x"),
            text_turn("I could not commit."),
        )
    )

    done, shown, events = run(
        repo, tmp_path, "- claude: 'commit please'\n  commit_required: true\n"
    )

    assert done.returncode != 0
    first_line = "No changes were committed by claude: commit please; Claude was denied "
    first_line += "permission: Bash `git commit --allow-empty -qm x`"
    assert first_line in shown["error"]
    assert first_line in done.stdout  # the step_failed line shows the error's first line
    (denied,) = of(events, "claude_permission_denied")
    assert denied["tool_input"] == {"command": "git commit --allow-empty -qm x"}
    assert git(repo, "log", "--format=%s", "main").splitlines()[0] != "x"


@pytest.mark.parametrize("name", ["success", "auth_401", "max_turns", "permission_denied"])
def test_the_fake_and_the_real_cli_print_the_same_shape_now(
    name: str, real_claude: str, tmp_path: Path
):
    """As tests/unit/test_fake_matches_real.py, against the CLI run here and now rather
    than the committed capture: a stale capture cannot hide a change."""
    real = capture(name, real_claude, tmp_path / "real", out=tmp_path / "captured")

    fake = agreement.run_fake(name, tmp_path / "fake")

    assert name in SCENARIOS
    assert agreement.differences(real.read_text(encoding="utf-8"), fake) == []
