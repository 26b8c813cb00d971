"""`on:` triggers end to end: `prodigyctl hooks install`, a real `git commit` or `git push`
running the installed shim, the real daemon reading its spool and running the workflow."""

from __future__ import annotations

import json
import os
import select
import subprocess
from pathlib import Path

import pytest

from tests.cli import ctl, wait_for
from tests.daemonkit import rpc
from tests.gitutil import commit_files, git
from tests.hostile import billion_laughs

STAMP = """
name: stamp
on:
  commit:
    branches: [main]
    paths: ["src/**"]
commands:
  - shell: "git log -1 --format=%s > last.txt && git add last.txt && git commit -qm stamp"
"""


def sessions() -> list[dict]:
    return json.loads(ctl("sessions", "ls", "--json", check=True).stdout)


def spool(home: Path) -> list[str]:
    """The spool's pending files."""
    folder = home / "spool"
    return sorted(p.name for p in folder.glob("*.*")) if folder.exists() else []


def coalesced(repo: Path) -> list[dict]:
    """The commits a queued run took over (a newer commit replaced the one it was for)."""
    listed = json.loads(ctl("triggers", "ls", "--json", cwd=repo, check=True).stdout)
    return [drop for drop in listed["dropped"] if drop["why"] == "coalesced"]


def settled(home: Path) -> bool:
    """The spool is empty and no job is queued or running."""
    return not spool(home) and all(s["status"] not in ("queued", "running") for s in sessions())


@pytest.fixture
def hooked(daemon: Path, repo: Path) -> Path:
    commit_files(repo, {".prodigy/workflows/stamp.yml": STAMP}, "add trigger")
    ctl("hooks", "install", cwd=repo, check=True)
    return repo


def test_a_matching_commit_runs_the_workflow_and_others_do_not(daemon: Path, hooked: Path):
    commit_files(hooked, {"README.md": "docs only\n"}, "docs only")  # paths do not match
    git(hooked, "checkout", "-q", "-b", "topic")
    commit_files(hooked, {"src/b.py": "b\n"}, "on a topic branch")  # branch does not match
    git(hooked, "checkout", "-q", "main")
    commit_files(hooked, {"src/a.py": "a\n"}, "add a")
    wait_for(lambda: sessions() and settled(daemon), timeout=60, what="the triggered job")
    [job] = sessions()
    assert job["status"] == "awaiting_merge"  # merge: ask, and nobody is there to answer
    shown = json.loads(ctl("sessions", "show", job["id"], "--json", check=True).stdout)
    sha = git(hooked, "rev-parse", "HEAD").strip()
    assert shown["triggered_by"] == f"commit {sha[:12]} on main (post-commit hook)"
    assert git(hooked, "show", f"prodigy-{job['id']}:last.txt") == "add a\n"
    assert "triggered_by:     commit" in ctl("sessions", "show", job["id"]).stdout


def test_a_push_runs_its_workflow_and_merges_into_the_pushed_branch(
    daemon: Path, repo: Path, tmp_path: Path
):
    remote = tmp_path / "remote.git"
    subprocess.run(["git", "init", "-q", "--bare", str(remote)], check=True)
    git(repo, "remote", "add", "origin", str(remote))
    commit_files(
        repo,
        {
            ".prodigy/workflows/pushed.yml": """
on:
  push: {branches: main, merge: auto}
commands:
  - shell: "git log -1 --format=%s > pushed.txt && git add pushed.txt && git commit -qm pushed"
"""
        },
        "push trigger",
    )
    ctl("hooks", "install", cwd=repo, check=True)
    git(repo, "push", "-q", "origin", "main")
    wait_for(lambda: sessions() and settled(daemon), timeout=60, what="the triggered job")
    [job] = sessions()
    assert job["status"] == "completed"
    assert git(repo, "show", "main:pushed.txt") == "push trigger\n"


