"""prodigyd.workflow.generate: the workflows behind `exec`, `batch` and `goal-seek`, loaded by the real
loader and (for batch's file list) run by the real shell."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from prodigyd.workflow.generate import (
    batch_workflow,
    exec_workflow,
    find_command,
    goal_seek_workflow,
    matching_files,
)
from prodigyd.workflow.load import load_workflow


def load(tmp_path: Path, text: str):
    path = tmp_path / "generated.yml"
    path.write_text(text)
    return load_workflow(path, strict=True).workflow


def test_exec_makes_one_shell_or_claude_step_with_retry_and_timeout(tmp_path: Path):
    shell = load(tmp_path, exec_workflow("make test", retry=3, timeout=90)).steps[0]
    assert (shell.kind, shell.command, shell.timeout) == ("shell", "make test", 90)
    assert shell.retry is not None and shell.retry.attempts == 3
    claude = load(tmp_path, exec_workflow("  /prodigy-lint  ")).steps[0]
    assert (claude.kind, claude.command, claude.retry, claude.timeout) == (
        "claude",
        "/prodigy-lint",
        None,
        None,
    )


def test_batch_is_a_mapreduce_over_found_files(tmp_path: Path):
    workflow = load(tmp_path, batch_workflow("*.py", "black ${item}", parallel=0, timeout=30))
    assert workflow.mode == "mapreduce" and workflow.map is not None
    assert workflow.map.max_parallel == 5  # 0 means the default, as in the original
    assert workflow.map.agent_timeout_secs == 30
    assert [s.command for s in workflow.map.agent_template] == ["black ${item}"]
    assert workflow.reduce[0].command == (
        "echo 'Batch processing complete. Processed ${map.successful} items.'"
    )


def test_goal_seek_is_one_goal_seek_step(tmp_path: Path):
    text = goal_seek_workflow(
        "tests pass",
        command="/fix-tests",
        validate="./score.sh",
        threshold=90,
        max_attempts=5,
        timeout=600,
        fail_on_incomplete=False,
    )
    (step,) = load(tmp_path, text).steps
    spec = step.goal_seek
    assert spec is not None and spec.goal == "tests pass"
    assert (spec.attempt.kind, spec.attempt.command) == ("claude", "/fix-tests")
    assert (spec.scorer.kind, spec.scorer.command) == ("quality", "./score.sh")
    assert (spec.threshold, spec.max_attempts, spec.timeout_seconds) == (90, 5, 600)
    assert spec.fail_on_incomplete is False
    shell = load(
        tmp_path,
        goal_seek_workflow("g", command="make", validate="x", threshold=50.5, max_attempts=1),
    )
    assert shell.steps[0].goal_seek is not None
    assert shell.steps[0].goal_seek.attempt.kind == "shell"
    assert shell.steps[0].goal_seek.threshold == 50.5


def found(root: Path, pattern: str) -> list[str]:
    done = subprocess.run(
        ["sh", "-c", find_command(pattern)], cwd=root, capture_output=True, text=True, check=True
    )
    return done.stdout.splitlines()


def test_the_file_list_is_relative_sorted_and_never_inside_git(tmp_path: Path):
    for name in ("b.py", "a.py", "src/c d.py", "src/x.txt", ".git/hooks/h.py", "it's.py"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("")
    assert found(tmp_path, "*.py") == ["a.py", "b.py", "it's.py", "src/c d.py"]
    assert found(tmp_path, "src/*") == ["src/c d.py", "src/x.txt"]
    assert found(tmp_path, "./src/*.txt") == ["src/x.txt"]
    assert found(tmp_path, "it's.py") == ["it's.py"]


@pytest.mark.parametrize("pattern", ["*.py", "src/*", "./src/*.txt", "it's.py", "*/c*", "[ab].py"])
def test_run_map_matches_a_pattern_as_batch_finds_it(tmp_path: Path, pattern: str):
    """`run --map` (matching_files, over committed paths) and `batch` (find_command, run by
    a shell) give a pattern one meaning."""
    names = ["b.py", "a.py", "src/c d.py", "src/x.txt", "it's.py", "deep/er/a.py"]
    for name in names:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("")
    assert sorted(matching_files(names, (pattern,))) == found(tmp_path, pattern)


GOAL = {"command": "make", "validate": "./score.sh", "threshold": 90, "max_attempts": 5}


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: exec_workflow("   "), "the command is empty"),
        (lambda: exec_workflow("true", retry=0), "--retry must be at least 1"),
        (lambda: exec_workflow("true", timeout=0), "--timeout must be a positive number"),
        (lambda: batch_workflow("", "true"), "the file pattern is empty"),
        (lambda: batch_workflow("*", "true", parallel=-1), "--parallel must be 0"),
        (lambda: goal_seek_workflow(" ", **GOAL), "the goal is empty"),
        (lambda: goal_seek_workflow("g", **{**GOAL, "validate": ""}), "--validate is empty"),
        (lambda: goal_seek_workflow("g", **{**GOAL, "command": ""}), "the command is empty"),
        (lambda: goal_seek_workflow("g", **{**GOAL, "threshold": 101}), "--threshold must be"),
        (lambda: goal_seek_workflow("g", **GOAL, timeout=0), "--timeout must be a positive"),
    ],
)
def test_bad_options_are_refused_with_the_option_named(build, message: str):
    with pytest.raises(ValueError, match=message):
        build()
