"""The claude CLI seen as data: argv, env, binary lookup and stream-json parsing.

The stream lines are copied in shape from the real CLI (deps-probe §5), including its
quirks: `subtype: "success"` with `is_error: true`, and a result line whose first key is
not `type`.
"""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from prodigyd.claude.cli import (
    ClaudeNotFound,
    ClaudeResult,
    StreamParser,
    build_argv,
    build_env,
    resolve_binary,
)

SID = "7997ec96-1b2c-4d5e-8f90-123456789abc"

# `claude -p hi --output-format stream-json --verbose` with no credentials (2.1.197), trimmed
UNAUTHENTICATED = [
    '{"type":"system","subtype":"init","cwd":"/tmp/claude-cwd","session_id":"' + SID + '",'
    '"tools":["Task","Bash","Edit","Read","Write"],"mcp_servers":[],'
    '"model":"claude-opus-4-8[1m]","permissionMode":"default","slash_commands":["compact"],'
    '"apiKeySource":"none","claude_code_version":"2.1.197","output_style":"default",'
    '"agents":[],"skills":[],"plugins":[],"uuid":"u1","memory_paths":{},'
    '"fast_mode_state":"off"}',
    '{"type":"assistant","message":{"id":"m1","container":null,"model":"<synthetic>",'
    '"role":"assistant","stop_details":null,"stop_reason":"stop_sequence","stop_sequence":"",'
    '"type":"message","usage":{"input_tokens":0,"output_tokens":0,'
    '"cache_creation_input_tokens":0,"cache_read_input_tokens":0,"server_tool_use":'
    '{"web_search_requests":0,"web_fetch_requests":0},"service_tier":null,"cache_creation":'
    '{"ephemeral_1h_input_tokens":0,"ephemeral_5m_input_tokens":0},"inference_geo":null,'
    '"iterations":null,"speed":null},"content":[{"type":"text",'
    '"text":"Not logged in \u00b7 Please run /login"}],"context_management":null},'
    '"parent_tool_use_id":null,"session_id":"' + SID + '","uuid":"u2",'
    '"error":"authentication_failed"}',
    '{"type":"result","subtype":"success","is_error":true,"api_error_status":null,'
    '"duration_ms":152,"duration_api_ms":0,"num_turns":1,'
    '"result":"Not logged in \u00b7 Please run /login","stop_reason":"stop_sequence",'
    '"session_id":"' + SID + '","total_cost_usd":0,"usage":{"input_tokens":0,'
    '"cache_creation_input_tokens":0,"cache_read_input_tokens":0,"output_tokens":0,'
    '"service_tier":"standard","iterations":[],"speed":"standard"},"modelUsage":{},'
    '"permission_denials":[],"terminal_reason":"completed","fast_mode_state":"off",'
    '"uuid":"u3"}',
]


def assistant(blocks: list[dict], *, msg_id: str = "m1", usage: dict | None = None) -> str:
    message = {
        "id": msg_id,
        "type": "message",
        "role": "assistant",
        "model": "claude-sonnet-5",
        "content": blocks,
        "stop_reason": "tool_use",
        "stop_sequence": None,
    }
    if usage is not None:
        message["usage"] = usage
    return json.dumps(
        {
            "type": "assistant",
            "message": message,
            "parent_tool_use_id": None,
            "session_id": SID,
            "uuid": "u",
        }
    )


def usage(inp: int, out: int, cache_read: int = 0, cache_creation: int = 0) -> dict:
    return {
        "input_tokens": inp,
        "output_tokens": out,
        "cache_read_input_tokens": cache_read,
        "cache_creation_input_tokens": cache_creation,
        "service_tier": "standard",
    }


def feed_all(lines: list[str]) -> tuple[list[dict], ClaudeResult]:
    parser = StreamParser()
    events = [event for line in lines for event in parser.feed(line)]
    return events, parser.finish()


def test_unauthenticated_run_is_an_error_although_subtype_says_success() -> None:
    events, result = feed_all(UNAUTHENTICATED)

    # the text is the CLI's, not Claude's: an API error event, no message, no turn's usage
    assert [e["event_type"] for e in events] == [
        "claude_session_started",
        "claude_api_error",
        "claude_result",
    ]
    assert events[0] == {
        "event_type": "claude_session_started",
        "session_id": SID,
        "model": "claude-opus-4-8[1m]",
        "tools": ["Task", "Bash", "Edit", "Read", "Write"],
    }
    assert events[1]["message"] == "Not logged in · Please run /login"
    assert events[1]["kind"] == "auth" and events[1]["status"] is None
    assert events[2]["is_error"] is True
    assert result.is_error and result.saw_result
    assert result.subtype == "success"
    assert result.session_id == SID
    assert result.model == "claude-opus-4-8[1m]"
    assert result.duration_ms == 152 and result.num_turns == 1
    assert result.error_kind == "auth"
    assert result.error_text().startswith(
        "Claude API error (authentication_failed): Not logged in · Please run /login; "
        "check ANTHROPIC_API_KEY"
    )