def test_an_existing_hook_is_chained_and_restored(daemon: Path, repo: Path):
    hooks = Path(git(repo, "rev-parse", "--path-format=absolute", "--git-path", "hooks").strip())
    hooks.mkdir(exist_ok=True)
    mine = hooks / "post-commit"
    mine.write_text('#!/bin/sh\necho "$(git log -1 --format=%s)" >> "$HOME/my-hook.log"\n')
    mine.chmod(0o755)
    installed = json.loads(ctl("hooks", "install", "--json", cwd=repo, check=True).stdout)
    assert [h["chained"] for h in installed["installed"]] == [True, False]
    commit_files(repo, {".prodigy/workflows/stamp.yml": STAMP, "src/a.py": "a\n"}, "both")
    log = Path(os.environ["HOME"]) / "my-hook.log"
    assert log.read_text() == "both\n"  # the old hook ran, before ours returned
    wait_for(lambda: sessions() and settled(daemon), timeout=60, what="the triggered job")
    ctl("hooks", "uninstall", cwd=repo, check=True)
    assert "prodigy-hook" not in mine.read_text() and not (hooks / "pre-push").exists()
    assert json.loads(ctl("hooks", "status", "--json", cwd=repo).stdout)["hooks"][0]["state"] == (
        "not prodigy's"
    )
    assert ctl("hooks", "status", cwd=repo).returncode == 1


def test_a_hook_another_tool_put_over_ours_leaves_the_chained_one_told_not_orphaned(
    daemon: Path, repo: Path
):
    hooks = Path(git(repo, "rev-parse", "--path-format=absolute", "--git-path", "hooks").strip())
    hooks.mkdir(exist_ok=True)
    mine = hooks / "post-commit"
    mine.write_text("#!/bin/sh\necho mine\n")
    mine.chmod(0o755)
    ctl("hooks", "install", cwd=repo, check=True)
    mine.write_text("#!/bin/sh\necho a tool's\n")  # e.g. a hook manager's install
    legacy = hooks / "post-commit.prodigy-legacy"
    status = ctl("hooks", "status", cwd=repo)
    assert "post-commit  not prodigy's\n" in status.stdout  # it chains nothing: not said so
    assert f"  {legacy}: the hook prodigy's once ran first, run by nothing now" in status.stdout
    row = json.loads(ctl("hooks", "status", "--json", cwd=repo).stdout)["hooks"][0]
    assert (row["chained"], row["left_over"]) == (False, str(legacy))
    gone = ctl("hooks", "uninstall", cwd=repo, check=True)
    assert f"note: {legacy} is the hook prodigy's ran first" in gone.stderr
    assert legacy.read_text() == "#!/bin/sh\necho mine\n"  # the user's: never touched


def test_a_failing_pre_push_hook_still_refuses_the_push_and_triggers_nothing(
    daemon: Path, repo: Path, tmp_path: Path
):
    remote = tmp_path / "remote.git"
    subprocess.run(["git", "init", "-q", "--bare", str(remote)], check=True)
    git(repo, "remote", "add", "origin", str(remote))
    hooks = Path(git(repo, "rev-parse", "--path-format=absolute", "--git-path", "hooks").strip())
    hooks.mkdir(exist_ok=True)
    (hooks / "pre-push").write_text(
        '#!/bin/sh\nwhile read -r line; do echo "$line" >&2; done\n'
        'echo "push refused by policy" >&2\nexit 1\n'
    )
    (hooks / "pre-push").chmod(0o755)
    commit_files(repo, {".prodigy/workflows/p.yml": "on: push\ncommands:\n  - shell: 'true'\n"})
    ctl("hooks", "install", cwd=repo, check=True)
    push = subprocess.run(
        ["git", "push", "origin", "main"], cwd=repo, capture_output=True, text=True, check=False
    )
    assert push.returncode != 0
    assert "push refused by policy" in push.stderr
    assert "refs/heads/main" in push.stderr  # the old hook got git's standard input
    assert spool(daemon) == [] and sessions() == []


def test_events_wait_in_the_spool_and_the_hook_starts_the_daemon(isolated: Path, repo: Path):
    commit_files(repo, {".prodigy/workflows/stamp.yml": STAMP}, "add trigger")
    ctl("hooks", "install", cwd=repo, check=True)
    try:
        commit_files(repo, {"src/a.py": "a\n"}, "no daemon yet")
        wait_for(
            lambda: (isolated / "prodigyd.sock").exists(),
            timeout=60,
            what="the daemon the hook started",
        )
        wait_for(lambda: sessions() and settled(isolated), timeout=60, what="the triggered job")
        assert [s["status"] for s in sessions()] == ["awaiting_merge"]
    finally:
        ctl("daemon", "stop")


