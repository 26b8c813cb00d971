"""`prodigyctl dlq ...` against the real daemon: entries with their items, and a retry that
really re-runs the items and merges their work."""

from __future__ import annotations

import csv
import json
from pathlib import Path

from tests.cli import ctl
from tests.gitutil import git

WORKFLOW = """
name: commit-validation
mode: mapreduce
setup:
  - shell: |
      echo '{"items":[{"id":1,"commit":true},{"id":2,"commit":false},{"id":3,"commit":true}]}' > work-items.json
map:
  input: work-items.json
  json_path: "$.items[*]"
  agent_template:
    - shell: |
        if [ "${item.commit}" = "true" ] || [ -f FIXED ]; then
          echo ${item.id} > file${item.id}.txt && git add file${item.id}.txt && git commit -qm "item ${item.id}"
        fi
      commit_required: true
"""


def test_dlq_lists_shows_exports_and_retries_dead_letters(daemon: Path, repo: Path, tmp_path: Path):
    wf = tmp_path / "wf.yml"
    wf.write_text(WORKFLOW)
    run = ctl("run", str(wf), "-y", cwd=repo)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "1 failed" in run.stdout and "prodigyctl dlq ls" in run.stdout
    job = json.loads(ctl("sessions", "ls", "--json", check=True).stdout)[0]["id"]

    entries = json.loads(ctl("dlq", "ls", job, "--json", check=True).stdout)
    assert [(e["item_id"], e["item_data"]) for e in entries] == [
        ("item_1", {"id": 2, "commit": False})
    ]
    assert entries[0]["error_type"] == "CommitValidationFailed"
    assert entries[0]["first_attempt"] <= entries[0]["last_attempt"]
    table = ctl("dlq", "ls", check=True).stdout
    assert "item_1" in table and "CommitValidationFailed" in table
    shown = ctl("dlq", "show", job, "item_1", check=True).stdout
    assert "attempt 1 at" in shown and "No changes were committed" in shown
    assert '\n  in: shell: if [ "false" = "true" ]' in shown  # the step that failed
    stats = json.loads(ctl("dlq", "stats", "--json", check=True).stdout)
    assert stats["total"] == 1 and stats["by_error_type"] == {"CommitValidationFailed": 1}
    exported = tmp_path / "dlq.csv"
    ctl("dlq", "export", job, "--format", "csv", "-o", str(exported), check=True)
    rows = list(csv.DictReader(exported.open()))
    assert rows[0]["item_id"] == "item_1" and json.loads(rows[0]["item"]) == {
        "id": 2,
        "commit": False,
    }

    nothing = ctl("dlq", "retry", job, "--eligible-only", cwd=repo)  # a commit check: not
    assert nothing.returncode == 0  # a failure a retry fixes by itself, so none to retry
    assert f"no DLQ entries of job {job} to retry" in nothing.stdout

    again = ctl("dlq", "retry", job, "-y", cwd=repo)  # still failing: another attempt
    assert again.returncode == 1 and "0 successful, 1 failed" in again.stdout
    said = again.stdout + again.stderr
    assert f"its only item failed; it is back in the DLQ of {job}: `prodigyctl dlq retry " in said
    assert f"failed items are in the DLQ: prodigyctl dlq ls {job}\n" in said  # not the retry's
    assert "Resume with" not in said  # resuming the retry would run nothing new
    assert "worktree kept" not in said  # a dead end: its worktree went back to the pool
    retry_job = json.loads(ctl("sessions", "ls", "--json", check=True).stdout)[0]["id"]
    assert [r["owner"] for r in json.loads(ctl("worktree", "ls", "--json").stdout)].count(
        retry_job
    ) == 0
    resumed = ctl("resume", retry_job, "-y", cwd=repo)
    assert resumed.returncode != 0 and f"`prodigyctl dlq retry {job}` runs them" in resumed.stderr
    listed = {r["id"]: r for r in json.loads(ctl("sessions", "ls", "--json", check=True).stdout)}
    assert listed[retry_job]["resumable"] is False and listed[job]["resumable"] is False
    newest = ctl("resume", "-y", cwd=repo)  # no id: the dead end is passed over
    assert newest.returncode != 0 and retry_job not in newest.stdout + newest.stderr
    assert "no failed or interrupted session of repository" in newest.stderr
    [entry] = json.loads(ctl("dlq", "ls", job, "--json", check=True).stdout)
    assert entry["failure_count"] == 2 and entry["failure_history"][1]["attempt_number"] == 2

    (repo / "FIXED").write_text("yes\n")
    git(repo, "add", "FIXED")
    git(repo, "commit", "-qm", "fix the cause")
    fixed = ctl("dlq", "retry", job[:-2], "--item", "item_1", "-y", cwd=repo)  # a prefix
    assert fixed.returncode == 0, fixed.stdout + fixed.stderr
    assert f"retrying 1 item of {job} as job" in fixed.stdout  # its whole id
    assert git(repo, "show", "main:file2.txt") == "2\n"  # the retried item's work landed
    assert json.loads(ctl("dlq", "ls", job, "--json", check=True).stdout) == []


def test_purge_needs_yes_off_a_terminal_and_deletes(daemon: Path, repo: Path, tmp_path: Path):
    wf = tmp_path / "wf.yml"
    wf.write_text(WORKFLOW)
    ctl("run", str(wf), "-y", cwd=repo, check=True)
    job = json.loads(ctl("sessions", "ls", "--json", check=True).stdout)[0]["id"]
    refused = ctl("dlq", "purge", job)
    assert refused.returncode == 2 and "needs --yes" in refused.stderr
    done = ctl("dlq", "purge", job, "--older-than", "1d", "--yes", check=True)
    assert done.stdout.strip() == "purged 0 entries"  # the entry is younger than a day
    done = ctl("dlq", "purge", job, "--yes", "--json", check=True)
    assert json.loads(done.stdout) == {"purged": 1}
    missing = ctl("dlq", "show", job, "item_1")
    assert missing.returncode == 3 and "no DLQ entry for item_1" in missing.stderr


def test_every_dlq_command_says_a_job_that_does_not_exist(daemon: Path, repo: Path):
    for command in (
        ("ls", "nosuch"),
        ("stats", "nosuch"),
        ("export", "nosuch"),
        ("purge", "nosuch", "--yes"),
        ("show", "nosuch", "item_1"),
        ("retry", "nosuch"),
    ):
        done = ctl("dlq", *command, cwd=repo)
        assert (done.returncode, done.stdout) == (3, ""), command
        assert done.stderr.startswith("error[E6001]: no session 'nosuch'"), command
        if command[0] != "export":  # the one that writes a file's format, not --json
            as_json = ctl("dlq", *command, "--json", cwd=repo)
            assert as_json.returncode == 3, command
            assert json.loads(as_json.stderr)["error"]["code"] == "E6001", command
    job = ctl("exec", "true", "--detach", cwd=repo, check=True).stdout.strip()
    tag = job[-6:]  # a job with no dead letters, named as `run` shows it: all empty
    assert json.loads(ctl("dlq", "ls", tag, "--json", check=True).stdout) == []
    assert json.loads(ctl("dlq", "stats", tag, "--json", check=True).stdout)["total"] == 0
    assert json.loads(ctl("dlq", "export", tag, check=True).stdout) == []
    purged = ctl("dlq", "purge", tag, "--yes", "--json", check=True)
    assert json.loads(purged.stdout) == {"purged": 0}
