"""A `${name}` nothing defines is a warning at load (prodigyd/workflow/load/references.py):
where it is, what was probably meant, and no warning when unsure."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from prodigyd import errorcodes
from prodigyd.errors import WorkflowError
from prodigyd.workflow.load import load_workflow, parse_workflow
from tests.gitutil import git, make_repo, use_git_identity

if TYPE_CHECKING:
    from prodigyd.engine.mapreduce.agent import AgentJob
    from prodigyd.engine.runs import Run
    from prodigyd.store.sessions import SessionRecord

CORPUS = Path(__file__).resolve().parents[1] / "corpus" / "prodigy"


def warnings(text: str, environment: tuple[str, ...] = ()) -> list[str]:
    return parse_workflow(text, source="wf.yml").variable_warnings(set(environment))


def test_a_typo_is_named_with_file_line_column_and_a_did_you_mean() -> None:
    text = "env:\n  issue: '42'\ncommands:\n  - shell: 'true'\n  - claude: '/fix ${isue} now'\n"
    [warning] = warnings(text)
    assert warning.startswith("wf.yml:5:19: ${isue} is not defined")
    assert "left as written, and a shell makes it empty; did you mean ${issue}?" in warning


def test_a_dotted_name_is_said_to_fail_in_a_shell_not_to_be_empty() -> None:
    [warning] = warnings("- shell: 'echo ${shel.output}'\n")
    assert "and a shell fails on it (`Bad substitution`)" in warning
    done = subprocess.run(["sh", "-c", "echo ${shel.output}"], capture_output=True, text=True)
    assert done.returncode != 0 and "Bad substitution" in done.stderr  # as the warning says


def test_a_reference_in_a_block_scalar_is_found_on_its_own_line() -> None:
    text = "- shell: |\n    echo start\n    echo ${shel.output}\n"
    [warning] = warnings(text)
    assert warning.startswith("wf.yml:3:10: ${shel.output}")
    assert "did you mean ${shell.output}?" in warning


@pytest.mark.parametrize(
    "text",
    [
        "env:\n  NAME: x\ncommands:\n  - shell: 'echo ${NAME}'\n",
        "- shell: 'echo hi'\n  capture: greeting\n- shell: 'echo ${greeting} ${greeting.exit_code}'\n",
        "- shell: 'echo hi'\n  capture_output: out\n- claude: '/x ${out}'\n",
        "- shell: 'echo hi'\n  id: first\n- claude: '/x ${first.output}'\n",
        "- shell: 'make'\n- claude: '/fix ${shell.output} ${ARG} ${ARG_2} ${1} ${ITERATION}'\n",
        "- shell: 'echo ${missing:-fallback}'\n",
        "- shell: 'for f in a b; do echo ${f}; done'\n",
        "- shell: 'n=3; echo ${n} ${#list[@]} ${PRODIGY_WORKTREE}'\n",
        "- foreach:\n    foreach: [a, b]\n    do:\n      - shell: 'echo ${item} ${index}/${total}'\n",
        "parameters:\n  target:\n    type: string\n    default: x\ncommands:\n"
        "  - shell: 'echo ${target}'\n",
        "- shell: 'true'\n  when: '${undefined_flag}'\n",
        "on: commit\ncommands:\n  - shell: 'echo ${trigger.after} ${trigger.branch}'\n",
        "mode: mapreduce\nmap:\n  input: items.json\n  agent_template:\n"
        "    - claude: '/do ${item.path} ${item_id}'\nreduce:\n  - shell: 'echo ${map.successful}'\n",
    ],
)
def test_what_is_defined_or_unsure_is_not_warned(text: str) -> None:
    assert warnings(text) == []


@pytest.mark.parametrize(
    ("written", "meant"), [("commit", "after"), ("brnch", "branch"), ("tags", "tag")]
)
def test_a_name_no_trigger_sets_is_warned_with_the_real_ones(written: str, meant: str) -> None:
    """`trigger.` is not a namespace of any name: a typo there reached a file as written."""
    text = f"on: commit\ncommands:\n  - shell: 'echo ${{trigger.{written}}} > out.txt'\n"
    [warning] = warnings(text)
    assert warning.startswith(
        f"wf.yml:3:18: ${{trigger.{written}}} is not a trigger variable (those are "
        "${trigger.event}, ${trigger.ref}, ${trigger.before}, ${trigger.after}, "
        "${trigger.branch}, ${trigger.tag})"
    )
    assert warning.endswith(f"did you mean ${{trigger.{meant}}}?")


@pytest.mark.parametrize(
    ("written", "meant"),
    [
        ("map.sucessful", "map.successful"),
        ("map.result", "map.results"),
        ("workflow.nmae", "workflow.name"),
        ("step.files_addded", "step.files_added"),
        ("merge.comit_count", "merge.commit_count"),
    ],
)
def test_a_name_not_in_a_fixed_namespace_is_warned_with_the_one_meant(
    written: str, meant: str
) -> None:
    """`${map.sucessful}` passed `validate --strict`; all the agents ran, and reduce failed at
    the end with `Bad substitution`. The map.* names (and workflow.*, step.*, merge.*) are a
    fixed set: any other is a typo, found when the workflow is loaded."""
    text = (
        "mode: mapreduce\nmap:\n  input: x.json\n  agent_template: [{shell: x}]\n"
        f"reduce:\n  - shell: 'echo ${{{written}}}'\n"
    )
    [warning] = warnings(text)
    space = written.split(".")[0]
    assert warning.startswith(
        f"wf.yml:6:18: ${{{written}}} is not a {space} variable (those are ${{{space}."
    )
    assert warning.endswith(f"; did you mean ${{{meant}}}?")


def test_an_upper_case_name_is_the_environments_when_it_has_it() -> None:
    text = "- shell: 'echo ${GITHUB_TOKEN}'\n"
    assert warnings(text, ("GITHUB_TOKEN",)) == []
    [warning] = warnings(text)
    assert "${GITHUB_TOKEN} is not defined" in warning
    with_files = "env_files:\n  - .env\ncommands:\n  - shell: 'echo ${FROM_DOTENV}'\n"
    assert warnings(with_files) == []  # any upper-case name may come from the env file


def test_the_original_workflows_get_no_warning() -> None:
    """Every name the original's own workflow files use is one it defines (GITHUB_TOKEN is
    the user's environment's)."""
    found = []
    for path in sorted(CORPUS.rglob("*.y*ml")):
        try:
            loaded = load_workflow(path)
        except Exception:
            continue  # the three that are not YAML (test_original_corpus.py)
        found += loaded.variable_warnings({"GITHUB_TOKEN"})
    assert found == []


#: name: (text of ~500 KB, how many warnings it gets)
HOSTILE = {
    # every `${` is closed by the one `}` at the end (and none is a plain name)
    "unclosed": ("- shell: '" + "${a " * 120_000 + "}'\n", 0),
    # the same unknown name 80,000 times in one string
    "repeated": ("- shell: '" + "${zz} " * 80_000 + "'\n", 80_000),
    # 25,000 distinct unknown names, one a line of a block scalar
    "distinct": ("- shell: |\n" + "".join(f"    echo ${{v{n}}}\n" for n in range(25_000)), 25_000),
    # `read` again and again before an unknown name
    "read": ("- shell: '" + "read " * 90_000 + "; echo ${zz}'\n", 1),
}


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_a_hostile_text_is_checked_in_bounded_time(name: str, tmp_path: Path) -> None:
    """The references pass is linear in the text: each of these took the old pass from a
    minute to many (quadratic in a ~500 KB file); run apart, so a regression fails, not hangs."""
    import subprocess
    import sys

    file = tmp_path / "wf.yml"
    text, count = HOSTILE[name]
    file.write_text(text)
    script = (
        "import sys\nfrom prodigyd.workflow.load import parse_workflow\n"
        "path = sys.argv[1]\n"
        "loaded = parse_workflow(open(path).read(), source=path)\n"
        "print(len(loaded.variable_warnings(set())))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script, str(file)], capture_output=True, text=True, timeout=20
    )
    assert done.returncode == 0, done.stderr
    assert int(done.stdout) == count  # the unknown names are still all found


def _session_record() -> SessionRecord:
    from prodigyd.store.sessions import SessionRecord

    return SessionRecord(
        id="workflow-1-1",
        workflow="/w.yml",
        workflow_name="w",
        workflow_sha256="0",
        repo="/repo",
        repo_id="repo-0123abcd",
        original_branch="main",
        worktree="/wt",
        branch="prodigy-workflow-1-1",
        cwd="/repo",
    )


def _agent_job() -> AgentJob:
    from prodigyd.engine.context import EngineSettings
    from prodigyd.engine.mapreduce.agent import AgentJob, AgentSpec, WorkItem

    spec = AgentSpec(
        session_id="mapreduce-1-1",
        workflow_name="w",
        template=(),
        variables={},
        env={},
        secrets={},
        settings=EngineSettings(),
        timeout=None,
        track_git=False,
        strict_variables=False,
        keep_failed=False,
    )
    return AgentJob(spec, WorkItem(0, {"file": "a"}, 1), 1, "0" * 40, worker=2)


def _run() -> Run:
    from prodigyd.engine.runs import Run

    return Run(number=1, iteration=1, iterations=2, input="a.md", is_file=True)


def _foreach_item_names() -> set[str]:
    """The names a foreach item's steps get (engine/commands/foreach.py), run for real."""
    import asyncio
    from types import SimpleNamespace

    from prodigyd.engine.commands.foreach import _one
    from prodigyd.workflow.interpolate import VariableStore

    seen: list[VariableStore] = []

    class Runner:
        async def run(self, step: object, *, label: str, store: VariableStore) -> object:
            seen.append(store)
            return SimpleNamespace(success=True)

    spec = SimpleNamespace(do=(object(),))
    inv = SimpleNamespace(store=VariableStore(), label="1")
    asyncio.run(_one(Runner(), spec, inv, 0, "x", 1))  # type: ignore[arg-type]
    return set(seen[0]._entries)