def test_the_daemon_a_hook_starts_keeps_no_pipe_of_the_gits_caller(isolated: Path, repo: Path):
    """A pipe whoever ran `git commit` passed on (a CI harness's, a make jobserver's) ends
    once git and the hook's start are done with it: the daemon they start keeps none."""
    ctl("hooks", "install", cwd=repo, check=True)
    read, write = os.pipe()
    try:
        with os.fdopen(write, "wb"):  # ours closed once git is given it
            subprocess.run(
                ["git", "commit", "-q", "--allow-empty", "-m", "no daemon yet"],
                cwd=repo,
                check=True,
                pass_fds=(write,),
            )
        wait_for(
            lambda: (isolated / "prodigyd.sock").exists(),
            timeout=60,
            what="the daemon the hook started",
        )
        ended, _, _ = select.select([read], [], [], 60)  # no end: a holder is still there
        assert ended and os.read(read, 1) == b""
    finally:
        os.close(read)
        ctl("daemon", "stop")


def test_prodigy_hooks_0_turns_the_hooks_off(daemon: Path, hooked: Path):
    env = {**os.environ, "PRODIGY_HOOKS": "0"}
    (hooked / "src").mkdir()
    (hooked / "src" / "a.py").write_text("a\n")
    subprocess.run(["git", "add", "-A"], cwd=hooked, check=True)
    subprocess.run(["git", "commit", "-qm", "quiet"], cwd=hooked, env=env, check=True)
    assert spool(daemon) == [] and sessions() == []


def test_a_bad_spool_entry_is_set_aside_with_its_reason(daemon: Path, hooked: Path):
    (daemon / "spool" / "1.00-1.event").write_text(
        "version=1\nhook=post-checkout\nrepo=/tmp\nend=1\n"
    )
    reason = daemon / "spool" / "rejected" / "1.00-1.reason"
    wait_for(reason.exists, timeout=30, what="the entry set aside")
    assert "hook 'post-checkout' is not one of post-commit, pre-push" in reason.read_text()
    assert (daemon / "spool" / "rejected" / "1.00-1.event").exists()
    listed = ctl("triggers", "ls", cwd=hooked, check=True)
    assert "commit on main touching src/** merge ask" in listed.stdout
    assert "hook event 1.00-1.event" in listed.stderr


def test_an_entry_read_twice_submits_once(daemon: Path, hooked: Path):
    """A daemon killed after submitting but before deleting an entry reads it again: the
    same event id makes the same idempotency key, so no second job."""
    (hooked / "src").mkdir()
    (hooked / "src" / "a.py").write_text("a\n")
    subprocess.run(["git", "add", "-A"], cwd=hooked, check=True)
    subprocess.run(
        ["git", "commit", "-qm", "unhooked"],
        cwd=hooked,
        check=True,
        env={**os.environ, "PRODIGY_HOOKS": "0"},
    )
    sha = git(hooked, "rev-parse", "HEAD").strip()
    event = (
        f"version=1\nhook=post-commit\nrepo={hooked}\nhead={sha}\nbranch=refs/heads/main\nend=1\n"
    )
    for name in ("5.00-1", "6.00-1"):  # the same entry, read twice
        (daemon / "spool" / f"{name}.event").write_text(event)
        wait_for(lambda: settled(daemon) and sessions(), timeout=60, what="the entry read")
    [job] = sessions()
    assert job["status"] == "awaiting_merge"


def test_triggers_ls_shows_a_workflow_that_does_not_load(daemon: Path, hooked: Path):
    (hooked / ".prodigy" / "workflows" / "broken.yml").write_text(
        "on: [commit, pull]\ncommands: [{shell: x}]\n"
    )
    listed = json.loads(ctl("triggers", "ls", "--json", cwd=hooked, check=True).stdout)
    broken, stamp = listed["workflows"]
    assert "unknown event 'pull' (events: commit, push, ref, files)" in broken["error"]
    assert stamp["on"] == [
        {
            "event": "commit",
            "branches": ["main"],
            "paths": ["src/**"],
            "tags": [],
            "ignore": [],
            "settle": None,
            "merge": "ask",
            "include_prodigy_commits": False,
        }
    ]
    commit_files(hooked, {"src/a.py": "a\n"}, "still fires")
    wait_for(lambda: sessions() and settled(daemon), timeout=60, what="the triggered job")
    assert len(sessions()) == 1


