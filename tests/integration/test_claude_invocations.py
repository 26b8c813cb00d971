"""Every run of Claude recorded: `sessions show` lists each invocation (steps, retries, map
agents, timeouts, cancellations) with its figures, `analytics --by tool|model` sums them,
and a Claude step without `timeout:` gets `[claude] timeout`. The real daemon runs the fake
claude here; tests/claude_api/test_invocations_real.py does it with the real CLI."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from tests.cli import ctl, json_lines, wait_for

#: A shorter `[claude] timeout` than any step here should need, set in the daemon's
#: environment by the `claude_timeout` fixture (requested before `daemon`).
SHORT_TIMEOUT = 4


@pytest.fixture
def claude_timeout(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PRODIGY_CLAUDE__TIMEOUT", str(SHORT_TIMEOUT))


def scenario_env(tmp_path: Path, *rules: dict[str, Any]) -> dict[str, str]:
    scenario = tmp_path / "scenario.json"
    scenario.write_text(json.dumps({"rules": list(rules)}))
    return {
        **os.environ,
        "FAKE_CLAUDE_SCENARIO": str(scenario),
        "FAKE_CLAUDE_LOG": str(tmp_path / "claude-calls.jsonl"),
    }


def workflow(tmp_path: Path, text: str) -> str:
    path = tmp_path / "wf.yml"
    path.write_text(text)
    return str(path)


def session_id(stdout: str) -> str:
    """The session of the last `sessions ls --json` row (the newest is first)."""
    return str(json.loads(stdout)[0]["id"])


def show(session: str) -> dict[str, Any]:
    return dict(json.loads(ctl("sessions", "show", session, "--json", check=True).stdout))


def newest_session() -> str:
    return session_id(ctl("sessions", "ls", "--json", check=True).stdout)


def test_each_claude_step_has_its_record(daemon: Path, repo: Path, tmp_path: Path):
    env = scenario_env(
        tmp_path,
        {
            "match": "write it",
            "actions": [{"write": "a.txt", "content": "a\n"}, {"commit": "add a"}],
            "input_tokens": 300,
            "output_tokens": 60,
            "cost_usd": 0.03,
        },
        {"match": "check it", "actions": [{"shell": "cat a.txt"}], "cost_usd": 0.01},
    )
    wf = workflow(tmp_path, "- claude: /write it\n- shell: 'true'\n- claude: /check it\n")
    assert ctl("run", wf, "-y", cwd=repo, env=env).returncode == 0
    data = show(newest_session())

    first, second = data["claude_invocations"]
    assert {key: first[key] for key in ("step", "attempt", "status", "tool_uses")} == {
        "step": "1",
        "attempt": 1,
        "status": "succeeded",
        "tool_uses": {"Write": 1, "Bash": 1},
    }
    assert (first["input_tokens"], first["output_tokens"], first["cost_usd"]) == (300, 60, 0.03)
    assert first["num_turns"] == 3 and first["exit_code"] == 0
    assert first["cache_read_tokens"] == 0 and first["permission_denials"] == []
    assert first["model"] and first["claude_session_id"]
    assert (second["step"], second["tool_uses"]) == ("3", {"Bash": 1})
    assert second["claude_session_id"] != first["claude_session_id"]
    log = Path(first["log"]).read_text().splitlines()
    assert json.loads(log[-1])["session_id"] == first["claude_session_id"]
    assert data["cost_usd"] == pytest.approx(0.04)  # the session's totals are the records'

    table = ctl("sessions", "show", data["id"], check=True).stdout
    lines = table[table.index("claude invocations:") :].splitlines()
    assert lines[1].split()[:4] == ["STEP#TRY", "STATUS", "MODEL", "TOOLS"]
    assert lines[2].split()[:2] == ["1#1", "succeeded"] and "Write:1 Bash:1" in lines[2]
    assert lines[3].split()[:2] == ["3#1", "succeeded"] and "$0.0100" in lines[3]


def test_every_attempt_is_recorded_and_numbered(daemon: Path, repo: Path, tmp_path: Path):
    env = scenario_env(
        tmp_path,
        {"match": "flaky", "times": 1, "errors": ["API Error: 500"], "cost_usd": 0.02},
        {"match": "flaky", "actions": [{"shell": "true"}]},
    )
    wf = workflow(tmp_path, "- claude: /flaky\n  retry: {attempts: 2, initial_delay: 0}\n")
    assert ctl("run", wf, "-y", cwd=repo, env=env).returncode == 0
    runs = show(newest_session())["claude_invocations"]
    assert [(r["step"], r["attempt"], r["status"]) for r in runs] == [
        ("1", 1, "failed"),
        ("1", 2, "succeeded"),
    ]
    assert runs[0]["exit_code"] == 1 and runs[0]["cost_usd"] == 0.02
    assert runs[0]["log"] != runs[1]["log"]


def test_map_agents_invocations_are_the_jobs(daemon: Path, repo: Path, tmp_path: Path):
    env = scenario_env(tmp_path, {"match": "fix", "actions": [{"shell": "true"}]})
    wf = workflow(
        tmp_path,
        "mode: mapreduce\n"
        "map:\n"
        "  input: 'printf \"a\\nb\\n\"'\n"
        "  agent_template:\n"
        "    - claude: /fix ${item}\n"
        "reduce:\n"
        "  - claude: /summarise\n",
    )
    assert ctl("run", wf, "-y", cwd=repo, env=env).returncode == 0
    runs = show(newest_session())["claude_invocations"]
    agents = sorted((r["item_id"], r["step"], r["tool_uses"]) for r in runs if r.get("item_id"))
    assert agents == [("item_0", "item_0/1", {"Bash": 1}), ("item_1", "item_1/1", {"Bash": 1})]
    assert [r["step"] for r in runs if not r.get("item_id")] == ["reduce.1"]


def test_default_timeout_stops_a_claude_step_and_keeps_its_tokens(
    claude_timeout: None, daemon: Path, repo: Path, tmp_path: Path
):
    env = scenario_env(
        tmp_path,
        {
            "match": "stall",
            "actions": [{"shell": "true"}, {"sleep": 120}],
            "input_tokens": 400,
            "output_tokens": 40,
        },
    )
    wf = workflow(tmp_path, "- claude: /stall\n")
    done = ctl("run", wf, "-y", cwd=repo, env=env)
    assert done.returncode == 1
    assert f"timed out after {SHORT_TIMEOUT} seconds" in done.stdout + done.stderr
    assert "[claude] timeout" in done.stdout + done.stderr
    data = show(newest_session())
    (run,) = data["claude_invocations"]
    assert (run["status"], run["tool_uses"]) == ("timed_out", {"Bash": 1})
    assert run["cost_usd"] > 0 and run["cost_estimated"] is True  # from its tokens
    assert data["cost_usd"] == run["cost_usd"]  # the session counts it too
    assert run["input_tokens"] == 200  # the first of two turns, reported before the stall
    assert data["input_tokens"] == 200
    calls = json_lines((tmp_path / "claude-calls.jsonl").read_text())
    assert calls[0]["env"]["PRODIGY_COMMAND_TIMEOUT"] == str(SHORT_TIMEOUT)


def test_a_step_timeout_beats_the_default(
    claude_timeout: None, daemon: Path, repo: Path, tmp_path: Path
):
    env = scenario_env(tmp_path, {"match": "slow", "actions": [{"sleep": SHORT_TIMEOUT + 1}]})
    wf = workflow(tmp_path, "- claude: /slow\n  timeout: 60\n")
    assert ctl("run", wf, "-y", cwd=repo, env=env).returncode == 0
    (run,) = show(newest_session())["claude_invocations"]
    assert run["status"] == "succeeded"


def test_a_cancelled_invocation_keeps_its_record(daemon: Path, repo: Path, tmp_path: Path):
    env = scenario_env(tmp_path, {"match": "long", "actions": [{"shell": "true"}, {"sleep": 120}]})
    wf = workflow(tmp_path, "- claude: /long\n")
    ctl("run", wf, "--detach", cwd=repo, env=env, check=True)
    session = newest_session()
    tool_uses = ("events", "ls", "--session", session, "--type", "claude_tool_invoked", "--json")
    wait_for(lambda: ctl(*tool_uses).stdout.strip(), what="claude's first tool use")
    ctl("cancel", session, check=True)
    wait_for(lambda: show(session)["claude_invocations"], what="the invocation's record")
    (run,) = show(session)["claude_invocations"]
    assert (run["status"], run["tool_uses"], run["exit_code"]) == ("interrupted", {"Bash": 1}, None)


def test_analytics_by_tool_and_by_model(daemon: Path, repo: Path, tmp_path: Path):
    env = scenario_env(
        tmp_path,
        {
            "match": "edit",
            "actions": [{"write": "b.txt", "content": "b"}, {"shell": "true"}, {"shell": "true"}],
            "cost_usd": 0.5,
            "input_tokens": 1000,
        },
        {"match": "read", "actions": [{"shell": "true"}], "cost_usd": 0.25},
        {"match": "think", "cost_usd": 0.125},
    )
    wf = workflow(tmp_path, "- claude: /edit\n- claude: /read\n- claude: /think\n")
    assert ctl("run", wf, "-y", cwd=repo, env=env).returncode == 0
    assert ctl("run", wf, "-y", cwd=repo, env=env).returncode == 0

    by_tool = json.loads(ctl("analytics", "--by", "tool", "--json", check=True).stdout)
    rows = {row["key"]: row for row in by_tool["rows"]}
    assert [row["key"] for row in by_tool["rows"]] == ["Bash", "Write", "(no tool)"]
    assert (rows["Bash"]["tool_uses"], rows["Bash"]["invocations"]) == (6, 4)
    assert rows["Bash"]["sessions"] == 2 and rows["Bash"]["cost_usd"] == 1.5
    assert (rows["Write"]["tool_uses"], rows["Write"]["cost_usd"]) == (2, 1.0)
    assert rows["(no tool)"]["invocations"] == 2
    total = by_tool["total"]
    assert (total["invocations"], total["tool_uses"], total["cost_usd"]) == (6, 8, 1.75)
    assert total["input_tokens"] == 2 * (1000 + 100 + 100)

    by_model = json.loads(ctl("analytics", "--by", "model", "--json", check=True).stdout)
    (model,) = by_model["rows"]
    assert model["key"] and model | {"key": None} == by_model["total"] | {"key": None}

    table = ctl("analytics", "--by", "tool", check=True).stdout.splitlines()
    assert table[0].split()[:3] == ["TOOL", "runs", "sessions"]
    assert table[1].split()[:4] == ["Bash", "4", "2", "6"]
    later = ctl("analytics", "--by", "model", "--since", "2999-01-01T00:00:00Z", check=True)
    assert later.stdout.strip() == "no Claude invocations since 2999-01-01T00:00:00.000Z"
