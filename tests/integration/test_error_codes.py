"""Error codes as a user and a script see them: `error[E1002]: ...` on stderr and `"code":
"E1002"` under --json, through the real prodigyctl and prodigyd (docs/errors.md)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from prodigyctl.exitcodes import EXIT_CONFLICT, EXIT_NOT_FOUND, EXIT_USAGE
from tests.cli import ctl
from tests.gitutil import git
from tests.integration.test_protocol import Raw


def _json_error(stderr: str) -> dict:
    return json.loads(stderr)["error"]


def test_a_workflow_typo_is_e1002_in_text_and_json(daemon: Path, repo: Path, tmp_path: Path):
    wf = tmp_path / "fix.yml"
    wf.write_text("commands:\n  - shell: 'true'\n  - shel: 'echo hi'\n")
    done = ctl("run", str(wf), "-y", cwd=repo)
    assert done.returncode == EXIT_USAGE
    assert done.stderr.startswith(f"error[E1002]: {wf}:3:5 (commands[1]): this step has no command")
    assert "did you mean 'shell' instead of 'shel'?" in done.stderr
    as_json = ctl("run", str(wf), "-y", "--json", cwd=repo)
    assert as_json.returncode == EXIT_USAGE
    error = _json_error(as_json.stderr)
    assert (error["code"], error["kind"], error["rpc_code"]) == ("E1002", "workflow", -32001)
    assert error["location"]["line"] == 3 and error["message"].startswith(
        "this step has no command"
    )


def test_yaml_syntax_and_a_missing_file_have_their_own_codes(
    daemon: Path, repo: Path, tmp_path: Path
):
    broken = tmp_path / "broken.yml"
    broken.write_text("commands:\n  - shell: 'unclosed\n")
    done = ctl("run", str(broken), "-y", cwd=repo)
    assert done.returncode == EXIT_USAGE and done.stderr.startswith("error[E1001]: "), done.stderr
    missing = ctl("run", str(tmp_path / "nope.yml"), "-y", "--json", cwd=repo)
    assert missing.returncode == EXIT_USAGE
    assert _json_error(missing.stderr)["code"] == "E1004"


def test_a_bad_workflow_parameter_is_e1009(daemon: Path, repo: Path, tmp_path: Path):
    wf = tmp_path / "wf.yml"
    wf.write_text("parameters:\n  count: {type: number}\ncommands:\n  - shell: 'true'\n")
    done = ctl("run", str(wf), "-y", "--param", "count=many", "--json", cwd=repo)
    assert done.returncode == EXIT_USAGE
    error = _json_error(done.stderr)
    assert error["code"] == "E1009" and "parameter 'count'" in error["message"], error


def test_run_dry_run_reports_the_loader_error_with_its_code(repo: Path, tmp_path: Path):
    wf = tmp_path / "fix.yml"
    wf.write_text("commands:\n  - shel: 'echo hi'\n")
    done = ctl("run", str(wf), "--dry-run", cwd=repo)
    assert done.returncode == EXIT_USAGE
    assert done.stderr.startswith(f"error[E1002]: {wf}:2:5"), done.stderr
    assert _json_error(ctl("run", str(wf), "--dry-run", "--json").stderr)["code"] == "E1002"


def test_an_unknown_or_ambiguous_session_id(daemon: Path, repo: Path, tmp_path: Path):
    missing = ctl("sessions", "show", "workflow-1", "--json")
    assert missing.returncode == EXIT_NOT_FOUND
    error = _json_error(missing.stderr)
    assert (error["code"], error["kind"], error["rpc_code"]) == ("E6001", "not_found", -32003)
    text = ctl("logs", "workflow-1")
    assert text.stderr.startswith("error[E6001]: no session 'workflow-1'")
    wf = tmp_path / "wf.yml"
    wf.write_text("- shell: 'true'\n")
    for _ in range(2):
        ctl("run", str(wf), "-y", cwd=repo, check=True)
    ambiguous = ctl("sessions", "show", "workflow-1")
    assert ambiguous.returncode == EXIT_USAGE
    assert ambiguous.stderr.startswith("error[E6002]: 'workflow-1' starts more than one id")
    assert "Invalid params" not in ambiguous.stderr  # the protocol's words stay in it


def test_a_merge_refused_for_uncommitted_changes_is_e3004(daemon: Path, repo: Path, tmp_path: Path):
    wf = tmp_path / "wf.yml"
    wf.write_text("- shell: 'echo theirs > README.md && git commit -qam theirs'\n")
    ctl("run", str(wf), cwd=repo, check=True)  # no tty, no -y: it awaits the merge
    session_id = json.loads(ctl("sessions", "ls", "--json").stdout)[0]["id"]
    (repo / "README.md").write_text("mine, not committed\n")
    refused = ctl("merge", session_id)
    assert refused.returncode == EXIT_CONFLICT
    assert refused.stderr.startswith("error[E3004]: Your checkout has uncommitted changes")
    as_json = _json_error(ctl("merge", session_id, "--json").stderr)
    assert (as_json["code"], as_json["kind"]) == ("E3004", "merge_refused")
    assert (repo / "README.md").read_text() == "mine, not committed\n"
    assert git(repo, "status", "--porcelain") == " M README.md\n"


def test_the_json_rpc_error_data_carries_the_code(daemon: Path):
    raw = Raw(daemon)
    assert raw.send(b"{not json\n")["error"]["data"]["code"] == "E2005"
    assert raw.call("no.such.method")["error"]["data"]["code"] == "E2005"
    assert raw.call("sessions.list", {"limit": "many"})["error"]["data"]["code"] == "E0003"
    missing = raw.call("sessions.show", {"session_id": "workflow-1"})["error"]
    assert (missing["code"], missing["data"]["code"]) == (-32003, "E6001")
    raw.close()


def test_client_side_errors_have_codes_too(tmp_path: Path):
    usage = ctl("run", "--bogus")
    assert usage.returncode == EXIT_USAGE
    assert "Usage: prodigyctl run" in usage.stderr
    assert "error[E0002]: No such option '--bogus'" in usage.stderr
    assert _json_error(ctl("run", "--bogus", "--json").stderr)["code"] == "E0002"
    too_long = tmp_path / ("x" * 120)  # no socket path that long: no daemon can be reached
    env = {**os.environ, "PRODIGY_HOME": str(too_long)}
    unreachable = ctl("sessions", "ls", "--json", env=env)
    assert unreachable.returncode == EXIT_USAGE  # an environment the user fixes
    assert _json_error(unreachable.stderr)["code"] == "E2001"


@pytest.mark.parametrize("home", ["file", "file/sub", "/proc/prodigy-home"])
@pytest.mark.parametrize("command", [("run", "wf.yml", "-y"), ("daemon", "start")])
def test_an_unusable_prodigy_home_is_one_error_naming_it(
    tmp_path: Path, home: str, command: tuple[str, ...]
):
    (tmp_path / "file").write_text("not a folder\n")
    (tmp_path / "wf.yml").write_text("- shell: 'true'\n")
    where = tmp_path / home
    env = {**os.environ, "PRODIGY_HOME": str(where)}
    done = ctl(*command, env=env, cwd=tmp_path)
    assert done.returncode == EXIT_USAGE
    why = f"{tmp_path / 'file'} is not a folder"
    if home.startswith("/"):  # under a folder that takes no new ones
        why = f"{home}: No such file or directory"
    assert done.stderr == (
        f"error[E5004]: $PRODIGY_HOME {where} cannot be used: {why}\n"
        "hint: set PRODIGY_HOME to a folder you can write to (it is made when missing)\n"
    )
    as_json = ctl(*command, "--json", env=env, cwd=tmp_path)
    assert as_json.returncode == EXIT_USAGE
    error = _json_error(as_json.stderr)
    assert (error["code"], error["message"]) == (
        "E5004",
        f"$PRODIGY_HOME {where} cannot be used: {why}",
    )


def test_a_daemon_that_cannot_start_is_e2002(isolated: Path):
    isolated.mkdir(exist_ok=True)
    (isolated / "config.toml").write_text("[claude\n")  # prodigyd refuses a broken config
    done = ctl("sessions", "ls")
    assert done.returncode == EXIT_USAGE  # prodigyd refused its config: the user's to fix
    assert done.stderr.startswith("error[E2002]: prodigyd failed to start"), done.stderr


def test_explain_prints_a_codes_entry():
    shown = ctl("explain", "e3004")
    assert shown.returncode == 0
    assert shown.stdout.startswith("E3004: merge refused: your checkout has changes")
    assert "prodigyctl merge ID" in shown.stdout
    entry = json.loads(ctl("explain", "E1002", "--json").stdout)
    assert entry["code"] == "E1002" and entry["title"] == "unknown field"
    assert json.loads(ctl("explain", "1002", "--json").stdout) == entry  # the number alone
    unknown = ctl("explain", "E9999")
    assert unknown.returncode == EXIT_NOT_FOUND and "no error code 'E9999'" in unknown.stderr
    unknown = ctl("explain", "E9999", "--json")
    assert unknown.returncode == EXIT_NOT_FOUND
    assert _json_error(unknown.stderr)["code"] == "E6000", unknown.stderr


def test_a_run_prodigy_stopped_ends_with_the_code(daemon: Path, repo: Path, tmp_path: Path):
    wf = tmp_path / "slow.yml"
    wf.write_text("- shell: 'sleep 30'\n")
    spent = ctl("run", str(wf), "-y", "--budget-time", "1s", cwd=repo)
    assert spent.returncode == 1
    ended = [line for line in spent.stdout.splitlines() if line.startswith("error[")]
    assert len(ended) == 1 and ended[0].startswith("error[E4006]: session workflow-"), spent.stdout
    assert "budget exceeded" in ended[0]
    escape = tmp_path / "escape.yml"
    escape.write_text(  # with a variable: found as it is written, not at load
        "env: {UP: '..'}\ncommands:\n- write_file: {path: '${UP}/outside.txt', content: x}\n"
    )
    refused = ctl("run", str(escape), "-y", "--json", cwd=repo)
    assert refused.returncode == 1
    final = json.loads(refused.stdout.splitlines()[-1])
    assert final["event_type"] == "session_finished" and final["code"] == "E4002", final
    assert "escapes the worktree" in final["error"]
    repeated = ctl("run", str(escape), "-y", "-n", "2", "--json", cwd=repo)  # engine/runs.py
    final = json.loads(repeated.stdout.splitlines()[-1])
    assert final["code"] == "E4002" and "iteration 1/2 failed" in final["error"], final
    plain = tmp_path / "plain.yml"
    plain.write_text("- shell: 'exit 3'\n")
    failed = json.loads(ctl("run", str(plain), "-y", "--json", cwd=repo).stdout.splitlines()[-1])
    assert failed["status"] == "failed" and "code" not in failed  # the workflow's own failure
