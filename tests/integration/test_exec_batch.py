"""`prodigyctl exec`, `prodigyctl batch` and `run -`: workflows written for the user, sent
as text, run by the real daemon; what lands on the branch is what counts."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.cli import ctl, json_lines
from tests.daemonkit import rpc
from tests.gitutil import commit_files, git


def test_exec_runs_a_shell_command_and_merges_it(daemon: Path, repo: Path):
    done = ctl("exec", "echo hello > hello.txt", cwd=repo)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "shell: echo hello > hello.txt" in done.stdout
    assert git(repo, "show", "main:hello.txt") == "hello\n"
    row = json.loads(ctl("sessions", "ls", "--json", check=True).stdout)[0]
    stored = Path(row["workflow"])  # the generated workflow is kept for resume
    assert stored.parent == daemon / "workflows"
    assert json.loads(stored.read_text())["commands"] == [{"shell": "echo hello > hello.txt"}]


def test_exec_retries_until_the_command_succeeds(daemon: Path, repo: Path, tmp_path: Path):
    counter = tmp_path / "attempts"
    script = f'echo x >> {counter}; test "$(wc -l < {counter})" -ge 2'
    done = ctl("exec", script, "--retry", "3", cwd=repo)
    assert done.returncode == 0, done.stdout + done.stderr
    assert counter.read_text() == "x\nx\n"


def test_exec_gives_up_after_its_attempts_and_exits_1(daemon: Path, repo: Path, tmp_path: Path):
    counter = tmp_path / "attempts"
    done = ctl("exec", f"echo x >> {counter}; exit 3", "--retry", "2", cwd=repo)
    assert done.returncode == 1
    assert counter.read_text() == "x\nx\n"
    assert json.loads(ctl("sessions", "ls", "--json").stdout)[0]["status"] == "failed"


def test_exec_timeout_kills_the_command(daemon: Path, repo: Path):
    done = ctl("exec", "sleep 60", "--timeout", "0.5", "--json", cwd=repo, timeout=50)
    assert done.returncode == 1
    final = json_lines(done.stdout)[-1]
    assert final["event_type"] == "session_finished" and final["status"] == "failed"
    assert "timed out" in final["error"]


def test_exec_with_a_slash_command_calls_claude(daemon: Path, repo: Path, tmp_path: Path):
    log = tmp_path / "claude.jsonl"
    env = {**os.environ, "FAKE_CLAUDE_LOG": str(log)}
    done = ctl("exec", "/prodigy-lint src", "--detach", cwd=repo, env=env)
    assert done.returncode == 0, done.stderr
    session_id = done.stdout.strip()
    assert ctl("logs", session_id, "-f", cwd=repo).returncode == 0
    prompts = [json.loads(line)["prompt"] for line in log.read_text().splitlines()]
    assert prompts == ["/prodigy-lint src"]


def test_exec_takes_the_original_claude_and_shell_prefixes(
    daemon: Path, repo: Path, tmp_path: Path
):
    log = tmp_path / "claude.jsonl"
    env = {**os.environ, "FAKE_CLAUDE_LOG": str(log)}
    done = ctl("exec", "claude: /refactor main.rs", cwd=repo, env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    assert [json.loads(line)["prompt"] for line in log.read_text().splitlines()] == [
        "/refactor main.rs"
    ]
    shell = ctl("exec", "shell: echo made > made.txt", cwd=repo)
    assert shell.returncode == 0, shell.stdout + shell.stderr
    assert git(repo, "show", "main:made.txt") == "made\n"


def test_a_batch_whose_every_file_failed_did_not_complete(daemon: Path, repo: Path):
    commit_files(repo, {"a.txt": "a\n", "b.txt": "b\n"})
    done = ctl("batch", "*.txt", "-c", "shell: test -z '${item}'", "--json", cwd=repo)
    assert done.returncode == 1, done.stdout + done.stderr
    final = json_lines(done.stdout)[-1]
    assert final["status"] == "failed"
    assert "all 2 items failed; the reduce phase did not run" in final["error"]
    # nothing is left to resume: the error names the command that runs them again
    assert f"`prodigyctl dlq retry {final['session_id']}` runs the failed" in final["error"]
    assert json.loads(ctl("dlq", "stats", "--json", check=True).stdout)["total"] == 2


def test_batch_runs_the_command_once_per_matching_file(daemon: Path, repo: Path):
    commit_files(
        repo, {"a.txt": "a\n", "src/b.txt": "b\n", "src/c d.txt": "c\n", "src/skip.md": "m\n"}
    )
    done = ctl("batch", "*.txt", "-c", "echo done >> '${item}'", "--parallel", "2", cwd=repo)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Processing 3 items with 2 parallel agents" in done.stdout
    assert ": a MapReduce job (1 step in setup and reduce) in " in done.stdout  # its mode, sent
    assert "Batch processing complete. Processed 3 items." in done.stdout
    for name, first in (("a.txt", "a"), ("src/b.txt", "b"), ("src/c d.txt", "c")):
        assert git(repo, "show", f"main:{name}") == f"{first}\ndone\n"
    assert git(repo, "show", "main:src/skip.md") == "m\n"


def test_batch_with_a_slash_in_the_pattern_matches_paths(daemon: Path, repo: Path):
    commit_files(repo, {"top.txt": "t\n", "src/one.txt": "1\n", "docs/two.txt": "2\n"})
    done = ctl("batch", "src/*.txt", "-c", "echo done >> ${item}", "--json", cwd=repo)
    assert done.returncode == 0, done.stdout + done.stderr
    assert git(repo, "show", "main:src/one.txt") == "1\ndone\n"
    assert git(repo, "show", "main:top.txt") == "t\n"
    assert git(repo, "show", "main:docs/two.txt") == "2\n"


def test_batch_warns_when_the_command_ignores_the_item(daemon: Path, repo: Path):
    done = ctl("batch", "*.none", "-c", "true", cwd=repo)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "does not use ${item}" in done.stderr
    assert "No work items to process" in done.stdout


def test_a_filter_that_keeps_no_item_says_so(daemon: Path, repo: Path, tmp_path: Path):
    (tmp_path / "items.json").write_text('[{"n": 1}, {"n": 2}]')
    wf = tmp_path / "wf.yml"
    wf.write_text(
        f"mode: mapreduce\nmap:\n  input: {tmp_path / 'items.json'}\n  filter: 'n > 5'\n"
        "  agent_template:\n    - shell: 'echo ${item.n}'\n"
    )
    done = ctl("run", str(wf), "-y", cwd=repo)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "No work items to process: the filter 'n > 5' kept none of the 2 items" in done.stdout


def test_run_dash_reads_the_workflow_from_stdin(daemon: Path, repo: Path):
    done = subprocess.run(
        [sys.executable, "-m", "prodigyctl.main", "run", "-", "-y"],
        input="name: piped\ncommands:\n  - shell: 'echo piped > piped.txt'\n",
        cwd=repo,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert git(repo, "show", "main:piped.txt") == "piped\n"


def test_inline_workflow_errors_name_the_stored_file_and_line(daemon: Path, repo: Path):
    done = subprocess.run(
        [sys.executable, "-m", "prodigyctl.main", "run", "-"],
        input="commands:\n  - shell: 'ok'\n  - shel: 'typo'\n",
        cwd=repo,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 2
    stored = next((daemon / "workflows").glob("inline-*.yml"))
    assert f"error[E1002]: {stored}:3:5 (" in done.stderr
    assert "did you mean 'shell' instead of 'shel'?" in done.stderr


def test_submit_takes_exactly_one_of_workflow_and_workflow_text(daemon: Path, repo: Path):
    base = {"cwd": str(repo), "env": {}}
    for extra in ({}, {"workflow": "wf.yml", "workflow_text": "- shell: 'true'\n"}):
        try:
            rpc(daemon, "jobs.submit", {**base, **extra})
        except RuntimeError as exc:
            error = exc.args[0]
        else:
            raise AssertionError("jobs.submit accepted " + json.dumps(extra))
        assert error["code"] == -32602
        assert "exactly one of workflow (a file) and workflow_text" in error["message"]


def test_an_empty_command_is_a_usage_error_before_any_daemon_starts(repo: Path, tmp_path: Path):
    done = ctl("exec", "   ", cwd=repo)
    assert done.returncode == 2
    assert "the command is empty" in done.stderr
    assert not (tmp_path / "prodigy-home" / "prodigyd.sock").exists()


def test_exec_and_batch_take_a_budget(daemon: Path, repo: Path, tmp_path: Path):
    scenario = tmp_path / "scenario.json"
    slow = [{"shell": "true"}, {"sleep": 60}, {"write": "late.txt", "content": "late\n"}]
    scenario.write_text(json.dumps({"rules": [{"actions": slow, "input_tokens": 9000}]}))
    env = {**os.environ, "FAKE_CLAUDE_SCENARIO": str(scenario)}
    done = ctl("exec", "/work", "--budget-tokens", "100", "--json", cwd=repo, env=env)
    assert done.returncode == 1, done.stdout + done.stderr
    final = json_lines(done.stdout)[-1]
    assert "budget exceeded: 3,001 tokens of 100 (workflow budget;" in final["error"]
    commit_files(repo, {"a.txt": "a\n"})
    done = ctl("batch", "*.txt", "-c", "/fix ${item}", "--budget-time", "1s", cwd=repo, env=env)
    assert done.returncode == 1, done.stdout + done.stderr
    shown = json.loads(ctl("sessions", "ls", "--json").stdout)[0]
    assert "budget exceeded: " in shown["error"] and "of 1.0s (workflow budget;" in shown["error"]
    bad = ctl("exec", "true", "--budget-time", "soon", cwd=repo)
    assert bad.returncode == 2 and "expected a duration" in bad.stderr
