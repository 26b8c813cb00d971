"""Pieces of the job environment and of validation, alone (the daemon-level behaviour is in
tests/integration/test_environment.py)."""

from __future__ import annotations

import random

import pytest

from prodigyd.engine import retry
from prodigyd.engine.env import clean, expand_home
from prodigyd.workflow.interpolate import VariableStore, interpolate
from prodigyd.workflow.model import RetrySpec


def test_inherit_false_keeps_what_programs_and_claude_need() -> None:
    inherited = {
        "PATH": "/bin",
        "HOME": "/h",
        "LC_ALL": "C",
        "PRODIGY_HOME": "/p",
        "ANTHROPIC_API_KEY": "k",
        "PATHOLOGY": "no",
        "AWS_SECRET": "no",
    }
    assert clean(inherited) == {
        "PATH": "/bin",
        "HOME": "/h",
        "LC_ALL": "C",
        "PRODIGY_HOME": "/p",
        "ANTHROPIC_API_KEY": "k",
    }


def test_env_references_read_the_environment_given() -> None:
    text = "${env:NAME} ${env.NAME} ${env:UNSET}"
    assert interpolate(text, VariableStore(), environment={"NAME": "v"}) == "v v ${env:UNSET}"
    store = VariableStore()
    store.set("env", {"NAME": "from-a-variable"})
    assert interpolate("${env.NAME}", store) == "from-a-variable"  # no environment given


def test_only_a_leading_tilde_is_home(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", "/home/me")
    assert [expand_home(t) for t in ("~", "~/x", "a~/x", "~user")] == [
        "/home/me",
        "/home/me/x",
        "a~/x",
        "~user",
    ]


def test_next_wait_is_one_rule_for_steps_and_items() -> None:
    spec = RetrySpec(attempts=3, backoff="fixed", initial_delay=2, retry_on=("timeout",))
    rng = random.Random(0)
    assert retry.next_wait(spec, 1, "timed out", 0.0, rng=rng) == 2
    assert retry.next_wait(spec, 3, "timed out", 0.0, rng=rng) is None  # all attempts used
    assert retry.next_wait(spec, 1, "syntax error", 0.0, rng=rng) is None  # not retried
    budget = spec.model_copy(update={"retry_budget": 3.0})
    assert retry.next_wait(budget, 1, "timed out", 2.0, rng=rng) is None  # past the budget


@pytest.mark.parametrize(
    ("head", "profile", "nothing"),
    [
        ("", None, True),
        ("inherit: false\n", None, True),
        ("", "ci", False),  # refused: no such profile
        ("env: {A: b}\n", None, False),
        ("env_files: [.env]\n", None, False),
        ("secrets: {K: SOURCE}\n", None, False),
        ("profiles: {ci: {env: {A: b}}}\n", None, True),  # none active
    ],
)
def test_an_environment_composes_nothing_only_without_env_secrets_or_profile(
    head: str, profile: str | None, nothing: bool
) -> None:
    from prodigyd.engine.env import composes_nothing
    from prodigyd.workflow.load import parse_workflow

    workflow = parse_workflow(f"{head}commands:\n  - shell: 'true'\n").workflow
    assert composes_nothing(workflow, profile) is nothing
