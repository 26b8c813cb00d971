"""A damaged checkpoint journal, as a user met it: a resume that would run again steps the
journal recorded as done (a step that committed commits again) is refused, naming the file
and the line, until forced; the torn last line a crash leaves is still skipped; a FIFO in a
journal's place is refused, never waited on (docs/daemon.md, "A damaged checkpoint
journal")."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import pytest

from tests.cli import ctl, wait_for
from tests.gitutil import git

#: Steps 1 and 2 commit, step 3 fails until its flag exists.
STEPS = """
- shell: "echo 1 >> f.txt && git add f.txt && git commit -qm c1"
- shell: "echo 2 >> f.txt && git add f.txt && git commit -qm c2"
- shell: "test -f {flag}"
"""


def _failed_session(repo: Path, tmp_path: Path) -> tuple[str, Path]:
    """A session that committed in steps 1 and 2 and failed at 3, the daemon stopped; its
    id and its checkpoint journal."""
    wf = tmp_path / "wf.yml"
    wf.write_text(STEPS.format(flag=tmp_path / "go"))
    assert ctl("run", str(wf), "-y", cwd=repo).returncode == 1
    [listed] = json.loads(ctl("sessions", "ls", "--json", check=True).stdout)
    ctl("daemon", "stop", check=True)
    [journal] = (tmp_path / "prodigy-home" / "state" / listed["id"] / "checkpoints").iterdir()
    return listed["id"], journal


def _commits(repo: Path, session_id: str) -> list[str]:
    return git(repo, "log", "--format=%s", f"prodigy-{session_id}").split()


def _damage(journal: Path, how: str) -> str:
    """Damage the journal as the trial did; the place the refusal names."""
    lines = journal.read_text().splitlines(keepends=True)
    if how == "a middle line":
        journal.write_text(lines[0] + '{"garbage": tru\n' + "".join(lines[2:]))
        return f"line 2 of {journal} is not a whole record"
    if how == "emptied":
        journal.write_bytes(b"")
        return f"{journal} is empty"
    journal.write_bytes(os.urandom(4096).replace(b"\n", b"") + b"\n")  # random bytes
    return f"line 1 of {journal} is not a whole record"


@pytest.mark.parametrize("how", ["a middle line", "emptied", "random bytes"])
def test_a_damaged_journal_refuses_the_resume_naming_the_line_until_forced(
    daemon: Path, repo: Path, tmp_path: Path, how: str
):
    session_id, journal = _failed_session(repo, tmp_path)
    named = _damage(journal, how)

    refused = ctl("resume", session_id, "-y", cwd=repo)
    assert refused.returncode == 1, refused.stdout + refused.stderr
    assert f"error[E5000]: the checkpoints of session {session_id} are damaged" in refused.stderr
    assert named in refused.stderr and "would run again steps" in refused.stderr
    assert f"prodigyctl resume {session_id} --force" in refused.stderr
    assert _commits(repo, session_id) == ["c2", "c1", "initial"]  # nothing ran again

    (tmp_path / "go").touch()
    forced = ctl("resume", session_id, "-y", "--force", cwd=repo)
    assert forced.returncode == 0, forced.stdout + forced.stderr
    kept = [copy.read_bytes() for copy in journal.parent.glob(f"{journal.name}.corrupt-*")]
    assert len(kept) == (how != "emptied")  # as it was (an empty one holds nothing to keep)


def test_a_journal_forced_past_its_damage_resumes_plainly_afterwards(
    daemon: Path, repo: Path, tmp_path: Path
):
    """The forced resume goes on with the journal's whole records: the next failure's
    resume is not refused for the damage again."""
    session_id, journal = _failed_session(repo, tmp_path)
    _damage(journal, "a middle line")
    assert ctl("resume", session_id, "-y", "--force", cwd=repo).returncode == 1  # step 3 again
    again = ctl("resume", session_id, "-y", cwd=repo)
    assert again.returncode == 1 and "E5000" not in again.stderr, again.stderr
    assert "skipping already completed step 2" in again.stdout


def test_a_torn_last_line_is_what_a_crash_leaves_and_the_resume_goes_on(
    daemon: Path, repo: Path, tmp_path: Path
):
    session_id, journal = _failed_session(repo, tmp_path)
    with journal.open("a") as fh:
        fh.write('{"execution_state": {"current_st')  # a crash mid-append
    (tmp_path / "go").touch()
    resumed = ctl("resume", session_id, "-y", cwd=repo)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert "skipping already completed step 2" in resumed.stdout
    merged = git(repo, "log", "--format=%s", "main").split()
    assert (merged.count("c1"), merged.count("c2")) == (1, 1)


@pytest.mark.timeout(120)  # a FIFO opened the plain way holds the daemon: every call hangs
def test_a_fifo_in_a_journals_place_is_refused_and_the_daemon_goes_on(
    daemon: Path, repo: Path, tmp_path: Path
):
    session_id, journal = _failed_session(repo, tmp_path)
    journal.unlink()
    os.mkfifo(journal)
    refused = ctl("resume", session_id, "-y", cwd=repo)
    assert refused.returncode == 1
    assert f"{journal} cannot be read: not a regular file" in refused.stderr
    forced = ctl("resume", session_id, "-y", "--force", cwd=repo)
    assert forced.returncode == 1
    said = f"checkpoint journal {journal} cannot be read: not a regular file"
    assert f"session {session_id} failed: {said}" in forced.stdout + forced.stderr
    assert ctl("ps", check=True).returncode == 0  # the daemon still answers


def test_a_killed_daemons_job_with_a_damaged_journal_is_not_resumed_by_itself(
    daemon: Path, repo: Path, tmp_path: Path
):
    """The next daemon's automatic resume refuses what `prodigyctl resume` refuses: the
    job fails, saying why, and its committed steps do not run again."""
    started, gate = tmp_path / "started", tmp_path / "gate"
    wf = tmp_path / "wf.yml"
    wait = f"touch {started}; while [ ! -f {gate} ]; do sleep 0.05; done"
    wf.write_text(STEPS.replace('"test -f {flag}"', f'"true"\n- shell: "{wait}"'))
    session_id = ctl("run", str(wf), "-y", "--detach", cwd=repo, check=True).stdout.strip()
    wait_for(started.exists, what="step 3 to start")
    os.kill(int((daemon / "prodigyd.pid").read_text()), signal.SIGKILL)
    gate.touch()
    [journal] = (daemon / "state" / session_id / "checkpoints").iterdir()
    named = _damage(journal, "a middle line")
    shown = json.loads(ctl("sessions", "show", session_id, "--json", check=True).stdout)
    assert shown["status"] == "failed" and named in shown["error"], shown["error"]
    assert _commits(repo, session_id)[:2] == ["c2", "c1"]
    assert len(_commits(repo, session_id)) == 3  # the base commit, c1, c2: none again
