"""`prodigyctl watch`: the real daemon watching real repositories, no hooks installed
(except where a test says so): plain git commands fire `on: commit` and `on: ref`."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

from tests.cli import ctl, json_lines, wait_for
from tests.gitutil import commit_files, git
from tests.integration.test_triggers import sessions, settled

#: Writes the event it was started by into a file and commits it.
STAMP = """
name: stamp
on:
  commit: {branches: [main]}
commands:
  - shell: "echo '${trigger.event} ${trigger.branch} ${trigger.after}' > seen.txt"
  - shell: "git add seen.txt && git commit -qm stamp"
"""

REFS = """
name: refs
on:
  ref: {branches: ["x*"], tags: ["v*"], merge: never}
commands:
  - shell: >-
      echo '${trigger.event} ${trigger.ref} [${trigger.before}] [${trigger.after}]
      [${trigger.branch}] [${trigger.tag}]' > ref.txt
  - shell: "git add ref.txt && git commit -qm ref"
"""

#: Fires on branches named marker*: a run of it says the watcher got that far.
MARKER = (
    "name: marker\non:\n  ref: {branches: ['marker*'], merge: never}\ncommands:\n"
    "  - shell: 'true'\n"
)


def watch_ls() -> list[dict]:
    return json.loads(ctl("watch", "ls", "--json", check=True).stdout)["repositories"]


def shown(session_id: str) -> dict:
    return json.loads(ctl("sessions", "show", session_id, "--json", check=True).stdout)


def named(name: str) -> list[dict]:
    return [s for s in sessions() if s["workflow_name"] == name]


def events(kind: str) -> list[dict]:
    return json_lines(ctl("events", "ls", "--json", "--type", kind, check=True).stdout)


def plain_commit(repo: Path, files: dict[str, str], message: str) -> str:
    """A commit no hook sees (none is installed): only the watcher can."""
    return commit_files(repo, files, message)


def test_a_plain_commit_in_a_watched_repository_fires_once(daemon: Path, repo: Path):
    commit_files(repo, {".prodigy/workflows/stamp.yml": STAMP}, "add trigger")
    added = json.loads(ctl("watch", "add", "--json", cwd=repo / ".prodigy", check=True).stdout)
    assert added["added"] is True and added["path"] == str(repo.resolve())
    assert [(r["path"], r["status"]) for r in watch_ls()] == [(str(repo.resolve()), "watching")]
    sha = plain_commit(repo, {"src/a.py": "a\n"}, "add a")
    wait_for(lambda: sessions() and settled(daemon), timeout=60, what="the triggered run")
    [run] = sessions()
    assert run["status"] == "awaiting_merge" and run["branch"] == "main"
    assert shown(run["id"])["triggered_by"] == f"commit {sha[:12]} on main (ref watcher)"
    assert git(repo, "show", f"prodigy-{run['id']}:seen.txt") == f"commit main {sha}\n"
    again = ctl("watch", "add", str(repo), check=True).stdout
    assert again.startswith("already watching ")


def test_update_ref_and_tags_fire_on_ref_with_their_variables(daemon: Path, repo: Path):
    commit_files(
        repo,
        {".prodigy/workflows/refs.yml": REFS, ".prodigy/workflows/marker.yml": MARKER},
        "add triggers",
    )
    ctl("watch", "add", cwd=repo, check=True)
    listed = ctl("triggers", "ls", cwd=repo, check=True).stdout
    assert "refs.yml: ref on x* tags v* merge never" in listed  # its tag filter shown too
    sha = git(repo, "rev-parse", "HEAD").strip()
    git(repo, "update-ref", "refs/heads/x1", sha)
    wait_for(lambda: sessions() and settled(daemon), timeout=60, what="the created run")
    [created] = sessions()
    assert created["branch"] == "x1"
    text = git(repo, "show", f"prodigy-{created['id']}:ref.txt")
    assert text == f"created refs/heads/x1 [] [{sha}] [x1] []\n"
    git(repo, "tag", "v1.0")
    git(repo, "update-ref", "-d", "refs/heads/x1")
    wait_for(lambda: len(sessions()) == 3 and settled(daemon), timeout=60, what="two more runs")
    by_reason = {shown(s["id"])["triggered_by"]: s for s in sessions()}
    tag = by_reason[f"tag v1.0 created at {sha[:12]} (ref watcher)"]
    deleted = by_reason[f"branch x1 deleted at {sha[:12]} (ref watcher)"]
    assert tag["branch"] == deleted["branch"] == "main"  # no branch of their own: main's
    assert git(repo, "show", f"prodigy-{tag['id']}:ref.txt") == (
        f"created refs/tags/v1.0 [] [{sha}] [] [v1.0]\n"
    )
    assert git(repo, "show", f"prodigy-{deleted['id']}:ref.txt") == (
        f"deleted refs/heads/x1 [{sha}] [] [x1] []\n"
    )
    git(repo, "branch", "other")  # matches no glob: nothing runs
    git(repo, "pack-refs", "--all")  # files vanish, no ref moves: nothing runs
    git(repo, "branch", "marker")  # seen after those (in order): its run says they were
    wait_for(lambda: len(sessions()) >= 4 and settled(daemon), timeout=60, what="the marker")
    assert sorted(s["workflow_name"] for s in sessions()) == ["marker", "refs", "refs", "refs"]


def test_a_commit_seen_by_a_hook_and_the_watcher_runs_once(daemon: Path, repo: Path):
    commit_files(
        repo,
        {".prodigy/workflows/stamp.yml": STAMP, ".prodigy/workflows/marker.yml": MARKER},
        "triggers",
    )
    ctl("hooks", "install", cwd=repo, check=True)
    ctl("watch", "add", cwd=repo, check=True)
    commit_files(repo, {"src/a.py": "a\n"}, "add a")
    git(repo, "branch", "marker")  # the watcher handles a repository's refs in order
    wait_for(
        lambda: named("marker") and named("stamp") and settled(daemon),
        timeout=60,
        what="both sightings handled",
    )
    assert len(named("stamp")) == 1
    listed = json.loads(ctl("triggers", "ls", "--json", cwd=repo, check=True).stdout)
    assert [d for d in listed["dropped"] if d["why"] != "prodigy_commit"] == []


def test_prodigys_own_merge_into_the_watched_branch_fires_nothing(daemon: Path, repo: Path):
    auto = STAMP.replace("branches: [main]", "branches: [main], merge: auto")
    commit_files(repo, {".prodigy/workflows/stamp.yml": auto}, "add trigger")
    ctl("watch", "add", cwd=repo, check=True)
    plain_commit(repo, {"a.txt": "a"}, "user commit")
    wait_for(lambda: sessions() and settled(daemon), timeout=90, what="the triggered run")
    assert git(repo, "log", "-1", "--format=%s", "main").startswith("Merge prodigy session")

    def merge_dropped() -> list[dict]:
        listed = json.loads(ctl("triggers", "ls", "--json", cwd=repo, check=True).stdout)
        return [d for d in listed["dropped"] if "prodigy's merge of session" in d["message"]]

    wait_for(merge_dropped, timeout=60, what="the merge seen and dropped")
    [run] = sessions()
    assert run["status"] == "completed"
    assert merge_dropped()[0]["branch"] == "main"


def test_a_workflow_file_edited_or_broken_is_picked_up_without_a_restart(daemon: Path, repo: Path):
    folder = repo / ".prodigy" / "workflows"
    other = STAMP.replace("branches: [main]", "branches: [other]")
    commit_files(repo, {".prodigy/workflows/stamp.yml": other}, "a trigger for another branch")
    ctl("watch", "add", cwd=repo, check=True)
    (folder / "broken.yml").write_text("on: [commit, pull]\ncommands: [{shell: x}]\n")
    wait_for(lambda: events("workflow_invalid"), timeout=60, what="the broken file reported")
    [invalid] = events("workflow_invalid")
    assert invalid["workflow"] == str(folder / "broken.yml")
    assert "unknown event 'pull'" in invalid["message"]
    [watched] = watch_ls()
    errors = {Path(w["path"]).name: w["error"] for w in watched["workflows"]}
    assert errors["stamp.yml"] is None and "unknown event 'pull'" in errors["broken.yml"]
    listed = json.loads(ctl("triggers", "ls", "--json", cwd=repo, check=True).stdout)
    assert "unknown event 'pull'" in listed["workflows"][0]["error"]
    (folder / "stamp.yml").write_text(STAMP)  # not committed: the file as it is counts
    wait_for(lambda: events("workflow_loaded"), timeout=60, what="the edit reloaded")
    assert events("workflow_loaded")[0]["workflow"] == str(folder / "stamp.yml")
    sha = plain_commit(repo, {"src/a.py": "a\n"}, "add a")
    wait_for(lambda: sessions() and settled(daemon), timeout=60, what="the triggered run")
    [run] = sessions()
    assert shown(run["id"])["triggered_by"] == f"commit {sha[:12]} on main (ref watcher)"
    (folder / "broken.yml").unlink()
    wait_for(lambda: events("workflow_removed"), timeout=60, what="the removal reported")


def test_the_watch_list_survives_a_restart(daemon: Path, repo: Path):
    commit_files(repo, {".prodigy/workflows/stamp.yml": STAMP}, "add trigger")
    ctl("watch", "add", cwd=repo, check=True)
    ctl("daemon", "stop", check=True)
    ctl("daemon", "start", check=True)
    # at once: the new daemon sets its watch up after `ready`, and still fires this commit
    sha = plain_commit(repo, {"src/a.py": "a\n"}, "after the restart")
    assert [r["path"] for r in watch_ls()] == [str(repo.resolve())]
    wait_for(lambda: sessions() and settled(daemon), timeout=60, what="the triggered run")
    [run] = sessions()
    assert shown(run["id"])["triggered_by"] == f"commit {sha[:12]} on main (ref watcher)"


#: Writes every variable of the event it was started by into a file and commits it.
BEFORE_AFTER = STAMP.replace("${trigger.after}", "${trigger.before} ${trigger.after}")


def test_refs_moved_while_the_daemon_was_stopped_fire_once_each(daemon: Path, repo: Path):
    commit_files(
        repo,
        {
            ".prodigy/workflows/stamp.yml": BEFORE_AFTER,
            ".prodigy/workflows/refs.yml": REFS,
            ".prodigy/workflows/marker.yml": MARKER,
        },
        "add triggers",
    )
    ctl("watch", "add", cwd=repo, check=True)
    old = git(repo, "rev-parse", "HEAD").strip()
    ctl("daemon", "stop", check=True)
    plain_commit(repo, {"src/a.py": "a\n"}, "first while stopped")
    sha = plain_commit(repo, {"src/b.py": "b\n"}, "second while stopped")
    git(repo, "tag", "v1")
    git(repo, "branch", "other")  # matches no trigger: nothing runs
    ctl("daemon", "start", check=True)
    wait_for(lambda: len(sessions()) == 2 and settled(daemon), timeout=60, what="two runs")
    [stamp] = named("stamp")  # the branch's newest commit: one run for both
    assert git(repo, "show", f"prodigy-{stamp['id']}:seen.txt") == f"commit main {old} {sha}\n"
    [tag] = named("refs")
    assert git(repo, "show", f"prodigy-{tag['id']}:ref.txt") == (
        f"created refs/tags/v1 [] [{sha}] [] [v1]\n"
    )
    ctl("daemon", "stop", check=True)
    ctl("daemon", "start", check=True)  # acted on: nothing fires again
    git(repo, "branch", "marker")
    wait_for(lambda: named("marker") and settled(daemon), timeout=60, what="the marker")
    assert sorted(s["workflow_name"] for s in sessions()) == ["marker", "refs", "stamp"]


def test_prodigys_merge_while_the_daemon_drains_fires_nothing_after_a_restart(
    daemon: Path, repo: Path
):
    """The merge happens after `daemon stop --drain` stopped the watch: the stopping daemon
    still recognises it as its own, which the next one could not."""
    auto = STAMP.replace("branches: [main]", "branches: [main], merge: auto").replace(
        "commands:\n",
        "commands:\n  - shell: \"until grep -q 'shutting down (draining)'"
        ' $PRODIGY_HOME/logs/prodigyd.log; do sleep 0.05; done"\n',
    )
    commit_files(
        repo,
        {".prodigy/workflows/stamp.yml": auto, ".prodigy/workflows/marker.yml": MARKER},
        "add triggers",
    )
    ctl("watch", "add", cwd=repo, check=True)
    plain_commit(repo, {"a.txt": "a"}, "user commit")
    wait_for(lambda: named("stamp"), timeout=60, what="the triggered run submitted")
    ctl("daemon", "stop", "--drain", check=True)
    assert git(repo, "log", "-1", "--format=%s", "main").startswith("Merge prodigy session")
    ctl("daemon", "start", check=True)
    git(repo, "branch", "marker")  # after main in the watcher's order: its run says main was seen
    wait_for(lambda: named("marker") and settled(daemon), timeout=60, what="the marker")
    assert [s["status"] for s in named("stamp")] == ["completed"]


def test_a_removed_repository_is_reported_and_watch_rm_stops_watching(
    daemon: Path, repo: Path, tmp_path: Path
):
    commit_files(repo, {".prodigy/workflows/stamp.yml": STAMP}, "add trigger")
    gone = tmp_path / "gone"
    subprocess.run(["git", "clone", "-q", str(repo), str(gone)], check=True)
    for where in (repo, gone):
        ctl("watch", "add", str(where), check=True)
    shutil.rmtree(gone)
    wait_for(
        lambda: any(r["status"] == "missing" for r in watch_ls()),
        timeout=60,
        what="the removed repository reported",
    )
    missing = next(r for r in watch_ls() if r["status"] == "missing")
    assert missing["problem"] == f"{gone.resolve()} no longer exists"
    assert "missing   " in ctl("watch", "ls", check=True).stdout
    log = (daemon / "logs" / "prodigyd.log").read_text()
    assert f"watched repository {gone.resolve()}: {gone.resolve()} no longer exists" in log
    assert ctl("watch", "rm", str(gone), check=True).stdout.startswith("no longer watching")
    assert ctl("watch", "rm", cwd=repo, check=True).returncode == 0
    assert watch_ls() == []
    refused = ctl("watch", "rm", cwd=repo)
    assert refused.returncode == 3 and "is not watched" in refused.stderr
    other = tmp_path / "other"
    subprocess.run(["git", "clone", "-q", str(repo), str(other)], check=True)
    commit_files(other, {".prodigy/workflows/marker.yml": MARKER}, "marker")
    ctl("watch", "add", str(other), check=True)
    plain_commit(repo, {"src/a.py": "a\n"}, "no longer watched")
    git(other, "branch", "marker")
    wait_for(lambda: named("marker") and settled(daemon), timeout=60, what="the other repo")
    assert named("stamp") == []


def test_watch_add_refuses_a_folder_outside_any_repository(daemon: Path, tmp_path: Path):
    plain = tmp_path / "plain"
    plain.mkdir()
    refused = ctl("watch", "add", str(plain))
    assert refused.returncode == 2
    assert f"error[E3001]: Not a git repository: {plain}" in refused.stderr  # errors.md's code
    missing = ctl("watch", "add", str(tmp_path / "nowhere"))
    assert missing.returncode == 2
    assert f"No such folder: {tmp_path / 'nowhere'}" in missing.stderr  # not "not a repository"
    assert watch_ls() == []


def test_a_branch_made_from_a_fetched_commit_is_no_new_commit(daemon: Path, repo: Path):
    """`git checkout -b x origin/x` commits nothing: the commit was already the tip of a
    remote-tracking ref, which the watcher knows too."""
    feature = (
        "name: feature\non:\n  commit: {branches: ['feature*'], merge: never}\n"
        "commands:\n  - shell: 'true'\n"
    )
    commit_files(
        repo,
        {".prodigy/workflows/feature.yml": feature, ".prodigy/workflows/marker.yml": MARKER},
        "add triggers",
    )
    fetched = git(repo, "commit-tree", "HEAD^{tree}", "-p", "HEAD", "-m", "fetched").strip()
    git(repo, "update-ref", "refs/remotes/origin/feature", fetched)  # as a fetch leaves it
    ctl("watch", "add", cwd=repo, check=True)
    git(repo, "branch", "feature", "origin/feature")
    git(repo, "branch", "marker")  # seen after the branch (in order): its run says it was
    wait_for(lambda: named("marker") and settled(daemon), timeout=60, what="the marker")
    assert named("feature") == []
    git(
        repo,
        "update-ref",
        "refs/heads/feature",
        git(repo, "commit-tree", "HEAD^{tree}", "-p", fetched, "-m", "mine").strip(),
    )
    wait_for(lambda: named("feature") and settled(daemon), timeout=60, what="a real commit")
