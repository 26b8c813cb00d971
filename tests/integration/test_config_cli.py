"""`prodigyctl config ...` as users meet it: output, JSON shapes, exit codes, the real file.

The plain command functions are called directly: they never talk to the daemon, and
the click group only passes its options on to them.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from prodigyctl.commands import config as cmd
from prodigyd import config as cfg
from tests.cli import ctl

ENV_NAMES = [f"PRODIGY_{key.upper().replace('.', '__')}" for key in cfg.describe(cfg.Config())]


@pytest.fixture(autouse=True)
def no_config_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Whatever PRODIGY_* settings the developer's shell has, these tests start from none."""
    for name in ENV_NAMES:
        monkeypatch.delenv(name, raising=False)


def run(capsys: pytest.CaptureFixture[str], rc: int) -> tuple[int, str, str]:
    out, err = capsys.readouterr()
    return rc, out, err


def test_path_prints_the_file_in_prodigy_home(isolated: Path, capsys: pytest.CaptureFixture[str]):
    assert run(capsys, cmd.path()) == (0, f"{isolated / 'config.toml'}\n", "")


def test_show_without_a_file_lists_every_default(
    isolated: Path, capsys: pytest.CaptureFixture[str]
):
    rc, out, err = run(capsys, cmd.show(as_json=False))
    assert (rc, err) == (0, "")
    lines = out.splitlines()
    assert lines[0] == f"config file: {isolated / 'config.toml'} (does not exist: defaults apply)"
    assert lines[1].split() == ["KEY", "VALUE", "SOURCE"]
    rows = {key: rest for key, *rest in (re.split(r"\s{2,}", line) for line in lines[2:])}
    assert rows["max_concurrent_jobs"] == ["4", "default"]
    assert rows["auto_resume"] == ["true", "default"]
    assert rows["claude.model"] == ["(not set)", "default"]
    assert rows["claude.extra_args"] == ["[]", "default"]
    assert len(rows) == 31  # 10 top-level and [claude] keys (timeout among them), 9 in
    # [worktree_config], 3 in [triggers], 5 in [retention], 4 in [executor]
    assert rows["executor.kind"] == ["local", "default"]
    assert rows["executor.shipping"] == ["bundle", "default"]
    assert rows["executor.repository"] == ["(not set)", "default"]


def test_show_json_gives_value_and_source_per_key(
    isolated: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
):
    assert cmd.set_(key="claude.model", value="opus") == 0
    monkeypatch.setenv("PRODIGY_MAX_CONCURRENT_JOBS", "7")
    capsys.readouterr()
    rc, out, _ = run(capsys, cmd.show(as_json=True))
    shown = json.loads(out)
    assert rc == 0
    assert shown["file"] == str(isolated / "config.toml")
    assert shown["exists"] is True
    assert shown["keys"]["claude.model"] == {"value": "opus", "source": "file"}
    assert shown["keys"]["max_concurrent_jobs"] == {
        "value": 7,
        "source": "env:PRODIGY_MAX_CONCURRENT_JOBS",
    }
    assert shown["keys"]["shutdown_grace_seconds"] == {"value": 30.0, "source": "default"}


def test_get_prints_the_value_or_json(capsys: pytest.CaptureFixture[str]):
    assert run(capsys, cmd.get(key="max_concurrent_jobs", as_json=False)) == (0, "4\n", "")
    rc, out, _ = run(capsys, cmd.get(key="claude.binary", as_json=True))
    assert (rc, json.loads(out)) == (
        0,
        {"key": "claude.binary", "value": None, "source": "default"},
    )


def test_get_unknown_key_exits_2_with_a_suggestion(capsys: pytest.CaptureFixture[str]):
    rc, out, err = run(capsys, cmd.get(key="claude.modl", as_json=False))
    assert (rc, out) == (2, "")
    assert err.startswith(
        "error[E5003]: unknown key claude.modl; did you mean claude.model?\nhint: "
    )


def test_set_writes_the_file_and_says_how_to_apply(
    isolated: Path, capsys: pytest.CaptureFixture[str]
):
    rc, out, err = run(capsys, cmd.set_(key="claude.extra_args", value='["--max-turns", "3"]'))
    assert (rc, err) == (0, "")
    assert out == (
        'claude.extra_args = ["--max-turns", "3"] '
        "(restart prodigyd to apply: prodigyctl daemon stop)\n"
    )
    assert (isolated / "config.toml").read_text() == (
        '[claude]\nextra_args = [\n    "--max-turns",\n    "3",\n]\n'
    )
    assert (
        run(capsys, cmd.get(key="claude.extra_args", as_json=False))[1] == '["--max-turns", "3"]\n'
    )


