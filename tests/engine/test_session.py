"""Workflow semantics, run by the engine in-process against real git repositories."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from prodigyd.store import checkpoints
from prodigyd.store import sessions as session_store
from tests.enginekit import Outcome, assert_released, resume, run_workflow, write_workflow
from tests.gitutil import git


def branch_files(repo: Path, branch: str = "main") -> set[str]:
    return set(git(repo, "ls-tree", "-r", "--name-only", branch).split())


async def test_shell_steps_commit_and_merge_to_the_original_branch(tmp_path: Path, repo: Path):
    wf = write_workflow(
        tmp_path,
        """
commands:
  - shell: "echo one > one.txt && git add one.txt && git commit -qm one"
    commit_required: true
  - shell: "test -f one.txt && echo two > two.txt"
""",
    )
    out = await run_workflow(wf, repo)
    assert out.status == "completed", out.record.error
    assert {"one.txt", "two.txt"} <= branch_files(repo)  # uncommitted leftovers are kept
    assert (repo / "two.txt").read_text() == "two\n"  # the user's checkout follows its branch
    assert_released(out.record.worktree)
    assert f"prodigy-{out.record.id}" not in git(repo, "branch", "--list")
    assert out.record.merged and out.record.merge_commit


async def test_steps_alias_and_plain_list_shapes(tmp_path: Path, repo: Path):
    for text in ("steps:\n  - shell: 'echo hi > a.txt'\n", "- shell: 'echo hi > b.txt'\n"):
        out = await run_workflow(write_workflow(tmp_path, text), repo)
        assert out.status == "completed", out.record.error
    assert {"a.txt", "b.txt"} <= branch_files(repo)


async def test_failed_step_keeps_worktree_and_leaves_branch_untouched(tmp_path: Path, repo: Path):
    before = git(repo, "rev-parse", "main")
    wf = write_workflow(
        tmp_path,
        """
- shell: "echo partial > partial.txt"
- shell: "echo boom >&2; exit 3"
- shell: "echo never > never.txt"
""",
    )
    out = await run_workflow(wf, repo)
    assert out.status == "failed"
    assert "failed with exit code 3" in out.record.error
    assert "boom" in out.record.error
    assert git(repo, "rev-parse", "main") == before
    assert (Path(out.record.worktree) / "partial.txt").exists()
    assert not (Path(out.record.worktree) / "never.txt").exists()
    saved = checkpoints.load(out.record.id)
    assert saved["execution_state"]["status"] == "Failed"
    assert [s["step_index"] for s in saved["completed_steps"]] == [0]


async def test_resume_skips_completed_steps_and_reruns_the_failed_one(tmp_path: Path, repo: Path):
    marker = tmp_path / "allow"
    wf = write_workflow(
        tmp_path,
        f"""
- shell: "echo run >> {tmp_path}/first-runs.log"
- shell: "test -f {marker}"
- shell: "echo done > done.txt"
""",
    )
    out = await run_workflow(wf, repo)
    assert out.status == "failed"
    marker.touch()
    again = await resume(out.record.id)
    assert again.status == "completed", again.record.error
    assert (tmp_path / "first-runs.log").read_text() == "run\n"  # step 1 ran once
    assert [e["step"] for e in again.sink.of("step_skipped")] == ["1"]
    assert "done.txt" in branch_files(repo)


async def test_commit_required_without_a_commit_fails(tmp_path: Path, repo: Path):
    wf = write_workflow(tmp_path, "- shell: 'echo nothing'\n  commit_required: true\n")
    out = await run_workflow(wf, repo)
    assert out.status == "failed"
    assert "No changes were committed by shell: echo nothing" in out.record.error


async def test_timeout_kills_the_whole_process_group(tmp_path: Path, repo: Path):
    pidfile = tmp_path / "child.pid"
    wf = write_workflow(
        tmp_path,
        f"""
- shell: "sleep 60 & echo $! > {pidfile}; wait"
  timeout: 0.5