def test_error_variant_reports_its_errors_and_has_no_result_text() -> None:
    line = json.dumps(
        {
            "subtype": "error_during_execution",
            "is_error": True,
            "duration_ms": 7,
            "duration_api_ms": 0,
            "num_turns": 0,
            "stop_reason": None,
            "session_id": SID,
            "total_cost_usd": 0,
            "usage": usage(0, 0),
            "modelUsage": {},
            "permission_denials": [],
            "errors": ["No conversation found with session ID: abc"],
            "type": "result",
            "uuid": "u",
        }
    )

    events, result = feed_all([line])

    assert events[0]["event_type"] == "claude_result"
    assert result.is_error
    assert result.subtype == "error_during_execution"
    assert result.result_text == ""
    assert result.errors == ["No conversation found with session ID: abc"]
    assert result.error_text() == "No conversation found with session ID: abc"


def test_result_with_type_as_last_key_is_recognised() -> None:
    # 2.1.332 no longer puts "type" first: a prefix match on '{"type":"result"' would miss it
    line = (
        '{"subtype":"success","is_error":false,"duration_ms":900,"duration_api_ms":800,'
        '"num_turns":3,"result":"All done","stop_reason":"end_turn","session_id":"'
        + SID
        + '","total_cost_usd":0.0421,"usage":{"input_tokens":1200,"output_tokens":340,'
        '"cache_read_input_tokens":5000,"cache_creation_input_tokens":700},'
        '"modelUsage":{},"permission_denials":[],"terminal_reason":"completed",'
        '"subagent_stats":{},"queued_turn_count":0,"type":"result","uuid":"u"}'
    )

    events, result = feed_all([line])

    assert events == [
        {
            "event_type": "claude_result",
            "session_id": SID,
            "is_error": False,
            "subtype": "success",
            "terminal_reason": "completed",
            "api_error_status": None,
            "total_cost_usd": 0.0421,
            "num_turns": 3,
            "duration_ms": 900,
            "input_tokens": 1200,
            "output_tokens": 340,
            "cache_read_tokens": 5000,
            "cache_creation_tokens": 700,
            "permission_denials": 0,
        }
    ]
    assert not result.is_error
    assert result.result_text == "All done"
    assert (result.cache_read_tokens, result.cache_creation_tokens) == (5000, 700)


def test_tool_use_blocks_become_events_and_are_kept_in_order() -> None:
    lines = [
        assistant(
            [
                {"type": "thinking", "thinking": "hmm", "signature": "s"},
                {"type": "text", "text": "Let me look."},
                {"type": "tool_use", "id": "toolu_1", "name": "Bash", "input": {"command": "ls"}},
            ],
            msg_id="m1",
            usage=usage(10, 5),
        ),
        json.dumps(
            {
                "type": "user",
                "session_id": SID,
                "parent_tool_use_id": None,
                "message": {
                    "role": "user",
                    "content": [
                        {"type": "tool_result", "tool_use_id": "toolu_1", "content": "a\n"}
                    ],
                },
            }
        ),
        assistant(
            [
                {
                    "type": "tool_use",
                    "id": "toolu_2",
                    "name": "Write",
                    "input": {"file_path": "/w/a.txt", "content": "x"},
                }
            ],
            msg_id="m2",
        ),
    ]

    events, result = feed_all(lines)

    assert [e["event_type"] for e in events] == [
        "claude_message",
        "claude_tool_invoked",
        "claude_token_usage",
        "claude_tool_invoked",
    ]
    assert events[1] == {
        "event_type": "claude_tool_invoked",
        "tool_name": "Bash",
        "tool_id": "toolu_1",
        "parameters": {"command": "ls"},
    }
    assert [(t.id, t.name) for t in result.tool_uses] == [("toolu_1", "Bash"), ("toolu_2", "Write")]
    assert result.tool_uses[1].input == {"file_path": "/w/a.txt", "content": "x"}
    assert not result.saw_result
    assert result.error_text() == "claude produced no result line"


