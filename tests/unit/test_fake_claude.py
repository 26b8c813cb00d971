"""The fake claude behaves like the real CLI where prodigy depends on it.

Every test runs the fake as a real subprocess inside a real git repository, with a private
HOME, and reads its output with prodigy's own StreamParser.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from prodigyd.claude.cli import StreamParser, build_argv, build_env

FAKE = Path(__file__).resolve().parents[1] / "fake_claude" / "claude"
STREAM = ["-p", "--output-format", "stream-json", "--verbose", "--dangerously-skip-permissions"]
IS_ROOT = os.geteuid() == 0


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    path = tmp_path / "repo"
    path.mkdir()
    subprocess.run(["git", "init", "-q", str(path)], check=True)
    return path


@pytest.fixture
def base_env(tmp_path: Path) -> dict[str, str]:
    home = tmp_path / "home"
    home.mkdir()
    return {
        "PATH": os.environ["PATH"],
        "HOME": str(home),
        "GIT_AUTHOR_NAME": "Test",
        "GIT_AUTHOR_EMAIL": "test@example.com",
        "GIT_COMMITTER_NAME": "Test",
        "GIT_COMMITTER_EMAIL": "test@example.com",
        "GIT_CONFIG_NOSYSTEM": "1",
        "IS_SANDBOX": "1",
        "FAKE_CLAUDE_LOG": str(tmp_path / "invocations.jsonl"),
    }


def run_fake(
    args: Sequence[str], cwd: Path, env: dict[str, str], stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(FAKE), *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
        input=stdin,
        stdin=None if stdin is not None else subprocess.DEVNULL,
    )


def scenario(tmp_path: Path, env: dict[str, str], *rules: dict[str, Any]) -> Path:
    path = tmp_path / "scenario.json"
    path.write_text(json.dumps({"rules": list(rules)}))
    env["FAKE_CLAUDE_SCENARIO"] = str(path)
    return path


def invocations(env: dict[str, str]) -> list[dict[str, Any]]:
    return [json.loads(line) for line in Path(env["FAKE_CLAUDE_LOG"]).read_text().splitlines()]


def parse(stdout: str) -> tuple[list[dict[str, Any]], Any]:
    parser = StreamParser()
    events = [event for line in stdout.splitlines() for event in parser.feed(line)]
    return events, parser.finish()


def test_version(repo: Path, base_env: dict[str, str]) -> None:
    proc = run_fake(["--version"], repo, base_env)

    assert proc.returncode == 0
    assert proc.stdout.strip() == "2.1.332 (Claude Code)"


def test_stream_json_requires_verbose(repo: Path, base_env: dict[str, str]) -> None:
    proc = run_fake(["-p", "--output-format", "stream-json", "hi"], repo, base_env)

    assert proc.returncode == 1
    assert proc.stdout == ""
    assert (
        "Error: When using --print, --output-format=stream-json requires --verbose" in proc.stderr
    )


@pytest.mark.skipif(not IS_ROOT, reason="the refusal only applies to root")
@pytest.mark.parametrize(
    "flags", [["--dangerously-skip-permissions"], ["--permission-mode", "bypassPermissions"]]
)
def test_root_needs_is_sandbox_for_skip_permissions(
    repo: Path, base_env: dict[str, str], flags: list[str]
) -> None:
    del base_env["IS_SANDBOX"]

    proc = run_fake(["-p", *flags, "hi"], repo, base_env)

    assert proc.returncode == 1
    assert proc.stdout == ""
    assert (
        "--dangerously-skip-permissions cannot be used with root/sudo privileges for "
        "security reasons" in proc.stderr
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["-p", "--bogus-flag", "hi"], "error: unknown option '--bogus-flag'"),
        (
            ["-p", "--session-id", "not-a-uuid", "hi"],
            "Error: Invalid session ID. Must be a valid UUID.",
        ),
        (
            ["-p"],
            "Error: Input must be provided either through stdin or as a prompt argument "
            "when using --print",
        ),
        # variadic --allowedTools swallows the prompt when it is not behind `--`
        (
            ["-p", "--allowedTools", "Bash(git *)", "Edit", "the prompt"],
            "Error: Input must be provided",
        ),
    ],
)
def test_argument_errors_match_the_real_cli(
    repo: Path, base_env: dict[str, str], args: list[str], message: str
) -> None:
    proc = run_fake(args, repo, base_env)

    assert proc.returncode == 1
    assert proc.stdout == ""
    assert message in proc.stderr


def test_prodigys_argv_and_env_are_accepted(repo: Path, base_env: dict[str, str]) -> None:
    del base_env["IS_SANDBOX"]
    prompt = "--allowedTools is in my prompt; -p too"
    argv = build_argv(str(FAKE), extra_args=["--allowedTools", "Bash(git *)", "Edit"])
    env = build_env(base_env, skip_permissions=True, is_root=IS_ROOT)

    proc = subprocess.run(
        argv, cwd=repo, env=env, capture_output=True, text=True, timeout=30, input=prompt
    )

    assert proc.returncode == 0, proc.stderr
    _, result = parse(proc.stdout)
    assert result.result_text == f"ok: {prompt}"
    assert not result.is_error


def test_scenario_write_and_commit_make_a_real_commit(
    tmp_path: Path, repo: Path, base_env: dict[str, str]
) -> None:
    scenario(
        tmp_path,
        base_env,
        {
            "match": r"/fix (?P<item>\w+)",
            "actions": [
                {"write": "src/{item}.txt", "content": "fixed {item}\n"},
                {"shell": "echo shell-says-hi"},
                {"commit": "fix: {item} (it's done)"},
            ],
            "result": "fixed {item} in {cwd}",
            "cost_usd": 0.25,
            "input_tokens": 301,
            "output_tokens": 47,
        },
    )

    proc = run_fake([*STREAM, "--", "/fix widget"], repo, base_env)

    assert proc.returncode == 0, proc.stderr
    assert (repo / "src" / "widget.txt").read_text() == "fixed widget\n"
    log = subprocess.run(
        ["git", "log", "--format=%s"], cwd=repo, capture_output=True, text=True, check=True
    )
    assert log.stdout.splitlines() == ["fix: widget (it's done)"]
    assert list((tmp_path / "home").iterdir()) == []  # nothing written under $HOME

    events, result = parse(proc.stdout)
    assert result.saw_result and not result.is_error
    assert result.result_text == f"fixed widget in {repo}"
    assert result.total_cost_usd == 0.25
    assert (result.input_tokens, result.output_tokens) == (301, 47)
    assert result.num_turns == 4
    assert [t.name for t in result.tool_uses] == ["Write", "Bash", "Bash"]
    assert result.tool_uses[0].input == {
        "file_path": str(repo / "src" / "widget.txt"),
        "content": "fixed widget\n",
    }
    usage_events = [e for e in events if e["event_type"] == "claude_token_usage"]
    assert sum(e["input_tokens"] for e in usage_events) == 301
    # as on the real CLI, live output counts are placeholders (1 per message)
    assert [e["output_tokens"] for e in usage_events] == [1, 1, 1, 1]


def test_stream_looks_like_the_real_cli(repo: Path, base_env: dict[str, str]) -> None:
    session = "12345678-1234-4321-8abc-1234567890ab"

    proc = run_fake([*STREAM, "--model", "opus", "--session-id", session, "hi"], repo, base_env)

    lines = [json.loads(line) for line in proc.stdout.splitlines()]
    assert lines[0]["type"] == "system" and lines[0]["subtype"] == "init"
    assert lines[0]["model"] == "opus"
    assert lines[0]["permissionMode"] == "bypassPermissions"
    assert lines[0]["cwd"] == str(repo)
    assert {line["session_id"] for line in lines} == {session}
    assert [line["type"] for line in lines].count("result") == 1
    assert lines[-1]["type"] == "result"
    assert next(iter(lines[-1])) != "type"  # like 2.1.332: keys are not in a fixed order
    assert ": " not in proc.stdout.splitlines()[0]  # compact JSON, as the CLI prints it


def test_shell_output_goes_into_the_tool_result(
    tmp_path: Path, repo: Path, base_env: dict[str, str]
) -> None:
    scenario(tmp_path, base_env, {"match": "", "actions": [{"shell": "echo from-$PRODIGY_X"}]})
    base_env["PRODIGY_X"] = "env"

    proc = run_fake([*STREAM, "go"], repo, base_env)

    user = [
        json.loads(line) for line in proc.stdout.splitlines() if json.loads(line)["type"] == "user"
    ]
    block = user[0]["message"]["content"][0]
    assert block["type"] == "tool_result"
    assert block["content"] == "from-env\n"
    assert block["is_error"] is False


def test_times_counter_fails_twice_then_succeeds(
    tmp_path: Path, repo: Path, base_env: dict[str, str]
) -> None:
    scenario(
        tmp_path,
        base_env,
        {"match": "flaky", "times": 2, "errors": ["transient failure"]},
        {"match": "flaky", "result": "finally"},
    )

    outcomes = []
    for _ in range(4):
        proc = run_fake([*STREAM, "flaky job"], repo, base_env)
        _, result = parse(proc.stdout)
        text = result.error_text() if result.is_error else result.result_text
        outcomes.append((proc.returncode, text))

    assert outcomes == [
        (1, "transient failure"),
        (1, "transient failure"),
        (0, "finally"),
        (0, "finally"),
    ]


def test_error_variant(tmp_path: Path, repo: Path, base_env: dict[str, str]) -> None:
    scenario(
        tmp_path,
        base_env,
        {"match": "boom", "exit_code": 1, "errors": ["No conversation found with session ID: x"]},
    )

    proc = run_fake([*STREAM, "boom"], repo, base_env)

    assert proc.returncode == 1
    assert "No conversation found with session ID: x" in proc.stderr
    last = json.loads(proc.stdout.splitlines()[-1])
    assert last["subtype"] == "error_during_execution"
    assert last["is_error"] is True
    assert "result" not in last
    _, result = parse(proc.stdout)
    assert result.errors == ["No conversation found with session ID: x"]


def test_is_error_keeps_subtype_success(
    tmp_path: Path, repo: Path, base_env: dict[str, str]
) -> None:
    scenario(
        tmp_path,
        base_env,
        {"match": "", "is_error": True, "result": "Not logged in · Please run /login"},
    )

    proc = run_fake([*STREAM, "hi"], repo, base_env)

    assert proc.returncode == 1
    _, result = parse(proc.stdout)
    assert result.subtype == "success"
    assert result.is_error
    assert result.error_text() == "Not logged in · Please run /login"


def test_no_result_line(tmp_path: Path, repo: Path, base_env: dict[str, str]) -> None:
    scenario(tmp_path, base_env, {"match": "", "no_result": True, "exit_code": 1})

    proc = run_fake([*STREAM, "hi"], repo, base_env)

    assert proc.returncode == 1
    _, result = parse(proc.stdout)
    assert not result.saw_result
    assert result.error_text() == "claude produced no result line"


@pytest.mark.parametrize(
    ("output_format", "expected"),
    [
        ("json", lambda out: json.loads(out)["result"] == "ok: hi"),
        ("text", lambda out: out == "ok: hi\n"),
    ],
)
def test_other_output_formats(
    repo: Path, base_env: dict[str, str], output_format: str, expected: Any
) -> None:
    proc = run_fake(["-p", "--output-format", output_format, "hi"], repo, base_env)

    assert proc.returncode == 0
    assert expected(proc.stdout)


def test_invocation_log(repo: Path, base_env: dict[str, str]) -> None:
    base_env.update({"PRODIGY_AUTOMATION": "true", "SECRET_TOKEN": "do-not-log"})

    run_fake([*STREAM, "--", "-first"], repo, base_env)
    run_fake(["-p"], repo, base_env, stdin="prompt from a pipe\n")

    first, second = invocations(base_env)
    assert first == {
        "argv": [*STREAM, "--", "-first"],
        "prompt": "-first",
        "cwd": str(repo),
        "env": {"PRODIGY_AUTOMATION": "true", "IS_SANDBOX": "1"},
        "stdin_isatty": False,
        "stdin_data": None,
    }
    assert second["prompt"] == "prompt from a pipe\n"  # verbatim, as the real CLI sends it
    assert second["stdin_data"] == "prompt from a pipe\n"
