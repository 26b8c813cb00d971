"""Every ```yaml block of README.md and docs/*.md loads through the daemon's own loader
(`load_workflow`, what `prodigyctl validate --strict` runs), so the docs cannot drift from it.

Strict: an unknown key fails the block, as a misspelling shown in the docs would mislead.
A failure names the doc and line of the problem. What a block is, the fence says after
`yaml` (GitHub and the man pages show only the language):

- nothing: a whole workflow. It must load, without a warning.
- `step-fields`: the fields of one step (`retry:` ...), loaded on a `shell: "true"` step.
- `workflow-fields`: top-level keys of a workflow without its steps, loaded with one
  `shell: "true"` step added.
- `mapreduce-fields`: top-level keys of a MapReduce workflow without its `map:`, loaded
  with a minimal one added.
- `error: TEXT`: a workflow shown because it is wrong. It must fail to load, with TEXT in
  the error.
- `not-a-workflow: WHY`: YAML that is no workflow, and why; not loaded.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from prodigyd.errors import WorkflowError
from prodigyd.workflow.load import load_workflow
from tests.docblocks import Block, docs

STEP = 'shell: "true"'

#: marker -> (the lines that make the block a workflow, how many come before the block's)
WRAPPERS: dict[str, tuple[list[str], list[str]]] = {
    "": ([], []),
    "step-fields": ([f"- {STEP}"], []),
    "workflow-fields": ([], ["commands:", f"  - {STEP}"]),
    "mapreduce-fields": ([], ["map:", "  input: items.json", "  agent_template:", f"    - {STEP}"]),
}

YAML_BLOCKS = [block for doc in docs() for block in doc.blocks if block.language == "yaml"]


def test_the_docs_have_yaml_blocks() -> None:
    assert len(YAML_BLOCKS) >= 10  # the extraction finds them (README.md and workflows.md)


@pytest.mark.parametrize("block", YAML_BLOCKS, ids=str)
def test_yaml_block_loads_as_the_docs_say(block: Block, tmp_path: Path) -> None:
    kind, _, said = block.marker.partition(":")
    if kind == "not-a-workflow":
        assert said.strip(), f"{block}: say why the block is not a workflow"
        return
    if kind == "error":
        assert said.strip(), f"{block}: say which error the block shows"
        path = _file(tmp_path, block.lines)
        with pytest.raises(WorkflowError) as caught:
            load_workflow(path, strict=True)
        assert said.strip() in caught.value.render(), f"{block}: {caught.value.render()}"
        return
    assert kind in WRAPPERS, f"{block}: unknown marker {block.marker!r}"
    before, after = WRAPPERS[kind]
    indent = "  " if before else ""
    lines = [*before, *(indent + line if line else line for line in block.lines), *after]
    try:
        loaded = load_workflow(_file(tmp_path, lines), strict=True)
    except WorkflowError as exc:
        line = exc.location.line if exc.location else None
        where = f"{block.doc}:{block.line + line - len(before)}" if line else str(block)
        pytest.fail(f"{where}: the example does not load: {exc.message}\n{exc.render()}")
    assert loaded.warnings == [], f"{block}: {loaded.warnings}"


def _file(folder: Path, lines: list[str] | tuple[str, ...]) -> Path:
    path = folder / "example.yml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path
