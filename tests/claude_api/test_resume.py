"""An interrupted Claude step resumes its conversation, with the real CLI against the stand-in.

The stand-in answers turn 1 with a Bash commit and hangs on turn 2, so the step is always
cut off mid-conversation; what the CLI sends on resume is read back from the stand-in.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from prodigyd.engine.claude_sessions import CONTINUE_PROMPT
from tests.claude_api.turns import Api, bash_turn, text_turn
from tests.cli import ctl, wait_for
from tests.daemonkit import Daemon
from tests.gitutil import git

COMMIT = "echo hello > hello.txt && git add hello.txt && git commit -qm greet"


def _script() -> dict[str, Any]:
    """Turn 1 commits; turn 2 hangs once. A resumed request has turn 2's interrupted reply
    filled in by the CLI ("No response requested."), so it is answered by turn 3; were it
    not, the spent hang answers instead: either way the step can finish."""
    return {
        "conversations": [
            {
                "match": "add a greeting",
                "turns": [
                    bash_turn(COMMIT),
                    {"hang": True, "times": 1, **text_turn("Done.")},
                    text_turn("The greeting was committed before; done."),
                ],
            }
        ]
    }


def _workflow(tmp_path: Path, timeout: str | None = None) -> Path:
    wf = tmp_path / "wf.yml"
    extra = f"\n  timeout: {timeout}" if timeout else ""
    wf.write_text(f"- claude: 'add a greeting'\n  commit_required: true{extra}\n")
    return wf


def _status(session_id: str) -> str:
    shown = ctl("sessions", "show", session_id, "--json")
    return str(json.loads(shown.stdout)["status"]) if shown.returncode == 0 else ""


def _transcripts(home: Path) -> list[Path]:
    return sorted((home / ".claude" / "projects").rglob("*.jsonl"))


def _assert_resumed(bodies: list[dict[str, Any]]) -> None:
    """The last request continued the first conversation: turn 1's tool call and its
    result, then the continuation prompt as the newest user message."""
    resumed = bodies[-1]["messages"]
    text = json.dumps(resumed)
    assert text.count("add a greeting") == 1  # one conversation, not a second start
    assert COMMIT.replace('"', '\\"') in text  # turn 1's Bash call ...
    assert any(
        block.get("type") == "tool_result"
        for message in resumed
        if isinstance(message["content"], list)
        for block in message["content"]
    )  # ... and its result went back
    last = resumed[-1]
    assert last["role"] == "user"
    assert CONTINUE_PROMPT in json.dumps(last["content"])


@pytest.mark.timeout(300)
def test_kill_9_mid_conversation_resumes_it_after_restart(
    isolated: Path, repo: Path, api: Api, tmp_path: Path
):
    server = api(_script())
    daemon = Daemon(isolated)
    daemon.start()
    try:
        sid = ctl("run", str(_workflow(tmp_path)), "-y", "--detach", cwd=repo, check=True)
        session_id = sid.stdout.strip()
        wait_for(lambda: len(server.conversations()) >= 2, timeout=120, what="turn 2 to hang")
        daemon.kill()
        daemon.start()  # auto-resume: the orphaned claude is killed, the step resumes
        wait_for(lambda: _status(session_id) == "completed", timeout=180, what="the resume")
        events = ctl("events", "ls", "--session", session_id, "--json", check=True).stdout
    finally:
        ctl("daemon", "stop")
    assert "claude_session_resumed" in events
    bodies = server.conversations()
    assert len(bodies) == 3, [b["messages"][-1] for b in bodies]
    _assert_resumed(bodies)
    assert git(repo, "show", "main:hello.txt") == "hello\n"  # committed before the kill
    assert _transcripts(Path.home()) == []  # completed: nothing left to resume


@pytest.mark.timeout(300)
def test_a_step_timeout_then_resume_continues_the_conversation(
    daemon: Path, repo: Path, api: Api, tmp_path: Path
):
    server = api(_script())
    first = ctl("run", str(_workflow(tmp_path, "15s")), "-y", cwd=repo)
    assert first.returncode == 1, first.stdout + first.stderr
    assert "timed out" in first.stdout + first.stderr
    session_id = json.loads(ctl("sessions", "ls", "--json", check=True).stdout)[0]["id"]
    assert len(_transcripts(Path.home())) == 1  # kept: the step may be resumed
    again = ctl("resume", session_id, "-y", cwd=repo)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "resuming Claude conversation" in again.stdout
    _assert_resumed(server.conversations())
    assert git(repo, "show", "main:hello.txt") == "hello\n"
    assert _transcripts(Path.home()) == []


@pytest.mark.timeout(300)
def test_a_conversation_the_cli_lost_starts_afresh_with_a_warning(
    daemon: Path, repo: Path, api: Api, tmp_path: Path
):
    server = api(_script())
    first = ctl("run", str(_workflow(tmp_path, "15s")), "-y", cwd=repo)
    assert first.returncode == 1, first.stdout + first.stderr
    session_id = json.loads(ctl("sessions", "ls", "--json", check=True).stdout)[0]["id"]
    (transcript,) = _transcripts(Path.home())
    transcript.unlink()
    again = ctl("resume", session_id, "-y", cwd=repo)
    assert again.returncode == 0, again.stdout + again.stderr
    assert f"warning: Claude conversation {transcript.stem} cannot be resumed" in again.stdout
    assert "No conversation found with session ID" in again.stdout
    fresh = server.conversations()[-1]["messages"]
    assert CONTINUE_PROMPT not in json.dumps(fresh)  # the task itself, from the start
    assert "add a greeting" in json.dumps(fresh[0])
    assert git(repo, "show", "main:hello.txt") == "hello\n"  # its first commit counts


def test_a_completed_run_leaves_no_transcript_and_keeps_the_users(
    daemon: Path, repo: Path, api: Api, tmp_path: Path
):
    api(
        {
            "conversations": [
                {"match": "add a greeting", "turns": [bash_turn(COMMIT), text_turn("Done.")]}
            ]
        }
    )
    theirs = Path.home() / ".claude" / "projects" / "-home-me-project" / "mine.jsonl"
    theirs.parent.mkdir(parents=True)
    theirs.write_text("{}\n")
    done = ctl("run", str(_workflow(tmp_path)), "-y", cwd=repo)
    assert done.returncode == 0, done.stdout + done.stderr
    assert _transcripts(Path.home()) == [theirs]
    assert list((Path.home() / ".claude" / "session-env").iterdir()) == []
