"""`goal_seek:` steps and the built-in validators (`tests:`, `spec:`, `quality:`) that
goal_seek's `validate` and a step's `validate:` share.

The original's shape is kept: `{goal, claude | shell, validate, threshold, max_attempts,
timeout_seconds, fail_on_incomplete}`, where `validate` is a shell command printing a
score. Also accepted: `command: "claude: /fix"` (or `"shell: make"`, or `/fix`, as `exec`
reads it), the form the original's feature list showed, and a built-in validator as
`validate`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from prodigyd.workflow.load.diagnostics import Context, build_model, shown
from prodigyd.workflow.load.keys import known_entries, model_keys
from prodigyd.workflow.load.nodes import At, Map, Seq, plain
from prodigyd.workflow.model import GoalSeekSpec, Scorer, Step

#: The keys naming a built-in validator; each mapping with a validator has one of them.
SCORER_KEYS = ("tests", "spec", "quality")
_ATTEMPT_KEYS = ("claude", "shell", "command")
_GOAL_SEEK_KEYS = model_keys(
    GoalSeekSpec, unwritten=("attempt",), spelled={"scorer": "validate"}, extra=_ATTEMPT_KEYS
)
_GOAL_SEEK_OPTIONS = model_keys(GoalSeekSpec, unwritten=("attempt", "scorer"))
_SPEC_KEYS = ("file", *model_keys(Scorer, unwritten=("kind", "command", "spec")))


def goal_seek_body(value: object, at: At, ctx: Context) -> dict[str, object]:
    """The Step fields of a `goal_seek:` step."""
    if not isinstance(value, Map):
        ctx.problem(
            f"expected a mapping with goal:, claude: or shell: and validate:, got {shown(value)}",
            at,
        )
        return {"kind": "goal_seek"}
    count = len(ctx.problems)
    fields = known_entries(value, _GOAL_SEEK_KEYS, at, ctx)
    data = {key: fields[key] for key in _GOAL_SEEK_OPTIONS if key in fields}
    data["attempt"] = _attempt(fields, value, at, ctx)
    if "validate" in fields:
        data["scorer"] = _goal_scorer(fields["validate"], at.key(value, "validate"), ctx)
    if ctx.failed_since(count):
        return {"kind": "goal_seek"}
    spec = build_model(GoalSeekSpec, data, at, value, ctx, renames={"scorer": "validate"})
    return {"kind": "goal_seek", "goal_seek": spec}


def _attempt(fields: Mapping[str, Any], raw: Map, at: At, ctx: Context) -> Step | None:
    """The command each attempt runs: `claude:`, `shell:` or `command:` (exactly one)."""
    given = [key for key in _ATTEMPT_KEYS if key in fields]
    if len(given) != 1:
        found = ", ".join(given) or "none"
        ctx.problem(f"goal_seek needs exactly one of claude, shell (found: {found})", at)
        return None
    key, here = given[0], at.key(raw, given[0])
    text = fields[key]
    if not isinstance(text, str) or not text.strip():
        ctx.problem(f"expected a command, got {shown(text)}", here)
        return None
    kind, command = ("claude", text) if key == "claude" else ("shell", text)
    if key == "command":
        kind, command = _kind_of(text)
    return Step(kind=kind, command=command, line=here.line)


def _kind_of(text: str) -> tuple[str, str]:
    """`claude: /fix`, `shell: make`, or as `exec` reads a command: `/fix` is Claude."""
    stripped = text.strip()
    for kind in ("claude", "shell"):
        if stripped.startswith(f"{kind}:"):
            return kind, stripped.removeprefix(f"{kind}:").strip()
    return ("claude" if stripped.startswith("/") else "shell"), stripped


def _goal_scorer(raw: object, at: At, ctx: Context) -> Scorer | None:
    """goal_seek's `validate`: a shell command printing a score, or a built-in validator."""
    if isinstance(raw, str):
        return build_model(Scorer, {"kind": "quality", "command": raw}, at, raw, ctx)
    if not isinstance(raw, Map):
        ctx.problem(
            f"expected a command printing a score, or tests:, spec: or quality:, got {shown(raw)}",
            at,
        )
        return None
    fields = known_entries(raw, SCORER_KEYS, at, ctx)
    found = scorer(fields, raw, at, ctx)
    if found is None and not any(key in fields for key in SCORER_KEYS):
        ctx.problem("validate needs a command, tests:, spec: or quality:", at)
    return found


def scorer(fields: Mapping[str, Any], raw: Map, at: At, ctx: Context) -> Scorer | None:
    """The built-in validator among a mapping's `fields`, if it names one."""
    given = [key for key in SCORER_KEYS if key in fields]
    if not given:
        return None
    if len(given) > 1:
        ctx.problem(f"give one validator, not {' and '.join(given)}", at.key(raw, given[1]))
        return None
    key, here = given[0], at.key(raw, given[0])
    value = fields[key]
    if key != "spec":
        return build_model(Scorer, {"kind": key, "command": value}, here, value, ctx)
    if isinstance(value, Map):
        spec = known_entries(value, _SPEC_KEYS, here, ctx)
        data = {name: plain(spec[name]) for name in _SPEC_KEYS if name in spec and name != "file"}
        if isinstance(data.get("paths"), str):
            data["paths"] = [data["paths"]]
        renames = {"spec": "file"}
        data = {"kind": "spec", "spec": spec.get("file"), **data}
        return build_model(Scorer, data, here, value, ctx, renames=renames)
    if isinstance(value, Seq):
        ctx.problem(
            f"expected the spec file, or {{file, pattern, paths}}, got {shown(value)}", here
        )
        return None
    return build_model(Scorer, {"kind": "spec", "spec": value}, here, value, ctx)