def test_install_refuses_when_the_chained_hook_name_is_taken(daemon: Path, repo: Path):
    hooks = Path(git(repo, "rev-parse", "--path-format=absolute", "--git-path", "hooks").strip())
    hooks.mkdir(exist_ok=True)
    (hooks / "post-commit").write_text("#!/bin/sh\necho mine\n")
    (hooks / "post-commit.prodigy-legacy").write_text("#!/bin/sh\necho older\n")
    refused = ctl("hooks", "install", cwd=repo)
    assert refused.returncode == 4
    assert "post-commit.prodigy-legacy is taken" in refused.stderr
    assert (hooks / "post-commit").read_text() == "#!/bin/sh\necho mine\n"  # nothing changed
    assert not (hooks / "pre-push").exists()


def _event(repo: Path | str) -> str:
    return f"version=1\nhook=post-commit\nrepo={repo}\nhead={'a' * 40}\nbranch=refs/heads/main\nend=1\n"


@pytest.mark.timeout(60)
def test_a_fifo_or_a_bad_repo_in_the_spool_is_set_aside_and_never_blocks_the_daemon(
    daemon: Path, repo: Path
):
    folder = daemon / "spool"
    os.mkfifo(folder / "1.00-1.event")  # opened for reading, it would wait for a writer
    (folder / "2.00-1.event").write_text(_event("/" + "r" * 5000))
    (folder / "3.00-1.event").write_text(_event(repo / "gone"))
    rejected = folder / "rejected"
    reasons = [rejected / f"{n}.00-1.reason" for n in (1, 2, 3)]
    wait_for(lambda: all(r.exists() for r in reasons), timeout=30, what="entries set aside")
    assert "not a regular file" in reasons[0].read_text()
    assert "File name too long" in reasons[1].read_text()
    assert "No such file or directory" in reasons[2].read_text()
    assert ctl("daemon", "status", check=True).returncode == 0  # the loop was never blocked
    assert spool(daemon) == []  # every part moved
    assert "Traceback" not in (daemon / "logs" / "prodigyd.log").read_text()


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to chown to another uid")
def test_a_repo_of_another_user_is_set_aside_before_its_workflows_are_read(
    daemon: Path, tmp_path: Path
):
    theirs = tmp_path / "theirs"
    (theirs / ".prodigy" / "workflows").mkdir(parents=True)
    (theirs / ".prodigy" / "workflows" / "evil.yml").write_text("on: [commit, pull]\n")
    for path in (theirs, *theirs.rglob("*")):
        os.chown(path, 65534, 65534)
    (daemon / "spool" / "4.00-1.event").write_text(_event(theirs))
    reason = daemon / "spool" / "rejected" / "4.00-1.reason"
    wait_for(reason.exists, timeout=30, what="the entry set aside")
    assert "is owned by uid 65534, not by uid 0: its workflows are not run" in reason.read_text()
    log = (daemon / "logs" / "prodigyd.log").read_text()
    assert "evil.yml" not in log and "Traceback" not in log  # never loaded, so never reported
    assert sessions() == []


def test_a_billion_laughs_trigger_file_is_refused_and_the_daemon_carries_on(
    daemon: Path, hooked: Path
):
    laughs = hooked / ".prodigy" / "workflows" / "laughs.yml"
    commit_files(hooked, {".prodigy/workflows/laughs.yml": billion_laughs()}, "a bomb")
    commit_files(hooked, {"src/a.py": "a\n"}, "still fires")
    wait_for(lambda: sessions() and settled(daemon), timeout=60, what="the triggered job")
    assert [s["workflow"] for s in sessions()] == [str(hooked / ".prodigy/workflows/stamp.yml")]
    assert rpc(daemon, "ping", {})["pong"]
    listed = json.loads(ctl("triggers", "ls", "--json", cwd=hooked, check=True).stdout)
    error = next(w["error"] for w in listed["workflows"] if w["path"] == str(laughs))
    assert error.startswith(f"{laughs}:6:10: aliases expand to more than 100,000")


