"""`on: files`: the real daemon watching a real repository's working tree (no hooks): an edit
fires a run that starts from a snapshot of the uncommitted files, and nothing else does."""

from __future__ import annotations

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
    assert run["status"] == "awaiting_merge"  # merge: never, by default...
    refused = ctl("merge", run["id"])  # ...and not by hand either: it holds the user's edits
    assert refused.returncode != 0 and "snapshot of uncommitted files" in refused.stderr
    assert git(repo, "status", "--porcelain") == status
    assert git(repo, "diff", "--cached") == cached
    assert git(repo, "rev-parse", "HEAD") == head
    assert (repo / "src" / "a.txt").read_text() == "new, not committed\n"


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
