"""prodigy's reading of the real CLI's streams, captured from 2.1.332 against the stand-in.

The files in tests/claude_api/captured/ are the CLI's stdout byte for byte (regenerate them
with `python -m tests.claude_api.capture`), so these tests hold the parser to what the real
CLI prints rather than to what we believe it prints.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from prodigyd.claude.cli import ClaudeResult, StreamParser
from prodigyd.engine.retry import should_retry
from prodigyd.failure import ErrorKind
from prodigyd.workflow.model import RetrySpec

CAPTURED = Path(__file__).resolve().parents[1] / "claude_api" / "captured"


def parse(name: str, *, drop_result: bool = False) -> tuple[list[dict], ClaudeResult]:
    lines = (CAPTURED / f"{name}.jsonl").read_text(encoding="utf-8").splitlines()
    if drop_result:
        lines = [line for line in lines if '"type":"result"' not in line]
    parser = StreamParser()
    events = [event for line in lines for event in parser.feed(line)]
    return events, parser.finish()


def of(events: list[dict], event_type: str) -> list[dict]:
    return [e for e in events if e["event_type"] == event_type]


def test_a_message_streamed_as_one_line_per_block_counts_once() -> None:
    events, result = parse("success")

    # text + tool_use of the first message are two lines with one id: one usage event
    usage = of(events, "claude_token_usage")
    assert [
        (e["input_tokens"], e["cache_read_tokens"], e["cache_creation_tokens"]) for e in usage
    ] == [
        (120, 9000, 700),
        (200, 9700, 0),
    ]
    assert len({e["message_id"] for e in usage}) == 2
    assert [e["content"] for e in of(events, "claude_message")] == [
        "Running it.",
        "Committed hello.txt.",
    ]
    assert [t.name for t in result.tool_uses] == ["Bash"]
    # the final figures are the result line's, output tokens included (the lines said 1)
    assert (result.input_tokens, result.output_tokens) == (320, 42)
    assert (result.cache_read_tokens, result.cache_creation_tokens) == (18700, 700)
    final = of(events, "claude_result")[0]
    assert (final["cache_read_tokens"], final["cache_creation_tokens"]) == (18700, 700)
    assert not result.is_error and result.terminal_reason == "completed"


def test_without_a_result_line_tokens_are_added_per_message() -> None:
    _, result = parse("success", drop_result=True)

    assert not result.saw_result
    assert (result.input_tokens, result.cache_read_tokens, result.cache_creation_tokens) == (
        320,
        18700,
        700,
    )
    assert result.output_tokens == 2  # the stream's placeholder, once per message


def test_api_retries_become_events() -> None:
    events, result = parse("retry_then_success")

    retries = of(events, "claude_api_retry")
    assert [(e["attempt"], e["max_retries"], e["error_status"], e["error"]) for e in retries] == [
        (1, 10, 529, "overloaded"),
        (2, 10, 529, "overloaded"),
    ]
    assert all(e["retry_delay_ms"] > 0 for e in retries)
    assert not result.is_error and result.api_error is None


def test_a_401_is_an_auth_error_with_a_hint_and_not_claudes_words() -> None:
    events, result = parse("auth_401")

    assert of(events, "claude_message") == []
    assert of(events, "claude_token_usage") == []  # the synthetic message is no turn
    (api_error,) = of(events, "claude_api_error")
    assert api_error["status"] == 401 and api_error["kind"] == "auth"
    assert api_error["message"] == "Invalid API key · Fix external API key"
    assert result.is_error and result.error_kind is ErrorKind.AUTH
    assert result.error_text() == (
        "Claude API error 401 (authentication_error): Invalid API key · Fix external API key; "
        "check ANTHROPIC_API_KEY where the job came from (the shell of `prodigyctl run`, "
        "git's for a hook's job, the daemon's for a watched branch or files), or run "
        "`claude /login` as the user the daemon runs as"
    )


@pytest.mark.parametrize(
    ("name", "status", "kind"),
    [
        ("rate_limit_429", 429, ErrorKind.RATE_LIMIT),
        ("server_500", 500, ErrorKind.SERVER_ERROR),
        ("overloaded_529", 529, ErrorKind.SERVER_ERROR),
    ],
)
def test_api_errors_are_classified_by_status(name: str, status: int, kind: ErrorKind) -> None:
    events, result = parse(name)

    assert result.is_error and result.error_kind is kind
    assert result.api_error is not None and result.api_error.status == status
    assert result.error_text().startswith(f"Claude API error {status} (")
    assert "ANTHROPIC_API_KEY" not in result.error_text()
    assert len(of(events, "claude_api_retry")) == 2  # CLAUDE_CODE_MAX_RETRIES=2 at capture


def test_a_529_is_retried_by_server_error_although_no_word_says_so() -> None:
    _, result = parse("overloaded_529")
    spec = RetrySpec(attempts=2, retry_on=["server_error"])
    text = result.error_text()

    assert should_retry(spec, text, result.error_kind)
    assert not should_retry(RetrySpec(attempts=2, retry_on=["rate_limit"]), text, result.error_kind)
    # the words alone would not do: that is why the kind travels with the failure
    assert not should_retry(spec, "Claude API error 529 (overloaded_error): Overloaded")


def test_a_401_is_not_retried_as_anything_but_itself() -> None:
    _, result = parse("auth_401")
    spec = RetrySpec(attempts=2, retry_on=["network", "timeout", "server_error", "rate_limit"])

    assert not should_retry(spec, result.error_text() + " connection timeout", result.error_kind)
    assert should_retry(
        RetrySpec(attempts=2, retry_on=[{"pattern": "Invalid API key"}]),
        result.error_text(),
        result.error_kind,
    )


def test_max_turns_says_so_in_plain_words() -> None:
    _, result = parse("max_turns")

    assert result.is_error and result.subtype == "error_max_turns"
    assert result.error_text() == "Claude stopped after reaching max turns (1)"
    assert result.error_kind is None


def test_a_denied_tool_call_is_an_event_and_part_of_the_result() -> None:
    events, result = parse("permission_denied")

    (denied,) = of(events, "claude_permission_denied")
    assert denied["tool_name"] == "Bash"
    assert denied["tool_input"] == {"command": "git commit --allow-empty -qm x"}
    assert "don't ask mode" in denied["message"]
    assert not result.is_error  # Claude finished; whether the step did is the step's call
    assert [d.describe() for d in result.permission_denials] == [
        "Bash `git commit --allow-empty -qm x`"
    ]
    assert of(events, "claude_result")[0]["permission_denials"] == 1