def test_every_name_the_engine_sets_is_known_to_the_checker() -> None:
    """references.BUILTIN_NAMES is the checker's list of what the engine sets: the names
    the engine's own code sets (a session's built-ins, a run's, an agent's item aliases, a
    foreach item's)
    must all be on it, or a workflow using one gets a false warning."""
    from prodigyd.engine.admission import _builtin_variables
    from prodigyd.engine.mapreduce.agent import legacy_item_aliases
    from prodigyd.workflow.load.references import BUILTIN_NAMES, BUILTIN_NAMESPACES

    set_names = {
        *_builtin_variables(_session_record(), Path("/wt"), ["a", "b"]),
        *_run().variables(),
        *legacy_item_aliases({"value": 1, "path": "a.md"}),
        *_foreach_item_names(),
    }
    unknown = {
        name
        for name in set_names
        if not (
            name.isdigit() or name.startswith("ARG_") or name.split(".")[0] in BUILTIN_NAMESPACES
        )
    } - BUILTIN_NAMES
    assert not unknown
    assert {"SESSION_ID", "FILE", "INDEX", "FILE_PATH", "index"} <= set_names  # the paths ran
    text = "".join(f"- shell: 'echo ${{{name}}}'\n" for name in sorted(set_names))
    assert warnings(text) == []


