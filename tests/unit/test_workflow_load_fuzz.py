"""Property: any text in, a workflow or one WorkflowError with a line and column out.

Inputs are workflow-shaped documents (the keys and shapes the loader knows, nested,
anchored and aliased) written as YAML and then damaged: characters inserted, deleted and
replaced, control characters, bad bytes decoded leniently, explicit tags, deep brackets.
The example count is bounded so that the test stays quick; `PRODIGY_FUZZ_EXAMPLES` raises
it for a long run by hand.
"""

from __future__ import annotations

import os
from pathlib import Path

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from prodigyd.errors import WorkflowError
from prodigyd.workflow.load import parse_workflow

EXAMPLES = int(os.environ.get("PRODIGY_FUZZ_EXAMPLES", "200"))

_SEEDS = [
    path.read_text()
    for folder in (Path(__file__).parent / "workflows", Path(__file__).parents[2] / "examples")
    for path in sorted(folder.glob("*.yml"))
]

_KEYS = [
    "name",
    "mode",
    "commands",
    "steps",
    "env",
    "secrets",
    "profiles",
    "merge",
    "on",
    "shell",
    "claude",
    "write_file",
    "foreach",
    "do",
    "parallel",
    "max_items",
    "on_failure",
    "retry",
    "validate",
    "timeout",
    "capture",
    "capture_format",
    "when",
    "commit_required",
    "id",
    "on_success",
    "on_exit_code",
    "attempts",
    "backoff",
    "map",
    "setup",
    "reduce",
    "input",
    "json_path",
    "filter",
    "sort_by",
    "agent_template",
    "max_parallel",
    "path",
    "content",
    "commit",
    "push",
    "branches",
    "paths",
    "threshold",
    "commands",
    "max_attempts",
    "<<",
]
_WORDS = [
    "x",
    "echo ${item}",
    "/lint",
    "standard",
    "mapreduce",
    "10",
    "1.5",
    "true",
    "null",
    "~",
    "-1",
    "0o17",
    "0x1f",
    "1:30",
    "on",
    "${shell.output}",
    "item.score > 3",
    "[]",
    "{}",
    "exponential",
    "json",
    "*.md",
    "main",
]
_NASTY = [
    "!!float x",
    "!!int abc",
    "!!timestamp soon",
    "!!binary ~~",
    "!!set {a: 1}",
    "!!omap [1]",
    "!!python/object/apply:os.system [ls]",
    "!foo bar",
    "*undefined",
    "&a",
    "*a",
    "<<: *a",
    "\x00",
    "\x01",
    "\x1b[0m",
    "\x7f",
    "\ufffe",
    "\ud800",
    "\t",
    "\r",
    "\x85",
    "\u2028",
    "[" * 300,
    "[" * 1200,
    "{a: " * 300,
    "- " * 300,
    "'",
    '"',
    "%YAML 1.1\n---\n",
    "---\n",
    "...\n",
    "? ",
    ": ",
    "#",
    "|",
    ">-",
    "\ufeff",
    "9" * 5000,
    "e" * 50,
]

_scalars = st.one_of(
    st.sampled_from(_WORDS),
    st.integers(-(10**6), 10**6),
    st.booleans(),
    st.none(),
    st.text(max_size=12),
)
_documents = st.recursive(
    _scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(st.sampled_from(_KEYS), inner, max_size=4),
    ),
    max_leaves=25,
)


@st.composite
def _workflow_texts(draw: st.DrawFn) -> str:
    """A workflow-shaped document or a real example, as YAML, with a few damages."""
    if draw(st.booleans()):
        text = draw(st.sampled_from(_SEEDS))
    else:
        document = draw(_documents)
        if draw(st.booleans()):
            document = {"commands": [document]}
        text = yaml.safe_dump(document, default_flow_style=draw(st.booleans()), allow_unicode=True)
    for _ in range(draw(st.integers(0, 4))):
        where = draw(st.integers(0, len(text)))
        action = draw(st.sampled_from(["insert", "delete", "replace", "anchor"]))
        piece = draw(st.one_of(st.sampled_from(_NASTY), st.text(max_size=3)))
        if action == "insert":
            text = text[:where] + piece + text[where:]
        elif action == "delete":
            text = text[:where] + text[where + draw(st.integers(1, 20)) :]
        elif action == "replace":
            text = text[:where] + piece + text[where + len(piece) :]
        else:  # anchor a value and refer to it again later: aliases the loader must count
            text = text[:where] + " &a " + text[where:] + "\nextra: [*a, *a, *a]\n"
    return text


def check(text: str, source: str = "wf.yml") -> None:
    """The property: a workflow, or a WorkflowError with a line and column (for YAML)."""
    try:
        parse_workflow(text, source=source)
    except WorkflowError as error:
        assert error.location is not None, error.render()
        if source.endswith(".yml"):
            assert error.location.line is not None, error.render()
            assert error.location.column is not None, error.render()


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
    database=None,
)
@given(_workflow_texts())
def test_any_yaml_loads_or_fails_with_line_and_column(text: str) -> None:
    check(text)


@settings(max_examples=EXAMPLES // 3, deadline=None, database=None)
@given(_documents.map(lambda doc: __import__("json").dumps(doc)), st.text(max_size=4))
def test_any_json_loads_or_fails_with_a_workflow_error(text: str, damage: str) -> None:
    check(text[: len(text) // 2] + damage + text[len(text) // 2 :], source="wf.json")
