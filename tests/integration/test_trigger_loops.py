"""No loops, no storms: prodigy's own commits fire no `on:` trigger, queued runs coalesce,
and the rate limit and queue cap drop runs visibly. Real commits through the installed
shims, the real daemon reading its spool."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.cli import ctl, wait_for
from tests.gitutil import commit_files, git
from tests.integration.test_triggers import sessions, settled

#: Commits a stamp of the commit its run started from; merges it.
STAMP_ANY = """
name: stamp
on:
  commit: {merge: auto}
commands:
  - shell: "git log -1 --format=%s > last.txt && git add last.txt && git commit -qm stamp"
"""


def gated(gate: Path, on: str = "commit", merge: str = "ask") -> str:
    """A workflow whose run waits for `gate` to exist, then stamps and commits."""
    return f"""
name: gated
on:
  {on}: {{merge: {merge}}}
commands:
  - shell: "while [ ! -f {gate} ]; do sleep 0.05; done"
  - shell: "git log -1 --format=%s > last.txt && git add last.txt && git commit -qm stamp"
"""


def triggers_ls(where: Path) -> dict:
    return json.loads(ctl("triggers", "ls", "--json", cwd=where, check=True).stdout)


def prodigy_branches(repo: Path) -> list[str]:
    return git(repo, "branch", "--list", "prodigy-*", "--format=%(refname:short)").split()


def hook(repo: Path, files: dict[str, str]) -> None:
    commit_files(repo, files, "add triggers")
    ctl("hooks", "install", cwd=repo, check=True)


def by_status(status: str) -> list[dict]:
    return [s for s in sessions() if s["status"] == status]


@pytest.fixture
def limited(isolated: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A daemon running one job at a time, with tight trigger limits."""
    for name, value in {
        "PRODIGY_MAX_CONCURRENT_JOBS": "1",
        "PRODIGY_TRIGGERS__MAX_RUNS": "3",
        "PRODIGY_TRIGGERS__PER_SECONDS": "3600",
        "PRODIGY_TRIGGERS__MAX_QUEUED": "1",
    }.items():
        monkeypatch.setenv(name, value)
    ctl("daemon", "start", check=True)
    yield isolated
    ctl("daemon", "stop", check=True)


def test_a_committing_triggered_workflow_runs_once_per_user_commit(daemon: Path, repo: Path):
    hook(repo, {".prodigy/workflows/stamp.yml": STAMP_ANY})
    for message in ("one", "two"):
        commit_files(repo, {f"{message}.txt": message}, message)
        wait_for(lambda: sessions() and settled(daemon), timeout=90, what="the triggered runs")
    runs = sessions()
    assert [s["status"] for s in runs] == ["completed", "completed"]
    assert git(repo, "show", "main:last.txt") == "two\n"  # each run merged into main
    assert prodigy_branches(repo) == []
    dropped = triggers_ls(repo)["dropped"]
    assert {d["why"] for d in dropped} == {"prodigy_commit"}
    assert {d["branch"] for d in dropped} == {f"prodigy-{s['id']}" for s in runs}
    assert all("made by prodigy session" in d["message"] for d in dropped)


def test_a_plain_run_in_a_hooked_repository_starts_no_triggered_run(daemon: Path, repo: Path):
    hook(repo, {".prodigy/workflows/any.yml": "on: commit\ncommands:\n  - shell: 'true'\n"})
    workflow = repo.parent / "commit.yml"
    workflow.write_text("- shell: 'echo x > x.txt && git add x.txt && git commit -qm x'\n")
    assert ctl("run", str(workflow), "-y", cwd=repo).returncode == 0
    wait_for(lambda: settled(daemon), timeout=60, what="the spool handled")
    [run] = sessions()
    assert run["status"] == "completed" and run["workflow"] == str(workflow)
    assert git(repo, "show", "main:x.txt") == "x\n"
    [drop] = triggers_ls(repo)["dropped"]
    assert drop["why"] == "prodigy_commit" and drop["branch"] == f"prodigy-{run['id']}"
    listed = ctl("triggers", "ls", cwd=repo, check=True).stdout
    assert "prodigy_commit: any.yml: commit " in listed
    assert f"made by prodigy session {run['id']}" in listed


