"""Composed workflows as the loader resolves them: imports, extends, templates, parameters,
defaults and sub-workflows; paths relative to the naming file; cycles naming the chain;
errors in an included file naming that file and line; the fingerprint covering every file."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from prodigyd import paths
from prodigyd.errors import WorkflowError
from prodigyd.workflow.compose import params
from prodigyd.workflow.load import LoadedWorkflow, load_workflow
from prodigyd.workflow.model import Parameter
from tests.gitutil import write_files


def load(root: Path, files: dict[str, str], main: str = "wf.yml") -> LoadedWorkflow:
    write_files(root, files)
    return load_workflow(root / main)


def failure(root: Path, files: dict[str, str], main: str = "wf.yml") -> WorkflowError:
    with pytest.raises(WorkflowError) as caught:
        load(root, files, main)
    return caught.value


def commands(loaded: LoadedWorkflow) -> list[str | None]:
    return [step.command for step in loaded.workflow.steps]


def test_extends_merges_mappings_and_replaces_lists(tmp_path: Path) -> None:
    loaded = load(
        tmp_path,
        {
            "base.yml": "name: base\nenv: {A: a, B: b}\ncommands: [{shell: base-step}]\n",
            "wf.yml": "extends: base.yml\nenv: {B: child}\n",
            "other.yml": "extends: base\ncommands: [{shell: own}]\n",
        },
    )
    env = {key: value.value for key, value in loaded.workflow.env.items()}
    assert env == {"A": "a", "B": "child"}
    assert loaded.workflow.name == "base"
    assert commands(loaded) == ["base-step"]  # inherited: the child has none
    assert commands(load_workflow(tmp_path / "other.yml")) == ["own"]  # replaced, not joined


def test_imports_put_imported_steps_first_and_paths_are_relative_to_the_naming_file(
    tmp_path: Path,
) -> None:
    loaded = load(
        tmp_path,
        {
            "lib/setup.yml": "imports: [deeper/more.yml]\ncommands: [{shell: setup}]\n",
            "lib/deeper/more.yml": "- shell: more\n",
            "lib/lint.yml": "env: {L: lint}\ncommands: [{shell: lint}]\n",
            "wf.yml": "imports:\n  - path: lib/setup.yml\n  - lib/lint.yml\nenv: {L: own}\n"
            "commands: [{shell: own}]\n",
        },
    )
    assert commands(loaded) == ["more", "setup", "lint", "own"]
    assert loaded.workflow.env["L"].value == "own"  # the importing file wins


def test_selective_import_takes_named_steps_sub_workflows_and_parameters(tmp_path: Path) -> None:
    files = {
        "util.yml": "parameters: {level: {type: number, default: 2}, other: {}}\n"
        "commands:\n  - {shell: fmt, id: format}\n  - {shell: lint, name: lint}\n"
        "  - shell: test\n",
        "wf.yml": "imports: [{path: util.yml, selective: [lint, level]}]\n"
        "commands: [{shell: own}]\n",
    }
    loaded = load(tmp_path, files)
    assert commands(loaded) == ["lint", "own"]
    assert set(loaded.workflow.parameters) == {"level"}
    write_files(tmp_path, {"wf.yml": "imports: [{path: util.yml, selective: [nope]}]\n"})
    error = failure(tmp_path, {})
    assert error.location is not None and error.location.line == 1
    assert "'nope' is not a step id or name, sub-workflow or parameter" in error.message
    assert error.hint is not None and "format, lint, level, other" in error.hint


def test_a_cycle_is_an_error_naming_the_chain(tmp_path: Path) -> None:
    error = failure(
        tmp_path,
        {
            "wf.yml": "extends: a.yml\n",
            "a.yml": "commands: [{shell: a}]\nimports: [b.yml]\n",
            "b.yml": "template: {name: t, source: {file: a.yml}}\n",
        },
    )
    assert error.message == "cycle: wf.yml -> a.yml -> b.yml -> a.yml"
    assert error.location is not None
    assert (error.location.file, error.location.line) == (str(tmp_path / "b.yml"), 1)
    self_error = failure(tmp_path, {"wf.yml": "imports: [wf.yml]\ncommands: [{shell: x}]\n"})
    assert self_error.message == "cycle: wf.yml -> wf.yml"


def test_an_error_in_an_included_file_names_that_file_and_line(tmp_path: Path) -> None:
    error = failure(
        tmp_path,
        {
            "parts/steps.yml": "commands:\n  - shell: ok\n  - shell: bad\n    timeout: -3\n",
            "wf.yml": "name: main\nimports: [parts/steps.yml]\ncommands: [{shell: x}]\n",
        },
    )
    assert error.location is not None
    assert error.location.file == str(tmp_path / "parts/steps.yml")
    assert (error.location.line, error.location.column) == (4, 5)
    assert error.location.field == "commands[1].timeout"


def test_a_syntax_error_in_an_included_file_shows_its_line_with_a_caret(tmp_path: Path) -> None:
    error = failure(
        tmp_path,
        {"base.yml": 'commands:\n  - shell: "open\n', "wf.yml": "name: x\nextends: base.yml\n"},
    )
    assert error.location is not None and error.location.file == str(tmp_path / "base.yml")
    assert error.details is not None and "^" in error.details and '"open' in error.details
    assert error.hint is not None and f"included from {tmp_path / 'wf.yml'}:2" in error.hint


def test_unknown_keys_in_an_included_file_are_warned_at_that_file(tmp_path: Path) -> None:
    loaded = load(
        tmp_path,
        {"base.yml": "commands:\n  - shell: x\n    timout: 3\n", "wf.yml": "extends: base.yml\n"},
    )
    assert any(
        w.startswith(f"{tmp_path / 'base.yml'}:3:5: unknown key 'timout'") for w in loaded.warnings
    )


def test_a_missing_included_file_is_an_error_at_the_key_naming_it(tmp_path: Path) -> None:
    error = failure(tmp_path, {"wf.yml": "commands: [{shell: x}]\nextends: nowhere\n"})
    assert error.message == "extends: 'nowhere': no such file"
    assert error.location is not None and error.location.line == 2
    assert error.hint is not None and str(tmp_path / "bases" / "nowhere.yml") in error.hint


def test_template_from_a_file_binds_with_and_applies_override(tmp_path: Path) -> None:
    loaded = load(
        tmp_path,
        {
            "t/deploy.yml": "parameters:\n  required: [app]\n  optional:\n"
            "    - {name: replicas, type: Number, default: 1}\n"
            "env: {MODE: t}\ncommands: [{shell: 'deploy ${app} ${replicas}'}]\n",
            "wf.yml": "template:\n  name: deploy\n  source: {file: t/deploy.yml}\n"
            "  with: {app: web, replicas: '5'}\n  override: {env: {MODE: o}}\n",
        },
    )
    parameters = loaded.workflow.parameters
    assert parameters["app"] == Parameter(type="any", required=True, default="web")
    assert parameters["replicas"].default == 5  # typed by the declaration
    assert loaded.workflow.env["MODE"].value == "o"
    assert commands(loaded) == ["deploy ${app} ${replicas}"]
    error = failure(
        tmp_path,
        {"wf.yml": "template: {name: d, source: {file: t/deploy.yml}, with: {ap: web}}\n"},
    )
    assert error.message == "the template declares no parameter 'ap' (it has: app, replicas)"
    assert error.location is not None and error.location.line == 1


def test_template_by_name_comes_from_the_registry_repository_first(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    (repo / ".git").mkdir(parents=True)
    write_files(paths.templates_dir(), {"ci.yml": "commands: [{shell: from-home}]\n"})
    write_files(repo, {"wf.yml": "template: {name: ci, source: ci}\n"})
    assert commands(load_workflow(repo / "wf.yml")) == ["from-home"]
    write_files(repo, {".prodigy/templates/ci.yml": "commands: [{shell: from-repo}]\n"})
    assert commands(load_workflow(repo / "wf.yml")) == ["from-repo"]
    write_files(repo, {"wf.yml": "template: {name: ci, source: {registry: ci}}\n"})
    assert commands(load_workflow(repo / "wf.yml")) == ["from-repo"]
    write_files(repo, {"wf.yml": "template: {name: ci, source: nope}\n"})
    with pytest.raises(WorkflowError, match="no template named 'nope' in the registry"):
        load_workflow(repo / "wf.yml")


def test_parameter_shapes_types_defaults_and_validation(tmp_path: Path) -> None:
    loaded = load(
        tmp_path,
        {
            "wf.yml": "parameters:\n"
            "  env: {type: String, required: true, validation: \"in(['dev', 'prod'])\"}\n"
            "  port: {type: integer, default: 8080, validation: 'value >= 1 && value <= 65535'}\n"
            "  tags: {type: array}\n"
            "defaults: {port: 9000, region: eu}\n"
            "commands: [{shell: x}]\n"
        },
    )
    workflow = loaded.workflow
    assert workflow.parameters["port"].default == 9000  # defaults: beats the own default
    assert workflow.defaults == {"region": "eu"}
    values = params.resolve(
        workflow.parameters, workflow.defaults, {"env": "prod", "tags": '["a"]'}, where="wf"
    )
    assert values == {"env": "prod", "port": 9000, "tags": ["a"], "region": "eu"}
    with pytest.raises(WorkflowError) as caught:
        params.resolve(
            workflow.parameters, workflow.defaults, {"port": "99999", "x": 1}, where="wf"
        )
    assert (
        caught.value.message
        == "wf: unknown parameter 'x' (the workflow declares: env, port, region, tags) (and 2 more)"
    )
    assert caught.value.details is not None
    assert "missing required parameter 'env'" in caught.value.details
    assert "parameter 'port': 99999 fails its validation" in caught.value.details
    bad = failure(
        tmp_path,
        {"wf.yml": "parameters: {n: {type: number, default: abc}}\ncommands: [{shell: x}]\n"},
    )
    assert bad.message == "default of parameter 'n': expected a number, got 'abc'"
    assert bad.location is not None and bad.location.line == 1


@pytest.mark.parametrize(
    ("kind", "text", "value"),
    [
        ("number", "8080", 8080),
        ("number", "2.5", 2.5),
        ("boolean", "yes", True),
        ("boolean", "false", False),
        ("string", "007", "007"),
        ("object", '{"a": 1}', {"a": 1}),
        ("any", "42", "42"),
    ],
)
def test_command_line_text_is_typed_by_the_declaration(kind: str, text: str, value: object) -> None:
    assert params.convert(text, kind) == value


def test_sub_workflows_become_steps_before_the_commands(tmp_path: Path) -> None:
    loaded = load(
        tmp_path,
        {
            "subs/build.yml": "parameters: {level: {type: number, default: 1}}\n"
            "env: {SUB: yes}\ncommands: [{shell: 'make ${level}', working_dir: src}]\n",
            "subs/a.yml": "- shell: a\n",
            "wf.yml": "sub_workflows:\n"
            "  build: {source: subs/build.yml, parameters: {level: 3}, outputs: [artifact],"
            " working_dir: app}\n"
            "  a: {source: subs/a.yml, parallel: true}\n"
            "  b: {source: subs/a.yml, parallel: true, continue_on_error: true}\n",
        },
    )
    first, second = loaded.workflow.steps
    assert first.kind == second.kind == "sub_workflow"
    (build,) = first.sub_workflows
    assert [sub.name for sub in second.sub_workflows] == ["a", "b"]  # run together
    assert build.values == {"level": 3} and build.outputs == ("artifact",)
    assert build.steps[0].working_dir == "app/src" and build.steps[0].env == {"SUB": "yes"}
    assert set(loaded.includes) == {str(tmp_path / "subs/build.yml"), str(tmp_path / "subs/a.yml")}


def test_a_sub_workflow_may_not_bring_what_belongs_to_the_session(tmp_path: Path) -> None:
    error = failure(
        tmp_path,
        {
            "s.yml": "commands: [{shell: x}]\nsecrets: {K: {provider: env, key: K}}\n",
            "wf.yml": "sub_workflows: {s: {source: s.yml}}\ncommands: [{shell: y}]\n",
        },
    )
    assert error.message.startswith("secrets: is not allowed in a sub-workflow")
    assert error.location is not None and error.location.file == str(tmp_path / "s.yml")


def test_the_fingerprint_changes_with_any_included_file(tmp_path: Path) -> None:
    files = {"base.yml": "commands: [{shell: one}]\n", "wf.yml": "extends: base.yml\n"}
    before = load(tmp_path, files)
    again = load_workflow(tmp_path / "wf.yml")
    assert again.sha256 == before.sha256
    write_files(tmp_path, {"base.yml": "commands: [{shell: two}]\n"})
    after = load_workflow(tmp_path / "wf.yml")  # the main file is unchanged: no stale cache
    assert commands(after) == ["two"]
    assert after.sha256 != before.sha256


def test_a_plain_workflow_keeps_the_digest_of_its_bytes(tmp_path: Path) -> None:
    import hashlib

    loaded = load(tmp_path, {"wf.yml": "commands: [{shell: x}]\n"})
    assert loaded.sha256 == hashlib.sha256(b"commands: [{shell: x}]\n").hexdigest()
    assert loaded.includes == {}
    assert os.environ["PRODIGY_HOME"]  # the registry looked at this test's home only
