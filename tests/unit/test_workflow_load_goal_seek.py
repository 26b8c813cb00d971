"""Loading `goal_seek:` steps and the built-in validators (`tests:`, `spec:`, `quality:`)."""

from __future__ import annotations

from pathlib import Path

import pytest

from prodigyd.errors import WorkflowError
from prodigyd.workflow.load import load_workflow, parse_workflow
from prodigyd.workflow.model import GoalSeekSpec, Scorer, Step

EXAMPLES = Path(__file__).parent / "workflows"


def only_step(text: str) -> Step:
    (step,) = parse_workflow(text, source="wf.yml", strict=True).workflow.steps
    return step


def goal_of(text: str) -> GoalSeekSpec:
    spec = only_step(text).goal_seek
    assert spec is not None
    return spec


def failure(text: str) -> WorkflowError:
    with pytest.raises(WorkflowError) as caught:
        parse_workflow(text, source="wf.yml", strict=True)
    return caught.value


def test_the_originals_goal_seeking_examples_load() -> None:
    """workflows/goal-seeking-examples.yml of the original, as it was before goal_seek
    was removed (0.4.1): seven examples, one of them an on_failure handler."""
    loaded = load_workflow(EXAMPLES / "goal-seeking-examples.yml", strict=True)
    steps = loaded.workflow.steps
    assert loaded.warnings == []
    assert [step.kind for step in steps] == ["goal_seek"] * 5 + ["shell"] + ["goal_seek"] * 3
    first = steps[0].goal_seek
    assert first is not None and steps[0].commit_required
    assert (first.attempt.kind, first.attempt.command) == ("claude", "/prodigy-coverage --improve")
    assert (first.threshold, first.max_attempts, first.timeout_seconds) == (90, 5, 300)
    assert first.scorer.kind == "quality" and first.fail_on_incomplete
    handler = steps[5].on_failure
    assert handler is not None and handler.handlers[0].kind == "goal_seek"
    assert handler.handler_failure_fatal  # its fail_on_incomplete: true fails the workflow
    assert steps[6].name == "Complete feature implementation with quality checks"


def test_defaults_follow_the_original() -> None:
    spec = goal_of("- goal_seek:\n    goal: g\n    shell: make\n    validate: ./score.sh\n")
    assert (spec.threshold, spec.max_attempts, spec.timeout_seconds) == (100, 3, None)
    assert spec.fail_on_incomplete is True
    assert spec.scorer == Scorer(kind="quality", command="./score.sh")
    assert only_step("- goal_seek: {goal: g, shell: make, validate: x}").display() == (
        "goal_seek: g"
    )


@pytest.mark.parametrize(
    ("command", "kind", "text"),
    [
        ("claude: /debug-test-failure", "claude", "/debug-test-failure"),
        ("shell: cargo fix", "shell", "cargo fix"),
        ("/fix-tests", "claude", "/fix-tests"),
        ("make fix", "shell", "make fix"),
    ],
)
def test_command_says_its_kind_as_exec_does(command: str, kind: str, text: str) -> None:
    spec = goal_of(f"- goal_seek: {{goal: g, command: '{command}', validate: x}}\n")
    assert (spec.attempt.kind, spec.attempt.command) == (kind, text)


def test_built_in_validators_as_goal_seek_validate() -> None:
    tests = goal_of("- goal_seek: {goal: g, shell: x, validate: {tests: 'pytest -q'}}")
    assert tests.scorer == Scorer(kind="tests", command="pytest -q")
    spec = goal_of(
        "- goal_seek:\n"
        "    goal: g\n"
        "    claude: /implement\n"
        "    validate:\n"
        "      spec: {file: specs/auth.md, pattern: 'AUTH-\\d+', paths: [src, tests]}\n"
    )
    assert spec.scorer == Scorer(
        kind="spec", spec="specs/auth.md", pattern=r"AUTH-\d+", paths=("src", "tests")
    )


def test_built_in_validators_in_a_steps_validate() -> None:
    step = only_step(
        "- claude: /implement\n"
        "  validate:\n"
        "    tests: cargo test\n"
        "    threshold: 90\n"
        "    on_incomplete: {claude: '/fix ${validation.gaps}', max_attempts: 2}\n"
    )
    assert step.validation is not None
    assert step.validation.scorer == Scorer(kind="tests", command="cargo test")
    assert step.validation.commands == () and step.validation.threshold == 90
    spec = only_step("- shell: x\n  validate: {spec: specs/a.md, threshold: 80}\n").validation
    assert spec is not None and spec.scorer == Scorer(kind="spec", spec="specs/a.md")


@pytest.mark.parametrize(
    ("text", "message", "line"),
    [
        (
            "- goal_seek: {goal: g, validate: x}\n",
            "goal_seek needs exactly one of claude, shell",
            1,
        ),
        (
            "- goal_seek:\n    goal: g\n    shell: a\n    claude: /b\n    validate: x\n",
            "goal_seek needs exactly one of claude, shell (found: claude, shell)",
            1,
        ),
        ("- goal_seek:\n    goal: g\n    shell: a\n", "is required", 1),
        ("- goal_seek:\n    shell: a\n    validate: x\n", "is required", 1),
        (
            "- goal_seek:\n    goal: g\n    shell: a\n    validate: x\n    threshold: 120\n",
            "must be at most 100",
            5,
        ),
        (
            "- goal_seek:\n    goal: g\n    shell: a\n    validate: x\n    max_attempts: 0\n",
            "must be at least 1",
            5,
        ),
        (
            "- goal_seek:\n    goal: g\n    shell: a\n    validate: {shell: x}\n",
            "validate needs a command, tests:, spec: or quality:",
            4,
        ),
        (
            "- goal_seek:\n    goal: g\n    shell: a\n    validate: {tests: x, quality: y}\n",
            "give one validator, not tests and quality",
            4,
        ),
        (
            "- goal_seek:\n    goal: g\n    shell: a\n    validate:\n      spec: {pattern: 'X-\\d+'}\n",
            "the spec validator needs the spec file",
            5,
        ),
        (
            "- goal_seek:\n    goal: g\n    shell: a\n    validate:\n"
            "      spec: {file: s.md, pattern: '(a)(b)'}\n",
            "has 2 groups; the id is its first",
            5,
        ),
        (
            "- shell: x\n  validate:\n    shell: y\n    tests: pytest\n",
            "give commands (and result_file) or the tests validator, not both",
            2,
        ),
        ("- goal_seek: [a]\n", "expected a mapping with goal:", 1),
    ],
)
def test_bad_goal_seek_names_the_line(text: str, message: str, line: int) -> None:
    error = failure(text)
    assert message in error.render()
    assert error.location is not None and error.location.line == line, error.render()
