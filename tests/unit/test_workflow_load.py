"""Loading workflow files: every accepted shape, and errors that name file, line and field."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from prodigyd import errorcodes
from prodigyd.errors import WorkflowError
from prodigyd.workflow.load import LoadedWorkflow, load_workflow, parse_workflow
from prodigyd.workflow.model import EnvFile, OnFailure, RetrySpec, Step

EXAMPLES = Path(__file__).parent / "workflows"


def parse(text: str, **options: object) -> LoadedWorkflow:
    return parse_workflow(text, source="wf.yml", **options)  # type: ignore[arg-type]


def steps_of(text: str) -> tuple[Step, ...]:
    return parse(text).workflow.steps


def only_step(text: str) -> Step:
    (step,) = steps_of(text)
    return step


def failure(text: str, **options: object) -> WorkflowError:
    with pytest.raises(WorkflowError) as caught:
        parse(text, **options)
    return caught.value


def on_failure_of(text: str) -> OnFailure | None:
    return steps_of(text)[0].on_failure


# ---------------------------------------------------------------------------------------------
# the reference's example workflows


def test_standard_workflow_example_is_seven_shell_steps() -> None:
    loaded = load_workflow(EXAMPLES / "standard-workflow.yml")
    steps = loaded.workflow.steps
    assert [step.kind for step in steps] == ["shell"] * 7
    assert loaded.workflow.name == "default"
    assert steps[5].command is not None and steps[5].command.startswith("if [ -f README.md ]")
    assert steps[5].display() == "shell: if [ -f README.md ]; then ..."
    assert [step.line for step in steps] == [3, 4, 5, 6, 7, 8, 14]
    assert loaded.warnings == []


def test_test_resume_example_fails_at_step_three() -> None:
    steps = load_workflow(EXAMPLES / "test-resume.yml").workflow.steps
    assert [step.command for step in steps][2] == "exit 1"
    assert len(steps) == 5


def test_capture_conditional_flow_example() -> None:
    loaded = load_workflow(EXAMPLES / "capture-conditional-flow.yml")
    steps = loaded.workflow.steps
    assert loaded.workflow.name == "conditional-deployment"
    assert len(steps) == 10
    assert (steps[0].capture, steps[0].capture_format, steps[0].allow_failure) == (
        "tests_passed",
        "boolean",
        True,
    )
    assert steps[1].capture_format == "number"
    assert steps[2].when == "${tests_passed}"
    assert steps[6].capture_streams.stderr is True
    assert loaded.warnings == []


def test_implement_example_maps_validation_debug_loops_and_merge() -> None:
    workflow = load_workflow(EXAMPLES / "implement.yml").workflow
    implement, test, lint = workflow.steps
    assert (implement.kind, implement.command) == ("claude", "/prodigy-implement-spec $ARG")
    assert implement.commit_required is True
    validation = implement.validation
    assert validation is not None
    assert [c.command for c in validation.commands] == [
        "/prodigy-validate-spec $ARG --output .prodigy/validation-result.json"
    ]
    assert (validation.result_file, validation.threshold) == (
        ".prodigy/validation-result.json",
        100,
    )
    incomplete = validation.on_incomplete
    assert incomplete is not None
    assert [c.command for c in incomplete.commands] == [
        "/prodigy-complete-spec $ARG --gaps ${validation.gaps}"
    ]
    assert (incomplete.max_attempts, incomplete.fail_workflow, incomplete.commit_required) == (
        5,
        False,
        True,
    )
    for step in (test, lint):
        assert step.kind == "shell"
        assert step.on_failure is not None
        assert (step.on_failure.debug_loop, step.on_failure.max_attempts) == (True, 5)
        assert step.on_failure.fail_workflow is False
        assert step.on_failure.handlers[0].kind == "claude"
    assert workflow.merge is not None
    assert [s.command for s in workflow.merge.steps] == [
        "/prodigy-merge-master",
        "/prodigy-ci",
        "/prodigy-merge-worktree ${merge.source_branch} ${merge.target_branch}",
    ]


def test_debtmap_example_maps_multi_command_validation() -> None:
    steps = load_workflow(EXAMPLES / "debtmap.yml").workflow.steps
    assert [step.kind for step in steps] == ["shell", "shell", "claude", "claude", "shell", "shell"]
    plan, implement = steps[2], steps[3]
    assert plan.capture_output is True
    assert plan.validation is not None and plan.validation.threshold == 75
    assert implement.validation is not None
    assert [c.kind for c in implement.validation.commands] == ["shell", "shell", "shell", "claude"]
    incomplete = implement.validation.on_incomplete
    assert incomplete is not None
    assert incomplete.commands[0].commit_required is True
    assert (incomplete.max_attempts, incomplete.fail_workflow) == (5, True)
    assert all(s.on_failure and s.on_failure.fail_workflow for s in steps[4:])


def test_env_secrets_and_profiles_example() -> None:
    workflow = load_workflow(EXAMPLES / "env-secrets-profiles.yml").workflow
    assert workflow.env["PROJECT_NAME"].value == "example-project"
    assert workflow.env["MAX_RETRIES"].value == "3"  # an unquoted number is still text
    token = workflow.env["API_TOKEN"]
    assert (token.value, token.secret) == ("${GITHUB_TOKEN}", True)
    secret = workflow.secrets["GH_TOKEN"]
    assert (secret.provider, secret.key) == ("env", "GITHUB_TOKEN")
    development = workflow.profiles["development"]
    assert development.description == "Development environment with debug enabled"
    assert {k: v.value for k, v in development.env.items()} == {
        "DEBUG_MODE": "true",
        "TIMEOUT_SECONDS": "60",
        "OUTPUT_DIR": "dev-output",
    }
    on_failure = workflow.steps[3].on_failure
    assert on_failure is not None and on_failure.handlers[0].kind == "claude"
    assert on_failure.debug_loop is False  # the list form only runs handlers
    assert workflow.merge is not None
    assert (len(workflow.merge.steps), workflow.merge.timeout) == (3, 600)


def test_sensitive_masking_example_uses_steps_and_step_env() -> None:
    loaded = load_workflow(EXAMPLES / "test-sensitive-masking.yml")
    first, second = loaded.workflow.steps
    assert loaded.workflow.description is not None
    assert first.name == "Test sensitive variables in verbose mode"
    assert first.env["PASSWORD"] == "super_secret_password"
    assert second.kind == "shell"
    assert loaded.warnings == []


def test_json_workflow_loads_with_line_numbers() -> None:
    loaded = load_workflow(EXAMPLES / "simple.json")
    shell, claude = loaded.workflow.steps
    assert (shell.kind, shell.timeout, shell.line) == ("shell", 300.0, 4)
    assert (claude.kind, claude.commit_required, claude.line) == ("claude", True, 5)


def test_load_records_hash_and_absolute_path() -> None:
    file = EXAMPLES / "test-resume.yml"
    loaded = load_workflow(file)
    assert loaded.sha256 == hashlib.sha256(file.read_bytes()).hexdigest()
    assert loaded.path == file.resolve()
    assert loaded.workflow.source == str(file.resolve())


def test_missing_file_is_a_workflow_error(tmp_path: Path) -> None:
    with pytest.raises(WorkflowError, match="workflow file not found") as raised:
        load_workflow(tmp_path / "nope.yml")
    path = str((tmp_path / "nope.yml").resolve())
    assert raised.value.render() == f"{path}: workflow file not found"  # the path said once


def test_non_utf8_file_is_a_workflow_error(tmp_path: Path) -> None:
    file = tmp_path / "latin1.yml"
    file.write_bytes(b"- shell: echo caf\xe9\n")
    with pytest.raises(WorkflowError, match="not UTF-8"):
        load_workflow(file)


# ---------------------------------------------------------------------------------------------
# top-level shapes


def test_plain_list_commands_and_steps_are_the_same_workflow() -> None:
    as_list = parse("- shell: make\n").workflow
    as_commands = parse("name: build\ncommands:\n  - shell: make\n").workflow
    as_steps = parse("name: build\nsteps:\n  - shell: make\n").workflow
    assert as_list.steps[0].command == as_commands.steps[0].command == as_steps.steps[0].command
    assert (as_list.name, as_commands.name) == ("default", "build")


def test_commands_and_steps_together_are_refused_naming_both_lines() -> None:
    error = failure("commands:\n  - shell: a\nsteps:\n  - shell: b\n")
    assert "both commands: (line 1) and steps: (line 3)" in error.render()


def test_json_is_chosen_by_extension_or_format() -> None:
    text = '{"commands": [{"shell": "make"}]}'
    assert parse_workflow(text, source="wf.json").workflow.steps[0].command == "make"
    assert parse_workflow(text, fmt="json").workflow.steps[0].command == "make"


def test_invalid_json_names_line_and_column() -> None:
    with pytest.raises(WorkflowError) as caught:
        parse_workflow('{"commands": [\n  {"shell": "make"}\n  {"shell": "x"}]}', source="w.json")
    rendered = caught.value.render()
    assert rendered.startswith("w.json:3:3: invalid JSON: Expecting ',' delimiter")
    assert '3 |   {"shell": "x"}]}' in rendered


def test_standard_mode_is_accepted() -> None:
    assert parse("mode: standard\ncommands: [{shell: x}]\n").workflow.steps


def test_mapreduce_is_detected_from_the_document_not_the_text() -> None:
    text = "- shell: \"echo 'mode: mapreduce'\"\n"
    assert only_step(text).command == "echo 'mode: mapreduce'"


def test_unknown_mode_is_refused() -> None:
    assert "unknown mode 'turbo'" in failure("mode: turbo\ncommands: [{shell: x}]\n").message


@pytest.mark.parametrize("text", ["", "   \n", "# only a comment\n"])
def test_empty_file_is_a_clear_error(text: str) -> None:
    assert failure(text).message == "the workflow file is empty"


def test_a_mapping_without_steps_is_a_clear_error() -> None:
    error = failure("name: nothing-here\n")
    assert "the workflow has no steps" in error.message
    assert error.hint is not None and "commands:" in error.hint


@pytest.mark.parametrize("strict", [False, True])
@pytest.mark.parametrize(("written", "meant"), [("comands", "commands"), ("stps", "steps")])
def test_a_misspelt_steps_key_is_named_as_why_there_are_no_steps(
    written: str, meant: str, strict: bool
) -> None:
    """Its unknown-key warning is never seen when the load fails: the error itself names it."""
    error = failure(f"name: x\n{written}:\n  - shell: 'echo hi'\n", strict=strict)
    assert error.render().startswith(
        f"wf.yml:2:1 ({written}): the workflow has no steps: unknown key '{written}'; "
        f"did you mean '{meant}'?"
    )
    assert error.code == errorcodes.UNKNOWN_FIELD


@pytest.mark.parametrize("key", ["setup", "command", "jobs"])
def test_a_key_that_is_no_misspelt_steps_key_keeps_the_no_steps_error(key: str) -> None:
    error = failure(f"name: x\n{key}:\n  - shell: 'echo hi'\n")
    assert error.render().startswith("wf.yml:1:1: the workflow has no steps (expected commands:")


def test_an_empty_step_list_is_an_error() -> None:
    assert failure("commands: []\n").message == "the workflow has no steps"


def test_a_scalar_document_is_refused() -> None:
    assert "must be a list of steps or a mapping" in failure("just text\n").message


# ---------------------------------------------------------------------------------------------
# step forms


@pytest.mark.parametrize(
    ("written", "prompt"),
    [
        ("prodigy-code-review", "/prodigy-code-review"),
        ("/prodigy-lint", "/prodigy-lint"),
        ("/prodigy-lint --focus perf", "/prodigy-lint --focus perf"),
    ],
)
def test_a_bare_string_is_a_legacy_claude_command(written: str, prompt: str) -> None:
    step = only_step(f"- {written}\n")
    assert (step.kind, step.command) == ("claude", prompt)


def test_legacy_structured_command_keeps_its_args() -> None:
    step = only_step(
        "- name: prodigy-implement-spec\n"
        "  args: [$ARG, 42]\n"
        "  options: {focus: perf, verbose: true}\n"
        "  commit_required: true\n"
        "  metadata: {timeout: 60, continue_on_error: true}\n"
    )
    assert step.kind == "claude"
    assert step.command == "/prodigy-implement-spec $ARG 42 --focus perf --verbose"
    assert (step.commit_required, step.timeout, step.allow_failure) == (True, 60.0, True)


def test_a_named_step_without_a_command_is_not_mistaken_for_a_legacy_command() -> None:
    error = failure("- name: Display results\n  timeout: 5\n")
    assert error.message == (
        "this step has no command: add one of claude:, shell:, write_file:, foreach:, goal_seek:"
    )
    assert error.code == errorcodes.INVALID_VALUE  # a command missing, no field unknown


@pytest.mark.parametrize("text", ["- {}\n", "- when: x\n"])
def test_a_step_with_no_command_says_so(text: str) -> None:
    error = failure(text)
    assert error.message.startswith("this step has no command: add one of claude:, shell:")
    assert (error.code, error.hint) == (
        errorcodes.INVALID_VALUE,
        'for example: - shell: "cargo test"',
    )


def test_zero_or_two_command_keys_are_refused_with_the_line() -> None:
    none = failure("- shell: ok\n- timeout: 5\n  shel: make\n")
    assert none.render().startswith("wf.yml:2:3 (commands[1]): this step has no command")
    assert none.hint == "did you mean 'shell' instead of 'shel'?"
    assert none.code == errorcodes.UNKNOWN_FIELD  # a misspelled command
    two = failure("- shell: make\n  claude: /lint\n")
    assert two.message == "a step has one command, this one has 2: claude, shell"
    assert two.code == errorcodes.INVALID_VALUE


def test_test_becomes_a_shell_step_with_a_deprecation_warning() -> None:
    loaded = parse(
        "- shell: ok\n- test:\n    command: cargo test\n    on_failure:\n      claude: /debug\n"
    )
    step = loaded.workflow.steps[1]
    assert (step.kind, step.command) == ("shell", "cargo test")
    assert step.on_failure is not None and step.on_failure.debug_loop is True
    assert loaded.warnings == ["wf.yml:2:3: `test:` is deprecated; use `shell:`"]
    assert only_step("- test: cargo test\n").command == "cargo test"


def test_analyze_is_kept_as_a_no_op_with_a_warning() -> None:
    loaded = parse("- analyze:\n    max_cache_age: 300\n")
    assert loaded.workflow.steps[0].kind == "analyze"
    assert loaded.warnings == [
        "wf.yml:1:3: `analyze:` was removed from prodigy; this step does nothing"
    ]


def test_write_file_step() -> None:
    step = only_step(
        "- write_file:\n"
        "    path: out/result.json\n"
        "    content: '{\"ok\": true}'\n"
        "    format: json\n"
        "    mode: 0600\n"
        "    create_dirs: true\n"
    )
    assert step.write_file is not None
    assert (step.write_file.format, step.write_file.mode, step.write_file.create_dirs) == (
        "json",
        "0600",
        True,
    )
    assert step.display() == "write_file: out/result.json"


@pytest.mark.parametrize(
    ("path", "why"),
    [
        ("../x.txt", "'../x.txt' escapes the worktree"),
        ("sub/../../x.txt", "'sub/../../x.txt' escapes the worktree"),
        ("/etc/x", "'/etc/x' is not relative to the worktree"),
        ("a/.GIT/config", "'a/.GIT/config' is inside .git"),
    ],
)
def test_write_file_outside_the_worktree_is_refused_at_its_line(path: str, why: str) -> None:
    error = failure(f"- shell: 'true'\n- write_file:\n    path: {path}\n")
    assert "wf.yml:3:5 (commands[1].write_file.path)" in error.render()
    assert why in error.render()


def test_write_file_paths_inside_or_with_variables_are_left_to_run_time() -> None:
    for path in ("a/../b.txt", "./out/x", "${DIR}/../x", "$HOME/x"):
        assert only_step(f"- write_file: {{path: '{path}'}}\n").write_file.path == path


def test_foreach_step_with_input_alias_and_nested_steps() -> None:
    step = only_step(
        "- foreach:\n"
        "    input: [a.rs, b.rs]\n"
        "    parallel: true\n"
        "    max_items: 10\n"
        "    do:\n"
        "      - shell: cargo check ${item}\n"
        "      - /review ${item}\n"
    )
    assert step.foreach is not None
    assert (step.foreach.items, step.foreach.parallel, step.foreach.max_items) == (
        ["a.rs", "b.rs"],
        10,
        10,
    )
    assert [s.kind for s in step.foreach.do] == ["shell", "claude"]
    assert step.foreach.do[0].line == 6


def test_errors_inside_nested_steps_have_the_nested_path() -> None:
    error = failure(
        "- foreach:\n    foreach: ls\n    do:\n      - shell: x\n        timeout: never\n"
    )
    assert error.render().startswith(
        "wf.yml:5:9 (commands[0].foreach.do[0].timeout): expected a duration"
    )


def test_common_step_fields() -> None:
    step = only_step(
        "- claude: /implement $ARG\n"
        "  id: impl\n"
        "  commit_required: true\n"
        "  auto_commit: true\n"
        "  commit_config: {message_template: 'fix: ${step.name}'}\n"
        "  timeout: 1h\n"
        "  when: ${ready}\n"
        "  capture: result\n"
        "  capture_format: json\n"
        "  capture_streams: both\n"
        "  capture_output: impl_output\n"
        "  output_file: out.txt\n"
        "  outputs: {spec: {file_pattern: '*-spec.md'}}\n"
        "  env: {LEVEL: 2}\n"
        "  working_dir: sub\n"
        "  continue_on_error: true\n"
    )
    assert (step.id, step.commit_required, step.auto_commit) == ("impl", True, True)
    assert step.commit_message == "fix: ${step.name}"
    assert (step.timeout, step.when) == (3600.0, "${ready}")
    assert (step.capture, step.capture_format, step.capture_output) == (
        "result",
        "json",
        "impl_output",
    )
    assert (step.capture_streams.stdout, step.capture_streams.stderr) == (True, True)
    assert (step.output_file, step.outputs, step.env) == (
        "out.txt",
        {"spec": "*-spec.md"},
        {"LEVEL": "2"},
    )
    assert (step.working_dir, step.allow_failure) == ("sub", True)


@pytest.mark.parametrize(
    ("written", "stdout", "stderr"),
    [
        ("stdout", True, False),
        ("stderr", False, True),
        ('"stdout,stderr,exit_code"', True, True),  # the book's examples.md
        ('"stderr, duration"', False, True),
    ],
)
def test_capture_streams_words(written: str, stdout: bool, stderr: bool) -> None:
    streams = only_step(f"- shell: x\n  capture: c\n  capture_streams: {written}\n").capture_streams
    assert (streams.stdout, streams.stderr) == (stdout, stderr)


def test_an_unknown_stream_in_a_list_is_named() -> None:
    error = failure('- shell: x\n  capture: c\n  capture_streams: "stdout,stdrr"\n')
    assert "(commands[0].capture_streams): unknown stream 'stdrr'" in error.render()


def test_on_success_and_on_exit_code_use_the_same_step_parser() -> None:
    step = only_step(
        "- shell: cargo build\n"
        "  on_success:\n"
        "    shell: cargo test\n"
        "    on_success: {claude: /ship}\n"
        "  on_exit_code:\n"
        "    101: {claude: /fix-panic}\n"
        "    2: cleanup-command\n"
    )
    assert step.on_success is not None and step.on_success.on_success is not None
    assert step.on_success.on_success.command == "/ship"
    assert step.on_exit_code[101].command == "/fix-panic"
    assert step.on_exit_code[2].command == "/cleanup-command"


@pytest.mark.parametrize(
    ("written", "seconds"),
    [("90", 90.0), ("'90s'", 90.0), ("5m", 300.0), ("1h 30m", 5400.0), ("0.5", 0.5)],
)
def test_humantime_timeouts(written: str, seconds: float) -> None:
    assert only_step(f"- shell: x\n  timeout: {written}\n").timeout == seconds


def test_retry_forms() -> None:
    plain = only_step(
        "- shell: x\n  retry: {attempts: 5, backoff: linear, initial_delay: 2s}\n"
    ).retry
    assert plain is not None
    assert (plain.attempts, plain.backoff, plain.initial_delay, plain.increment) == (
        5,
        "linear",
        2.0,
        None,
    )
    shaped = only_step(
        "- shell: curl api\n"
        "  retry:\n"
        "    backoff: {linear: {increment: 5s}}\n"
        "    max_delay: 1m\n"
        "    jitter: true\n"
        "    retry_on: [network, {pattern: 'HTTP 50.'}]\n"
        "    retry_budget: 5m\n"
        "    on_failure: {fallback: {command: use-cache}}\n"
    ).retry
    assert shaped is not None
    assert (shaped.backoff, shaped.increment, shaped.max_delay) == ("linear", 5.0, 60.0)
    assert shaped.retry_on == ("network", "pattern:HTTP 50.")
    assert (shaped.retry_budget, shaped.on_exhausted, shaped.fallback) == (
        300.0,
        "fallback",
        "use-cache",
    )
    custom = only_step("- shell: x\n  retry: {backoff: {custom: {delays: [1s, 5s]}}}\n").retry
    assert custom is not None and custom.delays == (1.0, 5.0)
    exponential = only_step("- shell: x\n  retry: {backoff: {exponential: {base: 3}}}\n").retry
    assert exponential is not None and exponential.base == 3.0


def test_bad_backoff_names_the_field() -> None:
    error = failure("- shell: x\n  retry:\n    backoff: sometimes\n")
    assert error.render().startswith("wf.yml:3:5 (commands[0].retry.backoff): expected 'fixed'")


def test_custom_delays_take_the_originals_secs_and_nanos() -> None:
    """The original's custom backoff reads serde's form of a duration, and only that (the
    book's retry-configuration/backoff-strategies.md writes it so)."""
    custom = only_step(
        "- shell: x\n  retry_config:\n    backoff:\n      custom:\n        delays:\n"
        "          - secs: 1\n            nanos: 500000000\n          - {secs: 3}\n"
    ).retry
    assert custom is not None and custom.delays == (1.5, 3.0)


@pytest.mark.parametrize(
    ("backoff", "where"),
    [
        ("{custom: {delays: [1s, soon]}}", "backoff.custom.delays[1]"),
        ("{custom: {delays: [{secs: -1}]}}", "backoff.custom.delays[0]"),
        ("{type: linear, increment: never}", "backoff.increment"),
    ],
)
def test_a_bad_backoff_option_is_reported_where_it_is_written(backoff: str, where: str) -> None:
    error = failure(f"- shell: x\n  retry:\n    attempts: 2\n    backoff: {backoff}\n")
    assert f"(commands[0].retry.{where}): expected" in error.render()


def test_validate_forms() -> None:
    single = only_step(
        "- claude: /impl\n  validate:\n    shell: ./check.sh\n    threshold: 80\n"
    ).validation
    assert single is not None
    assert ([c.kind for c in single.commands], single.threshold) == (["shell"], 80.0)
    shorthand = only_step(
        "- claude: /impl\n  validate:\n    - shell: a\n    - claude: /b\n"
    ).validation
    assert shorthand is not None and [c.kind for c in shorthand.commands] == ["shell", "claude"]
    both = only_step(
        "- claude: /impl\n"
        "  validate:\n"
        "    shell: debtmap analyze\n"
        "    claude: /judge\n"
        "    timeout: 2m\n"
    ).validation
    assert both is not None
    assert [c.command for c in both.commands] == ["debtmap analyze", "/judge"]
    assert both.timeout == 120.0
    listed = only_step(
        "- claude: /impl\n  validate:\n    claude: /v\n    on_incomplete:\n      - claude: /fix\n"
    ).validation
    assert listed is not None and listed.on_incomplete is not None
    assert (listed.on_incomplete.max_attempts, listed.on_incomplete.fail_workflow) == (2, True)


def test_validate_without_commands_names_the_field() -> None:
    error = failure("- claude: /impl\n  validate:\n    threshold: 90\n")
    assert error.render().startswith("wf.yml:2:3 (commands[0].validate): validate needs")


# ---------------------------------------------------------------------------------------------
# on_failure: every shape of reference §2.6


def test_on_failure_true_ignores_the_failure() -> None:
    assert on_failure_of("- shell: x\n  on_failure: true\n") == OnFailure(ignore=True)


def test_on_failure_false_is_no_handler() -> None:
    assert on_failure_of("- shell: x\n  on_failure: false\n") is None


@pytest.mark.parametrize(("written", "kind"), [("cargo fmt", "shell"), ("/fix-it", "claude")])
def test_on_failure_string_is_one_handler(written: str, kind: str) -> None:
    spec = on_failure_of(f"- shell: x\n  on_failure: '{written}'\n")
    assert spec is not None
    assert [(h.kind, h.command) for h in spec.handlers] == [(kind, written)]
    assert (spec.fail_workflow, spec.max_retries, spec.debug_loop) == (False, 0, False)


def test_on_failure_list_mixes_strings_and_steps() -> None:
    spec = on_failure_of(
        "- shell: x\n"
        "  on_failure:\n"
        "    - /fix\n"
        "    - make\n"
        "    - shell: make test\n"
        "      timeout: 30\n"
    )
    assert spec is not None
    assert [(h.kind, h.command) for h in spec.handlers] == [
        ("claude", "/fix"),
        ("shell", "make"),
        ("shell", "make test"),
    ]
    assert spec.handlers[2].timeout == 30.0
    assert spec.fail_workflow is False


def test_on_failure_detailed_form() -> None:
    spec = on_failure_of(
        "- shell: deploy.sh\n"
        "  on_failure:\n"
        "    strategy: recovery\n"
        "    commands:\n"
        "      - shell: rollback.sh\n"
        "        continue_on_error: true\n"
        "      - claude: /diagnose\n"
        "    timeout: 300\n"
        "    fail_workflow: true\n"
        "    handler_failure_fatal: true\n"
    )
    assert spec is not None
    assert [h.kind for h in spec.handlers] == ["shell", "claude"]
    assert spec.handlers[0].allow_failure is True
    assert (spec.strategy, spec.timeout, spec.fail_workflow, spec.handler_failure_fatal) == (
        "recovery",
        300.0,
        True,
        True,
    )
    assert (spec.max_retries, spec.debug_loop) == (0, False)


def test_on_failure_advanced_form_retries_the_original() -> None:
    spec = on_failure_of(
        "- claude: /x\n"
        "  on_failure:\n"
        "    shell: fix-error\n"
        "    fail_workflow: true\n"
        "    max_retries: 3\n"
    )
    assert spec is not None
    assert (spec.handlers[0].kind, spec.fail_workflow, spec.max_retries, spec.debug_loop) == (
        "shell",
        True,
        3,
        False,
    )


def test_on_failure_control_only() -> None:
    spec = on_failure_of("- shell: x\n  on_failure:\n    fail_workflow: true\n")
    assert spec == OnFailure(fail_workflow=True)
    relaxed = on_failure_of("- shell: x\n  on_failure:\n    fail_workflow: false\n")
    assert relaxed == OnFailure(ignore=True)


def test_on_failure_step_object_is_a_handler_step() -> None:
    spec = on_failure_of(
        "- shell: x\n  on_failure:\n    shell: cleanup\n    timeout: 10\n    env: {A: b}\n"
    )
    assert spec is not None
    (handler,) = spec.handlers
    assert (handler.command, handler.timeout, handler.env) == ("cleanup", 10.0, {"A": "b"})
    assert (spec.fail_workflow, spec.max_retries, spec.debug_loop) == (False, 0, False)


def test_claude_handler_on_a_shell_step_is_a_debug_loop() -> None:
    default = on_failure_of(
        "- shell: just test\n  on_failure:\n    claude: /debug ${shell.output}\n"
    )
    assert default is not None
    assert (default.debug_loop, default.max_attempts, default.fail_workflow) == (True, 3, False)
    explicit = on_failure_of(
        "- shell: just test\n"
        "  on_failure:\n"
        "    claude: /debug\n"
        "    max_attempts: 5\n"
        "    fail_workflow: true\n"
        "    commit_required: true\n"
    )
    assert explicit is not None
    assert (explicit.debug_loop, explicit.max_attempts, explicit.fail_workflow) == (True, 5, True)
    assert explicit.handlers[0].commit_required is True


def test_claude_handler_on_a_claude_step_retries_max_attempts_minus_one() -> None:
    spec = on_failure_of(
        "- claude: /implement\n  on_failure:\n    claude: /fix\n    max_attempts: 4\n"
    )
    assert spec is not None
    assert (spec.debug_loop, spec.max_retries) == (False, 3)
    default = on_failure_of("- claude: /implement\n  on_failure:\n    claude: /fix\n")
    assert default is not None and default.max_retries == 2


def test_max_retries_on_a_shell_step_is_not_a_debug_loop() -> None:
    spec = on_failure_of("- shell: x\n  on_failure:\n    claude: /fix\n    max_retries: 2\n")
    assert spec is not None
    assert (spec.debug_loop, spec.max_retries) == (False, 2)


def test_retry_original_without_a_count_retries_once() -> None:
    spec = on_failure_of("- claude: /x\n  on_failure:\n    shell: fix\n    retry_original: true\n")
    assert spec is not None and spec.max_retries == 1


def test_bad_on_failure_count_names_the_field_and_line() -> None:
    error = failure(
        "steps:\n  - shell: x\n    on_failure:\n      claude: /fix\n      max_attempts: 0\n"
    )
    assert error.render() == (
        "wf.yml:5:7 (steps[0].on_failure.max_attempts): "
        "expected a whole number of at least 1, got 0"
    )


@pytest.mark.parametrize(
    ("on_failure", "written", "meant", "where"),
    [
        ('{shell: "echo handling", fail_workfow: true}', "fail_workfow", "fail_workflow", "2:40"),
        ("{claude: /fix, max_attempt: 3}", "max_attempt", "max_attempts", "2:30"),
        ("{shell: fix, max_retry: 2}", "max_retry", "max_retries", "2:28"),
        ("{fail_workflw: true}", "fail_workflw", "fail_workflow", "2:16"),
        ("{comands: [rollback.sh], fail_workflow: true}", "comands", "commands", "2:16"),
    ],
)
def test_a_misspelt_on_failure_key_is_an_error_naming_the_key_meant(
    on_failure: str, written: str, meant: str, where: str
) -> None:
    """Ignored, `fail_workfow: true` let the next step deploy after a failure: a key that
    decides whether the workflow fails is an error even without --strict, not a warning
    (nor, beside a handler, a key of the handler step)."""
    error = failure(f'- shell: "exit 1"\n  on_failure: {on_failure}\n- shell: deploy\n')
    assert error.render().startswith(
        f"wf.yml:{where} (commands[0].on_failure.{written}): unknown key '{written}' in "
        f"commands[0].on_failure; did you mean '{meant}'?\nhint: on_failure's keys decide "
        "whether the workflow fails"
    )
    assert error.code == errorcodes.UNKNOWN_FIELD


def test_a_handler_steps_own_misspelt_key_stays_the_handlers() -> None:
    loaded = parse("- shell: x\n  on_failure: {shell: fix, timout: 5}\n")
    assert loaded.warnings == [
        "wf.yml:2:28: unknown key 'timout' in commands[0].on_failure (ignored); "
        "did you mean 'timeout'?"
    ]


# ---------------------------------------------------------------------------------------------
# unknown keys


def test_unknown_keys_are_warnings_with_suggestions() -> None:
    loaded = parse("- shell: a\n- shell: b\n- shell: c\n  timout: 5\n  frobnicate: 1\n")
    assert loaded.workflow.steps[2].timeout is None
    assert loaded.warnings == [
        "wf.yml:4:3: unknown key 'timout' in step 3 (ignored); did you mean 'timeout'?",
        "wf.yml:5:3: unknown key 'frobnicate' in step 3 (ignored)",
    ]


def test_strict_makes_unknown_keys_errors() -> None:
    error = failure("- shell: a\n  timout: 5\n", strict=True)
    assert error.message == "unknown key 'timout' in step 1; did you mean 'timeout'?"
    assert error.render().startswith("wf.yml:2:3 (commands[0].timout): ")


def test_the_daemons_error_reads_as_validate_shows_its_own() -> None:
    """`run` prints the daemon's error (its JSON-RPC data), `validate` the loader's: one
    format, `file:line:column (field): message`, not the field at the end for one of them."""
    from prodigyctl.errors import RpcError

    error = failure("- shell: a\n- shell: b\n  timout: 5\n", strict=True)
    from_daemon = RpcError(-32001, error.message, error.to_dict()).render()
    assert from_daemon == error.render()
    assert from_daemon.startswith("wf.yml:3:3 (commands[1].timout): unknown key 'timout' in ")


def test_every_problem_is_kept_with_its_place_not_only_as_text() -> None:
    """`validate --json` lists them: each with its file, line, column, field and code."""
    error = failure("- shell: a\n  timout: 5\n- shell: b\n  retries: 2\n", strict=True)
    assert [(p["line"], p["column"], p["field"], p["code"]) for p in error.problems()] == [
        (2, 3, "commands[0].timout", errorcodes.UNKNOWN_FIELD),
        (4, 3, "commands[1].retries", errorcodes.UNKNOWN_FIELD),
    ]
    assert error.problems()[1]["message"] == (
        "unknown key 'retries' in step 2; did you mean 'retry'?"
    )


def test_unknown_top_level_keys_are_reported() -> None:
    loaded = parse("nmae: x\ncommands: [{shell: a}]\n")
    assert loaded.warnings == [
        "wf.yml:1:1: unknown key 'nmae' in the workflow (ignored); did you mean 'name'?"
    ]


def test_a_key_of_another_place_is_told_where_it_belongs() -> None:
    """The original's book puts max_attempts and fail_workflow beside on_failure; its parser
    ignored them there without a word (as it loaded the file), so they are warnings here too,
    which say where the key goes instead of guessing a spelling."""
    loaded = parse(
        "max_parallel: 4\n"
        "commands:\n"
        "  - shell: cargo test\n"
        "    on_failure:\n"
        "      claude: /fix-failing-tests\n"
        "    max_attempts: 3\n"
        "    fail_workflow: false\n"
    )
    assert loaded.warnings == [
        "wf.yml:1:1: 'max_parallel' belongs under map:, not in the workflow (ignored)",
        "wf.yml:6:5: 'max_attempts' belongs under on_failure: or under retry:, not in step 1 "
        "(ignored)",
        "wf.yml:7:5: 'fail_workflow' belongs under on_failure:, not in step 1 (ignored)",
    ]
    error = failure("- shell: x\n  fail_workflow: true\n", strict=True)
    assert error.render().startswith(
        "wf.yml:2:3 (commands[0].fail_workflow): 'fail_workflow' belongs under on_failure:, "
        "not in step 1\nhint: remove it or fix its spelling"
    )


def test_known_but_unused_keys_say_why() -> None:
    loaded = parse("commands:\n  - shell: a\n    analysis: {max_cache_age: 5}\n")
    assert loaded.warnings == [
        "wf.yml:3:5: 'analysis' in step 1 is ignored: per-step analysis was removed from prodigy",
    ]


# ---------------------------------------------------------------------------------------------
# YAML reading


def test_yaml_syntax_error_shows_line_column_and_caret() -> None:
    error = failure("commands:\n  - shell: ok\n  - shell: also ok\n  - shell: bad: colon\n")
    rendered = error.render()
    assert rendered.startswith("wf.yml:4:15: invalid YAML: mapping values are not allowed here")
    assert error.details == (
        "2 |   - shell: ok\n3 |   - shell: also ok\n4 |   - shell: bad: colon\n  |               ^"
    )
    assert error.hint is not None and "a value holding ': ' must be quoted" in error.hint


def test_an_unclosed_quote_is_named_by_the_line_it_opened_on() -> None:
    error = failure('commands:\n  - shell: "echo unterminated\n  - shell: ok\n')
    assert error.render().startswith("wf.yml:4:1: invalid YAML: found unexpected end of stream")
    assert error.hint is not None
    assert error.hint.startswith("the quote opened on line 2 is never closed: close it")


@pytest.mark.parametrize(
    ("text", "hint"),
    [
        ("commands:\n  - shell: a\n   - shell: b\n", "start in the same column"),
        ("commands:\n  - shell: a\n  x\n  - shell: b\n", "each line of a mapping is"),
        ("commands:\n\t- shell: a\n", "spaces, never tabs"),
        ("a: [1, 2\n", "a workflow is either a list of steps"),  # else: the shapes
    ],
)
def test_a_yaml_error_hints_at_its_usual_cause(text: str, hint: str) -> None:
    error = failure(text)
    assert error.hint is not None and hint in error.hint


def test_type_errors_name_field_and_line_and_list_every_problem() -> None:
    error = failure(
        "commands:\n"
        "  - shell: a\n"
        "  - shell: b\n"
        "  - shell: c\n"
        "    commit_required: maybe\n"
        "    timeout: abc\n"
        "  - claude: 42\n"
    )
    assert error.render().startswith(
        "wf.yml:5:5 (commands[2].commit_required): expected true or false, got 'maybe'"
    )
    assert error.details == (  # the first, said above, is not listed again
        "2 more problems:\n"
        "  wf.yml:6:5 (commands[2].timeout): expected a duration such as 30, '30s', '500ms' "
        "or '5m', got 'abc'\n"
        "  wf.yml:7:5 (commands[3].claude): expected a string, got 42"
    )


def test_literal_choices_are_listed() -> None:
    error = failure("- shell: x\n  capture: c\n  capture_format: xml\n")
    assert error.message == "expected 'string', 'json', 'lines', 'number' or 'boolean', got 'xml'"


def test_duplicate_keys_are_refused_naming_both_lines() -> None:
    error = failure("- shell: make\n  timeout: 5\n  shell: make test\n")
    assert error.render().startswith(
        "wf.yml:3:3: invalid YAML: duplicate key 'shell' (first defined on line 1)"
    )


def test_merge_keys_and_anchors_work() -> None:
    loaded = parse(
        "x-defaults: &defaults {timeout: 60, commit_required: true}\n"
        "commands:\n"
        "  - <<: *defaults\n"
        "    claude: /implement\n"
        "    timeout: 120\n"
    )
    step = loaded.workflow.steps[0]
    assert (step.timeout, step.commit_required) == (120.0, True)


def test_a_self_referencing_alias_is_an_error_not_a_crash() -> None:
    error = failure("- &s {shell: x, on_success: *s}\n")
    assert error.render().startswith("wf.yml:1:29: alias *s is inside the node it names (a loop)")


def test_python_tags_are_refused() -> None:
    assert (
        "could not determine a constructor"
        in failure("- shell: !!python/object/apply:os.system [ls]\n").message
    )


def test_scalars_are_read_as_yaml_1_2() -> None:
    step = only_step("- shell: x\n  env: {FLAG: on, ANSWER: yes, WHEN: 1:30, MODE: 0644}\n")
    assert step.env == {"FLAG": "on", "ANSWER": "yes", "WHEN": "1:30", "MODE": "644"}


# ---------------------------------------------------------------------------------------------
# env, secrets, profiles, merge


def test_secret_shapes() -> None:
    workflow = parse(
        "secrets:\n"
        "  INLINE: {value: s3cret}\n"
        "  NAMED: SECRET_API_KEY\n"
        "  REFERENCE: ${env:SECRET_API_KEY}\n"
        "  MARKED: {secret: true, value: hunter2}\n"
        "  FROM_ENV: {provider: env, key: GITHUB_TOKEN}\n"
        "  FROM_FILE: {provider: file, key: .secrets/token}\n"
        "commands: [{shell: x}]\n"
    ).workflow
    found = {name: (s.provider, s.value, s.key) for name, s in workflow.secrets.items()}
    assert found == {
        "INLINE": ("literal", "s3cret", None),
        "NAMED": ("env", None, "SECRET_API_KEY"),
        "REFERENCE": ("env", None, "SECRET_API_KEY"),
        "MARKED": ("literal", "hunter2", None),
        "FROM_ENV": ("env", None, "GITHUB_TOKEN"),
        "FROM_FILE": ("file", None, ".secrets/token"),
    }


def test_unsupported_secret_provider_names_the_field() -> None:
    error = failure(
        "secrets:\n  TOKEN:\n    provider: vault\n    key: kv/x\ncommands: [{shell: x}]\n"
    )
    assert error.render() == (
        "wf.yml:3:5 (secrets.TOKEN.provider): secret provider 'vault' is not supported; "
        "only env, file and literal are\n"
        "hint: export the secret into the environment and name it: {provider: env, key: NAME}"
    )


@pytest.mark.parametrize(
    ("text", "complaint"),
    [
        ("'${vault:api/keys/prod}'", "secret provider 'vault' is not supported"),
        ("'sk-not a name'", "a secret given as text names the environment variable"),
    ],
)
def test_a_secret_string_is_the_name_of_a_variable(text: str, complaint: str) -> None:
    error = failure(f"secrets:\n  TOKEN: {text}\ncommands: [{{shell: x}}]\n")
    assert complaint in error.message
    assert error.location is not None and error.location.line == 2


def test_every_env_value_form() -> None:
    workflow = parse(
        "env:\n"
        "  PLAIN: 3\n"
        "  TOKEN: {secret: true, value: '${env:GH}'}\n"
        "  WORKERS: {command: 'nproc', cache: true}\n"
        "  DEPLOY: {condition: \"${branch} == 'main'\", when_true: prod, when_false: staging}\n"
        "  URL: {default: 'http://localhost', prod: 'https://example.com'}\n"
        "  DEBUG: {default: true, prod: false}\n"
        "commands: [{shell: x}]\n"
    ).workflow
    env = workflow.env
    assert (env["PLAIN"].value, env["TOKEN"].secret) == ("3", True)
    assert (env["WORKERS"].command, env["WORKERS"].cache) == ("nproc", True)
    assert (env["DEPLOY"].when_true, env["DEPLOY"].when_false) == ("prod", "staging")
    assert env["URL"].by_profile == {"default": "http://localhost", "prod": "https://example.com"}
    assert env["DEBUG"].by_profile == {"default": "true", "prod": "false"}
    assert workflow.profile_names == {"prod"}


@pytest.mark.parametrize(
    ("value", "field", "complaint"),
    [
        (
            "{condition: \"${a} = 'b'\", when_true: x, when_false: y}",
            "env.JOBS.condition",
            "single '='",
        ),
        ("{value: a, command: b}", "env.JOBS", "(found: value, command)"),
        ("{value: a, cache: true}", "env.JOBS", "cache: only applies to a {command: ...} value"),
        ("{default: a, prod: [b]}", "env.JOBS.prod", "expected the text for profile prod"),
    ],
)
def test_bad_env_values_name_their_field(value: str, field: str, complaint: str) -> None:
    error = failure(f"env:\n  JOBS: {value}\ncommands: [{{shell: x}}]\n")
    assert complaint in error.message
    assert error.location is not None and error.location.field == field


def test_env_files_accept_one_or_many() -> None:
    one = parse("env_files: .env\ncommands: [{shell: x}]\n").workflow.env_files
    assert one == (EnvFile(path=".env"),)
    many = parse(
        "env_files: [.env, {path: ~/.env.shared, required: true}]\ncommands: [{shell: x}]\n"
    ).workflow
    assert many.env_files == (EnvFile(path=".env"), EnvFile(path="~/.env.shared", required=True))


def test_inherit_and_retry_defaults_are_read() -> None:
    workflow = parse(
        "inherit: false\nretry_defaults: {attempts: 4, backoff: fixed}\ncommands: [{shell: x}]\n"
    ).workflow
    assert workflow.inherit is False
    assert workflow.retry_defaults == RetrySpec(attempts=4, backoff="fixed")


def test_a_step_env_is_always_temporary() -> None:
    step = parse("- shell: x\n  env: {A: b}\n  temporary: true\n").workflow.steps[0]
    assert step.temporary is True
    error = failure("- shell: x\n  env: {A: b}\n  temporary: false\n")
    assert error.render().startswith(
        "wf.yml:3:3 (commands[0].temporary): temporary: false is not supported"
    )


def test_a_bad_when_is_reported_at_load_with_its_line() -> None:
    error = failure('- shell: a\n- shell: b\n  when: "${x} = 1"\n')
    assert error.render().startswith(
        "wf.yml:3:3 (commands[1].when): single '=' at offset 5 of the when expression"
    )


def test_profiles_accept_a_nested_env_mapping() -> None:
    workflow = parse("profiles:\n  ci:\n    env: {CI: 'true'}\ncommands: [{shell: x}]\n").workflow
    assert workflow.profiles["ci"].env["CI"].value == "true"


def test_merge_list_and_object_forms() -> None:
    listed = parse("commands: [{shell: x}]\nmerge:\n  - shell: git fetch\n").workflow.merge
    assert listed is not None and (listed.steps[0].command, listed.timeout) == ("git fetch", None)
    shaped = parse(
        "commands: [{shell: x}]\nmerge:\n  commands: [{claude: /merge}]\n  timeout: 10m\n"
    )
    merge = shaped.workflow.merge
    assert merge is not None and (merge.steps[0].kind, merge.timeout) == ("claude", 600.0)


def test_merge_object_without_commands_is_an_error() -> None:
    error = failure("commands: [{shell: x}]\nmerge:\n  timeout: 10\n")
    assert error.render().startswith("wf.yml:2:1 (merge.commands): needs at least one step")


def test_strict_variables_flag() -> None:
    assert (
        parse("strict_variables: true\ncommands: [{shell: x}]\n").workflow.strict_variables is True
    )


def test_json_values_win_when_yaml_would_read_them_differently() -> None:
    text = '{"commands": [{"shell": "echo \\ud83d\\ude00"}]}'
    step = parse_workflow(text, source="w.json").workflow.steps[0]
    assert step.command == "echo \U0001f600"
    assert step.line is None  # positions are dropped rather than guessed


def test_json_duplicate_keys_are_refused() -> None:
    with pytest.raises(WorkflowError, match="duplicate key 'shell'"):
        parse_workflow('{"commands": [{"shell": "a", "shell": "b"}]}', source="w.json")


def test_a_broken_nested_step_is_reported_once() -> None:
    error = failure("- claude: /impl\n  validate:\n    - timeout: 3\n")
    assert "this step has no command" in error.message
    assert error.details is None


def test_a_secret_env_value_needs_its_value() -> None:
    error = failure("env:\n  TOKEN: {secret: true}\ncommands: [{shell: x}]\n")
    assert error.render().startswith("wf.yml:2:3 (env.TOKEN): an env value is one of: text,")


def test_number_errors_read_like_yaml() -> None:
    error = failure("- claude: /impl\n  validate:\n    claude: /v\n    threshold: abc\n")
    assert (
        error.render()
        == "wf.yml:4:5 (commands[0].validate.threshold): expected a number, got 'abc'"
    )


def test_validate_expected_schema_is_reported_not_silently_kept() -> None:
    loaded = parse_workflow(
        "- shell: make\n  validate:\n    shell: check\n    expected_schema: {type: object}\n"
    )
    assert any("expected_schema" in w and "not checked" in w for w in loaded.warnings)
