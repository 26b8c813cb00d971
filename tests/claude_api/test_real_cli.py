"""The real Claude Code CLI, run by the real daemon, against the Messages API stand-in."""

from __future__ import annotations

import json
from pathlib import Path

from tests.claude_api.turns import Api, bash_turn, text_turn
from tests.cli import ctl
from tests.gitutil import git


def test_claude_step_commits_and_the_run_merges(daemon: Path, repo: Path, api: Api, tmp_path: Path):
    server = api(
        {
            "conversations": [
                {
                    "match": "add a greeting",
                    "turns": [
                        bash_turn(
                            "echo hello > hello.txt && git add hello.txt && git commit -qm greet"
                        ),
                        text_turn("Committed hello.txt."),
                    ],
                }
            ]
        }
    )
    wf = tmp_path / "wf.yml"
    wf.write_text("- claude: 'add a greeting'\n  commit_required: true\n")
    done = ctl("run", str(wf), "-y", cwd=repo)
    assert done.returncode == 0, done.stdout + done.stderr
    assert git(repo, "show", "main:hello.txt") == "hello\n"
    # --topo-order: a commit made the second the repository was (a fast run) ties on date
    assert git(repo, "log", "-1", "--no-merges", "--topo-order", "--format=%s", "main") == "greet\n"
    bodies = server.conversations()
    assert len(bodies) == 2  # the tool call, then its result went back
    assert json.dumps(bodies[0]).count("add a greeting") >= 1
    tool_result = bodies[1]["messages"][-1]["content"][0]
    assert tool_result["type"] == "tool_result"


def _texts(body: object, part: str) -> list[str]:
    """Every text in a request body that holds `part`."""
    if isinstance(body, dict):
        return [text for value in body.values() for text in _texts(value, part)]
    if isinstance(body, list):
        return [text for value in body for text in _texts(value, part)]
    return [body] if isinstance(body, str) and part in body else []


def test_a_prompt_reaches_the_api_verbatim_through_stdin(
    daemon: Path, repo: Path, api: Api, tmp_path: Path
):
    """prodigy writes the prompt to the CLI's stdin: blanks and newlines around it are
    kept, as they were when it was an argument (the fake claude does the same)."""
    server = api({"conversations": [{"match": "greeting", "turns": [text_turn("ok")]}]})
    wf = tmp_path / "wf.yml"
    wf.write_text('- claude: "  add a greeting  \\n\\nsecond line   \\n"\n')
    done = ctl("run", str(wf), "-y", cwd=repo)
    assert done.returncode == 0, done.stdout + done.stderr
    (body,) = server.conversations()
    assert _texts(body, "greeting") == ["  add a greeting  \n\nsecond line   \n"]
