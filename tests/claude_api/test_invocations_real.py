"""The record of each Claude invocation, with the real CLI against the stand-in: tool uses
and cache tokens as the real stream reports them, a stalled stream stopped by the default
`[claude] timeout` with the tokens of the turns before it kept, and a denied tool call."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.claude_api.turns import Api, bash_turn, text_turn
from tests.cli import ctl

#: `[claude] timeout` for the stall test: long enough for the CLI to start and finish its
#: first turn on a slow machine, short enough not to hold the suite.
STALL_TIMEOUT = 20


@pytest.fixture
def claude_timeout(monkeypatch: pytest.MonkeyPatch) -> None:
    """The daemon's default Claude timeout, from its environment (request before `daemon`)."""
    monkeypatch.setenv("PRODIGY_CLAUDE__TIMEOUT", str(STALL_TIMEOUT))


def invocations() -> list[dict[str, Any]]:
    newest = json.loads(ctl("sessions", "ls", "--json", check=True).stdout)[0]["id"]
    shown = json.loads(ctl("sessions", "show", newest, "--json", check=True).stdout)
    return list(shown["claude_invocations"])


def test_two_claude_steps_leave_two_records(daemon: Path, repo: Path, api: Api, tmp_path: Path):
    cached = {"cache_read_input_tokens": 9000, "cache_creation_input_tokens": 700}
    api(
        {
            "conversations": [
                {
                    "match": "first task",
                    "turns": [
                        bash_turn("true", input_tokens=100, output_tokens=20, **cached),
                        text_turn("done", input_tokens=150, output_tokens=10, **cached),
                    ],
                },
                {
                    "match": "second task",
                    "turns": [
                        bash_turn("true", input_tokens=10, output_tokens=5),
                        bash_turn("true", input_tokens=20, output_tokens=5),
                        text_turn("done", input_tokens=30, output_tokens=5),
                    ],
                },
            ]
        }
    )
    wf = tmp_path / "wf.yml"
    wf.write_text("- claude: 'first task'\n- claude: 'second task'\n")
    done = ctl("run", str(wf), "-y", cwd=repo)
    assert done.returncode == 0, done.stdout + done.stderr

    first, second = invocations()
    assert (first["step"], first["status"], first["tool_uses"]) == ("1", "succeeded", {"Bash": 1})
    assert (first["cache_read_tokens"], first["cache_creation_tokens"]) == (18000, 1400)
    assert (first["input_tokens"], first["output_tokens"], first["num_turns"]) == (250, 30, 2)
    assert (second["step"], second["tool_uses"], second["num_turns"]) == ("2", {"Bash": 2}, 3)
    assert (second["input_tokens"], second["cache_read_tokens"]) == (60, 0)
    assert first["claude_session_id"] != second["claude_session_id"]
    assert first["model"] and first["cost_usd"] > 0
    for record in (first, second):
        lines = Path(record["log"]).read_text().splitlines()
        assert json.loads(lines[-1])["session_id"] == record["claude_session_id"]


def test_a_stalled_stream_is_stopped_by_the_default_timeout_and_keeps_its_tokens(
    claude_timeout: None, daemon: Path, repo: Path, api: Api, tmp_path: Path
):
    cached = {"cache_read_input_tokens": 9000, "cache_creation_input_tokens": 0}
    server = api(
        {
            "conversations": [
                {
                    "match": "stall",
                    "turns": [
                        bash_turn("true", input_tokens=100, output_tokens=20, **cached),
                        {"stall_after": 3, **text_turn("never", input_tokens=5, output_tokens=5)},
                    ],
                }
            ]
        }
    )
    wf = tmp_path / "wf.yml"
    wf.write_text("- claude: 'stall here'\n")
    done = ctl("run", str(wf), "-y", cwd=repo)
    assert done.returncode == 1
    assert f"timed out after {STALL_TIMEOUT} seconds" in done.stdout + done.stderr
    assert len(server.conversations()) == 2  # it stalled in the second turn, not before

    (record,) = invocations()
    assert (record["status"], record["tool_uses"]) == ("timed_out", {"Bash": 1})
    assert (record["input_tokens"], record["cache_read_tokens"]) == (100, 9000)
    assert record["output_tokens"] >= 1 and record["claude_session_id"]


def test_a_denied_tool_call_is_in_the_record(
    daemon: Path, repo: Path, api: Api, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    api(
        {
            "conversations": [
                {
                    "match": "needs bash",
                    "turns": [bash_turn("touch x"), text_turn("I was not allowed to.")],
                }
            ]
        }
    )
    monkeypatch.setenv("PRODIGY_CLAUDE_SKIP_PERMISSIONS", "false")  # Claude asks; -p denies
    wf = tmp_path / "wf.yml"
    wf.write_text("- claude: 'needs bash'\n")
    ctl("run", str(wf), "-y", cwd=repo)
    (record,) = invocations()
    (denial,) = record["permission_denials"]
    assert denial["tool_name"] == "Bash" and denial["tool_input"] == {"command": "touch x"}
    shown = ctl("sessions", "show", json.loads(ctl("sessions", "ls", "--json").stdout)[0]["id"])
    assert "permission denied: Bash" in shown.stdout