def test_token_totals_prefer_the_cumulative_result_usage() -> None:
    lines = [
        assistant([{"type": "text", "text": "a"}], msg_id="m1", usage=usage(10, 1)),
        assistant([{"type": "text", "text": "b"}], msg_id="m2", usage=usage(20, 2)),
        json.dumps(
            {
                "type": "result",
                "subtype": "success",
                "is_error": False,
                "result": "b",
                "usage": usage(999, 99, cache_read=7),
            }
        ),
    ]

    _, result = feed_all(lines)

    assert (result.input_tokens, result.output_tokens, result.cache_read_tokens) == (999, 99, 7)


def test_without_result_usage_tokens_are_summed_once_per_message() -> None:
    # the CLI streams one line per content block, repeating the message's usage on each
    lines = [
        assistant([{"type": "text", "text": "a"}], msg_id="m1", usage=usage(10, 1, 3)),
        assistant(
            [{"type": "tool_use", "id": "t", "name": "Read", "input": {}}],
            msg_id="m1",
            usage=usage(10, 1, 3),
        ),
        assistant([{"type": "text", "text": "b"}], msg_id="m2", usage=usage(20, 2, 0, 4)),
    ]

    events, result = feed_all(lines)

    usage_events = [e for e in events if e["event_type"] == "claude_token_usage"]
    assert [
        (e["message_id"], e["input_tokens"], e["cache_read_tokens"], e["cache_creation_tokens"])
        for e in usage_events
    ] == [("m1", 10, 3, 0), ("m2", 20, 0, 4)]
    assert (result.input_tokens, result.output_tokens) == (30, 3)
    assert (result.cache_read_tokens, result.cache_creation_tokens) == (3, 4)


@pytest.mark.parametrize(
    "line",
    [
        '{"type":"system","subtype":"compact_boundary","compact_metadata":'
        '{"trigger":"auto","pre_tokens":1}}',
        '{"type":"system","subtype":"status"}',
        '{"type":"stream_event","event":{"type":"content_block_delta"}}',
        '{"type":"rate_limit_event","rate_limit_info":{}}',
        '{"type":"user","message":{"role":"user","content":"hi"}}',
        '{"no_type_at_all":1}',
        "",
        "   ",
    ],
)
def test_lines_prodigy_does_not_report_yield_no_events(line: str) -> None:
    assert StreamParser().feed(line) == []


@pytest.mark.parametrize(
    "line",
    [
        "Warning: no stdin data received in 3s, proceeding without it.",
        '{"type":"result", truncated',
        "[1, 2, 3]",
        "42",
        "[" * 100_000,
    ],
)
def test_non_object_lines_are_passed_through_as_output(line: str) -> None:
    assert StreamParser().feed(line + "\n") == [{"event_type": "claude_output", "text": line}]


def test_malformed_fields_do_not_raise() -> None:
    lines = [
        '{"type":"system","subtype":"init","tools":"Bash","model":7}',
        '{"type":"assistant","message":{"content":"just text","usage":{"input_tokens":"x",'
        '"output_tokens":null}}}',
        '{"type":"assistant","message":[1,2]}',
        '{"type":"assistant","message":{"content":[7,{"type":"tool_use","input":"nope"}]}}',
        '{"type":"result","is_error":"yes","subtype":"error_max_turns","total_cost_usd":NaN,'
        '"num_turns":1e400,"usage":"none","errors":"bad"}',
    ]

    events, result = feed_all(lines)

    assert events[0]["tools"] == [] and events[0]["model"] is None
    assert result.is_error  # no boolean is_error: the non-success subtype decides
    assert result.total_cost_usd == 0.0 and result.num_turns == 0
    assert result.errors == []
    assert result.tool_uses[0].input == {}


def test_error_text_falls_back_when_an_error_result_has_no_words() -> None:
    _, result = feed_all(['{"type":"result","subtype":"error_during_execution","is_error":1}'])

    assert "error_during_execution" in result.error_text()


# ---------------------------------------------------------------------------- argv and env


def test_the_prompt_is_no_argument_the_cli_reads_it_from_stdin() -> None:
    argv = build_argv("/bin/claude", extra_args=["--allowedTools", "Bash(git *)", "Edit"])

    assert argv == [
        "/bin/claude",
        "-p",
        "--output-format",
        "stream-json",
        "--verbose",
        "--dangerously-skip-permissions",
        "--allowedTools",
        "Bash(git *)",
        "Edit",
    ]


def test_model_and_no_skip_permissions() -> None:
    argv = build_argv("claude", skip_permissions=False, model="sonnet")

    assert argv == [
        "claude",
        "-p",
        "--output-format",
        "stream-json",
        "--verbose",
        "--model",
        "sonnet",
    ]


