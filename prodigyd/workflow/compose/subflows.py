"""`sub_workflows:`: other workflow files run as part of this one.

How they run (the original parsed them and never ran them):

- in the session's worktree, before the workflow's own `commands:`, in the order written;
  consecutive entries with `parallel: true` run together, as one step;
- each is one step of the session (kind `sub_workflow`): checkpointed when it finishes, so a
  resume skips a finished sub-workflow and runs an interrupted one again from its start;
- its steps run in a child scope of the session's variables: they see what the workflow
  sees at that point, plus the sub-workflow's parameters and `inputs:`; what they set stays
  there, except the `outputs:` named, which come back as `${NAME.OUTPUT}` (and
  `${NAME.success}`);
- `working_dir:` is where its steps run (relative to the worktree), `timeout:` bounds the
  whole sub-workflow, `continue_on_error: true` lets the workflow go on when it fails.

A sub-workflow file is a standard workflow; what belongs to a session as a whole (secrets,
profiles, env files, a merge workflow, triggers, a named worktree) is refused in it: give it
to the parent. Its `env:` is the environment of its steps.
"""

from __future__ import annotations

import posixpath
from collections.abc import Callable
from pathlib import Path

from prodigyd.errors import WorkflowError
from prodigyd.workflow.compose.resolve import Resolver
from prodigyd.workflow.load.diagnostics import build_model, shown
from prodigyd.workflow.load.keys import known_entries, model_keys
from prodigyd.workflow.load.nodes import At, Map, plain
from prodigyd.workflow.model import Step, SubWorkflow, Workflow

#: Builds a sub-workflow's resolved file (read from the path, with the chain of files that
#: led to it) into its Workflow: compose/__init__.py's, handed in to avoid an import cycle.
Builder = Callable[[Map, Resolver, Path, tuple[Path, ...]], Workflow]

_ENTRY_KEYS = model_keys(SubWorkflow, unwritten=("name", "steps", "values"), extra=())
_SESSION_ONLY = ("secrets", "profiles", "env_files", "merge", "on", "worktree")


def sub_workflows(
    raw: object, at: At, resolver: Resolver, file: Path, chain: tuple[Path, ...], build: Builder
) -> tuple[Step, ...]:
    """The `sub_workflows:` entries as steps, consecutive parallel ones grouped."""
    ctx = resolver.ctx
    if raw is None:
        return ()
    if not isinstance(raw, Map):
        ctx.problem(f"expected a mapping of NAME: {{source, ...}}, got {shown(raw)}", at)
        return ()
    groups: list[list[tuple[SubWorkflow, int | None]]] = []
    for name in raw:
        here = at.key(raw, name)
        entry = _entry(str(name), raw[name], here, resolver, file, chain, build)
        if entry is None:
            continue
        if entry.parallel and groups and groups[-1][0][0].parallel:
            groups[-1].append((entry, here.line))
        else:
            groups.append([(entry, here.line)])
    return tuple(
        Step(kind="sub_workflow", sub_workflows=tuple(sub for sub, _ in group), line=group[0][1])
        for group in groups
    )


def _entry(
    name: str,
    raw: object,
    at: At,
    resolver: Resolver,
    file: Path,
    chain: tuple[Path, ...],
    build: Builder,
) -> SubWorkflow | None:
    ctx = resolver.ctx
    if isinstance(raw, str):  # `NAME: path.yml`, the short form
        spec = Map(at.mark, at.source)
        spec.put("source", raw, at.mark, at.source)
        raw = spec
    if not isinstance(raw, Map):
        ctx.problem(f"expected {{source, parameters, inputs, outputs, ...}}, got {shown(raw)}", at)
        return None
    fields = known_entries(raw, _ENTRY_KEYS, at, ctx)
    if "source" not in fields:
        ctx.problem("a sub-workflow needs a source: (its workflow file)", at)
        return None
    source_at = at.key(raw, "source")
    doc = resolver.file(fields["source"], source_at, file, chain, "sub-workflow")
    for key in _SESSION_ONLY:
        if key in doc:
            raise WorkflowError(
                f"{key}: is not allowed in a sub-workflow (it runs in its parent's session)",
                location=At.root(doc).key(doc, key).location(ctx.source),
                hint=f"move {key}: to the workflow that runs it ({ctx.source})",
            )
    if doc.get("mode", "standard") != "standard":
        raise WorkflowError(
            "a sub-workflow must be a standard workflow (not mode: mapreduce)",
            location=At.root(doc).key(doc, "mode").location(ctx.source),
        )
    sub_path = Path(str(doc.source)) if doc.source else file
    workflow = build(doc, resolver, sub_path, (*chain, sub_path))
    problems = len(ctx.problems)
    env: dict[str, str] = {}
    for key, value in workflow.env.items():
        if value.secret or value.value is None:
            kind = "secret" if value.secret else "computed (command, condition or profile)"
            ctx.problem(
                f"a {kind} env value ({key}) is not allowed in a sub-workflow; "
                "give it to the parent",
                source_at,
            )
            continue
        env[key] = value.value
    given_values = plain(fields.get("parameters") or {})
    if not isinstance(given_values, dict):
        ctx.problem(
            f"expected a mapping of NAME: value, got {shown(given_values)}",
            at.key(raw, "parameters"),
        )
        given_values = {}
    values = {**workflow.defaults, **given_values}
    for given in given_values:
        if workflow.parameters and given not in workflow.parameters:
            ctx.problem(
                f"sub-workflow {name!r} declares no parameter {given!r} "
                f"(it has: {', '.join(workflow.parameters)})",
                at.key(raw, "parameters"),
            )
    if ctx.failed_since(problems):
        return None
    working_dir = fields.get("working_dir")
    steps = tuple(_placed(step, env, working_dir) for step in workflow.steps)
    outputs = fields.get("outputs")
    data = {
        **{
            key: plain(value)
            for key, value in fields.items()
            if key not in ("source", "parameters")
        },
        "outputs": (outputs,) if isinstance(outputs, str) else plain(outputs or ()),
        "name": name,
        "source": str(sub_path),
        "steps": steps,
        "parameters": workflow.parameters,
        "values": values,
    }
    return build_model(SubWorkflow, data, at, raw, ctx)


def _placed(step: Step, env: dict[str, str], working_dir: object) -> Step:
    """A sub-workflow step with the sub-workflow's environment and folder."""
    update: dict[str, object] = {}
    if env:
        update["env"] = {**env, **step.env}
    if isinstance(working_dir, str) and working_dir.strip():
        update["working_dir"] = posixpath.join(working_dir, step.working_dir or "")
    return step.model_copy(update=update) if update else step
