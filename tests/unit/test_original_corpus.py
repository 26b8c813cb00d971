"""The original prodigy's own workflow files load (issue 12, "Done means"): all of them but
three that are not valid YAML in the original either (tests/corpus/prodigy/README.md)."""

from __future__ import annotations

from pathlib import Path

import pytest

from prodigyd.errors import WorkflowError
from prodigyd.workflow.load import load_workflow

CORPUS = Path(__file__).resolve().parents[1] / "corpus" / "prodigy"
FILES = sorted(path for path in CORPUS.rglob("*.y*ml"))
#: Broken in the original: YAML syntax errors, reported as such (with their line).
NOT_YAML = {"capture-parallel-analysis.yml", "mapreduce-json-input.yml", "implement-with-tests.yml"}


def test_the_corpus_is_whole() -> None:
    assert len(FILES) == 38


@pytest.mark.parametrize("path", FILES, ids=lambda path: str(path.relative_to(CORPUS)))
def test_each_original_workflow_loads(path: Path) -> None:
    if path.name in NOT_YAML:
        with pytest.raises(WorkflowError, match="invalid YAML") as err:
            load_workflow(path)
        assert err.value.location is not None and err.value.location.line is not None
        return
    loaded = load_workflow(path)
    assert loaded.workflow.mode in ("standard", "mapreduce")
