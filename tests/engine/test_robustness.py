"""Engine defects found by crash and load testing: each test fails on the code before its fix."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from prodigyd import paths
from prodigyd.engine.session import Session
from prodigyd.store import checkpoints
from prodigyd.store.sessions import Status
from tests.enginekit import ListSink, resume, run_workflow, write_workflow
from tests.gitutil import git


@dataclass
class JournalWatcher(ListSink):
    """At each top-level `step_completed`, notes which steps the journal on disk records."""

    on_disk: list[tuple[int, list[int]]] = field(default_factory=list)

    def emit(self, event_type: str, /, **fields: Any) -> None:
        super().emit(event_type, **fields)
        if event_type == "step_completed" and "index" in fields:
            done = []
            for journal in paths.home().glob("state/*/checkpoints/*.journal.jsonl"):
                saved = checkpoints.load(journal.parent.parent.name) or {}
                done += [entry["step_index"] for entry in saved.get("completed_steps") or []]
            self.on_disk.append((fields["index"], done))


async def test_step_completed_is_emitted_only_once_its_checkpoint_is_on_disk(
    tmp_path: Path, repo: Path
):
    wf = write_workflow(tmp_path, "- shell: 'true'\n- shell: 'true'\n- shell: 'true'\n")
    watcher = JournalWatcher()
    out = await run_workflow(wf, repo, merge="never", sink=watcher)
    assert out.status == "completed", out.record.error  # it changed nothing to merge
    assert watcher.on_disk == [(1, [0]), (2, [0, 1]), (3, [0, 1, 2])]


def wait_for(path: Path) -> str:
    """Shell that waits (at most 30 s, so a broken run ends) until `path` exists."""
    return f"i=0; while [ ! -e {path} ] && [ $i -lt 300 ]; do sleep 0.1; i=$((i+1)); done"


async def test_parallel_foreach_items_that_commit_pass_commit_required(tmp_path: Path, repo: Path):
    # a commits, then waits until c has started a step; only then is a's commit checked.
    # b commits after a (one git index). c's first step, which needs no commit, starts
    # while a is still running: a shared "HEAD before the step" made a's check fail.
    sig = tmp_path / "signals"
    sig.mkdir()
    commit = 'echo ${item} > ${item}.txt && git add ${item}.txt && git commit -qm "${item}"'
    wf = write_workflow(
        tmp_path,
        f"""
- foreach:
    foreach: ["a", "b", "c"]
    parallel: 2
    do:
      - shell: "touch {sig}/${{item}}.started"
      - shell: >-
          if [ ${{item}} = b ]; then {wait_for(sig / "a.committed")}; fi;
          {commit} && touch {sig}/${{item}}.committed;
          if [ ${{item}} = a ]; then {wait_for(sig / "c.started")}; fi
        commit_required: true
        when: "${{item}} != 'c'"
""",
    )
    out = await run_workflow(wf, repo)
    assert out.status == "completed", out.record.error
    assert {"a.txt", "b.txt"} <= set(git(repo, "ls-tree", "--name-only", "main").split())


async def test_write_file_into_git_is_refused_naming_the_step(tmp_path: Path, repo: Path):
    """With a variable, as written in the file (validate refuses the literal paths:
    test_workflow_load.py), the path is checked as it is written."""
    for target in (".git", ".GIT", "sub/.git/config", "./.git"):
        wf = write_workflow(
            tmp_path,
            f"""
env:
  TARGET: "{target}"
commands:
- write_file:
    path: "${{TARGET}}"
    content: "gitdir: /nowhere"
    create_dirs: true
""",
            name="w.yml",
        )
        out = await run_workflow(wf, repo)
        assert out.status == "failed", target
        error = out.record.error
        assert error.startswith(f"Step 'write_file: {target}'") and "inside .git" in error, error
        gitdir = Path(out.record.worktree) / ".git"
        assert "nowhere" not in gitdir.read_text()  # the worktree still knows its repository
        assert not (Path(out.record.worktree) / "sub").exists()


@dataclass
class StopOnRetry(ListSink):
    """Asks the session to stop (as `daemon stop` does) once a step waits to retry."""

    session: Session | None = None

    def emit(self, event_type: str, /, **fields: Any) -> None:
        super().emit(event_type, **fields)
        if event_type == "step_retrying" and self.session is not None:
            self.session.stop_after_step(Status.INTERRUPTED, resume_on_start=True)


async def test_a_stop_ends_a_retry_backoff_and_the_session_resumes(tmp_path: Path, repo: Path):
    ready = tmp_path / "ready"
    wf = write_workflow(
        tmp_path,
        f"""
- shell: "echo one >> {tmp_path}/runs"
- shell: "echo two >> {tmp_path}/runs; test -e {ready}"
  retry: {{attempts: 3, backoff: fixed, initial_delay: 3600, max_delay: 3600}}
- shell: "echo three >> {tmp_path}/runs"
""",
    )
    sink = StopOnRetry()

    def created(session: Session) -> None:
        sink.session = session

    # the guard ends a hung run (the bug: an hour's backoff); it is not what is checked
    out = await asyncio.wait_for(run_workflow(wf, repo, sink=sink, created=created), 120)
    assert out.status == "interrupted", out.record.error
    assert "prodigyctl resume" in out.record.error
    assert [e["step"] for e in sink.of("step_stopped")] == ["2"]
    assert not sink.of("step_failed")
    ready.touch()
    again = await resume(out.record.id)
    assert again.status == "completed", again.record.error
    assert (tmp_path / "runs").read_text().split() == ["one", "two", "two", "three"]


def gone(pid: int) -> bool:
    """Whether `pid` has exited (a zombie not reaped yet counts as exited)."""
    stat = Path(f"/proc/{pid}/stat")
    return not stat.exists() or stat.read_text().rsplit(")", 1)[-1].split()[0] == "Z"


async def test_on_failure_timeout_kills_the_handlers_and_counts_as_failed(
    tmp_path: Path, repo: Path
):
    pidfile = tmp_path / "handler.pid"
    wf = write_workflow(
        tmp_path,
        f"""
- shell: "exit 1"
  on_failure:
    commands:
      - shell: "sleep 60 & echo $! > {pidfile}; wait"
    timeout: 1
    handler_failure_fatal: true
""",
    )
    out = await asyncio.wait_for(run_workflow(wf, repo), 50)  # a hang guard, not a check
    assert out.status == "failed"
    assert "on_failure handlers timed out after 1s" in out.record.error, out.record.error
    assert gone(int(pidfile.read_text()))
    (handler_end,) = [e for e in out.sink.of("step_failed") if e["step"] == "1.on_failure.1"]
    assert "timed out after 1s" in handler_end["error"]
