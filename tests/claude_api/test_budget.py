"""Budgets against the real Claude CLI: a run over its job budget is stopped while Claude
works (the stand-in stalls the reply after its first content block, so only prodigy's
live stop can end it), fails with `budget exceeded: ...`, and a resume with a larger
budget completes and merges."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests.claude_api.turns import Api, text_turn
from tests.cli import ctl
from tests.gitutil import git

#: Idempotent: a resumed conversation may be asked to commit once more.
COMMIT = "echo hello > hello.txt && git add hello.txt && (git diff --cached --quiet || git commit -qm greet)"


def _script(**usage: int) -> dict[str, Any]:
    """The first reply sends its text block (with `usage`) and then goes quiet, once. The
    resume continues that conversation (claude --resume): its history then holds the cut
    reply, and maybe the CLI's "No response requested." after it, so turns 1 and 2 both
    ask for the commit and turn 3 is done; a fresh start gets the commit from turn 0."""
    first = {
        "content": [
            {"type": "text", "text": "Committing."},
            {"type": "tool_use", "name": "Bash", "input": {"command": COMMIT}},
        ],
        "usage": usage,
        "stall_after": 4,  # message_start and the whole text block
        "times": 1,
    }
    commit = {"content": first["content"]}
    turns = [first, commit, commit, text_turn("Done.")]
    return {"conversations": [{"match": "add a greeting", "turns": turns}]}


def _run_over_budget(repo: Path, tmp_path: Path, *budget: str) -> dict[str, Any]:
    wf = tmp_path / "wf.yml"
    # without the live stop, the stalled reply would hold the step until this timeout
    wf.write_text("- claude: 'add a greeting'\n  commit_required: true\n  timeout: 30\n")
    done = ctl("run", str(wf), "-y", "--json", *budget, cwd=repo, timeout=300)
    assert done.returncode == 1, done.stdout + done.stderr
    events = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    return next(e for e in events if e["event_type"] == "session_finished")


def _resume(session_id: str, repo: Path, *budget: str) -> None:
    done = ctl("resume", session_id, "-y", *budget, cwd=repo, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    assert git(repo, "show", "main:hello.txt") == "hello\n"
    shown = json.loads(ctl("sessions", "show", session_id, "--json", cwd=repo).stdout)
    assert shown["status"] == "completed"


def test_a_run_over_its_token_budget_is_stopped_and_resumes_with_a_larger_one(
    daemon: Path, repo: Path, api: Api, tmp_path: Path
):
    api(_script(input_tokens=5000, output_tokens=20, cache_read_input_tokens=9000))
    final = _run_over_budget(repo, tmp_path, "--budget-tokens", "1000")
    # 5,000 input + 9,000 cache reads + the placeholder output token of a streaming reply
    assert "budget exceeded: 14,001 tokens of 1,000 (workflow budget;" in final["error"]
    assert f"prodigyctl resume {final['session_id']} --budget-tokens N" in final["error"]
    _resume(final["session_id"], repo, "--budget-tokens", "1000000")


def test_a_run_over_its_cost_budget_is_stopped_on_the_estimate(
    daemon: Path, repo: Path, api: Api, tmp_path: Path
):
    api(_script(input_tokens=50_000, output_tokens=20))
    final = _run_over_budget(repo, tmp_path, "--budget-usd", "0.01")
    # no result line yet: the cost is prodigy's estimate from the token counts
    assert "(estimated) of $0.01 (workflow budget;" in final["error"], final["error"]
    assert final["error"].startswith("Step 'claude: add a greeting' failed: budget exceeded: $")
    _resume(final["session_id"], repo, "--budget-usd", "5")
