"""Loading MapReduce workflows: every shape of setup/map/reduce/error_policy, and errors
that name the line and field."""

from __future__ import annotations

import pytest

from prodigyd.errors import WorkflowError
from prodigyd.workflow.load import LoadedWorkflow, parse_workflow

BASE = """
name: demo
mode: mapreduce
map:
  input: items.json
  agent_template:
    - shell: "echo ${item}"
"""


def parse(text: str, **options: object) -> LoadedWorkflow:
    return parse_workflow(text, source="wf.yml", **options)


def failure(text: str) -> WorkflowError:
    with pytest.raises(WorkflowError) as caught:
        parse(text)
    return caught.value


def test_the_canonical_example_loads_every_field() -> None:
    loaded = parse("""
name: parallel-debt-elimination
mode: mapreduce
env: {PROJECT: demo}
setup:
  - shell: "debtmap analyze . --output items.json"
map:
  input: items.json
  json_path: "$.debt_items[*]"
  filter: "severity == 'high' || severity == 'critical'"
  sort_by: "priority DESC NULLS FIRST"
  distinct: file
  offset: 2
  max_items: 50
  max_parallel: 10
  agent_timeout_secs: 10m
  agent_template:
    - claude: "/fix ${item.description}"
    - shell: "cargo test"
reduce:
  - claude: "/summarize ${map.results}"
on_item_failure: retry
max_failures: 5
failure_threshold: 0.2
continue_on_failure: false
""")
    wf = loaded.workflow
    assert wf.mode == "mapreduce" and wf.steps == ()
    assert wf.setup is not None and wf.setup.steps[0].command.startswith("debtmap")
    assert wf.map is not None and wf.map.json_path == "$.debt_items[*]"
    assert (wf.map.offset, wf.map.max_items, wf.map.max_parallel) == (2, 50, 10)
    assert wf.map.agent_timeout_secs == 600.0 and wf.map.distinct == "file"
    assert [s.kind for s in wf.map.agent_template] == ["claude", "shell"]
    assert wf.reduce[0].command == "/summarize ${map.results}"
    policy = wf.error_policy
    assert (policy.on_item_failure, policy.max_failures, policy.failure_threshold) == (
        "retry",
        5,
        0.2,
    )
    assert policy.continue_on_failure is False and loaded.warnings == []


def test_map_without_mode_is_mapreduce_and_the_object_forms_are_accepted() -> None:
    loaded = parse("""
setup:
  commands:
    - shell: "echo 42"
    - shell: "echo name=demo"
  timeout: 60
  capture_outputs:
    ANSWER: 0
    NAME: {command_index: 1, pattern: "name=(\\\\w+)", multiline: first_line}
map:
  input: "ls *.txt"
  max_parallel: "$WORKERS"
  timeout_config: {agent_timeout_secs: 30, timeout_action: dlq}
  agent_template:
    commands:
      - shell: "wc -l ${item}"
reduce:
  commands:
    - shell: "echo ${map.total}"
error_policy:
  on_item_failure: stop
  retry_config: {max_attempts: 5}
  circuit_breaker: {failure_threshold: 2, timeout: 1m}
""")
    wf = loaded.workflow
    assert wf.mode == "mapreduce" and wf.setup is not None and wf.setup.timeout == 60
    assert wf.setup.capture_outputs["ANSWER"].command_index == 0
    assert wf.setup.capture_outputs["NAME"].pattern == "name=(\\w+)"
    assert wf.map is not None and wf.map.max_parallel == "$WORKERS"
    assert wf.map.agent_timeout_secs == 30 and wf.reduce[0].command == "echo ${map.total}"
    assert wf.error_policy.retry_config.attempts == 5
    assert wf.error_policy.retry_config.initial_delay == 0  # item retries start at once
    assert wf.error_policy.circuit_breaker is not None
    assert wf.error_policy.circuit_breaker.timeout == 60
    assert any("deprecated" in w for w in loaded.warnings)  # {commands: [...]} forms
    assert wf.map.timeout_action == "dlq"
    assert not any("timeout_action" in w for w in loaded.warnings)  # honoured now


