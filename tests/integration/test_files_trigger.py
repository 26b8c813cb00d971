"""`on: files`: the real daemon watching a real repository's working tree (no hooks): an edit
fires a run that starts from a snapshot of the uncommitted files, and nothing else does."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

from tests.cli import ctl, wait_for
from tests.gitutil import commit_files, git
from tests.integration.test_triggers import sessions, settled
from tests.integration.test_watch import events, shown

#: Records what the run saw of src/a.txt and of the worktree's state, and commits it.
SEE = """
name: see
on:
  files: {paths: ["src/**"], ignore: ["src/skip/**"], settle: SETTLE}
commands:
  - shell: "cat src/a.txt > seen.txt"
  - shell: "git add seen.txt && git commit -qm seen"
"""

#: A fixer, as a formatter on save: rewrites src/x.txt when it says "todo", commits nothing.
FIX = """
name: fix
on:
  files: {paths: ["src/**"]}
commands:
  - shell: "if grep -q todo src/x.txt; then echo fixed > src/x.txt; fi"
"""


def watched(repo: Path, settle: str = "20ms") -> Path:
    commit_files(
        repo,
        {
            ".prodigy/workflows/see.yml": SEE.replace("SETTLE", settle),
            ".gitignore": "*.log\n",
            "src/a.txt": "old\n",
        },
        "add trigger",
    )
    ctl("watch", "add", str(repo), check=True)
    return repo


def finished(home: Path, count: int) -> bool:
    return len(sessions()) >= count and settled(home)


def coalesced() -> list[dict]:
    return [e for e in events("trigger_dropped") if e.get("why") == "coalesced"]


def test_an_edit_fires_one_run_that_sees_it_and_leaves_the_user_alone(daemon: Path, repo: Path):
    watched(repo)
    (repo / "staged.txt").write_text("staged\n")
    git(repo, "add", "staged.txt")
    (repo / "src" / "new.txt").write_text("untracked\n")
    (repo / "src" / "build.log").write_text("ignored\n")
    (repo / "src" / "a.txt").write_text("new, not committed\n")
    status, cached = git(repo, "status", "--porcelain"), git(repo, "diff", "--cached")
    head = git(repo, "rev-parse", "HEAD")
    wait_for(lambda: finished(daemon, 1), timeout=60, what="the run the edit fired")
    [run] = sessions()
    assert git(repo, "show", f"prodigy-{run['id']}:seen.txt") == "new, not committed\n"
    branch = f"prodigy-{run['id']}"
    assert git(repo, "show", f"{branch}:src/new.txt") == "untracked\n"  # snapshot: untracked too
    ignored = subprocess.run(["git", "cat-file", "-e", f"{branch}:src/build.log"], cwd=repo)
    assert ignored.returncode != 0  # not the ignored ones
    assert shown(run["id"])["triggered_by"].endswith(
        "on main: src/a.txt, src/new.txt (file watcher)"
    )
    assert run["status"] == "completed"  # merge: never: it ends unmerged...
    refused = ctl("merge", run["id"])  # ...and not by hand either: it holds the user's edits
    assert refused.returncode != 0 and "not awaiting_merge" in refused.stderr
    assert git(repo, "status", "--porcelain") == status
    assert git(repo, "diff", "--cached") == cached
    assert git(repo, "rev-parse", "HEAD") == head
    assert (repo / "src" / "a.txt").read_text() == "new, not committed\n"


def test_each_save_completes_with_its_result_on_its_branch_and_frees_its_worktree(
    daemon: Path, repo: Path
):
    commit_files(repo, {".prodigy/workflows/fix.yml": FIX, "src/x.txt": "start\n"}, "add fix")
    ctl("watch", "add", str(repo), check=True)
    for count, text in enumerate(("todo 1\n", "todo 2\n", "clean\n"), 1):
        (repo / "src" / "x.txt").write_text(text)
        wait_for(lambda n=count: finished(daemon, n), timeout=60, what=f"save {count}'s run")
    runs = sorted(sessions(), key=lambda s: s["started_at"])
    assert [r["status"] for r in runs] == ["completed"] * 3
    pool = json.loads(ctl("worktree", "ls", "--json", check=True).stdout)
    assert not {w["owner"] for w in pool if w["state"] != "idle"} & {r["id"] for r in runs}
    *fixed, clean = runs
    for run in fixed:
        branch = f"prodigy-{run['id']}"
        assert git(repo, "show", f"{branch}:src/x.txt") == "fixed\n"  # its leftover, committed
        logged = ctl("logs", run["id"], check=True)
        told = logged.stdout + logged.stderr
        assert "prodigyctl merge" not in told
        assert "completed (not merged: it started from a snapshot" in logged.stdout
        assert f"its result is on branch {branch}" in told
        snapshot = shown(run["id"])["start_commit"][:12]
        assert f"`git diff {snapshot} {branch}`" in told
        assert "+fixed" in git(repo, "diff", snapshot, branch)
    assert f"prodigy-{clean['id']}" not in git(repo, "branch", "--list")  # nothing to keep
    assert "changed nothing" in ctl("logs", clean["id"], check=True).stdout
    collected = json.loads(ctl("worktree", "gc", "--json", check=True).stdout)
    assert collected["reclaimed"] == []  # no run was left holding one
    kept = sorted(f"prodigy-{run['id']}" for run in fixed)
    assert sorted(name.rsplit(":", 1)[1] for name in collected["branches_kept"]) == kept
    assert git(repo, "branch", "--list", "prodigy-*").split() == kept
    assert (repo / "src" / "x.txt").read_text() == "clean\n"  # the user's file, untouched


def test_ignored_git_and_unmatched_changes_fire_nothing(daemon: Path, repo: Path):
    watched(repo)
    (repo / "src" / "build.log").write_text("ignored by .gitignore\n")
    (repo / "src" / "skip").mkdir()
    (repo / "src" / "skip" / "b.txt").write_text("ignored by the trigger\n")
    (repo / "docs.md").write_text("not under src/\n")
    (repo / ".git" / "scratch").write_text("git's own folder\n")
    (repo / "src" / "a.txt").write_text("marker\n")  # fires: the watcher is past the others
    wait_for(lambda: finished(daemon, 1), timeout=60, what="the marker's run")
    [run] = sessions()
    assert shown(run["id"])["triggered_by"].endswith(": src/a.txt (file watcher)")
    assert coalesced() == []


def test_a_burst_of_writes_within_the_settle_fires_once(daemon: Path, repo: Path):
    watched(repo, settle="2s")
    for i in range(10):
        (repo / "src" / "a.txt").write_text(f"write {i}\n")
    wait_for(lambda: finished(daemon, 1), timeout=60, what="the burst's run")
    [run] = sessions()
    assert git(repo, "show", f"prodigy-{run['id']}:seen.txt") == "write 9\n"
    assert coalesced() == []


def test_an_index_lock_defers_the_run_until_it_is_gone(daemon: Path, repo: Path):
    watched(repo)
    lock = repo / ".git" / "index.lock"
    lock.write_text("")
    (repo / "src" / "a.txt").write_text("while git works\n")
    time.sleep(1.0)  # room for a wrong firing; the assertion below does not depend on it
    assert sessions() == []
    (repo / "src" / "a.txt").write_text("final\n")
    lock.unlink()
    wait_for(lambda: finished(daemon, 1), timeout=60, what="the deferred run")
    [run] = sessions()
    assert git(repo, "show", f"prodigy-{run['id']}:seen.txt") == "final\n"


def test_a_detached_head_fires_nothing(daemon: Path, repo: Path):
    watched(repo)
    git(repo, "checkout", "-q", "--detach")
    (repo / "src" / "a.txt").write_text("detached\n")
    time.sleep(1.0)  # room for a wrong firing
    git(repo, "checkout", "-q", "main")
    (repo / "src" / "a.txt").write_text("on main\n")  # fires: the watcher is past the other
    wait_for(lambda: finished(daemon, 1), timeout=60, what="the run on main")
    [run] = sessions()
    assert git(repo, "show", f"prodigy-{run['id']}:seen.txt") == "on main\n"
