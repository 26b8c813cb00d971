"""The canonical workflow models: values a user writes normalise the same way everywhere."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from prodigyd.workflow.model import (
    CaptureStreams,
    ForeachSpec,
    OnFailure,
    OnIncomplete,
    RetrySpec,
    SecretSpec,
    Step,
    ValidateSpec,
    WriteFileSpec,
    parse_duration,
)

_ECHO = Step(kind="shell", command="echo")


@pytest.mark.parametrize(
    ("written", "seconds"),
    [
        (90, 90.0),
        (1.5, 1.5),
        ("90", 90.0),
        ("30s", 30.0),
        ("500ms", 0.5),
        ("5m", 300.0),
        ("2 minutes", 120.0),
        ("1h 30m", 5400.0),
        ("1h30m", 5400.0),
        ("1d", 86400.0),
    ],
)
def test_durations_accept_seconds_and_humantime(written: object, seconds: float) -> None:
    assert parse_duration(written) == seconds


@pytest.mark.parametrize("written", ["abc", "5 parsecs", "-3", "", True, None, [1], "inf"])
def test_bad_durations_say_what_a_duration_looks_like(written: object) -> None:
    with pytest.raises(ValueError, match=r"expected a duration such as 30, '30s'"):
        parse_duration(written)


def test_a_zero_timeout_is_refused_because_it_means_no_timeout() -> None:
    with pytest.raises(ValidationError, match="leave it out for no timeout"):
        Step(kind="shell", command="true", timeout=0)


def test_step_timeout_takes_humantime() -> None:
    assert Step(kind="shell", command="true", timeout="5m").timeout == 300.0


@pytest.mark.parametrize(
    ("step", "shown"),
    [
        (Step(kind="shell", command="cargo test"), "shell: cargo test"),
        (Step(kind="claude", command="/prodigy-lint $ARG"), "claude: /prodigy-lint $ARG"),
        (Step(kind="shell", command="if true; then\n  echo hi\nfi\n"), "shell: if true; then ..."),
        (
            Step(kind="write_file", write_file=WriteFileSpec(path="out/report.md")),
            "write_file: out/report.md",
        ),
        (
            Step(kind="foreach", foreach=ForeachSpec(items="ls *.rs", do=(_ECHO,))),
            "foreach: ls *.rs",
        ),
        (
            Step(kind="foreach", foreach=ForeachSpec(items=["a", "b"], do=(_ECHO,))),
            "foreach: 2 items",
        ),
        (Step(kind="analyze"), "analyze"),
        (Step(kind="analyze", name="coverage analysis"), "coverage analysis"),
    ],
)
def test_display_is_kind_and_first_line(step: Step, shown: str) -> None:
    assert step.display() == shown


def test_display_truncates_long_commands_to_one_short_line() -> None:
    shown = Step(kind="claude", command="/x " + "a" * 200).display()
    assert shown.startswith("claude: /x aaa")
    assert shown.endswith("...")
    assert len(shown) == len("claude: ") + 80


def test_a_step_without_its_payload_is_refused() -> None:
    with pytest.raises(ValidationError, match="a shell step needs a command"):
        Step(kind="shell", command="  ")
    with pytest.raises(ValidationError, match="a write_file step needs a write_file spec"):
        Step(kind="write_file")


def test_models_are_frozen() -> None:
    step = Step(kind="shell", command="true")
    with pytest.raises(ValidationError):
        step.command = "false"  # type: ignore[misc]


def test_step_defaults_are_the_documented_ones() -> None:
    step = Step(kind="shell", command="true")
    assert step.capture_output is False
    assert step.capture_format == "string"
    assert step.capture_streams == CaptureStreams()
    assert (step.commit_required, step.auto_commit, step.allow_failure) == (False, False, False)
    assert step.timeout is None
    assert step.on_failure is None and step.retry is None and step.validation is None


def test_validate_is_an_alias_of_validation() -> None:
    step = Step.model_validate(
        {
            "kind": "claude",
            "command": "/x",
            "validate": {"commands": [Step(kind="shell", command="v")]},
        }
    )
    assert step.validation is not None
    assert step.validation.threshold == 100.0


@pytest.mark.parametrize(
    ("written", "stored"),
    [(True, True), (False, False), ("true", True), ("False", False), ("summary", "summary")],
)
def test_capture_output_is_a_flag_or_a_variable_name(written: object, stored: object) -> None:
    assert Step(kind="shell", command="x", capture_output=written).capture_output == stored


def test_capture_output_rejects_numbers() -> None:
    with pytest.raises(ValidationError, match="expected true, false or a variable name, got 5"):
        Step(kind="shell", command="x", capture_output=5)


def test_step_env_values_and_when_keep_the_text_the_user_typed() -> None:
    step = Step(kind="shell", command="x", env={"RETRIES": 3, "DEBUG": True}, when=True)
    assert step.env == {"RETRIES": "3", "DEBUG": "true"}
    assert step.when == "true"


@pytest.mark.parametrize(
    ("written", "mode"), [("0644", "0644"), ("755", "0755"), (644, "0644"), ("0o600", "0600")]
)
def test_write_file_mode_is_an_octal_string(written: object, mode: str) -> None:
    assert WriteFileSpec(path="f", mode=written).mode == mode


@pytest.mark.parametrize("written", ["rw-r--r--", "0999", 420.0, "12"])
def test_write_file_mode_rejects_non_octal(written: object) -> None:
    with pytest.raises(ValidationError, match="expected an octal file mode like '0644'"):
        WriteFileSpec(path="f", mode=written)


@pytest.mark.parametrize(("written", "parallel"), [(True, 10), (False, 1), (4, 4)])
def test_foreach_parallel_accepts_booleans(written: object, parallel: int) -> None:
    spec = ForeachSpec(items="ls", parallel=written, do=(Step(kind="shell", command="x"),))
    assert spec.parallel == parallel


def test_foreach_needs_a_body() -> None:
    with pytest.raises(ValidationError):
        ForeachSpec(items=["a"], do=())


def test_retry_defaults_follow_the_original() -> None:
    spec = RetrySpec()
    assert (spec.attempts, spec.backoff, spec.base) == (3, "exponential", 2.0)
    assert (spec.initial_delay, spec.max_delay, spec.jitter_factor) == (1.0, 30.0, 0.3)
    assert spec.increment is None and spec.delays == () and spec.retry_on == ()


def test_retry_durations_and_matchers_normalise() -> None:
    spec = RetrySpec(
        initial_delay="500ms",
        delays=["1s", 5],
        retry_budget="5m",
        retry_on=["network", {"pattern": "HTTP 5\\d\\d"}, "pattern:flaky"],
    )
    assert (spec.initial_delay, spec.delays, spec.retry_budget) == (0.5, (1.0, 5.0), 300.0)
    assert spec.retry_on == ("network", "pattern:HTTP 5\\d\\d", "pattern:flaky")


@pytest.mark.parametrize(
    ("matcher", "complaint"),
    [
        ("disk_full", "unknown retry_on matcher 'disk_full'"),
        ({"pattern": "("}, "invalid retry_on pattern"),
    ],
)
def test_retry_matchers_are_checked(matcher: object, complaint: str) -> None:
    with pytest.raises(ValidationError, match=complaint):
        RetrySpec(retry_on=[matcher])


def test_retry_fallback_needs_a_command() -> None:
    with pytest.raises(ValidationError, match="needs a command"):
        RetrySpec(on_exhausted="fallback")


def test_on_failure_defaults_do_not_fail_the_workflow() -> None:
    handler = Step(kind="shell", command="cargo clean")
    spec = OnFailure(handlers=(handler,))
    assert spec.fail_workflow is False and spec.ignore is False
    assert (spec.max_retries, spec.debug_loop, spec.max_attempts) == (0, False, 1)


def test_a_debug_loop_needs_a_handler() -> None:
    with pytest.raises(ValidationError, match="needs a handler"):
        OnFailure(debug_loop=True, max_attempts=3)


def test_validation_defaults() -> None:
    spec = ValidateSpec(
        commands=(Step(kind="claude", command="/validate"),),
        on_incomplete=OnIncomplete(commands=(Step(kind="claude", command="/complete"),)),
    )
    assert spec.threshold == 100.0
    assert spec.on_incomplete is not None
    assert (spec.on_incomplete.max_attempts, spec.on_incomplete.fail_workflow) == (2, True)


def test_validation_needs_commands_and_a_sane_threshold() -> None:
    with pytest.raises(ValidationError, match="validate needs"):
        ValidateSpec(commands=())
    with pytest.raises(ValidationError):
        ValidateSpec(commands=(Step(kind="shell", command="v"),), threshold=150)


def test_on_incomplete_needs_something_to_run() -> None:
    with pytest.raises(ValidationError, match="on_incomplete needs"):
        OnIncomplete()


def test_secrets_need_a_source() -> None:
    assert SecretSpec(value="s3cret").provider == "literal"
    assert SecretSpec(provider="env").key is None  # the engine reads the secret's own name
    with pytest.raises(ValidationError, match="a literal secret needs a value"):
        SecretSpec()
    with pytest.raises(ValidationError, match="a file secret needs key"):
        SecretSpec(provider="file")