def test_set_warns_when_an_env_var_overrides_the_file(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setenv("PRODIGY_AUTO_RESUME", "true")
    rc, out, err = run(capsys, cmd.set_(key="auto_resume", value="false"))
    assert rc == 0
    assert out.startswith("auto_resume = false (")
    assert err == "note: PRODIGY_AUTO_RESUME is set here and overrides the config file\n"


@pytest.mark.parametrize(
    ("key", "value", "error"),
    [
        (
            "max_concurrent_jobs",
            "lots",
            "error[E5002]: max_concurrent_jobs: expected an integer, got 'lots'\n",
        ),
        (
            "shutdown_grace_seconds",
            "-1",
            "error[E5002]: shutdown_grace_seconds: Input should be greater than or equal to 0 (got -1.0)\n",
        ),
        (
            "max_concurent_jobs",
            "2",
            "error[E5003]: unknown key max_concurent_jobs; did you mean max_concurrent_jobs?\n",
        ),
    ],
)
def test_set_rejects_bad_input_with_exit_2(
    isolated: Path, capsys: pytest.CaptureFixture[str], key: str, value: str, error: str
):
    rc, out, err = run(capsys, cmd.set_(key=key, value=value))
    assert (rc, out) == (2, "")
    assert err.startswith(error)
    assert not (isolated / "config.toml").exists()


def test_unset_restores_the_default(isolated: Path, capsys: pytest.CaptureFixture[str]):
    cmd.set_(key="log_level", value="debug")
    cmd.set_(key="auto_resume", value="no")
    capsys.readouterr()
    rc, out, err = run(capsys, cmd.unset(key="log_level"))
    assert (rc, err) == (0, "")
    assert out == "log_level unset (restart prodigyd to apply: prodigyctl daemon stop)\n"
    assert (isolated / "config.toml").read_text() == "auto_resume = false\n"
    rc, out, _ = run(capsys, cmd.get(key="log_level", as_json=True))
    assert json.loads(out) == {"key": "log_level", "value": "INFO", "source": "default"}


def test_unset_unknown_key_exits_2(capsys: pytest.CaptureFixture[str]):
    rc, _, err = run(capsys, cmd.unset(key="nope"))
    assert rc == 2
    assert err.startswith("error[E5003]: unknown key nope")


def test_broken_file_makes_show_exit_2_naming_file_and_line(
    isolated: Path, capsys: pytest.CaptureFixture[str]
):
    isolated.mkdir()
    (isolated / "config.toml").write_text("[claude\nmodel = 'x'\n")
    rc, out, err = run(capsys, cmd.show(as_json=True))
    assert (rc, out) == (2, "")
    assert err.startswith(f"error[E5002]: invalid TOML in {isolated / 'config.toml'}: ")
    assert "(at line 1, column 8)" in err
    assert "Traceback" not in err


def test_config_commands_through_the_real_prodigyctl(isolated: Path):
    assert ctl("config", "set", "max_concurrent_jobs", "3", check=True).stdout.startswith(
        "max_concurrent_jobs = 3 ("
    )
    shown = json.loads(ctl("config", "show", "--json", check=True).stdout)
    assert shown["keys"]["max_concurrent_jobs"] == {"value": 3, "source": "file"}
    assert ctl("config", "get", "max_concurrent_jobs", check=True).stdout == "3\n"
    assert ctl("config", "set", "claude.extra_args", "--verbose", check=True).stdout.startswith(
        'claude.extra_args = ["--verbose"]'
    )
    assert ctl("config", "path", check=True).stdout == f"{isolated / 'config.toml'}\n"
    ctl("config", "unset", "max_concurrent_jobs", check=True)
    bad = ctl("config", "get", "max_concurent_jobs")
    assert bad.returncode == 2 and "did you mean max_concurrent_jobs?" in bad.stderr


def test_under_json_a_config_error_is_an_error_object(isolated: Path):
    unknown = ctl("config", "get", "nosuch.key", "--json")
    assert (unknown.returncode, unknown.stdout) == (2, "")
    error = json.loads(unknown.stderr)["error"]
    assert (error["code"], error["kind"], error["message"]) == (
        "E5003",
        "config",
        "unknown key nosuch.key",
    )
    isolated.mkdir()
    (isolated / "config.toml").write_text("[claude\n")
    broken = ctl("config", "show", "--json")
    assert broken.returncode == 2
    assert json.loads(broken.stderr)["error"]["code"] == "E5002"


#: A new user's file: a wrong type and an unknown table, each of which the daemon refuses.
TWO_PROBLEMS = 'max_concurrent_jobs = "4"\n[claud]\nmodel = "x"\n'


def two_problems(home: Path) -> Path:
    """The config file of `home` (a PRODIGY_HOME not made yet), holding TWO_PROBLEMS."""
    home.mkdir()
    path = home / "config.toml"
    path.write_text(TWO_PROBLEMS)
    return path


def test_a_file_with_two_problems_is_repaired_one_command_at_a_time(
    isolated: Path, capsys: pytest.CaptureFixture[str]
):
    path = two_problems(isolated)
    rc, out, err = run(capsys, cmd.unset(key="claud"))
    assert (rc, out) == (0, "claud unset (restart prodigyd to apply: prodigyctl daemon stop)\n")
    assert (
        err
        == f"warning: {path}:1: max_concurrent_jobs: Input should be a valid integer (got '4')\n"
    )
    assert path.read_text() == 'max_concurrent_jobs = "4"\n'
    rc, out, err = run(capsys, cmd.set_(key="max_concurrent_jobs", value="3"))
    assert (rc, out, err) == (0, f"max_concurrent_jobs = 3 ({cmd.RESTART_NOTE})\n", "")
    assert path.read_text() == "max_concurrent_jobs = 3\n"


def test_set_and_unset_over_other_problems_warn_of_what_is_left(
    isolated: Path, capsys: pytest.CaptureFixture[str]
):
    path = two_problems(isolated)
    rc, out, err = run(capsys, cmd.set_(key="max_concurrent_jobs", value="3"))
    assert (rc, out) == (0, f"max_concurrent_jobs = 3 ({cmd.RESTART_NOTE})\n")
    assert err == f"warning: {path}:3: unknown key claud; did you mean claude?\n"
    path.write_text(TWO_PROBLEMS)
    rc, out, err = run(capsys, cmd.unset(key="max_concurrent_jobs"))
    assert (rc, out) == (0, f"max_concurrent_jobs unset ({cmd.RESTART_NOTE})\n")
    assert err == f"warning: {path}:1: unknown key claud; did you mean claude?\n"
    assert path.read_text() == '[claud]\nmodel = "x"\n'


def test_set_of_a_bad_value_is_refused_over_other_problems(
    isolated: Path, capsys: pytest.CaptureFixture[str]
):
    path = two_problems(isolated)
    rc, out, err = run(capsys, cmd.set_(key="max_concurrent_jobs", value="0"))
    assert (rc, out) == (2, "")
    assert err == (
        "error[E5002]: max_concurrent_jobs: Input should be greater than or equal to 1 (got 0)\n"
    )
    assert path.read_text() == TWO_PROBLEMS


def test_a_daemon_refusing_its_config_says_why_to_start_and_run(isolated: Path, tmp_path: Path):
    (isolated / "logs").mkdir(parents=True)
    (isolated / "logs" / "prodigyd.out").write_text("what an earlier daemon printed\n")
    path = isolated / "config.toml"
    path.write_text("auto_resume = true\nmax_concurrent_jobs = \n")
    workflow = tmp_path / "wf.yml"
    workflow.write_text('commands:\n  - shell: "true"\n')
    for args in (("daemon", "start"), ("run", str(workflow))):
        done = ctl(*args, cwd=tmp_path)
        assert done.returncode == 2, done.stderr  # for the user to fix, not a daemon down
        first, said, pointer = done.stderr.splitlines()
        assert first == "error[E2002]: prodigyd failed to start:"
        assert said.startswith(f"  error[E5002]: invalid TOML in {path}: ")
        assert said.endswith("(at line 2, column 23)")
        logs = isolated / "logs"
        assert pointer == f"see {logs / 'prodigyd.log'} and {logs / 'prodigyd.out'}"