COUNTER = """
name: counter
on:
  commit: {include_prodigy_commits: true}
commands:
  - shell: |
      n=$(cat count 2>/dev/null || echo 0)
      if [ "$n" -lt 2 ]; then
        echo $((n + 1)) > count && git add count && git commit -qm "count $((n + 1))"
      fi
"""


def test_include_prodigy_commits_fires_on_prodigys_commits_and_no_other_trigger_does(
    daemon: Path, repo: Path
):
    """The counter commits only while it is below 2, so even a loop ends; the plain
    trigger beside it fires on the user's commit alone."""
    hook(
        repo,
        {
            ".prodigy/workflows/counter.yml": COUNTER,
            ".prodigy/workflows/plain.yml": "on: commit\ncommands:\n  - shell: 'true'\n",
        },
    )
    assert triggers_ls(repo)["workflows"][0]["on"][0]["include_prodigy_commits"] is True
    commit_files(repo, {"a.txt": "a"}, "user commit")
    wait_for(lambda: len(sessions()) >= 4 and settled(daemon), timeout=120, what="the chain")
    runs = {s["id"]: s for s in sessions()}
    plain = [s for s in runs.values() if s["workflow_name"] == "default"]
    assert [s["branch"] for s in plain] == ["main"]  # the user's commit only
    counter = [s for s in runs.values() if s["workflow_name"] == "counter"]
    first = next(s for s in counter if s["branch"] == "main")
    second = next(s for s in counter if s["branch"] == f"prodigy-{first['id']}")
    third = next(s for s in counter if s["branch"] == f"prodigy-{second['id']}")
    assert len(counter) == 3  # the third counted to 2 before: it made no commit
    assert git(repo, "show", f"prodigy-{second['id']}:count") == "2\n"
    shown = json.loads(ctl("sessions", "show", third["id"], "--json", check=True).stdout)
    assert shown["triggered_by"].endswith(f"on prodigy-{second['id']} (post-commit hook)")


def test_hooks_shared_with_a_linked_worktree(daemon: Path, repo: Path):
    hook(repo, {".prodigy/workflows/stamp.yml": STAMP_ANY})
    linked = repo.parent / "linked"
    git(repo, "worktree", "add", "-q", "-b", "topic", str(linked))
    commit_files(linked, {"t.txt": "t"}, "in the linked worktree")
    wait_for(lambda: sessions() and settled(daemon), timeout=90, what="the triggered run")
    [run] = sessions()
    assert run["status"] == "completed" and run["branch"] == "topic"
    assert (linked / "last.txt").read_text() == "in the linked worktree\n"  # merged there
    assert not (repo / "last.txt").exists()
    # one log of drops per repository: the main worktree sees the linked one's
    assert [d["branch"] for d in triggers_ls(repo)["dropped"]] == [f"prodigy-{run['id']}"]
    assert triggers_ls(linked)["dropped"] == triggers_ls(repo)["dropped"]


def test_a_branch_deleted_under_a_running_and_a_queued_triggered_run(
    limited: Path, repo: Path, tmp_path: Path
):
    gate = tmp_path / "gate"
    hook(repo, {".prodigy/workflows/gated.yml": gated(gate, merge="auto")})
    git(repo, "checkout", "-q", "-b", "topic")
    try:
        commit_files(repo, {"t.txt": "t"}, "on topic")
        wait_for(lambda: by_status("running"), timeout=60, what="the run to start")
        commit_files(repo, {"u.txt": "u"}, "again on topic")
        wait_for(lambda: by_status("queued"), timeout=60, what="the next run queued")
        git(repo, "checkout", "-q", "main")
        git(repo, "branch", "-D", "topic")
    finally:
        gate.touch()
    wait_for(lambda: settled(limited), timeout=60, what="the runs to finish")
    running, queued = sorted(sessions(), key=lambda s: s["started_at"] or "")
    assert running["status"] == "awaiting_merge"
    assert "target branch 'topic' no longer exists" in running["error"]
    assert git(repo, "show", f"prodigy-{running['id']}:last.txt") == "on topic\n"  # kept
    assert queued["status"] == "failed"  # when it came to start, there was no branch
    assert queued["error"].startswith("branch 'topic' no longer exists in ")
    assert ctl("daemon", "status").returncode == 0


