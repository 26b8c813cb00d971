"""`checkpoints ls|show|delete`: what a resume continues from, shown and removed."""

from __future__ import annotations

import json
import os
from pathlib import Path

from tests.cli import ctl, json_lines

WORKFLOW = "- shell: 'echo ran >> {log}'\n- shell: 'test -n \"$FIXED\"'\n"


def test_checkpoints_are_listed_shown_and_deleted_with_care(
    daemon: Path, repo: Path, tmp_path: Path
):
    log = tmp_path / "runs.log"
    wf = tmp_path / "wf.yml"
    wf.write_text(WORKFLOW.format(log=log))
    failed = ctl("run", str(wf), "-y", "--json", cwd=repo)
    assert failed.returncode == 1
    session_id = json_lines(failed.stdout)[-1]["session_id"]

    [row] = json.loads(ctl("checkpoints", "ls", "--json", check=True).stdout)
    assert (row["id"], row["status"], row["resumable"], row["phases"]) == (
        session_id,
        "failed",
        True,
        ["main"],
    )
    shown = json.loads(ctl("checkpoints", "show", session_id[:-2], "--json", check=True).stdout)
    [main] = shown["checkpoints"]
    assert [step["step_index"] for step in main["completed_steps"]] == [0]
    assert "1/2 steps" in ctl("checkpoints", "show", session_id, check=True).stdout

    refused = ctl("checkpoints", "delete", session_id)
    assert refused.returncode == 4 and "--force" in refused.stderr
    assert ctl("checkpoints", "delete", session_id, "--force", check=True).stdout.startswith(
        f"deleted the checkpoints of {session_id}"
    )
    assert json.loads(ctl("checkpoints", "ls", "--json", check=True).stdout) == []

    resumed = ctl("resume", session_id, "-y", cwd=repo, env={**os.environ, "FIXED": "1"})
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert log.read_text() == "ran\nran\n"  # no checkpoint: the first step ran again
    done = ctl("checkpoints", "delete", session_id, check=True)  # completed: no --force
    assert done.stdout.startswith("deleted the checkpoints")


def test_resume_from_a_step_runs_it_and_the_rest_again(daemon: Path, repo: Path, tmp_path: Path):
    log = tmp_path / "runs.log"
    wf = tmp_path / "wf.yml"
    wf.write_text(
        f"- shell: 'echo one >> {log}'\n"
        f"- shell: 'echo two >> {log}'\n  name: second\n"
        "- shell: 'test -n \"$FIXED\"'\n"
    )
    failed = ctl("run", str(wf), "-y", "--json", cwd=repo)
    assert failed.returncode == 1
    session_id = json_lines(failed.stdout)[-1]["session_id"]
    missing = ctl("resume", session_id, "--from", "nope")
    assert missing.returncode == 3 and "no step 'nope' to resume from" in missing.stderr
    fixed = {**os.environ, "FIXED": "1"}
    done = ctl("resume", session_id, "--from", "second", "-y", cwd=repo, env=fixed)
    assert done.returncode == 0, done.stdout + done.stderr
    assert log.read_text().split() == ["one", "two", "two"]  # from step 2 on, not step 1


def test_a_map_phase_reads_as_its_items_finished_not_as_journal_records():
    from prodigyctl.commands.checkpoints import _phase_line

    phase = {"completed_steps": [], "total_steps": None, "records": {"items": 1, "result": 9}}
    assert _phase_line(phase) == "9 items finished"
    reduce = {"completed_steps": [{}], "total_steps": 2, "records": {"rewind": 1}}
    assert _phase_line(reduce) == "1/2 steps, 1 rewind (resume --from)"
