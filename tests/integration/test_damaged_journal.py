"""A journal.db that is no database any more, as a user found it: the daemon starts on a
fresh one, says so on every list, and collects nothing the old jobs left, so that putting
the old journal back makes a failed session resumable again (docs/daemon.md, "A damaged
journal")."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tests.cli import ctl
from tests.gitutil import git


def test_a_set_aside_journal_loses_no_session_put_back(daemon: Path, repo: Path, tmp_path: Path):
    flag = tmp_path / "ok.flag"
    wf = tmp_path / "wf.yml"
    wf.write_text(f"- shell: 'echo made > made.txt'\n- shell: 'test -f {flag}'\n")
    failed = ctl("run", str(wf), "-y", cwd=repo)
    assert failed.returncode == 1, failed.stdout + failed.stderr
    [listed] = json.loads(ctl("sessions", "ls", "--json", check=True).stdout)
    session = json.loads(ctl("sessions", "show", listed["id"], "--json", check=True).stdout)
    worktree = Path(session["worktree"])
    assert worktree.is_dir()

    ctl("daemon", "stop", check=True)
    journal = daemon / "journal.db"
    shutil.copy(journal, tmp_path / "journal-copy.db")
    with journal.open("r+b") as file:
        file.write(b"NOT A DATABASE" * 5)  # its header: SQLite will not open it

    listed = ctl("ps", check=True)  # starts a daemon on a fresh journal
    assert listed.stdout.strip() == "No jobs."
    assert "the job journal was unreadable and was set aside as" in listed.stderr
    assert "warning:" in ctl("status", check=True).stderr
    gc = json.loads(ctl("worktree", "gc", "--json", check=True).stdout)
    assert str(worktree) in gc["held"] and str(worktree) not in gc["removed"]
    assert worktree.is_dir() and (worktree / "made.txt").exists()
    assert session["branch"] in git(repo, "branch", "--list", "prodigy-*")

    ctl("daemon", "stop", check=True)
    shutil.copy(tmp_path / "journal-copy.db", journal)  # the user's working copy
    for kept in daemon.glob("journal.db.corrupt-*"):
        kept.unlink()  # looked at
    flag.write_text("")
    resumed = ctl("resume", session["id"], "-y", cwd=repo)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert git(repo, "show", "main:made.txt") == "made\n"
    assert "warning" not in ctl("ps", check=True).stderr


def test_a_named_worktree_a_set_aside_journal_may_own_is_not_made_again(
    daemon: Path, repo: Path, tmp_path: Path
):
    wf = tmp_path / "named.yml"
    wf.write_text(
        "worktree: mine\ncommands: [{shell: 'echo draft > draft.txt'}, {shell: 'false'}]\n"
    )
    assert ctl("run", str(wf), "-y", cwd=repo).returncode == 1
    [listed] = json.loads(ctl("sessions", "ls", "--json", check=True).stdout)
    shown = ctl("sessions", "show", listed["id"], "--json", check=True).stdout
    worktree = Path(json.loads(shown)["worktree"])
    ctl("daemon", "stop", check=True)
    with (daemon / "journal.db").open("r+b") as file:
        file.write(b"NOT A DATABASE" * 5)
    again = ctl("run", str(wf), "-y", cwd=repo)  # a fresh journal: `mine` is nobody's
    assert again.returncode == 1, again.stdout + again.stderr  # the session fails to start
    assert "a job of a journal set aside or lost may own it: it is kept" in again.stdout
    assert (worktree / "draft.txt").read_text() == "draft\n"  # the failed run's work


@pytest.mark.parametrize("lost", ["emptied", "deleted"])
def test_a_lost_journal_removes_no_worktree_and_says_what_it_holds(
    daemon: Path, repo: Path, tmp_path: Path, lost: str
):
    """A journal.db emptied or deleted while the daemon was stopped: the fresh one knows no
    job, and the collector, which took every worktree for nobody's, holds them; status and
    `ps` name the note listing them and what to do. Once the note is deleted, a worktree
    with work nobody committed is still kept."""
    wf = tmp_path / "wf.yml"
    wf.write_text("- shell: 'echo precious > precious.txt'\n- shell: 'false'\n")
    assert ctl("run", str(wf), "-y", cwd=repo).returncode == 1
    [listed] = json.loads(ctl("sessions", "ls", "--json", check=True).stdout)
    shown = ctl("sessions", "show", listed["id"], "--json", check=True).stdout
    worktree = Path(json.loads(shown)["worktree"])
    ctl("daemon", "stop", check=True)
    journal = daemon / "journal.db"
    for leftover in daemon.glob("journal.db-*"):
        leftover.unlink()
    if lost == "emptied":
        journal.write_bytes(b"")
    else:
        journal.unlink()

    listed_now = ctl("ps", check=True)  # starts a daemon on a fresh journal
    assert listed_now.stdout.strip() == "No jobs."
    [note] = daemon.glob("journal.db.lost-*")
    assert f"the job journal {journal} was missing or empty" in listed_now.stderr
    assert f"delete {note} to end this" in listed_now.stderr
    assert f"  {worktree}\n" in note.read_text()
    status = ctl("daemon", "status", check=True)
    assert f"warning: prodigyd's store: the job journal {journal} was missing" in status.stderr
    gc = json.loads(ctl("worktree", "gc", "--json", check=True).stdout)
    assert str(worktree) in gc["held"] and str(worktree) not in gc["removed"]
    assert (worktree / "precious.txt").read_text() == "precious\n"
    assert "was missing or empty" in (daemon / "logs" / "prodigyd.log").read_text()

    note.unlink()  # looked at, but the worktree left as it was
    shown_gc = ctl("worktree", "gc", check=True).stdout
    assert f"held {worktree}: owned by no job of the journal, but it may hold work" in shown_gc
    assert (worktree / "precious.txt").read_text() == "precious\n"
    assert "warning" not in ctl("ps", check=True).stderr