def test_timeout_config_keys_take_effect() -> None:
    hybrid = parse("""
map:
  input: items.json
  timeout_config:
    timeout_policy: hybrid
    timeout_action: skip
    enable_monitoring: true
    command_timeouts: {claude: 300, shell: 60, claude_0: 600}
  agent_template:
    - claude: /first
    - shell: test
    - claude: /second
    - shell: own
      timeout: 5
""").workflow.map
    assert hybrid is not None
    assert (hybrid.agent_timeout_secs, hybrid.timeout_action) == (600, "skip")
    assert [step.timeout for step in hybrid.agent_template] == [600, 60, 300, 5]
    per_command = parse("""
map:
  input: items.json
  timeout_config: {agent_timeout_secs: 100, timeout_policy: per_command}
  agent_template:
    - shell: a
    - claude: /b
""").workflow.map
    assert per_command is not None and per_command.agent_timeout_secs is None
    assert [step.timeout for step in per_command.agent_template] == [100, 100]


def test_retry_config_takes_the_error_policy_backoff_shapes() -> None:
    for backoff in (
        "{exponential: {initial: 2s, multiplier: 3}}",
        "{type: exponential, initial: 2s, multiplier: 3}",
    ):
        policy = parse(
            BASE + f"error_policy:\n  on_item_failure: retry\n  retry_config:\n"
            f"    max_attempts: 4\n    backoff: {backoff}\n"
        ).workflow.error_policy
        retry = policy.retry_config
        assert (retry.attempts, retry.backoff, retry.initial_delay, retry.base) == (
            4,
            "exponential",
            2.0,
            3.0,
        )


def test_mistakes_name_their_line_and_field() -> None:
    error = failure(BASE.replace("input: items.json", 'input: items.json\n  filter: "severity =="'))
    assert error.location is not None and (error.location.line, error.location.field) == (
        6,
        "map.filter",
    )
    error = failure(BASE + '  sort_by: "priority SIDEWAYS"\n')
    assert "SIDEWAYS" in error.message and error.location.field == "map.sort_by"
    error = failure(BASE + '  json_path: "$.items["\n')
    assert error.location.field == "map.json_path"
    error = failure(BASE + "  max_parallel: lots\n")
    assert "expected a whole number or $VAR" in error.message
    error = failure("mode: mapreduce\nmap:\n  input: x.json\n")
    assert error.location.field == "map.agent_template" and "required" in error.message
    error = failure("mode: mapreduce\nsetup:\n  - shell: x\n")
    assert error.message == "a MapReduce workflow needs a map: phase"


@pytest.mark.parametrize(
    ("added", "where"),
    [
        ("  max_parallel: -1\n", "8:3 (map.max_parallel): must be at least 1, got -1"),
        ("  max_parallel: '0'\n", "8:3 (map.max_parallel): must be at least 1, got 0"),
        (
            "setup:\n  commands: [{shell: x}]\n  capture_outputs:\n    X:\n"
            "      command_index: 0\n      pattern: '('\n",
            "13:7 (setup.capture_outputs.X.pattern): invalid pattern '('",
        ),
        (
            "error_policy:\n  retry_config:\n    max_attempts: 0\n",
            "10:5 (error_policy.retry_config.max_attempts): must be at least 1, got 0",
        ),
    ],
)
def test_a_bad_nested_field_is_reported_at_its_own_line(added: str, where: str) -> None:
    """At the field's line and path, not at its section's (`wf.yml:4:1 (map)`)."""
    assert failure(BASE + added).render().startswith(f"wf.yml:{where}")