@pytest.mark.parametrize(
    ("skip", "root", "sandbox"),
    [(True, True, True), (True, False, False), (False, True, False), (False, False, False)],
)
def test_is_sandbox_only_for_root_with_skip_permissions(
    skip: bool, root: bool, sandbox: bool
) -> None:
    base = {"PATH": "/usr/bin", "HOME": "/h"}

    env = build_env(base, skip_permissions=skip, is_root=root)

    assert env["PRODIGY_AUTOMATION"] == "true"
    assert env["PATH"] == "/usr/bin" and env["HOME"] == "/h"
    assert ("IS_SANDBOX" in env) is sandbox
    if sandbox:
        assert env["IS_SANDBOX"] == "1"
    assert "PRODIGY_AUTOMATION" not in base  # the caller's mapping is not changed
    assert env["CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC"] == "1"


def test_a_users_nonessential_traffic_setting_is_kept() -> None:
    env = build_env(
        {"CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "0"}, skip_permissions=True, is_root=False
    )

    assert env["CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC"] == "0"


# ---------------------------------------------------------------------------- binary lookup


def make_executable(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("#!/bin/sh\nexit 0\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


def test_env_var_pointing_at_a_missing_file_is_an_error(tmp_path: Path) -> None:
    missing = tmp_path / "nope" / "claude"
    make_executable(tmp_path / "bin" / "claude")

    with pytest.raises(ClaudeNotFound) as info:
        resolve_binary(None, {"PRODIGY_CLAUDE_BIN": str(missing), "PATH": str(tmp_path / "bin")})

    assert str(missing) in info.value.message
    assert "PRODIGY_CLAUDE_BIN" in info.value.message


def test_env_var_pointing_at_a_non_executable_is_an_error(tmp_path: Path) -> None:
    plain = tmp_path / "claude"
    plain.write_text("not a program")

    with pytest.raises(ClaudeNotFound, match="not an executable"):
        resolve_binary(None, {"PRODIGY_CLAUDE_BIN": str(plain)})


def test_env_var_beats_config_and_path(tmp_path: Path) -> None:
    chosen = make_executable(tmp_path / "chosen" / "claude")
    configured = make_executable(tmp_path / "configured" / "claude")
    make_executable(tmp_path / "bin" / "claude")
    env = {"PRODIGY_CLAUDE_BIN": str(chosen), "PATH": str(tmp_path / "bin")}

    assert resolve_binary(str(configured), env) == str(chosen)
    assert resolve_binary(str(configured), {"PATH": str(tmp_path / "bin")}) == str(configured)


def test_configured_relative_path_comes_back_absolute(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    make_executable(tmp_path / "tools" / "claude")
    monkeypatch.chdir(tmp_path)

    found = resolve_binary(os.path.join("tools", "claude"), {"PATH": ""})

    assert found == str(tmp_path / "tools" / "claude")


def test_path_lookup_uses_the_given_environment(tmp_path: Path) -> None:
    first = make_executable(tmp_path / "a" / "claude")
    make_executable(tmp_path / "b" / "claude")
    path = os.pathsep.join([str(tmp_path / "empty"), str(tmp_path / "a"), str(tmp_path / "b")])

    assert resolve_binary(None, {"PATH": path}) == str(first)


def test_configured_name_is_looked_up_on_path(tmp_path: Path) -> None:
    other = make_executable(tmp_path / "bin" / "claude-nightly")
    make_executable(tmp_path / "bin" / "claude")

    assert resolve_binary("claude-nightly", {"PATH": str(tmp_path / "bin")}) == str(other)


def test_nothing_found_lists_every_place_tried(tmp_path: Path) -> None:
    with pytest.raises(ClaudeNotFound) as info:
        resolve_binary(None, {"PATH": str(tmp_path)})

    rendered = info.value.render()
    assert "PRODIGY_CLAUDE_BIN" in rendered
    assert "configured" in rendered
    assert "PATH" in rendered and str(tmp_path) in rendered
    assert info.value.hint and "install" in info.value.hint


def test_none_found_says_a_config_change_waits_for_a_restart(tmp_path: Path) -> None:
    """`config set claude.binary` while the daemon runs changes nothing until it restarts:
    the error says so, not that none is configured."""
    with pytest.raises(ClaudeNotFound) as info:
        resolve_binary(None, {"PATH": str(tmp_path)})
    assert info.value.details is not None
    assert "a change takes effect when it restarts" in info.value.details