def test_a_newer_commit_replaces_the_queued_run(limited: Path, repo: Path, tmp_path: Path):
    gate = tmp_path / "gate"
    hook(repo, {".prodigy/workflows/gated.yml": gated(gate)})
    try:
        commit_files(repo, {"1.txt": "1"}, "one")
        wait_for(lambda: by_status("running"), timeout=60, what="the first run")
        commit_files(repo, {"2.txt": "2"}, "two")
        wait_for(lambda: by_status("queued"), timeout=60, what="the second run queued")
        commit_files(repo, {"3.txt": "3"}, "three")
        three = git(repo, "rev-parse", "HEAD").strip()
        wait_for(lambda: triggers_ls(repo)["dropped"], timeout=60, what="the coalescing")
        [queued] = by_status("queued")
    finally:
        gate.touch()
    [drop] = [d for d in triggers_ls(repo)["dropped"] if d["why"] == "coalesced"]
    assert drop["session"] == queued["id"]
    assert drop["event"] == f"commit {three[:12]} on main (post-commit hook)"
    assert drop["replaced"].startswith("commit ") and drop["replaced"] != drop["event"]
    wait_for(lambda: settled(limited), timeout=90, what="both runs")
    assert len(sessions()) == 2
    shown = json.loads(ctl("sessions", "show", queued["id"], "--json", check=True).stdout)
    assert shown["triggered_by"] == drop["event"]
    assert git(repo, "show", f"prodigy-{queued['id']}:last.txt") == "three\n"  # the newest


def test_a_burst_of_commits_makes_one_run_and_one_more_from_the_newest(
    daemon: Path, repo: Path, tmp_path: Path
):
    """Jobs may run side by side (the default), but the runs of one workflow's trigger on
    one branch do not: while one runs, the next waits queued and takes each newer commit,
    so the burst is two runs, the second on its last commit. Side by side, each commit
    started its own run from the same tip, and their merges conflicted."""
    gate = tmp_path / "gate"
    hook(repo, {".prodigy/workflows/gated.yml": gated(gate)})
    try:
        commit_files(repo, {"1.txt": "1"}, "one")
        wait_for(lambda: by_status("running"), timeout=60, what="the first run")
        for number in ("two", "three", "four"):
            commit_files(repo, {f"{number}.txt": number}, number)
        wait_for(
            lambda: len([d for d in triggers_ls(repo)["dropped"] if d["why"] == "coalesced"]) == 2,
            timeout=60,
            what="the later commits taken by the queued run",
        )
        assert [s["status"] for s in sessions()].count("queued") == 1
        assert len(by_status("running")) == 1  # though the daemon could run more at once
    finally:
        gate.touch()
    wait_for(lambda: settled(daemon), timeout=90, what="both runs")
    first, second = sorted(sessions(), key=lambda s: s["started_at"] or "")
    assert git(repo, "show", f"prodigy-{first['id']}:last.txt") == "one\n"
    assert git(repo, "show", f"prodigy-{second['id']}:last.txt") == "four\n"


