"""prodigyd.git.merge against real repositories: the user's checkout must survive every case."""

from __future__ import annotations

import asyncio
import os
import subprocess
from datetime import datetime
from pathlib import Path

import pytest

from prodigyd.errors import GitError, MergeRefused
from prodigyd.git import add_worktree, cli, commits_ahead, merge_branch, merge_variables, objects
from prodigyd.git.merge import MERGING_VARIABLE, list_files
from tests.gitutil import commit_files, make_repo, no_git_process
from tests.gitutil import git as run_git

SESSION = "prodigy-session-1"


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    files = {"a.txt": "a\n", "b.txt": "b\n", "docs/guide.md": "guide\n"}
    return make_repo(tmp_path / "repo", files).resolve()


@pytest.fixture
async def session(repo: Path, tmp_path: Path) -> Path:
    """A session worktree on SESSION, branched from main, with nothing committed yet."""
    path = tmp_path / "worktrees" / "session-1"
    await add_worktree(repo, path, "HEAD", SESSION)
    return path


def rev(repo: Path, name: str) -> str:
    return run_git(repo, "rev-parse", name).strip()


def status(path: Path) -> str:
    return run_git(path, "status", "--porcelain")


def assert_no_merge_left(repo: Path) -> None:
    assert not (repo / ".git" / "MERGE_HEAD").exists()


async def test_a_merge_that_landed_without_its_daemon_is_found_not_called_nothing(
    repo: Path, session: Path
) -> None:
    """A daemon killed while its `git merge` ran: git finished the merge, and the next
    daemon's try finds this very merge on the target (its message, the session tip as its
    second parent) rather than "nothing to merge"; a merge by anyone else is not it."""
    commit_files(session, {"new.txt": "new\n"}, "session work")
    message = "Merge prodigy session s-1 (wf)"
    run_git(repo, "merge", "--quiet", "--no-ff", "-m", message, rev(repo, SESSION))
    landed = rev(repo, "main")
    outcome = await merge_branch(repo, SESSION, "main", message=message)
    assert (outcome.merged, outcome.commit) == (True, landed)
    assert outcome.message == f"{SESSION} was merged into main already"
    other = await merge_branch(repo, SESSION, "main", message="Merge prodigy session s-2 (wf)")
    assert (other.merged, other.commit) == (False, None)
    assert rev(repo, "main") == landed