""",
    )
    out = await run_workflow(wf, repo)
    assert out.status == "failed"
    assert "timed out after 0.5 seconds" in out.record.error
    child = int(pidfile.read_text())
    assert (
        not Path(f"/proc/{child}").exists()
        or "Z" in Path(f"/proc/{child}/stat").read_text().split()[2]
    )


async def test_variables_capture_and_when(tmp_path: Path, repo: Path):
    wf = write_workflow(
        tmp_path,
        """
name: vars
commands:
  - shell: 'echo ''{"n": 3, "tags": ["a", "b"]}'''
    capture: info
    capture_format: json
  - shell: "echo ${info.n} ${info.tags[1]} $ARG ${ARG_2} ${workflow.name} > vars.txt"
  - shell: "echo skipped > skipped.txt"
    when: "${info.n} > 5"
  - shell: "printf 'yes' "
    capture: flag
    capture_format: boolean
  - shell: "echo ${shell.output}-${last.exit_code}-${flag} > last.txt"
    when: "${flag}"
""",
    )
    out = await run_workflow(wf, repo, args=("first", "second"))
    assert out.status == "completed", out.record.error
    assert (repo / "vars.txt").read_text() == "3 b first second vars\n"
    assert not (repo / "skipped.txt").exists()
    assert (repo / "last.txt").read_text() == "yes-0-true\n"


async def test_env_profiles_and_masked_secrets(tmp_path: Path, repo: Path):
    wf = write_workflow(
        tmp_path,
        """
env:
  MODE: global
  API_TOKEN: {secret: true, value: "tok-abcdef123456"}
profiles:
  dev:
    MODE: dev
commands:
  - shell: "echo $MODE ${MODE} $API_TOKEN > env.txt; echo token=$API_TOKEN"
  - shell: "echo step-$MODE > step.txt"
    env:
      MODE: step
""",
    )
    out = await run_workflow(wf, repo, profile="dev")
    assert out.status == "completed", out.record.error
    assert (repo / "env.txt").read_text() == "dev dev tok-abcdef123456\n"
    assert (repo / "step.txt").read_text() == "step-step\n"
    stored = json.dumps(out.sink.events) + session_store.load(out.record.id).model_dump_json()
    stored += json.dumps(checkpoints.load(out.record.id))
    assert "tok-abcdef123456" not in stored
    assert "token=***" in json.dumps(out.sink.of("step_output"))


async def test_on_failure_handler_runs_with_error_variables(tmp_path: Path, repo: Path):
    wf = write_workflow(
        tmp_path,
        """
- shell: "echo bad-things >&2; exit 4"
  on_failure: "echo '${error.exit_code} ${error.message}' > handled.txt"
- shell: "echo after > after.txt"
""",
    )
    out = await run_workflow(wf, repo)
    assert out.status == "completed", out.record.error
    assert (repo / "handled.txt").read_text() == "4 bad-things\n"
    assert (repo / "after.txt").exists()


async def test_on_failure_fail_workflow_stops_after_the_handler(tmp_path: Path, repo: Path):
    wf = write_workflow(
        tmp_path,
        """
- shell: "exit 1"
  on_failure:
    shell: "echo cleanup > cleanup.txt"
    fail_workflow: true
""",
    )
    out = await run_workflow(wf, repo)
    assert out.status == "failed"
    assert (Path(out.record.worktree) / "cleanup.txt").exists()


async def test_debug_loop_reruns_the_shell_until_it_passes(tmp_path: Path, repo: Path):
    wf = write_workflow(
        tmp_path,
        """
- shell: "test -f fixed.txt || { echo not yet; exit 1; }"
  on_failure:
    claude: "/fix ${shell.attempt} ${shell.exit_code}"
    max_attempts: 3
    fail_workflow: true
