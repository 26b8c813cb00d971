"""The original's older ways of writing a Claude command, mapped onto a plain `Step`.

A bare command name (`- prodigy-lint`, slash optional), the structured command
`{name, args, options, metadata, id, outputs, commit_required}` (run as
`/name arg... --option value`), and `outputs: {NAME: {file_pattern: GLOB}}`. Keys of step
features that were removed are named here too, so that they are warned about, not obeyed.
"""

from __future__ import annotations

import re
from typing import Any

from prodigyd.workflow.load.diagnostics import Context, build_model, shown
from prodigyd.workflow.load.keys import known_entries
from prodigyd.workflow.load.nodes import At, Map
from prodigyd.workflow.model import Step, scalar_text

IGNORED_STEP_KEYS = {
    "analysis": "per-step analysis was removed from prodigy",
    "skip_validation": "step_validate is not supported",
    "validation_timeout": "step_validate is not supported",
    "ignore_validation_failure": "step_validate is not supported",
}


def slash(text: str) -> str:
    """Legacy Claude command names may omit the slash: `prodigy-lint` runs `/prodigy-lint`."""
    stripped = text.strip()
    return stripped if not stripped or stripped.startswith("/") else f"/{stripped}"


_LEGACY_KEYS = ("name", "args", "options", "metadata", "id", "outputs", "commit_required")
_LEGACY_METADATA = {
    "timeout": "timeout",
    "env": "env",
    "commit_required": "commit_required",
    "continue_on_error": "allow_failure",
}


def is_legacy_command(raw: Map) -> bool:
    """`{name: prodigy-lint, args: [...]}`; a name with spaces is a step that lost its command."""
    name = raw.get("name")
    return isinstance(name, str) and bool(name.strip()) and not re.search(r"\s", name.strip())


def legacy_command_step(raw: Map, at: At, ctx: Context) -> Step | None:
    """Run as `/name arg... --option value`; the original dropped the args on one path."""
    fields = known_entries(raw, _LEGACY_KEYS, at, ctx, ignored=IGNORED_STEP_KEYS)
    words = [slash(fields["name"]), *_legacy_words(fields, at, ctx)]
    data: dict[str, Any] = {"kind": "claude", "command": " ".join(words), "line": at.line}
    metadata = fields.get("metadata")
    if isinstance(metadata, Map):
        here = at.key(raw, "metadata")
        ignored = {"retries": "use retry: on a step", **IGNORED_STEP_KEYS}
        kept = known_entries(metadata, tuple(_LEGACY_METADATA), here, ctx, ignored=ignored)
        data.update({_LEGACY_METADATA[key]: value for key, value in kept.items()})
    data.update({key: fields[key] for key in ("id", "commit_required") if key in fields})
    if fields.get("outputs") is not None:
        data["outputs"] = legacy_outputs(fields["outputs"], at.key(raw, "outputs"), ctx)
    return build_model(Step, data, at, raw, ctx)


def _legacy_words(fields: dict[str, Any], at: At, ctx: Context) -> list[str]:
    args = fields.get("args") or []
    options = fields.get("options") or {}
    if not isinstance(args, list) or not isinstance(options, dict):
        ctx.problem("args: must be a list and options: a mapping", at)
        return []
    words = [str(scalar_text(arg)) for arg in args]
    for key, value in options.items():
        if value is True:
            words.append(f"--{key}")
        elif value not in (False, None):
            words.extend([f"--{key}", str(scalar_text(value))])
    return words


def legacy_outputs(raw: object, at: At, ctx: Context) -> dict[str, str]:
    """Legacy `outputs: {spec: {file_pattern: "*.md"}}`: `${<id>.spec}` = first matching file."""
    if not isinstance(raw, Map):
        ctx.problem(f"expected a mapping of output names, got {shown(raw)}", at)
        return {}
    patterns = {}
    for name, value in raw.items():
        pattern = value.get("file_pattern") if isinstance(value, Map) else value
        if isinstance(pattern, str):
            patterns[str(name)] = pattern
        else:
            ctx.problem("expected {file_pattern: <glob>}", at.key(raw, name))
    return patterns