SEEN = """
on: {commit: {branches: [main]}}
commands:
  - shell: >-
      printf '%s|%s' "${MY_TOKEN-unset}" "${AWS_SECRET_ACCESS_KEY-unset}" > seen.txt
      && git add seen.txt && git commit -qm seen
"""


def test_a_triggered_job_gets_the_variables_the_hook_keeps_and_no_others(daemon: Path, repo: Path):
    """The hook passes what a job needs (and what PRODIGY_HOOK_ENV names), never a token
    it does not name: not in the spool, not to the job, not into the journal. Nor the
    author date git gave the hook for its own commit."""
    commit_files(repo, {".prodigy/workflows/seen.yml": SEEN}, "add trigger")
    ctl("hooks", "install", cwd=repo, check=True)
    secret = "aws-secret-0123456789abcdef"
    env = {
        **os.environ,
        "AWS_SECRET_ACCESS_KEY": secret,
        "MY_TOKEN": "mine-0123456789",
        "PRODIGY_HOOK_ENV": "MY_TOKEN",
        "GIT_AUTHOR_DATE": "2001-02-03T04:05:06",
    }
    subprocess.run(
        ["git", "commit", "-q", "--allow-empty", "-m", "go"], cwd=repo, env=env, check=True
    )
    wait_for(lambda: sessions() and settled(daemon), timeout=60, what="the triggered job")
    [job] = sessions()
    assert job["status"] == "awaiting_merge", job
    branch = f"prodigy-{job['id']}"
    assert git(repo, "show", f"{branch}:seen.txt") == "mine-0123456789|unset"
    dated = git(repo, "log", "-1", "--format=%ad", "--date=format:%Y", branch).strip()
    assert dated != "2001"  # the job's commit is dated when the job makes it
    ctl("daemon", "stop", check=True)  # the journal's write-ahead log folded in
    for path in daemon.rglob("*"):
        if path.is_file() and not path.is_symlink():
            assert secret.encode() not in path.read_bytes(), path
    ctl("daemon", "start", check=True)  # the fixture stops it


def test_a_burst_of_commits_with_no_daemon_starts_one_daemon_of_its_own(isolated: Path, repo: Path):
    commit_files(repo, {".prodigy/workflows/stamp.yml": STAMP}, "add trigger")
    ctl("hooks", "install", cwd=repo, check=True)
    try:
        for number in range(4):
            commit_files(repo, {"src/a.py": f"{number}\n"}, f"burst {number}")
        # Not prodigyctl before the daemon listens: it would start one itself.
        wait_for((isolated / "prodigyd.pid").exists, timeout=60, what="the daemon the hook started")
        wait_for(
            lambda: len(sessions()) + len(coalesced(repo)) == 4 and settled(isolated),
            timeout=60,
            what="a run (or a coalesced one: docs/workflows.md, 'No storms') for every commit",
        )
        assert sessions()  # coalescing leaves the newest commit's run; it is how many ran
        out = (isolated / "logs" / "prodigyd.out").read_text()
        assert "already running" not in out  # no second daemon was started
        pid = int((isolated / "prodigyd.pid").read_text())
        assert os.getsid(pid) == pid  # its own session: a Ctrl-C for git does not reach it
        environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
        names = {item.split(b"=", 1)[0].decode() for item in environ if item}
        assert not names & {"GIT_INDEX_FILE", "GIT_DIR", "GIT_AUTHOR_DATE", "GIT_PREFIX"}
    finally:
        ctl("daemon", "stop")


