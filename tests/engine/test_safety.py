"""Nothing lost, nothing leaked: work, secrets and the user's files survive every path."""

from __future__ import annotations

import asyncio
import json
import os
import time
from pathlib import Path

from prodigyd import paths, proc
from prodigyd.store import checkpoints, journal
from prodigyd.store import sessions as session_store
from tests.enginekit import resume, run_workflow, write_workflow
from tests.gitutil import git


def home() -> Path:
    return Path(os.environ["PRODIGY_HOME"])


def stored_text(session_id: str) -> str:
    """Everything under PRODIGY_HOME a user could read, except the private journal column."""
    parts = [session_store.load(session_id).model_dump_json()]
    for path in home().rglob("*"):
        if (
            path.is_file()
            and "worktrees" not in path.parts
            and not path.name.startswith("journal.db")
        ):
            parts.append(path.read_text(errors="replace"))
    return "\n".join(parts)


async def test_resume_restores_secret_bearing_variables_whole(tmp_path: Path, repo: Path):
    flag = tmp_path / "go"
    wf = write_workflow(
        tmp_path,
        f"""
env:
  TOK: {{secret: true, value: "tok-9f8e7d6c5b"}}
commands:
  - shell: "echo value-$TOK"
    capture: v
  - shell: "test -f {flag}"
  - shell: "echo 'got ${{v}}' > got.txt"
""",
    )
    first = await run_workflow(wf, repo)
    assert first.status == "failed"
    saved = json.dumps(checkpoints.load(first.record.id), ensure_ascii=False)
    assert "tok-9f8e7d6c5b" not in saved and "«secret:TOK»" in saved
    flag.touch()
    again = await resume(first.record.id)
    assert again.status == "completed", again.record.error
    assert (repo / "got.txt").read_text() == "got value-tok-9f8e7d6c5b\n"
    assert "tok-9f8e7d6c5b" not in stored_text(first.record.id)


async def test_resume_does_not_duplicate_completed_steps(tmp_path: Path, repo: Path):
    wf = write_workflow(tmp_path, "- shell: 'true'\n- shell: 'exit 1'\n- shell: 'true'\n")
    out = await run_workflow(wf, repo)
    await resume(out.record.id)
    await resume(out.record.id)
    saved = checkpoints.load(out.record.id)
    assert [s["step_index"] for s in saved["completed_steps"]] == [0]
    assert session_store.load(out.record.id).completed_steps == 1


async def test_detached_head_in_the_worktree_is_refused_and_kept(tmp_path: Path, repo: Path):
    wf = write_workflow(
        tmp_path,
        """
- shell: "git checkout -q --detach && echo precious > d.txt && git add d.txt && git commit -qm detached-work"
""",
    )
    out = await run_workflow(wf, repo)
    assert out.status == "awaiting_merge"
    assert "detached" in out.record.error and "would be lost" in out.record.error
    worktree = Path(out.record.worktree)
    assert (worktree / "d.txt").read_text() == "precious\n"
    assert "detached-work" in git(worktree, "log", "-1", "--format=%s")


async def test_args_are_masked_for_display_but_intact_for_the_run(tmp_path: Path, repo: Path):
    wf = write_workflow(
        tmp_path,
        """
env:
  TOKEN: {secret: true, value: "${ARG_1}"}
commands:
  - shell: "echo $TOKEN > token.txt"
""",
    )
    out = await run_workflow(wf, repo, args=("argsecretABC123",))
    assert out.status == "completed", out.record.error
    assert (repo / "token.txt").read_text() == "argsecretABC123\n"
    assert session_store.load(out.record.id).args == ["***"]
    assert "argsecretABC123" not in stored_text(out.record.id)


async def test_secrets_with_json_escapes_are_masked_in_raw_claude_logs(tmp_path: Path, repo: Path):
    wf = write_workflow(
        tmp_path,
        """
secrets:
  Q: {value: 'quo"te\\back-é-secret'}
commands:
  - claude: "use ${Q}"
""",
    )
    out = await run_workflow(wf, repo)
    assert out.status == "completed", out.record.error
    logs = "".join(p.read_text() for p in paths.claude_logs_dir().glob("*.jsonl"))
    assert "use ***" in logs
    for spelling in ('quo"te', 'quo\\"te', "back-\\u00e9", "back-é"):
        assert spelling not in logs