def test_the_pass_stops_at_the_loads_deadline_with_a_located_error() -> None:
    """The loader's time limit (limits.LOAD_SECONDS) covers this pass too."""
    from prodigyd.errors import WorkflowError
    from prodigyd.workflow.limits import Deadline
    from prodigyd.workflow.load.reader import read_yaml
    from prodigyd.workflow.load.references import find_undefined

    text = "- shell: 'echo ok'\n- shell: 'echo ${zz}'\n"
    doc, _ = read_yaml(text, "wf.yml", Deadline())
    workflow = parse_workflow(text, source="wf.yml").workflow
    with pytest.raises(WorkflowError, match="took longer than") as stopped:
        find_undefined(doc, workflow, "wf.yml", text, Deadline(-1))
    assert (stopped.value.location.file, stopped.value.location.line) == ("wf.yml", 2)


def test_a_sub_workflows_outputs_are_known_by_its_name(tmp_path: Path) -> None:
    """`${build.artifact}` and `${build.success}` are set after `build` runs (engine/commands/
    sub_workflow.py); `${artifact}` alone is not."""
    (tmp_path / "build.yml").write_text("- shell: 'echo artifact=app.tgz >> $PRODIGY_OUTPUT'\n")
    wf = tmp_path / "wf.yml"
    wf.write_text(
        "sub_workflows:\n"
        "  build: {source: build.yml, outputs: [artifact]}\n"
        "commands:\n"
        "  - shell: 'echo ${build.artifact} ${build.success} ${artifact}'\n"
    )
    undefined = load_workflow(wf).variable_warnings(set())
    assert [warning.split(" is not defined")[0].rsplit(": ", 1)[1] for warning in undefined] == [
        "${artifact}"
    ]


STRICT = (
    "strict_variables: true\ncommands:\n"
    "  - shell: 'echo ${undefined_var}'\n"
    "  - shell: 'echo ${other}'\n"
)


def test_strict_variables_refuse_a_name_nothing_defines_at_load() -> None:
    """With strict_variables the run stopped at the step, its session and worktree made; the
    loader already knows: the caller (validate, run) is refused, each name at its line."""
    loaded = parse_workflow(STRICT, source="wf.yml")
    with pytest.raises(WorkflowError) as caught:
        loaded.variable_warnings(set())
    error = caught.value
    assert error.render().startswith(
        "wf.yml:3:18: ${undefined_var} is not defined by the workflow (env, parameters, "
        "captures) nor built in\n1 more problem:\n  wf.yml:4:18: ${other} is not defined"
    )
    assert "hint: variables are strict (strict_variables: true or --strict)" in error.render()
    assert [(p["line"], p["column"], p["code"]) for p in error.problems()] == [
        (3, 18, errorcodes.UNDEFINED_VARIABLE),
        (4, 18, errorcodes.UNDEFINED_VARIABLE),
    ]