def test_a_queued_triggered_run_whose_workflow_was_removed_is_not_run(
    daemon: Path, repo: Path, tmp_path: Path
):
    gate = tmp_path / "gate"
    wf = f"""
on: commit
commands:
  - shell: "while [ ! -f {gate} ]; do sleep 0.05; done"
"""
    commit_files(repo, {".prodigy/workflows/held.yml": wf}, "add trigger")
    ctl("hooks", "install", cwd=repo, check=True)
    commit_files(repo, {"a.txt": "a\n"}, "first")
    wait_for(lambda: [s["status"] for s in sessions()] == ["running"], what="the first run")
    commit_files(repo, {"b.txt": "b\n"}, "second")  # waits for the first: the same branch
    wait_for(lambda: len(sessions()) == 2 and not spool(daemon), what="the second, queued")
    (repo / ".prodigy/workflows/held.yml").unlink()
    gate.touch()
    wait_for(lambda: settled(daemon), timeout=60, what="both to end")
    second, first = sessions()
    assert first["status"] == "completed"  # it committed nothing: nothing to merge
    assert second["status"] == "cancelled"
    assert second["error"] == (
        f"not run: its workflow {repo / '.prodigy/workflows/held.yml'} was gone when it was to "
        "start (deleted, renamed, or not in the branch checked out there)"
    )
    shown = ctl("logs", second["id"]).stdout
    assert "Resume with" not in shown and "None" not in shown


def test_triggers_ls_says_what_nothing_here_delivers(daemon: Path, repo: Path):
    commit_files(
        repo,
        {
            ".prodigy/workflows/push.yml": "on: push\ncommands:\n  - shell: 'true'\n",
            ".prodigy/workflows/lint.yml": "on: commit\ncommands:\n  - shell: 'true'\n",
            ".prodigy/workflows/tags.yml": "on: {ref: {tags: ['v*']}}\ncommands:\n  - shell: 'true'\n",
        },
        "add triggers",
    )
    bare = ctl("triggers", "ls", cwd=repo, check=True)
    assert "note: nothing here delivers `on: push`: `prodigyctl hooks install` does\n" in (
        bare.stderr
    )
    assert "note: nothing here delivers `on: ref`: `prodigyctl watch add` does\n" in bare.stderr
    assert (
        "note: nothing here delivers `on: commit`: `prodigyctl hooks install` or `prodigyctl "
        "watch add` does\n"
    ) in bare.stderr
    listed = json.loads(ctl("triggers", "ls", "--json", cwd=repo, check=True).stdout)
    assert (listed["hooks"], listed["watched"]) == (False, False)
    ctl("hooks", "install", cwd=repo, check=True)
    ctl("watch", "add", str(repo), check=True)
    try:
        served = ctl("triggers", "ls", cwd=repo, check=True)
        assert "note:" not in served.stderr, served.stderr
        listed = json.loads(ctl("triggers", "ls", "--json", cwd=repo, check=True).stdout)
        assert (listed["hooks"], listed["watched"]) == (True, True)
        linked = repo.parent / f"{repo.name}-topic"
        git(repo, "worktree", "add", "-q", str(linked), "-b", "topic")
        listed = json.loads(ctl("triggers", "ls", "--json", cwd=linked, check=True).stdout)
        assert (listed["hooks"], listed["watched"]) == (True, True)  # its repository's
    finally:
        ctl("watch", "rm", str(repo), check=True)


def test_a_triggered_run_that_had_started_is_not_dropped_when_its_workflow_is_gone(
    isolated: Path, repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    """Dropping is for a run that never started: one interrupted mid-way has work of its
    own, which a resume finishes once its workflow file is back."""
    monkeypatch.setenv("PRODIGY_SHUTDOWN_GRACE_SECONDS", "1")
    started = tmp_path / "started"
    wf = f"""
on: commit
commands:
  - shell: "echo work > work.txt && git add work.txt && git commit -qm work"
  - shell: "touch {started}; sleep 60"
"""
    ctl("daemon", "start", check=True)
    try:
        commit_files(repo, {".prodigy/workflows/long.yml": wf}, "add trigger")
        ctl("hooks", "install", cwd=repo, check=True)
        commit_files(repo, {"a.txt": "a\n"}, "first")
        wait_for(started.exists, timeout=60, what="the run's second step")
        ctl("daemon", "stop", check=True)  # interrupted mid-way: it resumes at the start
        (repo / ".prodigy/workflows/long.yml").unlink()
        ctl("daemon", "start", check=True)
        wait_for(lambda: sessions()[0]["status"] == "failed", timeout=60, what="its resume")
        [run] = sessions()
    finally:
        ctl("daemon", "stop", check=True)
    assert "workflow file not found" in run["error"]
    assert git(repo, "show", f"prodigy-{run['id']}:work.txt") == "work\n"  # kept to resume