def test_an_unknown_circuit_breaker_key_names_the_circuit_breaker() -> None:
    loaded = parse(BASE + "error_policy:\n  circuit_breaker:\n    failur_threshold: 2\n")
    assert loaded.warnings == [
        "wf.yml:10:5: unknown key 'failur_threshold' in error_policy.circuit_breaker (ignored); "
        "did you mean 'failure_threshold'?"
    ]


def test_the_error_policy_under_map_is_told_to_go_to_the_top_level() -> None:
    """The original's book writes these under map:, where its parser never read them (and
    said nothing): the message says where they belong, not `did you mean 'max_items'`."""
    loaded = parse(
        BASE
        + "  error_policy: {on_item_failure: retry}\n"
        + "  on_item_failure: stop\n"
        + "  max_failures: 3\n"
    )
    assert loaded.warnings == [
        "wf.yml:8:3: 'error_policy' belongs at the top level of a MapReduce workflow, not in map "
        "(ignored)",
        "wf.yml:9:3: 'on_item_failure' belongs at the top level of a MapReduce workflow or under "
        "error_policy:, not in map (ignored)",
        "wf.yml:10:3: 'max_failures' belongs at the top level of a MapReduce workflow or under "
        "error_policy:, not in map (ignored)",
    ]
    with pytest.raises(WorkflowError) as caught:
        parse(BASE + "  max_failures: 3\n", strict=True)
    assert caught.value.render().startswith(
        "wf.yml:8:3 (map.max_failures): 'max_failures' belongs at the top level of a MapReduce "
        "workflow or under error_policy:, not in map\n"
    )


def test_contradictions_are_refused_rather_than_resolved_silently() -> None:
    error = failure(BASE + "commands:\n  - shell: x\n")
    assert "has no commands:" in error.message
    error = failure(BASE + "on_item_failure: dlq\nerror_policy:\n  on_item_failure: skip\n")
    assert "given both here ('dlq') and under error_policy: ('skip')" in error.message
    error = failure(BASE + "on_item_failure: sometimes\n")
    assert "expected 'dlq', 'retry', 'skip' or 'stop'" in error.message


def test_a_policy_given_both_ways_with_one_value_is_that_value() -> None:
    """The book's complete MapReduce reference (mapreduce/index.md) writes them so."""
    loaded = parse(
        BASE + "on_item_failure: dlq\ncontinue_on_failure: true\nmax_failures: 5\n"
        "error_policy:\n  on_item_failure: dlq\n  continue_on_failure: true\n  max_failures: 5\n"
    )
    policy = loaded.workflow.error_policy
    assert (policy.on_item_failure, policy.continue_on_failure, policy.max_failures) == (
        "dlq",
        True,
        5,
    )


def test_a_required_key_misspelt_is_named_in_its_error() -> None:
    """Unknown keys are warnings, and warnings are not shown while there are errors: the
    missing key's error names the misspelling, or the user sees only "is required"."""
    error = failure(BASE.replace("input:", "inputs:").replace("agent_template", "agent_templat"))
    rendered = error.render()
    assert "(map.input): is required (is 'inputs' it, misspelt?)" in rendered
    assert "(map.agent_template): is required (is 'agent_templat' it, misspelt?)" in rendered


def test_error_collection_is_accepted_with_a_warning() -> None:
    loaded = parse(BASE + "error_collection: aggregate\n")
    assert any("error_collection" in w for w in loaded.warnings)


def test_the_books_echo_of_map_results_into_jq_is_warned_about_where_it_is() -> None:
    reduce = (
        "reduce:\n"
        "  - shell: \"echo '${map.results}' | jq length\"\n"
        "  - shell: \"echo '${map.results[0].item_id}' ${map.successful}\"\n"  # one field: fine
        "  - write_file: {path: r.json, content: '${map.results_json}'}\n"  # the way to do it
    )
    loaded = parse(BASE + reduce)
    [warning] = loaded.warnings
    assert warning.startswith("wf.yml:9:5: ${map.results} pasted into a shell command breaks")
    assert "write_file: step" in warning
