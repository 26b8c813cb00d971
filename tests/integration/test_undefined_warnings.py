"""A mistyped `${var}` is a warning where users look: `run` (through the daemon),
`validate` and `run --dry-run`, with `--json` carrying it in a `warnings` list."""

from __future__ import annotations

import json
import os
from pathlib import Path

from tests.cli import ctl

TYPO = "env:\n  issue: '42'\ncommands:\n  - shell: 'echo fixing ${isue}'\n"
WARNING = "${isue} is not defined"


def test_run_validate_and_dry_run_warn_with_where_and_did_you_mean(
    daemon: Path, repo: Path, tmp_path: Path
):
    wf = tmp_path / "wf.yml"
    wf.write_text(TYPO)
    where = f"{wf}:4:25: {WARNING}"
    done = ctl("run", str(wf), "-y", cwd=repo)
    assert done.returncode == 0, done.stdout + done.stderr  # a warning, not an error
    assert f"warning: {where}" in done.stderr and "did you mean ${issue}?" in done.stderr
    detached = json.loads(ctl("run", str(wf), "--detach", "--json", cwd=repo).stdout)
    assert any(where in warning for warning in detached["warnings"])

    checked = json.loads(ctl("validate", str(wf), "--json").stdout)[0]
    assert checked["valid"] and any(where in warning for warning in checked["warnings"])
    assert where in ctl("validate", str(wf)).stdout

    planned = ctl("run", str(wf), "--dry-run", "--json", cwd=repo)
    assert any(where in warning for warning in json.loads(planned.stdout)["warnings"])
    assert f"warning: {where}" in ctl("run", str(wf), "--dry-run", cwd=repo).stderr


def test_an_upper_case_name_set_in_the_callers_environment_is_not_warned(
    daemon: Path, repo: Path, tmp_path: Path
):
    wf = tmp_path / "wf.yml"
    wf.write_text("- shell: 'echo ${MY_SETTING}'\n")
    assert "${MY_SETTING} is not defined" in ctl("validate", str(wf)).stdout
    env = {**os.environ, "MY_SETTING": "on"}
    assert "warning" not in ctl("validate", str(wf), env=env).stdout
    done = ctl("run", str(wf), "-y", cwd=repo, env=env)
    assert done.returncode == 0 and "MY_SETTING" not in done.stderr


def test_strict_variables_refuse_the_submission_before_any_session(
    daemon: Path, repo: Path, tmp_path: Path
):
    """The run used to make a session and a worktree and fail at step 1; the daemon knows
    at submission: a usage error (exit 2) naming file:line and the variable."""
    wf = tmp_path / "wf.yml"
    wf.write_text("strict_variables: true\ncommands:\n  - shell: 'echo ${undefined_var}'\n")
    done = ctl("run", str(wf), "-y", cwd=repo)
    assert done.returncode == 2, done.stdout + done.stderr
    assert done.stderr.startswith(f"error[E1005]: {wf}:3:18: ${{undefined_var}} is not defined")
    assert json.loads(ctl("sessions", "ls", "--json").stdout) == []
    given = ctl("run", str(wf), "-y", "--param", "undefined_var=x", cwd=repo)
    assert given.returncode == 0, given.stdout + given.stderr