def test_strict_from_the_caller_refuses_them_too() -> None:
    """`--strict` (validate, run) is the same for any workflow."""
    loaded = parse_workflow(STRICT.replace("strict_variables: true", "name: x"), source="wf.yml")
    assert len(loaded.variable_warnings(set())) == 2
    with pytest.raises(WorkflowError, match=r"\$\{undefined_var\} is not defined"):
        loaded.variable_warnings(set(), strict=True)


@pytest.mark.parametrize(
    "text",
    [
        "- shell: 'echo hi'\n  capture: greeting\n- shell: 'echo ${greeting}'\n",
        "- shell: 'echo ${GIVEN} ${given_lower} ${PARAM} ${missing:-default}'\n",
        "- foreach:\n    foreach: [a, b]\n    do:\n      - shell: 'echo ${item} ${index}'\n",
        "- shell: 'for f in a b; do echo ${f}; done'\n",
    ],
)
def test_strict_variables_keep_what_may_be_defined_at_run_time(text: str) -> None:
    """Captures, the environment's names (any case: strict leaves them to the shell, as
    the run does), --param values, defaults, foreach items, shell variables."""
    loaded = parse_workflow(
        f"strict_variables: true\ncommands:\n{_indented(text)}", source="wf.yml"
    )
    assert loaded.variable_warnings({"GIVEN", "given_lower", "PARAM"}) == []


def test_a_mapreduce_item_field_is_kept_under_strict_variables() -> None:
    text = (
        "strict_variables: true\nmode: mapreduce\nmap:\n  input: x.json\n"
        "  agent_template: [{shell: 'echo ${item.path} ${item_id}'}]\n"
        "reduce: [{shell: 'echo ${map.successful}'}]\n"
    )
    assert parse_workflow(text, source="wf.yml").variable_warnings(set()) == []


def _indented(text: str) -> str:
    return "".join(f"  {line}\n" for line in text.splitlines())


async def test_a_fixed_namespace_holds_exactly_the_names_the_engine_sets(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """references.FIXED_NAMESPACES: any name of `${map.*}`, `${step.*}`... not on it is
    warned about as a typo, so it holds every one the engine's own code sets, and no more."""
    from prodigyd.engine.admission import _builtin_variables
    from prodigyd.engine.gitvars import _publish
    from prodigyd.engine.mapreduce.agent import agent_variables
    from prodigyd.engine.mapreduce.map_phase import MapOutcome
    from prodigyd.git.changes import ChangeSummary
    from prodigyd.git.merge import merge_variables
    from prodigyd.watch.variables import environment, variables
    from prodigyd.workflow.interpolate import VariableStore
    from prodigyd.workflow.load.references import FIXED_NAMESPACES

    use_git_identity(monkeypatch)
    repo = make_repo(tmp_path / "repo")
    git(repo, "branch", "session")
    committed = VariableStore()
    for scope in ("step", "workflow"):
        _publish(committed, scope, ChangeSummary())
    set_names = {
        *committed._entries,
        *MapOutcome(total=0, results=[]).variables(),
        *agent_variables(_agent_job(), Path("/wt")),
        *_builtin_variables(_session_record(), Path("/wt"), []),
        *_run().variables(),
        *await merge_variables(repo, "session", "main", worktree=repo, session_id="s"),
        *variables(environment(event="commit")),
        *await _phase_names(),
    }
    fixed = {name for name in set_names if name.split(".")[0] in FIXED_NAMESPACES}
    assert fixed == {
        f"{space}.{name}" for space, names in FIXED_NAMESPACES.items() for name in names
    }


async def _phase_names() -> set[str]:
    """The names a step of a phase gets (engine/phase.py), run for real."""
    from types import SimpleNamespace

    from prodigyd.engine.phase import run_sequential
    from prodigyd.workflow.interpolate import VariableStore

    class Runner:
        ctx = SimpleNamespace(
            events=SimpleNamespace(emit=lambda *args, **kwargs: None), masker=None
        )

        def display(self, step: object, store: VariableStore) -> str:
            return "a step"

        async def run(self, step: object, **kwargs: object) -> object:
            return SimpleNamespace(success=True)

    async def checkpoint(*args: object) -> None:
        return None

    store = VariableStore()
    step = SimpleNamespace(name=None)
    await run_sequential(
        [step],
        Runner(),
        store,
        completed=[],
        checkpoint=checkpoint,  # type: ignore[arg-type,list-item]
    )
    return set(store._entries)