""",
    )
    scenario = tmp_path / "scenario.json"
    scenario.write_text(
        json.dumps(
            {
                "rules": [
                    {"match": "/fix 2", "actions": [{"write": "fixed.txt", "content": "ok"}]},
                ]
            }
        )
    )
    log = tmp_path / "claude.jsonl"
    env = {
        **__import__("os").environ,
        "FAKE_CLAUDE_SCENARIO": str(scenario),
        "FAKE_CLAUDE_LOG": str(log),
    }
    out = await run_workflow(wf, repo, env=env)
    assert out.status == "completed", out.record.error
    prompts = [json.loads(line)["prompt"] for line in log.read_text().splitlines()]
    assert [p for p in prompts if p] == ["/fix 1 1", "/fix 2 1"]


async def test_claude_step_output_tokens_and_errors(tmp_path: Path, repo: Path):
    scenario = tmp_path / "scenario.json"
    scenario.write_text(
        json.dumps(
            {
                "rules": [
                    {"match": "^/broken", "is_error": True, "result": "Not logged in"},
                    {
                        "match": "^/implement",
                        "actions": [
                            {"write": "impl.txt", "content": "x"},
                            {"commit": "implement {1}"},
                        ],
                        "result": "implemented it",
                        "cost_usd": 0.25,
                        "input_tokens": 120,
                        "output_tokens": 30,
                    },
                ]
            }
        )
    )
    env = {**__import__("os").environ, "FAKE_CLAUDE_SCENARIO": str(scenario)}
    wf = write_workflow(
        tmp_path,
        """
- claude: "/implement $ARG"
  commit_required: true
- shell: "echo '${claude.output}' > said.txt"
""",
    )
    out = await run_workflow(wf, repo, args=("spec-1",), env=env)
    assert out.status == "completed", out.record.error
    assert (repo / "said.txt").read_text() == "implemented it\n"
    results = out.sink.of("claude_result")
    assert results[0]["total_cost_usd"] == 0.25 and results[0]["input_tokens"] == 120
    assert out.sink.of("claude_tool_invoked")
    bad = await run_workflow(
        write_workflow(tmp_path, "- claude: /broken\n", "b.yml"), repo, env=env
    )
    assert bad.status == "failed"
    assert "Not logged in" in bad.record.error


async def test_write_file_formats_and_escape_refused(tmp_path: Path, repo: Path):
    wf = write_workflow(
        tmp_path,
        """
env:
  UP: ".."
commands:
- write_file:
    path: "out/data.json"
    content: '{"a": [1, 2]}'
    format: json
    create_dirs: true
    mode: "0600"
- write_file:  # a path its file shows outside is refused at load (test_workflow_load.py)
    path: "${UP}/escape.txt"
    content: "no"
""",
    )
    out = await run_workflow(wf, repo)
    assert out.status == "failed"
    assert "escapes the worktree" in out.record.error
    written = Path(out.record.worktree) / "out" / "data.json"
    assert json.loads(written.read_text()) == {"a": [1, 2]}
    assert written.stat().st_mode & 0o777 == 0o600
    assert not (tmp_path / "escape.txt").exists()


async def test_ask_policy_waits_then_merge_refuses_overlapping_dirty_files(
    tmp_path: Path, repo: Path
):
    wf = write_workflow(tmp_path, "- shell: 'echo new > README.md'\n")
    out = await run_workflow(wf, repo, merge="ask")
    assert out.status == "awaiting_merge"
    (repo / "README.md").write_text("my unsaved work\n")
    try:
        await out.session.merge()
    except Exception as exc:  # MergeRefused
        assert "README.md" in str(exc)
    else:
        raise AssertionError("merge should have been refused")
    assert (repo / "README.md").read_text() == "my unsaved work\n"
    assert session_store.load(out.record.id).status.value == "awaiting_merge"
    git(repo, "checkout", "--", "README.md")
    await out.session.merge()
    assert (repo / "README.md").read_text() == "new\n"
    assert session_store.load(out.record.id).status.value == "completed"


async def test_custom_merge_workflow_sees_merge_variables(tmp_path: Path, repo: Path):
    wf = write_workflow(
        tmp_path,
        f"""
commands:
  - shell: "echo x > x.txt && git add x.txt && git commit -qm x"
merge:
  - shell: "echo ${{merge.source_branch}} ${{merge.target_branch}} ${{merge.commit_count}} > {tmp_path}/merge.txt"
