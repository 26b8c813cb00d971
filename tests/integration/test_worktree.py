"""`prodigyctl worktree ls|clean|gc` and the pool as a user of the daemon meets it."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from tests.cli import ctl, json_lines, wait_for
from tests.daemonkit import Daemon
from tests.gitutil import git, use_own_config


def _worktree_rows() -> list[dict[str, Any]]:
    return json.loads(ctl("worktree", "ls", "--json", check=True).stdout)


def _spares_made() -> list[dict[str, Any]]:
    """The worktree rows once no spare is being made any more (that is in the background)."""
    wait_for(
        lambda: all(row["owner"] != "spare" for row in _worktree_rows()), what="the spare made"
    )
    return _worktree_rows()


def _started(events: list[dict[str, Any]]) -> dict[str, Any]:
    return next(e for e in events if e["event_type"] == "session_started")


def _folders(home: Path) -> list[str]:
    return sorted(str(path) for path in (home / "worktrees").glob("*/*"))


def _git_worktrees(repo: Path) -> list[str]:
    listed = git(repo, "worktree", "list", "--porcelain").splitlines()
    return sorted(line.removeprefix("worktree ") for line in listed if line.startswith("worktree "))


def _hold_spares(repo: Path, folder: Path) -> tuple[Path, Path]:
    """A post-checkout hook that holds the first detached checkout, a spare's `git worktree
    add` (a session's worktree is on its branch), until `release` exists; `entered` marks
    that it does. Returns (entered, release)."""
    entered, release = folder / "entered", folder / "release"
    hook = repo / ".git" / "hooks" / "post-checkout"
    hook.parent.mkdir(exist_ok=True)
    hook.write_text(
        "#!/bin/sh\n"
        "git symbolic-ref -q HEAD >/dev/null && exit 0\n"
        f"mv {folder}/gate {folder}/gate.taken 2>/dev/null || exit 0\n"
        f": > {entered}\n"
        f"while [ ! -e {release} ]; do sleep 0.01; done\n"
    )
    hook.chmod(0o755)
    (folder / "gate").touch()
    return entered, release


def test_sessions_reuse_a_pooled_worktree_and_ls_shows_it(daemon: Path, repo: Path, tmp_path: Path):
    wf = tmp_path / "wf.yml"
    wf.write_text("- shell: 'echo hi > out-$ARG.txt'\n")
    first = json_lines(
        ctl("run", str(wf), "-y", "--json", "--args", "1", cwd=repo, check=True).stdout
    )
    second = json_lines(
        ctl("run", str(wf), "-y", "--json", "--args", "2", cwd=repo, check=True).stdout
    )
    start1, start2 = _started(first), _started(second)
    assert start1["worktree_reused"] is False and start2["worktree_reused"] is True
    assert start1["worktree"] == start2["worktree"]  # a used slot before the spare
    assert git(repo, "show", "main:out-2.txt") == "hi\n"  # the reused slot ran the new commit
    rows = [(r["state"], r["uses"], r["path"]) for r in _spares_made()]
    spare = next(path for _, _, path in rows if path != start1["worktree"])
    assert rows == [("idle", 2, start1["worktree"]), ("idle", 0, spare)]  # made after the first
    table = ctl("worktree", "ls", check=True).stdout
    assert "idle" in table and start1["worktree"] in table


@pytest.fixture
def own_config(monkeypatch: pytest.MonkeyPatch) -> None:
    use_own_config(monkeypatch)  # before `daemon`: it inherits the environment


def test_a_run_that_changed_nothing_ends_as_cleanly_as_one_that_did(
    own_config: None, daemon: Path, repo: Path, tmp_path: Path
):
    """The end of a session that changed nothing is done without git where it can be
    (an in-process status, HEAD detached and the branch deleted by hand: git/worktree.py);
    git must then see what it would after its own commands, and the next runs, one that
    does change files included, work on the same slot."""
    check = tmp_path / "check.yml"
    check.write_text("- shell: 'test -f README.md'\n")
    tip = git(repo, "rev-parse", "HEAD").strip()
    first = json_lines(ctl("run", str(check), "-y", "--json", cwd=repo, check=True).stdout)
    slot = _started(first)["worktree"]
    assert first[-1]["status"] == "completed" and first[-1]["merged"] is False
    assert git(repo, "rev-parse", "HEAD").strip() == tip  # nothing was committed or merged
    assert git(repo, "branch", "--list", "prodigy-*") == ""  # its branch is gone, reflog too
    assert not list((repo / ".git" / "logs" / "refs" / "heads").glob("prodigy-*"))
    listed = git(repo, "worktree", "list", "--porcelain").split("\n\n")
    assert f"worktree {slot}\nHEAD {tip}\ndetached" in listed  # parked at main, detached
    assert git(Path(slot), "status", "--porcelain", "--ignored") == ""
    write = tmp_path / "write.yml"
    write.write_text("- shell: 'echo new > new.txt'\n")  # left uncommitted: auto-committed
    second = json_lines(ctl("run", str(write), "-y", "--json", cwd=repo, check=True).stdout)
    assert _started(second)["worktree"] == slot and second[-1]["merged"] is True
    assert git(repo, "show", "main:new.txt") == "new\n"
    git(repo, "fsck", "--no-progress")


def test_a_run_left_to_merge_that_changed_nothing_ends_completed(
    daemon: Path, repo: Path, tmp_path: Path
):
    """Without -y (and a trigger's default, merge: ask), a run that changed nothing has
    nothing to merge: it completes and gives its worktree and branch back, where it
    waited for a `prodigyctl merge` holding both. One that changed something waits."""
    check = tmp_path / "check.yml"
    check.write_text("- shell: 'test -f README.md'\n")
    events = json_lines(ctl("run", str(check), "--json", cwd=repo, check=True).stdout)
    assert (events[-1]["status"], events[-1]["message"]) == (
        "completed",
        "it changed nothing: nothing to merge",
    )
    assert git(repo, "branch", "--list", "prodigy-*") == ""
    assert [row["state"] for row in _worktree_rows()].count("busy") == 0
    write = tmp_path / "write.yml"
    write.write_text("- shell: 'echo new > new.txt'\n")
    events = json_lines(ctl("run", str(write), "--json", cwd=repo, check=True).stdout)
    assert events[-1]["status"] == "awaiting_merge"
    left = tmp_path / "left.yml"  # committed, then left its branch: HEAD is back at the base
    left.write_text(
        "- shell: 'echo a > a.txt && git add a.txt && git commit -qm a && "
        "git checkout -q --detach HEAD~1'\n"
    )
    events = json_lines(ctl("run", str(left), "--json", cwd=repo, check=True).stdout)
    assert events[-1]["status"] == "awaiting_merge"
    merging = tmp_path / "merging.yml"  # its merge: steps are still to run at its merge
    merging.write_text("commands:\n  - shell: 'true'\nmerge:\n  - shell: 'true'\n")
    events = json_lines(ctl("run", str(merging), "--json", cwd=repo, check=True).stdout)
    assert events[-1]["status"] == "awaiting_merge"


def test_worktree_ls_json_gives_timestamps_as_every_other(daemon: Path, repo: Path, tmp_path: Path):
    wf = tmp_path / "wf.yml"
    wf.write_text("- shell: 'true'\n")
    ctl("run", str(wf), "-y", cwd=repo, check=True)
    for row in _worktree_rows():
        for field in ("created_at", "last_used_at"):
            assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", row[field]), row
    assert "IDLE FOR" in ctl("worktree", "ls", check=True).stdout


def test_gc_dry_run_reports_and_clean_removes(daemon: Path, repo: Path, tmp_path: Path):
    wf = tmp_path / "wf.yml"
    wf.write_text("- shell: 'true'\n")
    ctl("run", str(wf), "-y", cwd=repo, check=True)
    _spares_made()
    git(repo, "branch", "prodigy-workflow-1-abcdef")  # a stale branch of a session long gone
    dry = json.loads(ctl("worktree", "gc", "--dry-run", "--json", check=True).stdout)
    assert dry["dry_run"] is True and dry["branches_deleted"] == [
        f"{repo}:prodigy-workflow-1-abcdef"
    ]
    assert "prodigy-workflow-1-abcdef" in git(repo, "branch")
    done = ctl("worktree", "gc", check=True)
    assert "delete branch" in done.stdout and "prodigy-workflow-1-abcdef" not in git(repo, "branch")
    cleaned = ctl("worktree", "clean", check=True)
    assert cleaned.stdout.startswith("removed ")
    assert json.loads(ctl("worktree", "ls", "--json", check=True).stdout) == []
    missing = ctl("worktree", "clean", "no-such-worktree")
    assert missing.returncode == 3 and "no worktree 'no-such-worktree'" in missing.stderr


def test_cleaning_a_failed_sessions_worktree_says_what_frees_it(
    daemon: Path, repo: Path, tmp_path: Path
):
    wf = tmp_path / "wf.yml"
    wf.write_text("- shell: 'echo half > half.txt && exit 3'\n")
    assert ctl("run", str(wf), "-y", cwd=repo).returncode == 1
    session = json.loads(ctl("sessions", "ls", "--json", check=True).stdout)[0]
    kept = json.loads(ctl("sessions", "show", session["id"], "--json", check=True).stdout)
    refused = ctl("worktree", "clean", kept["worktree"])
    assert refused.returncode == 4
    assert f"is in use by {session['id']}" in refused.stderr
    assert f"`prodigyctl cancel {session['id']}`, which gives the worktree back" in refused.stderr
    assert "wait for it to finish" not in refused.stderr  # it has finished: it failed
    ctl("cancel", session["id"], check=True)  # as the hint says: the worktree is given back
    [row] = [r for r in _worktree_rows() if r["path"] == kept["worktree"]]
    assert (row["state"], row["owner"]) == ("idle", None)
    branch = kept["branch"]  # what the failed step left is kept, committed on its branch
    assert git(repo, "show", f"{branch}:half.txt") == "half\n"
    assert "uncommitted changes left by" in git(repo, "log", "-1", "--format=%s", branch)


def test_cancelling_a_running_session_gives_its_worktree_back(
    daemon: Path, repo: Path, tmp_path: Path
):
    gate = tmp_path / "started"
    wf = tmp_path / "wf.yml"
    wf.write_text(f"- shell: 'touch {gate} && sleep 60'\n")
    session_id = ctl("run", str(wf), "--detach", "-y", cwd=repo, check=True).stdout.strip()
    wait_for(gate.exists, what="the step to start")
    worktree = json.loads(ctl("sessions", "show", session_id, "--json", check=True).stdout)[
        "worktree"
    ]
    ctl("cancel", session_id, check=True)
    [row] = [r for r in _worktree_rows() if r["path"] == worktree]
    assert (row["state"], row["owner"]) == ("idle", None)
    assert ctl("worktree", "clean", worktree, check=True).stdout.startswith("removed ")


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


def test_a_run_that_keeps_its_worktree_leaves_a_spare_for_the_next(
    daemon: Path, repo: Path, tmp_path: Path
):
    wf = tmp_path / "wf.yml"
    wf.write_text("- shell: 'echo $ARG > out.txt'\n")
    first = _started(
        json_lines(ctl("run", str(wf), "--json", "--args", "1", cwd=repo, check=True).stdout)
    )
    rows = _spares_made()  # the first run awaits its merge, holding its worktree
    assert [(r["state"], r["owner"]) for r in rows if r["path"] == first["worktree"]] == [
        ("busy", first["session_id"])
    ]
    [spare] = [r for r in rows if r["state"] == "idle"]
    assert spare["uses"] == 0 and spare["owner"] is None
    second = _started(
        json_lines(ctl("run", str(wf), "--json", "--args", "2", cwd=repo, check=True).stdout)
    )
    assert second["worktree_reused"] is True and second["worktree"] == spare["path"]
    rows = _spares_made()  # the second took the last idle one: another spare
    assert sorted((r["state"], r["uses"]) for r in rows) == [("busy", 1), ("busy", 1), ("idle", 0)]
    assert _folders(daemon) == sorted(r["path"] for r in rows)
    assert _git_worktrees(repo) == sorted([str(repo), *(r["path"] for r in rows)])


def test_spare_0_makes_none(isolated: Path, repo: Path, tmp_path: Path):
    ctl("config", "set", "worktree_config.spare", "0", check=True)
    ctl("daemon", "start", check=True)
    try:
        wf = tmp_path / "wf.yml"
        wf.write_text("- shell: 'echo x > x.txt'\n")  # awaits its merge, in its worktree
        first = _started(json_lines(ctl("run", str(wf), "--json", cwd=repo, check=True).stdout))
        assert [r["path"] for r in _spares_made()] == [first["worktree"]]
        second = _started(json_lines(ctl("run", str(wf), "--json", cwd=repo, check=True).stdout))
        assert second["worktree_reused"] is False
        assert [r["owner"] for r in _worktree_rows()] == [first["session_id"], second["session_id"]]
    finally:
        ctl("daemon", "stop", check=True)
    assert _folders(isolated) == sorted([first["worktree"], second["worktree"]])


def test_a_daemon_stop_leaves_no_spare_half_made(isolated: Path, repo: Path, tmp_path: Path):
    entered, _ = _hold_spares(repo, tmp_path)
    wf = tmp_path / "wf.yml"  # its result awaits a merge, in its worktree
    wf.write_text(f"- shell: 'until [ -e {entered} ]; do sleep 0.01; done; echo x > x.txt'\n")
    ctl("daemon", "start", check=True)
    try:
        started = _started(json_lines(ctl("run", str(wf), "--json", cwd=repo).stdout))
        assert [r["owner"] for r in _worktree_rows()] == [started["session_id"], "spare"]
    finally:
        ctl("daemon", "stop", check=True)  # while the spare's `git worktree add` is held
    assert _folders(isolated) == [started["worktree"]]
    assert _git_worktrees(repo) == sorted([str(repo), started["worktree"]])


def test_a_spare_a_crash_cut_off_is_collected_by_the_next_daemon(
    isolated: Path, repo: Path, tmp_path: Path
):
    entered, release = _hold_spares(repo, tmp_path)
    wf = tmp_path / "wf.yml"
    wf.write_text(f"- shell: 'until [ -e {entered} ]; do sleep 0.01; done'\n")
    daemon = Daemon(isolated)
    daemon.start()
    try:
        started = _started(json_lines(ctl("run", str(wf), "--json", cwd=repo).stdout))
        [spare] = [r["path"] for r in _worktree_rows() if r["owner"] == "spare"]
        daemon.kill()  # kill -9 while the spare is being made
        release.touch()  # its git, in a process group of its own, outlives the daemon
        daemon.start()  # whose collector finds a busy row no session owns
        wait_for(
            lambda: any(r["path"] == spare and r["state"] == "idle" for r in _worktree_rows()),
            what="the spare reclaimed",
        )
        rows = _worktree_rows()
    finally:
        ctl("daemon", "stop", check=True)
    assert sorted(r["path"] for r in rows) == sorted([started["worktree"], spare])
    assert git(Path(spare), "status", "--porcelain", "--ignored") == ""
    assert _folders(isolated) == sorted([started["worktree"], spare])
    assert _git_worktrees(repo) == sorted([str(repo), started["worktree"], spare])


def test_a_run_with_nothing_to_merge_cut_off_after_its_clean_up_completes_on_resume(
    isolated: Path, repo: Path, tmp_path: Path
):
    import sqlite3

    wf = tmp_path / "wf.yml"
    wf.write_text("- shell: 'true'\n")
    ctl("daemon", "start", check=True)
    try:
        done = json_lines(ctl("run", str(wf), "--json", cwd=repo, check=True).stdout)
        session_id = done[-1]["session_id"]
    finally:
        ctl("daemon", "stop", check=True)
    with sqlite3.connect(isolated / "journal.db") as db:  # as a kill -9 after the clean-up
        db.execute(
            "UPDATE jobs SET status = 'running', record = json_set(record, '$.status', "
            "'running', '$.completed_at', NULL) WHERE id = ?",
            (session_id,),
        )
    db.close()
    ctl("daemon", "start", check=True)
    try:
        wait_for(
            lambda: (
                json.loads(ctl("sessions", "show", session_id, "--json").stdout)["status"]
                not in ("queued", "running", "interrupted")
            ),
            what="the resumed session ended",
        )
        shown = json.loads(ctl("sessions", "show", session_id, "--json").stdout)
    finally:
        ctl("daemon", "stop", check=True)
    assert shown["status"] == "completed"  # not awaiting a merge of a branch that is gone


def test_a_run_cut_off_after_giving_its_worktree_back_runs_nothing_there_again(
    isolated: Path, repo: Path, tmp_path: Path
):
    """A stop between a session's clean-up (the slot back in the pool, free for another
    session) and its last record: the resume only finishes the record. It used to run the
    env's commands in that slot again, in whatever job's files the slot held by then."""
    import sqlite3

    counted = tmp_path / "env-commands"
    wf = tmp_path / "wf.yml"
    wf.write_text(
        "env:\n"
        f"  WHERE: {{command: 'pwd >> {counted}'}}\n"
        "commands:\n"
        "  - shell: 'echo done > out.txt'\n"
    )
    ctl("daemon", "start", check=True)
    try:
        done = json_lines(ctl("run", str(wf), "-y", "--json", cwd=repo, check=True).stdout)
        session_id = done[-1]["session_id"]
        runs_before = counted.read_text().splitlines()
    finally:
        ctl("daemon", "stop", check=True)
    # the journal as a kill -9 right after the clean-up leaves it: still `running`
    with sqlite3.connect(isolated / "journal.db") as db:
        db.execute(
            "UPDATE jobs SET status = 'running', record = json_set(record, '$.status', "
            "'running', '$.completed_at', NULL) WHERE id = ?",
            (session_id,),
        )
    db.close()
    ctl("daemon", "start", check=True)  # `interrupted`, and resumed (auto_resume)
    try:
        wait_for(
            lambda: (
                json.loads(ctl("sessions", "show", session_id, "--json").stdout)["status"]
                == "completed"
            ),
            what="the resumed session completed",
        )
        shown = json.loads(ctl("sessions", "show", session_id, "--json").stdout)
    finally:
        ctl("daemon", "stop", check=True)
    assert runs_before and counted.read_text().splitlines() == runs_before
    assert shown["merged"] is True and shown["error"] is None
    assert git(repo, "show", "HEAD:out.txt") == "done\n"