async def test_paths_outside_the_worktree_or_in_git_are_refused(tmp_path: Path, repo: Path):
    for field, value in (
        ("output_file", "../../escaped.txt"),
        ("output_file", "/tmp/abs.txt"),
        ("output_file", ".git"),
        ("working_dir", "../.."),
        ("working_dir", "nonexistent"),
    ):
        wf = write_workflow(tmp_path, f"- shell: 'echo x'\n  {field}: '{value}'\n", "p.yml")
        out = await run_workflow(wf, repo)
        assert out.status == "failed", (field, value)
        assert "internal error" not in out.record.error
        assert "worktree" in out.record.error or "folder" in out.record.error, out.record.error
    assert not (home() / "escaped.txt").exists()
    assert not Path("/tmp/abs.txt").exists()


async def test_claude_failure_reports_its_result_text_not_raw_json(tmp_path: Path, repo: Path):
    scenario = tmp_path / "s.json"
    scenario.write_text(json.dumps({"rules": [{"is_error": True, "result": "Not logged in"}]}))
    wf = write_workflow(tmp_path, "- claude: /work\n")
    out = await run_workflow(wf, repo, env={**os.environ, "FAKE_CLAUDE_SCENARIO": str(scenario)})
    assert out.status == "failed"
    assert "Not logged in" in out.record.error
    assert '"type"' not in out.record.error


async def test_claude_ids_do_not_replace_the_prodigy_session_id(tmp_path: Path, repo: Path):
    out = await run_workflow(write_workflow(tmp_path, "- claude: /hello\n"), repo)
    started = out.sink.of("claude_session_started")[0]
    assert "session_id" not in started and started["claude_session_id"]


async def test_debug_loop_sets_the_attempt_on_every_run(tmp_path: Path, repo: Path):
    log = tmp_path / "attempts"
    wf = write_workflow(
        tmp_path,
        f"""
- shell: "echo $SHELL_ATTEMPT/$TEST_ATTEMPT >> {log}; exit 1"
  on_failure:
    claude: "/fix"
    max_attempts: 3
""",
    )
    await run_workflow(wf, repo)
    assert log.read_text().split() == ["1/1", "2/2", "3/3"]


async def test_strict_mode_leaves_environment_names_to_the_shell(tmp_path: Path, repo: Path):
    wf = write_workflow(
        tmp_path, "strict_variables: true\ncommands:\n  - shell: 'echo $HOME > home.txt'\n"
    )
    out = await run_workflow(wf, repo)
    assert out.status == "completed", out.record.error
    assert (repo / "home.txt").read_text().strip() == os.environ["HOME"]


async def test_interrupted_merge_leaves_the_session_awaiting_merge(tmp_path: Path, repo: Path):
    started = tmp_path / "merging"
    wf = write_workflow(
        tmp_path,
        f"""
commands:
  - shell: "echo x > x.txt && git add x.txt && git commit -qm x"
merge:
  - shell: "touch {started}; sleep 30"
""",
    )
    task = asyncio.ensure_future(run_workflow(wf, repo))
    while not started.exists():
        await asyncio.sleep(0.02)
    running = [row["id"] for row in journal.with_status("running")] or [
        r.id for r in session_store.list_all()
    ]
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    record = session_store.load(running[0])
    assert record.status.value == "awaiting_merge"
    assert "merge interrupted" in record.error
    assert Path(record.worktree).exists()


async def test_timeout_bounds_a_step_whose_children_escape_the_group(tmp_path: Path):
    began = time.monotonic()
    done = await proc.run(
        ["sh", "-c", "trap '' TERM; setsid sh -c 'sleep 30' & sleep 30"], cwd=tmp_path, timeout=0.5
    )
    assert done.timed_out
    assert time.monotonic() - began < 10