""",
    )
    out = await run_workflow(wf, repo)
    assert out.status == "completed", out.record.error
    assert (tmp_path / "merge.txt").read_text() == f"prodigy-{out.record.id} main 1\n"
    assert "x.txt" in branch_files(repo)


async def test_cleanup_on_complete_false_keeps_the_worktree_and_branch(tmp_path: Path, repo: Path):
    from prodigyd.pool import PoolSettings
    from prodigyd.store import worktrees as worktree_rows

    wf = write_workflow(tmp_path, "- shell: 'echo kept > kept.txt'\n")
    out = await run_workflow(wf, repo, pool=PoolSettings(cleanup_on_complete=False))
    assert out.status == "completed", out.record.error
    assert git(repo, "show", "main:kept.txt") == "kept\n"
    assert worktree_rows.get(out.record.worktree).state == "kept"
    assert git(Path(out.record.worktree), "branch", "--show-current").strip() == out.record.branch


async def test_a_named_worktree_keeps_its_files_between_runs(tmp_path: Path, repo: Path):
    from prodigyd.store import worktrees as worktree_rows

    wf = write_workflow(
        tmp_path,
        """
worktree: experiment-a
commands:
  - shell: "echo run >> notes.log; git add notes.log; git commit -qm note; echo scratch >> scratch.tmp"
""",
    )
    first = await run_workflow(wf, repo)
    second = await run_workflow(wf, repo)
    assert first.status == second.status == "completed", (first.record.error, second.record.error)
    assert first.record.worktree == second.record.worktree
    assert Path(first.record.worktree).name == "experiment-a"
    assert (Path(second.record.worktree) / "scratch.tmp").read_text() == "scratch\nscratch\n"
    assert git(repo, "show", "main:notes.log") == "run\nrun\n"
    assert worktree_rows.get(second.record.worktree).state == "kept"
    assert not second.sink.of("cleanup_failed")
    assert f"prodigy-{second.record.id}" not in git(repo, "branch", "--list")


async def _statuses_of_a_run(
    wf: Path, repo: Path, monkeypatch: pytest.MonkeyPatch
) -> tuple[Outcome, list[list[str]]]:
    """Run `wf`, recording the `git status` processes its session starts (libgit2 not
    loaded: every status is one)."""
    from prodigyd.git import cli, objects

    monkeypatch.setattr(objects, "loaded", lambda: False)
    statuses: list[list[str]] = []
    real = cli.run

    async def recorded(argv: list[str], **kwargs: object) -> object:
        if "status" in argv:
            statuses.append(argv)
        return await real(argv, **kwargs)

    monkeypatch.setattr(cli, "run", recorded)
    out = await run_workflow(wf, repo)
    return out, statuses


async def test_a_session_that_changed_nothing_reads_its_worktree_once_at_its_end(
    tmp_path: Path, repo: Path, monkeypatch: pytest.MonkeyPatch
):
    """Its merge finds nothing to commit or merge; its release trusts that reading, as
    nothing ran in the worktree since: one status, not two, and the slot parked clean."""
    wf = write_workflow(tmp_path, "- shell: 'test -f README.md'\n")
    out, statuses = await _statuses_of_a_run(wf, repo, monkeypatch)
    assert out.status == "completed", out.record.error
    assert len(statuses) == 1, statuses
    slot = Path(out.record.worktree)
    assert git(slot, "rev-parse", "--abbrev-ref", "HEAD").strip() == "HEAD"  # parked, detached
    assert git(slot, "status", "--porcelain", "--ignored") == ""


async def test_a_merge_workflow_run_since_makes_the_release_read_the_worktree_again(
    tmp_path: Path, repo: Path, monkeypatch: pytest.MonkeyPatch
):
    wf = write_workflow(
        tmp_path, "commands:\n  - shell: 'true'\nmerge:\n  - shell: 'echo stray > stray.txt'\n"
    )
    out, statuses = await _statuses_of_a_run(wf, repo, monkeypatch)
    assert out.status == "completed", out.record.error
    assert len(statuses) == 2, statuses
    slot = Path(out.record.worktree)
    assert not (slot / "stray.txt").exists()  # seen, and scrubbed
    assert git(slot, "status", "--porcelain", "--ignored") == ""
