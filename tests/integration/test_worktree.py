"""`prodigyctl worktree ls|clean|gc` and the pool as a user of the daemon meets it."""

from __future__ import annotations

import json
from pathlib import Path

from tests.cli import ctl, json_lines
from tests.gitutil import git


def test_sessions_reuse_a_pooled_worktree_and_ls_shows_it(daemon: Path, repo: Path, tmp_path: Path):
    wf = tmp_path / "wf.yml"
    wf.write_text("- shell: 'echo hi > out-$ARG.txt'\n")
    first = json_lines(ctl("run", str(wf), "-y", "--json", "--args", "1", cwd=repo, check=True).stdout)
    second = json_lines(ctl("run", str(wf), "-y", "--json", "--args", "2", cwd=repo, check=True).stdout)
    start1, start2 = (next(e for e in events if e["event_type"] == "session_started")
                      for events in (first, second))
    assert start1["worktree_reused"] is False and start2["worktree_reused"] is True
    assert start1["worktree"] == start2["worktree"]
    assert git(repo, "show", "main:out-2.txt") == "hi\n"  # the reused slot ran the new commit
    rows = json.loads(ctl("worktree", "ls", "--json", check=True).stdout)
    assert [(r["state"], r["uses"], r["path"]) for r in rows] == [("idle", 2, start1["worktree"])]
    table = ctl("worktree", "ls", check=True).stdout
    assert "idle" in table and start1["worktree"] in table


def test_gc_dry_run_reports_and_clean_removes(daemon: Path, repo: Path, tmp_path: Path):
    wf = tmp_path / "wf.yml"
    wf.write_text("- shell: 'true'\n")
    ctl("run", str(wf), "-y", cwd=repo, check=True)
    git(repo, "branch", "prodigy-workflow-1-abcdef")  # a stale branch of a session long gone
    dry = json.loads(ctl("worktree", "gc", "--dry-run", "--json", check=True).stdout)
    assert dry["dry_run"] is True and dry["branches_deleted"] == [f"{repo}:prodigy-workflow-1-abcdef"]
    assert "prodigy-workflow-1-abcdef" in git(repo, "branch")
    done = ctl("worktree", "gc", check=True)
    assert "delete branch" in done.stdout and "prodigy-workflow-1-abcdef" not in git(repo, "branch")
    cleaned = ctl("worktree", "clean", check=True)
    assert cleaned.stdout.startswith("removed ")
    assert json.loads(ctl("worktree", "ls", "--json", check=True).stdout) == []
    missing = ctl("worktree", "clean", "no-such-worktree")
    assert missing.returncode == 3 and "no worktree 'no-such-worktree'" in missing.stderr


def test_worktree_config_reaches_the_daemon(isolated: Path, repo: Path, tmp_path: Path):
    import os

    env = {**os.environ, "PRODIGY_WORKTREE_CONFIG__ALLOCATION_STRATEGY": "on_demand"}
    ctl("daemon", "start", env=env, check=True)
    try:
        wf = tmp_path / "wf.yml"
        wf.write_text("- shell: 'echo x > x.txt'\n")
        events = json_lines(ctl("run", str(wf), "-y", "--json", cwd=repo, check=True).stdout)
        started = next(e for e in events if e["event_type"] == "session_started")
        assert Path(started["worktree"]).name == started["session_id"]  # on demand: named for it
        assert json.loads(ctl("worktree", "ls", "--json", check=True).stdout) == []  # removed
        assert not Path(started["worktree"]).exists()
    finally:
        ctl("daemon", "stop", check=True)