async def test_a_branch_that_made_nothing_costs_no_git_looking_for_its_merge(
    repo: Path, session: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`base`: the session committed nothing, so no merge of it can have landed: the
    search for one (a git process, ~3 ms on every such run's way to its end) is skipped."""
    base = rev(repo, SESSION)
    commit_files(repo, {"b.txt": "moved on\n"})  # the target moved: its tip is not the base
    objects.load()  # commits_ahead in process, as in the daemon
    with monkeypatch.context() as patch:
        patch.setattr(cli, "run", no_git_process)
        outcome = await merge_branch(repo, SESSION, "main", base=base)
    assert (outcome.merged, outcome.commit) == (False, None)


async def test_a_try_waits_for_the_git_merge_a_dead_daemon_left_running(
    repo: Path, session: Path, tmp_path: Path
) -> None:
    """The checkout looked like the user's unfinished work while that merge ran (a slow
    hook): the try waits for it, then finds it landed, instead of refusing."""
    commit_files(session, {"new.txt": "new\n"}, "session work")
    tip, message = rev(repo, SESSION), "Merge prodigy session s-1 (wf)"
    gate = tmp_path / "gate"
    hook = repo / ".git" / "hooks" / "pre-merge-commit"
    hook.parent.mkdir(exist_ok=True)
    started = tmp_path / "started"
    hook.write_text(f"#!/bin/sh\ntouch {started}\nwhile [ ! -f {gate} ]; do sleep 0.02; done\n")
    hook.chmod(0o755)
    leftover = subprocess.Popen(
        ["git", "merge", "--quiet", "--no-ff", "-m", message, tip],
        cwd=repo,
        env={**os.environ, MERGING_VARIABLE: tip},
    )
    try:
        for _ in range(500):
            if started.exists():  # the merge is under way: its files are staged
                break
            await asyncio.sleep(0.01)
        trying = asyncio.ensure_future(merge_branch(repo, SESSION, "main", message=message))
        await asyncio.sleep(0.3)
        assert not trying.done()  # waiting, not refused
        gate.touch()
        outcome = await asyncio.wait_for(trying, 30)
    finally:
        gate.touch()
        leftover.wait(30)
    assert (outcome.merged, outcome.commit) == (True, rev(repo, "main"))
    assert run_git(repo, "log", "--format=%s", "main").splitlines().count(message) == 1


async def test_merge_into_the_checked_out_branch(repo: Path, session: Path) -> None:
    commit_files(session, {"a.txt": "a from session\n", "new.txt": "new\n"}, "session work")
    old = rev(repo, "main")

    outcome = await merge_branch(repo, SESSION, "main")

    assert outcome.merged
    assert outcome.commit == rev(repo, "main")
    assert outcome.message == f"Merged 1 commit from {SESSION} into main"
    assert run_git(repo, "rev-list", "--parents", "-n1", "main").split() == [
        outcome.commit,
        old,
        rev(repo, SESSION),
    ]
    subject = run_git(repo, "log", "-1", "--format=%s").strip()
    assert subject == f"Merge prodigy session branch '{SESSION}' into main"
    assert (repo / "a.txt").read_text() == "a from session\n"
    assert (repo / "new.txt").read_text() == "new\n"
    assert status(repo) == ""


async def test_merge_uses_the_given_message_and_no_fast_forward(repo: Path, session: Path) -> None:
    commit_files(session, {"a.txt": "2\n"})
    outcome = await merge_branch(repo, SESSION, "main", message="Land session 1")
    assert run_git(repo, "log", "-1", "--format=%s").strip() == "Land session 1"
    assert outcome.commit != rev(repo, SESSION)  # a merge commit even though ff was possible


async def test_merge_keeps_unrelated_uncommitted_work(repo: Path, session: Path) -> None:
    commit_files(session, {"a.txt": "a from session\n"})
    (repo / "b.txt").write_text("my unsaved edit\n")
    (repo / "notes.txt").write_text("untracked notes\n")

    outcome = await merge_branch(repo, SESSION, "main")

    assert outcome.merged
    assert (repo / "a.txt").read_text() == "a from session\n"
    assert (repo / "b.txt").read_text() == "my unsaved edit\n"
    assert (repo / "notes.txt").read_text() == "untracked notes\n"
    assert status(repo) == " M b.txt\n?? notes.txt\n"


async def test_refuses_when_uncommitted_work_overlaps(repo: Path, session: Path) -> None:
    commit_files(session, {"a.txt": "a from session\n", "docs/new.md": "new\n"})
    (repo / "a.txt").write_text("my unsaved edit\n")
    (repo / "docs" / "new.md").write_text("my untracked draft\n")
    before = rev(repo, "main")

    with pytest.raises(MergeRefused) as caught:
        await merge_branch(repo, SESSION, "main")

    assert caught.value.message == (
        "Your checkout has uncommitted changes to files this merge would change: a.txt, docs/new.md"
    )
    assert caught.value.hint == "commit or stash them, then run `prodigyctl merge <session>`"
    assert (repo / "a.txt").read_text() == "my unsaved edit\n"
    assert (repo / "docs" / "new.md").read_text() == "my untracked draft\n"
    assert rev(repo, "main") == before
    assert_no_merge_left(repo)


def test_a_long_file_list_is_cut_short() -> None:
    names = [f"f{i:02}.txt" for i in range(25)]
    assert list_files(reversed(names)) == ", ".join(names[:20]) + " and 5 more"


async def test_refuses_while_changes_are_staged(repo: Path, session: Path) -> None:
    commit_files(session, {"a.txt": "a from session\n"})
    (repo / "b.txt").write_text("staged edit\n")
    run_git(repo, "add", "b.txt")

    with pytest.raises(MergeRefused) as caught:
        await merge_branch(repo, SESSION, "main")

    assert "staged changes" in caught.value.message and "b.txt" in caught.value.message
    assert status(repo) == "M  b.txt\n"


async def test_conflict_is_aborted_and_the_checkout_left_as_it_was(
    repo: Path, session: Path
) -> None:
    commit_files(session, {"a.txt": "session version\n", "b.txt": "session b\n"})
    commit_files(repo, {"a.txt": "user version\n", "b.txt": "user b\n"}, "user work")
    (repo / "docs" / "guide.md").write_text("my unsaved edit\n")
    before = rev(repo, "main")

    with pytest.raises(MergeRefused) as caught:
        await merge_branch(repo, SESSION, "main")

    assert caught.value.message == f"Merging {SESSION} into main conflicts in: a.txt, b.txt"
    assert rev(repo, "HEAD") == before
    assert (repo / "a.txt").read_text() == "user version\n"
    assert (repo / "docs" / "guide.md").read_text() == "my unsaved edit\n"
    assert status(repo) == " M docs/guide.md\n"
    assert_no_merge_left(repo)


async def test_refuses_to_disturb_the_users_unfinished_merge(repo: Path, session: Path) -> None:
    commit_files(session, {"a.txt": "session\n"})
    run_git(repo, "checkout", "--quiet", "-b", "side")
    commit_files(repo, {"b.txt": "side\n"})
    run_git(repo, "checkout", "--quiet", "main")
    commit_files(repo, {"b.txt": "main\n"})
    with pytest.raises(AssertionError):
        run_git(repo, "merge", "--quiet", "side")  # the user's own merge conflicts
    assert (repo / ".git" / "MERGE_HEAD").exists()

    with pytest.raises(MergeRefused) as caught:
        await merge_branch(repo, SESSION, "main")

    assert "unfinished operation (MERGE_HEAD)" in caught.value.message
    assert (repo / ".git" / "MERGE_HEAD").exists()


async def test_merge_into_a_branch_nobody_has_checked_out(repo: Path, session: Path) -> None:
    commit_files(session, {"a.txt": "a from session\n"})
    commit_files(repo, {"b.txt": "b on main\n"}, "main moves on")
    run_git(repo, "checkout", "--quiet", "-b", "feature")
    (repo / "a.txt").write_text("user edit on feature\n")
    feature, old_main, source = rev(repo, "feature"), rev(repo, "main"), rev(repo, SESSION)

    outcome = await merge_branch(repo, SESSION, "main")

    assert outcome.merged and outcome.commit == rev(repo, "main")
    assert run_git(repo, "rev-list", "--parents", "-n1", "main").split() == [
        outcome.commit,
        old_main,
        source,
    ]
    assert run_git(repo, "show", "main:a.txt") == "a from session\n"
    assert run_git(repo, "show", "main:b.txt") == "b on main\n"
    assert run_git(repo, "symbolic-ref", "--short", "HEAD").strip() == "feature"
    assert rev(repo, "HEAD") == feature
    assert (repo / "a.txt").read_text() == "user edit on feature\n"
    assert status(repo) == " M a.txt\n"
    assert "prodigy: Merge prodigy session branch" in run_git(repo, "reflog", "-1", "main")


async def test_conflict_without_a_checkout_leaves_the_branch_alone(
    repo: Path, session: Path
) -> None:
    commit_files(session, {"a.txt": "session version\n"})
    commit_files(repo, {"a.txt": "user version\n"})
    run_git(repo, "checkout", "--quiet", "-b", "feature")
    before = rev(repo, "main")

    with pytest.raises(MergeRefused) as caught:
        await merge_branch(repo, SESSION, "main")

    assert caught.value.message == f"Merging {SESSION} into main conflicts in: a.txt"
    assert rev(repo, "main") == before
    assert status(repo) == ""


async def test_merge_into_a_branch_checked_out_in_another_worktree(
    repo: Path, session: Path, tmp_path: Path
) -> None:
    release = tmp_path / "release"
    run_git(repo, "worktree", "add", "--quiet", "-b", "release", str(release))
    commit_files(session, {"a.txt": "a from session\n"})
    (release / "b.txt").write_text("release edit\n")
    main_before = rev(repo, "main")

    outcome = await merge_branch(repo, SESSION, "release")

    assert outcome.merged and outcome.commit == rev(repo, "release")
    assert (release / "a.txt").read_text() == "a from session\n"
    assert (release / "b.txt").read_text() == "release edit\n"
    assert rev(repo, "main") == main_before
    assert (repo / "a.txt").read_text() == "a\n"


async def test_nothing_to_merge(repo: Path, session: Path) -> None:
    before = rev(repo, "main")
    outcome = await merge_branch(repo, SESSION, "main")
    assert not outcome.merged
    assert outcome.commit is None
    assert outcome.message == f"Nothing to merge: {SESSION} holds no commit main lacks"
    assert rev(repo, "main") == before


async def test_missing_target_branch(repo: Path, session: Path) -> None:
    with pytest.raises(GitError) as caught:
        await merge_branch(repo, SESSION, "no-such-branch")
    assert caught.value.message == f"Target branch 'no-such-branch' does not exist in {repo}"


async def test_commits_ahead(repo: Path, session: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert await commits_ahead(repo, "main", SESSION) == 0
    start = rev(repo, SESSION)
    with monkeypatch.context() as patch:  # the same id twice: none ahead, no git asked
        patch.setattr(cli, "run", no_git_process)
        assert await commits_ahead(repo, rev(repo, "main"), start) == 0
    commit_files(session, {"a.txt": "1\n"})
    commit_files(session, {"a.txt": "2\n"})
    commit_files(repo, {"b.txt": "main\n"})
    with monkeypatch.context() as patch:  # an ancestor, pygit2 not imported: git answers
        patch.setattr(objects, "loaded", lambda: False)
        assert await commits_ahead(repo, rev(repo, "main"), start) == 0
    objects.load()
    with monkeypatch.context() as patch:  # pygit2 imported already: libgit2 answers
        patch.setattr(cli, "run", no_git_process)
        assert await commits_ahead(repo, rev(repo, "main"), start) == 0
    assert await commits_ahead(repo, "main", SESSION) == 2
    assert await commits_ahead(repo, SESSION, "main") == 1
    assert await commits_ahead(repo, rev(repo, "main"), rev(repo, SESSION)) == 2
    assert await commits_ahead(repo, rev(repo, SESSION), rev(repo, "main")) == 1


async def test_merge_variables(repo: Path, session: Path) -> None:
    first = commit_files(
        session, {"a.txt": "a2\n", "new file.txt": "n\n"}, "Add a file\n\nWith a body."
    )
    run_git(session, "mv", "b.txt", "renamed.txt")
    run_git(session, "rm", "--quiet", "docs/guide.md")
    second = commit_files(session, {"a.txt": "a3\n"}, "Rename and delete")
    commit_files(repo, {"main-only.txt": "m\n"})  # changes on the target are not listed

    variables = await merge_variables(
        repo, SESSION, "main", worktree=session, session_id="session-1"
    )

    assert variables["merge.worktree"] == "session-1"
    assert variables["merge.source_branch"] == SESSION
    assert variables["merge.target_branch"] == "main"
    assert variables["merge.session_id"] == "session-1"
    commits = variables["merge.commits"]
    assert [c["id"] for c in commits] == [second, first]
    assert commits[1]["short_id"] == first[: len(commits[1]["short_id"])]
    assert commits[1]["author"] == {"name": "Prodigy Test", "email": "test@prodigy.invalid"}
    assert commits[1]["message"] == "Add a file\n\nWith a body."
    assert datetime.fromisoformat(commits[1]["timestamp"]).tzinfo is not None
    assert commits[1]["files_changed"] == ["a.txt", "new file.txt"]
    assert sorted(commits[0]["files_changed"]) == ["a.txt", "docs/guide.md", "renamed.txt"]
    assert variables["merge.commit_count"] == 2
    assert variables["merge.commit_ids"] == f"{commits[0]['short_id']}, {commits[1]['short_id']}"
    files = {f["path"]: f for f in variables["merge.modified_files"]}
    assert files == {
        "a.txt": {"path": "a.txt", "modification_type": "modified", "commit_id": second},
        "new file.txt": {"path": "new file.txt", "modification_type": "added", "commit_id": first},
        "renamed.txt": {"path": "renamed.txt", "modification_type": "renamed", "commit_id": second},
        "docs/guide.md": {
            "path": "docs/guide.md",
            "modification_type": "deleted",
            "commit_id": second,
        },
    }
    assert variables["merge.file_count"] == 4
    assert sorted(variables["merge.file_list"].split(", ")) == sorted(files)


async def test_merge_variables_with_nothing_to_merge(repo: Path, session: Path) -> None:
    variables = await merge_variables(repo, SESSION, "main", worktree=session, session_id="s")
    assert variables["merge.commits"] == []
    assert variables["merge.commit_count"] == 0
    assert variables["merge.commit_ids"] == ""
    assert variables["merge.modified_files"] == []
    assert variables["merge.file_count"] == 0
    assert variables["merge.file_list"] == ""


async def test_settle_interrupted_merge_undoes_a_half_done_merge(tmp_path: Path):
    from prodigyd.git.merge import settle_interrupted_merge

    repo = make_repo(tmp_path / "r", {"f.txt": "base\n"})
    run_git(repo, "checkout", "-q", "-b", "other")
    commit_files(repo, {"f.txt": "other\n"})
    run_git(repo, "checkout", "-q", "main")
    commit_files(repo, {"f.txt": "main\n"})
    head = run_git(repo, "rev-parse", "HEAD").strip()
    __import__("subprocess").run(
        ["git", "merge", "other"], cwd=repo, capture_output=True, check=False
    )  # conflicts
    assert (repo / ".git" / "MERGE_HEAD").exists()
    await settle_interrupted_merge(repo)
    assert not (repo / ".git" / "MERGE_HEAD").exists()
    assert (
        run_git(repo, "rev-parse", "HEAD").strip() == head
        and run_git(repo, "status", "--porcelain") == ""
    )
    await settle_interrupted_merge(repo)  # nothing in progress: nothing happens