def test_a_tags_run_neither_waits_for_the_branchs_runs_nor_is_taken_over(
    daemon: Path, repo: Path, tmp_path: Path
):
    """A tag's firing has no branch: its run (on the checked-out branch) starts beside the
    branch's running run, and a commit meanwhile does not take its place."""
    gate = tmp_path / "gate"
    tagged = gated(gate).replace("commit: {merge: ask}", 'ref: {branches: [main], tags: ["v*"]}')
    commit_files(repo, {".prodigy/workflows/gated.yml": tagged}, "add trigger")
    ctl("watch", "add", cwd=repo, check=True)
    try:
        git(repo, "tag", "v1")
        wait_for(lambda: len(by_status("running")) == 1, timeout=60, what="v1's run")
        git(repo, "tag", "v2")
        wait_for(lambda: len(by_status("running")) == 2, timeout=60, what="v2's run beside it")
    finally:
        gate.touch()
    wait_for(lambda: settled(daemon), timeout=90, what="the runs")
    reasons = sorted(shown["triggered_by"] for shown in map(_shown, sessions()))
    assert [reason.split(" created")[0] for reason in reasons] == ["tag v1", "tag v2"]


def _shown(session: dict) -> dict:
    return json.loads(ctl("sessions", "show", session["id"], "--json", check=True).stdout)


def test_the_queue_cap_and_the_rate_limit_drop_runs_and_say_so(
    limited: Path, repo: Path, tmp_path: Path
):
    gate = tmp_path / "gate"
    hook(repo, {".prodigy/workflows/gated.yml": gated(gate)})
    try:  # one branch each: nothing to coalesce
        for branch, then in (("a", "running"), ("b", "queued"), ("c", None)):
            git(repo, "checkout", "-q", "-b", branch, "main")
            commit_files(repo, {f"{branch}.txt": branch}, branch)
            wait_for(
                lambda: not any((limited / "spool").glob("*.event")),
                timeout=60,
                what=f"the commit on {branch} handled",
            )
            if then is not None:
                wait_for(
                    lambda s=then: by_status(s), timeout=60, what=f"the run on {branch} {then}"
                )
    finally:
        gate.touch()
    wait_for(lambda: settled(limited), timeout=90, what="the runs")
    for branch in ("d", "e"):
        git(repo, "checkout", "-q", "-b", branch, "main")
        commit_files(repo, {f"{branch}.txt": branch}, branch)
        wait_for(lambda: settled(limited), timeout=90, what=f"the commit on {branch} handled")
    assert sorted(s["branch"] for s in sessions()) == ["a", "b", "d"]
    dropped = [d for d in triggers_ls(repo)["dropped"] if d["why"] != "prodigy_commit"]
    assert [(d["why"], d["branch"]) for d in dropped] == [
        ("queue_full", "c"),
        ("rate_limited", "e"),
    ]
    assert "(triggers.max_queued = 1)" in dropped[0]["message"]
    assert "started 3 runs in the last 3600s (triggers.max_runs = 3)" in dropped[1]["message"]
    listed = ctl("triggers", "ls", cwd=repo, check=True).stdout
    assert "queue_full: gated.yml: commit " in listed and "rate_limited: gated.yml" in listed


def test_the_newest_commit_the_rate_limit_refused_runs_once_the_window_allows(
    isolated: Path, repo: Path, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setenv("PRODIGY_TRIGGERS__MAX_RUNS", "1")
    monkeypatch.setenv("PRODIGY_TRIGGERS__PER_SECONDS", "2")
    ctl("daemon", "start", check=True)
    try:
        hook(repo, {".prodigy/workflows/stamp.yml": STAMP_ANY})
        for message in ("one", "two", "three"):  # a burst: one run, then refused
            commit_files(repo, {f"{message}.txt": message}, message)
        wait_for(
            lambda: len(sessions()) == 2 and settled(isolated),
            timeout=90,
            what="the first run and the trailing one",
        )
        runs = sorted(sessions(), key=lambda s: s["started_at"])
        assert all(s["status"] == "completed" for s in runs)
        three = git(repo, "log", "-1", "--format=%H", "--grep=^three$", "main").strip()
        # the burst's last commit ran (`two`, refused before it, was taken over)
        assert _shown(runs[1])["triggered_by"] == f"commit {three[:12]} on main (post-commit hook)"
        dropped = [d for d in triggers_ls(repo)["dropped"] if d["why"] == "rate_limited"]
        assert len(dropped) == 2
        assert "the newest such event runs once the limit lets one in" in dropped[-1]["message"]
    finally:
        ctl("daemon", "stop", check=True)
