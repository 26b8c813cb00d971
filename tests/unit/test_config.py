"""prodigyd.config against real files in the test's own PRODIGY_HOME."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from prodigyd import config as cfg
from prodigyd import paths
from prodigyd.config import Config, ConfigError

NO_ENV: dict[str, str] = {}


@pytest.fixture
def config_file(isolated: Path) -> Path:
    isolated.mkdir(parents=True, exist_ok=True)
    return isolated / "config.toml"


def test_config_file_lives_in_prodigy_home(isolated: Path):
    assert paths.config_file() == isolated / "config.toml"


def test_defaults_when_there_is_no_file(config_file: Path):
    assert not config_file.exists()
    config = cfg.load(env=NO_ENV)
    assert config == Config()
    assert cfg.describe(config) == {
        "max_concurrent_jobs": 4,
        "auto_resume": True,
        "shutdown_grace_seconds": 30.0,
        "log_level": "INFO",
        "event_loop": "uvloop",
        "claude.binary": None,
        "claude.skip_permissions": True,
        "claude.model": None,
        "claude.extra_args": [],
        "claude.timeout": 1800.0,
        "worktree_config.parallel_worktrees": 8,
        "worktree_config.spare": 1,
        "worktree_config.allocation_strategy": "pooled",
        "worktree_config.idle_timeout_secs": 1800.0,
        "worktree_config.max_age_secs": 0.0,
        "worktree_config.cleanup_on_complete": True,
        "worktree_config.keep_failed": False,
        "worktree_config.max_disk_mb": 0,
        "worktree_config.gc_interval_secs": 600.0,
        "triggers.max_runs": 10,
        "triggers.per_seconds": 60.0,
        "triggers.max_queued": 20,
        "retention.max_age_days": 30.0,
        "retention.resumable_max_age_days": 90.0,
        "retention.max_total_mb": 2048.0,
        "retention.daemon_log_mb": 10.0,
        "retention.interval_secs": 3600.0,
        "executor.kind": "local",
        "executor.address": None,
        "executor.shipping": "bundle",
        "executor.repository": None,
    }


def test_trigger_limits_from_the_environment_and_a_bad_one_named():
    config = cfg.load(env={"PRODIGY_TRIGGERS__MAX_RUNS": "0", "PRODIGY_TRIGGERS__MAX_QUEUED": "5"})
    assert (config.triggers.max_runs, config.triggers.max_queued) == (0, 5)
    with pytest.raises(ConfigError) as caught:
        cfg.load(env={"PRODIGY_TRIGGERS__PER_SECONDS": "0"})
    assert "PRODIGY_TRIGGERS__PER_SECONDS" in caught.value.render()
    assert "triggers.per_seconds" in caught.value.render()


def test_retention_from_the_environment_in_fractions_and_a_negative_one_named():
    config = cfg.load(
        env={"PRODIGY_RETENTION__MAX_AGE_DAYS": "0.5", "PRODIGY_RETENTION__INTERVAL_SECS": "0"}
    )
    assert (config.retention.max_age_days, config.retention.interval_secs) == (0.5, 0.0)
    with pytest.raises(ConfigError) as caught:
        cfg.load(env={"PRODIGY_RETENTION__MAX_TOTAL_MB": "-1"})
    assert "PRODIGY_RETENTION__MAX_TOTAL_MB: retention.max_total_mb" in caught.value.message


def test_file_values(config_file: Path):
    config_file.write_text(
        "max_concurrent_jobs = 2\nauto_resume = false\nshutdown_grace_seconds = 5\n"
        'log_level = "debug"\nevent_loop = "asyncio"\n'
        '[claude]\nbinary = "/opt/claude"\nskip_permissions = false\nmodel = "opus"\n'
        'extra_args = ["--max-turns", "3"]\n'
    )
    config = cfg.load(env=NO_ENV)
    assert config.max_concurrent_jobs == 2
    assert config.auto_resume is False
    assert config.shutdown_grace_seconds == 5.0
    assert config.log_level == "DEBUG"
    assert config.event_loop == "asyncio"
    assert config.claude.binary == "/opt/claude"
    assert config.claude.skip_permissions is False
    assert config.claude.model == "opus"
    assert config.claude.extra_args == ["--max-turns", "3"]


def test_env_beats_file_beats_default(config_file: Path):
    config_file.write_text(
        'max_concurrent_jobs = 2\nauto_resume = false\n[claude]\nmodel = "opus"\n'
    )
    env = {"PRODIGY_MAX_CONCURRENT_JOBS": "8", "PRODIGY_CLAUDE__MODEL": "sonnet"}
    config = cfg.load(env=env)
    assert config.max_concurrent_jobs == 8  # env over file
    assert config.claude.model == "sonnet"  # env over file, nested
    assert config.auto_resume is False  # file over default
    assert config.log_level == "INFO"  # default
    assert cfg.sources(env) == {
        "max_concurrent_jobs": "env:PRODIGY_MAX_CONCURRENT_JOBS",
        "auto_resume": "file",
        "shutdown_grace_seconds": "default",
        "log_level": "default",
        "event_loop": "default",
        "claude.binary": "default",
        "claude.skip_permissions": "default",
        "claude.model": "env:PRODIGY_CLAUDE__MODEL",
        "claude.extra_args": "default",
        "claude.timeout": "default",
        **{key: "default" for key in cfg.describe(config) if key.startswith("worktree_config.")},
        **{key: "default" for key in cfg.describe(config) if key.startswith("triggers.")},
        **{key: "default" for key in cfg.describe(config) if key.startswith("retention.")},
        **{key: "default" for key in cfg.describe(config) if key.startswith("executor.")},
    }


def test_load_reads_the_process_environment_by_default(
    config_file: Path, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setenv("PRODIGY_SHUTDOWN_GRACE_SECONDS", "1.5")
    assert cfg.load().shutdown_grace_seconds == 1.5


@pytest.mark.parametrize(
    ("variable", "text", "key", "expected"),
    [
        ("PRODIGY_AUTO_RESUME", "FALSE", "auto_resume", False),
        ("PRODIGY_AUTO_RESUME", "no", "auto_resume", False),
        ("PRODIGY_AUTO_RESUME", "0", "auto_resume", False),
        ("PRODIGY_AUTO_RESUME", "off", "auto_resume", False),
        ("PRODIGY_AUTO_RESUME", "Yes", "auto_resume", True),
        ("PRODIGY_CLAUDE__SKIP_PERMISSIONS", "1", "claude.skip_permissions", True),
        ("PRODIGY_CLAUDE__SKIP_PERMISSIONS", "true", "claude.skip_permissions", True),
        ("PRODIGY_MAX_CONCURRENT_JOBS", " 12 ", "max_concurrent_jobs", 12),
        ("PRODIGY_SHUTDOWN_GRACE_SECONDS", "2.5", "shutdown_grace_seconds", 2.5),
        ("PRODIGY_SHUTDOWN_GRACE_SECONDS", "0", "shutdown_grace_seconds", 0.0),
        ("PRODIGY_LOG_LEVEL", "warning", "log_level", "WARNING"),
        ("PRODIGY_EVENT_LOOP", "asyncio", "event_loop", "asyncio"),
        ("PRODIGY_EXECUTOR__KIND", "dask", "executor.kind", "dask"),
        ("PRODIGY_EXECUTOR__ADDRESS", "tcp://h:8786", "executor.address", "tcp://h:8786"),
        ("PRODIGY_EXECUTOR__SHIPPING", "shared", "executor.shipping", "shared"),
        ("PRODIGY_EXECUTOR__REPOSITORY", "/nfs/p.git", "executor.repository", "/nfs/p.git"),
        ("PRODIGY_CLAUDE__BINARY", "/usr/bin/claude", "claude.binary", "/usr/bin/claude"),
        (
            "PRODIGY_CLAUDE__EXTRA_ARGS",
            "--verbose, --max-turns,3",
            "claude.extra_args",
            ["--verbose", "--max-turns", "3"],
        ),
        (
            "PRODIGY_CLAUDE__EXTRA_ARGS",
            '["--append", "a, b"]',
            "claude.extra_args",
            ["--append", "a, b"],
        ),
        ("PRODIGY_CLAUDE__EXTRA_ARGS", "[]", "claude.extra_args", []),
        ("PRODIGY_CLAUDE__TIMEOUT", "600", "claude.timeout", 600.0),
        ("PRODIGY_CLAUDE__TIMEOUT", "0", "claude.timeout", 0.0),
    ],
)
def test_env_text_is_parsed_as_the_keys_type(
    config_file: Path, variable: str, text: str, key: str, expected: object
):
    values = cfg.describe(cfg.load(env={variable: text}))
    assert values[key] == expected
    assert type(values[key]) is type(expected)


def test_unknown_and_empty_prodigy_variables_are_ignored(config_file: Path):
    env = {
        "PRODIGY_HOME": "/elsewhere",
        "PRODIGY_CLAUDE_BIN": "/per-job/claude",  # a per-job variable, not a config key
        "PRODIGY_NO_SUCH_KEY": "1",
        "PRODIGY_CLAUDE__NOPE": "x",
        "PRODIGY_MAX_CONCURRENT_JOBS": "",
    }
    assert cfg.load(env=env) == Config()
    assert set(cfg.sources(env).values()) == {"default"}


@pytest.mark.parametrize(
    ("variable", "text", "expected"),
    [
        ("PRODIGY_AUTO_RESUME", "maybe", "expected true/false"),
        ("PRODIGY_MAX_CONCURRENT_JOBS", "lots", "expected an integer, got 'lots'"),
        ("PRODIGY_SHUTDOWN_GRACE_SECONDS", "soon", "expected a number"),
        ("PRODIGY_CLAUDE__EXTRA_ARGS", '["unclosed"', "not a TOML array"),
    ],
)
def test_unparsable_env_value_names_the_variable_and_key(
    config_file: Path, variable: str, text: str, expected: str
):
    with pytest.raises(ConfigError) as caught:
        cfg.load(env={variable: text})
    message = caught.value.message
    assert message.startswith(f"environment variable {variable}: ")
    assert expected in message


def test_env_value_out_of_range_names_the_variable_not_the_file(config_file: Path):
    config_file.write_text("auto_resume = true\n")
    with pytest.raises(ConfigError) as caught:
        cfg.load(env={"PRODIGY_MAX_CONCURRENT_JOBS": "0"})
    assert caught.value.message == (
        "environment variable PRODIGY_MAX_CONCURRENT_JOBS: max_concurrent_jobs: "
        "Input should be greater than or equal to 1 (got 0)"
    )
    assert caught.value.kind == "config"


def test_invalid_toml_names_the_file_line_and_column(config_file: Path):
    config_file.write_text("auto_resume = true\nmax_concurrent_jobs = \n")
    with pytest.raises(ConfigError) as caught:
        cfg.load(env=NO_ENV)
    message = caught.value.message
    assert str(config_file) in message
    assert "line 2, column 23" in message
    assert "Traceback" not in caught.value.render()


def test_a_fifo_for_a_config_file_is_refused_not_waited_on(config_file: Path):
    os.mkfifo(config_file)  # nobody writes it: an open() would wait for good
    with pytest.raises(ConfigError) as caught:
        cfg.load(env=NO_ENV)
    assert caught.value.message == (
        f"cannot read config file {config_file}: "
        "not a regular file (a FIFO, folder, socket or device)"
    )


def test_wrong_type_names_the_file_and_key(config_file: Path):
    config_file.write_text('max_concurrent_jobs = "lots"\n')
    with pytest.raises(ConfigError) as caught:
        cfg.load(env=NO_ENV)
    assert caught.value.message == (
        f"{config_file}:1: max_concurrent_jobs: Input should be a valid integer (got 'lots')"
    )


def test_numbers_in_quotes_are_a_type_error_not_a_guess(config_file: Path):
    config_file.write_text('[claude]\nskip_permissions = "false"\n')
    with pytest.raises(
        ConfigError, match=r"claude\.skip_permissions: Input should be a valid boolean"
    ):
        cfg.load(env=NO_ENV)


def test_list_item_errors_name_the_index(config_file: Path):
    config_file.write_text('[claude]\nextra_args = ["--ok", 3]\n')
    with pytest.raises(
        ConfigError, match=r"claude\.extra_args\[1\]: Input should be a valid string"
    ):
        cfg.load(env=NO_ENV)


def test_every_problem_is_reported(config_file: Path):
    config_file.write_text('max_concurrent_jobs = 0\nlog_level = "LOUD"\n')
    with pytest.raises(ConfigError) as caught:
        cfg.load(env=NO_ENV)
    assert "max_concurrent_jobs" in caught.value.message
    assert "log_level: Input should be 'DEBUG', 'INFO', 'WARNING' or 'ERROR'" in (
        caught.value.details or ""
    )


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        (
            "max_concurent_jobs = 2\n",
            "1: unknown key max_concurent_jobs; did you mean max_concurrent_jobs?",
        ),
        ('[claude]\nmodle = "x"\n', "2: unknown key claude.modle; did you mean claude.model?"),
        ('[claud]\nmodel = "x"\n', "1: unknown key claud; did you mean claude?"),
        ("zzz = 1\n", "1: unknown key zzz"),
    ],
)
def test_unknown_key_in_file_suggests_the_known_one(config_file: Path, toml: str, message: str):
    config_file.write_text(toml)
    with pytest.raises(ConfigError) as caught:
        cfg.load(env=NO_ENV)
    assert caught.value.message == f"{config_file}:{message}"
    assert "config show" in (caught.value.hint or "")


def test_unreadable_file_is_a_config_error(config_file: Path):
    config_file.mkdir()
    with pytest.raises(ConfigError, match="cannot read config file"):
        cfg.load(env=NO_ENV)


def test_set_value_round_trip_keeps_other_keys(config_file: Path):
    config_file.write_text(
        '# my settings\nauto_resume = false\n[claude]\nmodel = "opus"  # the big one\n'
    )
    returned = cfg.set_value("max_concurrent_jobs", "6")
    cfg.set_value("claude.extra_args", "--verbose,--max-turns")
    config = cfg.load(env=NO_ENV)
    assert returned == 6
    assert config.max_concurrent_jobs == 6
    assert config.auto_resume is False
    assert config.claude.model == "opus"
    assert config.claude.extra_args == ["--verbose", "--max-turns"]
    text = config_file.read_text()
    assert "#" not in text  # tomli-w cannot keep comments; docs/config.md says so
    assert stat.S_IMODE(config_file.stat().st_mode) == 0o600


def test_set_value_stores_the_normalised_value(config_file: Path):
    cfg.set_value("log_level", "debug")
    cfg.set_value("shutdown_grace_seconds", "5")
    assert config_file.read_text() == 'log_level = "DEBUG"\nshutdown_grace_seconds = 5.0\n'


def test_set_value_creates_the_file_and_home(isolated: Path):
    assert not isolated.exists()
    cfg.set_value("claude.skip_permissions", "no")
    assert (isolated / "config.toml").read_text() == "[claude]\nskip_permissions = false\n"


def test_set_value_returns_the_value_stored_not_an_env_override(
    config_file: Path, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setenv("PRODIGY_MAX_CONCURRENT_JOBS", "9")
    assert cfg.set_value("max_concurrent_jobs", "3") == 3
    assert cfg.set_value("log_level", "debug") == "DEBUG"
    assert cfg.load().max_concurrent_jobs == 9


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        (
            "max_concurrent_jobs",
            "0",
            "max_concurrent_jobs: Input should be greater than or equal to 1 (got 0)",
        ),
        ("max_concurrent_jobs", "many", "max_concurrent_jobs: expected an integer, got 'many'"),
        ("event_loop", "trio", "event_loop: Input should be 'asyncio' or 'uvloop' (got 'trio')"),
        (
            "executor.shipping",
            "nfs",
            "executor.shipping: Input should be 'bundle' or 'shared' (got 'nfs')",
        ),
        ("claude.model", "", "claude.model: String should have at least 1 character (got '')"),
        ("claude.modle", "x", "unknown key claude.modle; did you mean claude.model?"),
        ("claude", "x", "claude is a table, not a key"),
    ],
)
def test_set_value_rejects_bad_input_and_leaves_the_file_alone(
    config_file: Path, key: str, value: str, message: str
):
    config_file.write_text("auto_resume = false\n")
    with pytest.raises(ConfigError) as caught:
        cfg.set_value(key, value)
    assert caught.value.message.startswith(message)
    assert config_file.read_text() == "auto_resume = false\n"


def test_set_value_over_a_broken_file_names_the_file(config_file: Path):
    config_file.write_text("auto_resume = [\n")
    with pytest.raises(ConfigError, match="invalid TOML in"):
        cfg.set_value("max_concurrent_jobs", "2")
    assert config_file.read_text() == "auto_resume = [\n"


def test_set_value_writes_the_shared_repository_shipping(config_file: Path):
    cfg.set_value("executor.shipping", "shared")
    cfg.set_value("executor.repository", "/nfs/prodigy.git")
    executor = cfg.load(env=NO_ENV).executor
    assert (executor.shipping, executor.repository) == ("shared", "/nfs/prodigy.git")
    assert 'shipping = "shared"' in config_file.read_text()


def test_set_value_repairs_a_bad_value(config_file: Path):
    config_file.write_text('max_concurrent_jobs = "lots"\n')
    cfg.set_value("max_concurrent_jobs", "2")
    assert cfg.load(env=NO_ENV).max_concurrent_jobs == 2


def test_unset_value_removes_the_key_and_an_emptied_section(config_file: Path):
    config_file.write_text('auto_resume = false\n[claude]\nmodel = "opus"\n')
    cfg.unset_value("claude.model")
    assert cfg.load(env=NO_ENV).claude.model is None
    assert config_file.read_text() == "auto_resume = false\n"
    assert cfg.sources(NO_ENV)["claude.model"] == "default"


def test_unset_value_of_an_absent_key_writes_nothing(config_file: Path):
    cfg.unset_value("log_level")
    assert not config_file.exists()


def test_unset_value_removes_an_unknown_key_the_file_has(config_file: Path):
    config_file.write_text("auto_resume = false\nmax_concurent_jobs = 2\n")
    cfg.unset_value("max_concurent_jobs")
    assert cfg.load(env=NO_ENV).auto_resume is False


def test_unset_value_of_an_unknown_absent_key_suggests(config_file: Path):
    with pytest.raises(ConfigError, match=r"unknown key auto_resum; did you mean auto_resume\?"):
        cfg.unset_value("auto_resum")


#: The new user's file: a wrong type and an unknown table, each of which the daemon refuses.
TWO_PROBLEMS = 'max_concurrent_jobs = "4"\n[claud]\nmodel = "x"\n'


def test_set_value_fixes_one_problem_of_several_and_check_file_names_the_rest(
    config_file: Path,
):
    config_file.write_text(TWO_PROBLEMS)
    assert cfg.set_value("max_concurrent_jobs", "3") == 3
    assert config_file.read_text() == 'max_concurrent_jobs = 3\n\n[claud]\nmodel = "x"\n'
    assert cfg.check_file() == [f"{config_file}:3: unknown key claud; did you mean claude?"]


def test_set_value_still_refuses_its_own_bad_value_in_a_file_with_problems(config_file: Path):
    config_file.write_text(TWO_PROBLEMS)
    with pytest.raises(ConfigError) as caught:
        cfg.set_value("log_level", "LOUD")
    assert caught.value.message == (
        "log_level: Input should be 'DEBUG', 'INFO', 'WARNING' or 'ERROR' (got 'LOUD')"
    )
    assert caught.value.details is None  # the file's own problems are not this error's
    assert config_file.read_text() == TWO_PROBLEMS


@pytest.mark.parametrize(
    ("key", "left"),
    [
        ("claud", "1: max_concurrent_jobs: Input should be a valid integer (got '4')"),
        ("max_concurrent_jobs", "1: unknown key claud; did you mean claude?"),  # rewritten
    ],
)
def test_unset_value_removes_a_key_whatever_else_is_wrong(config_file: Path, key: str, left: str):
    config_file.write_text(TWO_PROBLEMS)
    cfg.unset_value(key)
    assert cfg.check_file() == [f"{config_file}:{left}"]


def test_check_file_of_a_valid_or_missing_file_is_empty(config_file: Path):
    assert cfg.check_file() == []
    config_file.write_text("auto_resume = false\n")
    assert cfg.check_file() == []


def test_problems_name_the_line_of_dotted_keys_list_items_and_table_keys(config_file: Path):
    config_file.write_text(
        "# notes\n"
        '"quoted" = 1\n'
        "claude.timeout = -1\n"
        "[ retention ]\n"
        "max_age_days = 1\n"
        "  interval_secs  =  -2\n"
        "[worktree_config]\n"
        'extra = ["a = 1",\n'
        '  "b"]\n'
        "[claude.extra]\n"
        "x = 1\n"
    )
    assert cfg.check_file() == [
        f"{config_file}:3: claude.timeout: Input should be greater than or equal to 0 (got -1)",
        f"{config_file}:10: unknown key claude.extra; did you mean claude.extra_args?",
        f"{config_file}:8: unknown key worktree_config.extra; did you mean worktree_config?",
        f"{config_file}:6: retention.interval_secs: "
        "Input should be greater than or equal to 0 (got -2)",
        f"{config_file}: unknown key quoted",  # a quoted name: no line, still the file
    ]


def test_get_value(config_file: Path):
    config = cfg.load(env={"PRODIGY_CLAUDE__EXTRA_ARGS": "a,b"})
    assert cfg.get_value(config, "claude.extra_args") == ["a", "b"]
    with pytest.raises(ConfigError, match="did you mean log_level"):
        cfg.get_value(config, "log_levle")


def test_describe_is_json_and_covers_every_key(config_file: Path):
    values = cfg.describe(cfg.load(env=NO_ENV))
    assert json.loads(json.dumps(values)) == values
    assert list(values) == list(cfg.sources(NO_ENV))


def test_a_table_given_as_a_key_lists_its_keys(config_file: Path):
    with pytest.raises(ConfigError) as caught:
        cfg.set_value("claude", "1")
    assert caught.value.message.startswith(
        "claude is a table, not a key; its keys are claude.binary, claude.skip_permissions"
    )
    with pytest.raises(ConfigError) as caught:
        cfg.get_value(Config(), "worktree_config")
    assert "worktree_config.spare" in caught.value.message
    assert not config_file.exists()


def test_a_settings_variable_with_one_underscore_for_two_is_warned_of():
    env = {
        "PRODIGY_CLAUDE_MODEL": "opus",  # a table's key takes two underscores
        "PRODIGY_CLAUDE__MODEL": "sonnet",
        "PRODIGY_HOME": "/x",  # prodigy's own variables: not settings, and not near one
        "PRODIGY_HOOKS": "0",
        "PRODIGY_MAX_CONCURRENT_JOBS": "2",
        # read by the Claude driver, though it looks like claude.skip_permissions's
        "PRODIGY_CLAUDE_SKIP_PERMISSIONS": "false",
    }
    assert cfg.misspelt_variables(env) == [
        "PRODIGY_CLAUDE_MODEL is not a setting's variable (ignored); did you mean "
        "PRODIGY_CLAUDE__MODEL?"
    ]
