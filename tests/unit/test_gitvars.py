"""Whether a workflow uses the git context variables: scanned once per loaded workflow, and
never answered for one workflow with another's result."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

from prodigyd.engine.gitvars import references_git_variables
from prodigyd.workflow.load import load_workflow


def test_each_workflow_gets_its_own_answer_however_often_it_is_asked(tmp_path: Path):
    plain = tmp_path / "plain.yml"
    plain.write_text('- shell: "make test"\n')
    tracked = tmp_path / "tracked.yml"
    tracked.write_text('- shell: "echo ${step.files_added}"\n')
    in_condition = tmp_path / "when.yml"
    in_condition.write_text('- shell: "true"\n  when: "${workflow.commit_count} > 0"\n')
    for _ in range(3):
        assert references_git_variables(load_workflow(plain).workflow) is False
        assert references_git_variables(load_workflow(tracked).workflow) is True
        assert references_git_variables(load_workflow(in_condition).workflow) is True


def test_an_edited_workflow_is_scanned_again(tmp_path: Path):
    file = tmp_path / "wf.yml"
    file.write_text('- shell: "make test"\n')
    assert references_git_variables(load_workflow(file).workflow) is False
    file.write_text('- shell: "echo ${workflow.files_changed}"\n')
    assert references_git_variables(load_workflow(file).workflow) is True
    file.write_text('- shell: "make test"\n')  # the first text again: its answer again
    assert references_git_variables(load_workflow(file).workflow) is False


def test_many_workflows_beyond_what_is_remembered(tmp_path: Path):
    """More workflows than the scan remembers: the oldest are scanned again, rightly."""
    answers = {}
    for i in range(300):
        file = tmp_path / f"wf{i}.yml"
        uses = i % 3 == 0
        file.write_text(
            f'- shell: "echo {i} ${{step.commits}}"\n' if uses else f'- shell: "echo {i}"\n'
        )
        answers[file] = uses
    for file, uses in answers.items():
        assert references_git_variables(load_workflow(file).workflow) is uses


def test_a_workflow_is_scanned_once_however_many_jobs_run_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    from prodigyd.engine import gitvars

    scans: list[str] = []
    pattern = gitvars._REFERENCE
    monkeypatch.setattr(
        gitvars,
        "_REFERENCE",
        SimpleNamespace(search=lambda text: scans.append(text) or pattern.search(text)),
    )
    file = tmp_path / "wf.yml"
    file.write_text('- shell: "echo ${step.files_added}"\n')
    for _ in range(5):  # each job loads it: the loader hands out the one parsed object
        assert references_git_variables(load_workflow(file).workflow) is True
    assert len(scans) == 1
