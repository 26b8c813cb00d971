"""`write_file:` — write interpolated content to a file inside the worktree (reference §2.12)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import yaml

from prodigyd import proc
from prodigyd.engine.commands.base import Invocation
from prodigyd.engine.context import CommandResult
from prodigyd.errors import ProdigyError
from prodigyd.files import failure_reason
from prodigyd.workflow.model import Step, WriteFileSpec


async def run(step: Step, inv: Invocation) -> CommandResult:
    spec = step.write_file
    assert spec is not None
    started = time.monotonic()
    try:
        target, data = _prepare(spec, inv)
        proc.write_as_user(target, data, parents=spec.create_dirs)
        if spec.mode:
            target.chmod(int(spec.mode, 8))
    except (ValueError, OSError) as exc:
        reason = failure_reason(exc)
        return CommandResult(
            success=False,
            exit_code=1,
            stderr=f"write_file: {reason}\n",
            duration=time.monotonic() - started,
            error=f"write_file: {reason}",
            code=exc.code if isinstance(exc, _Refused) else None,
        )
    shown = target.relative_to(inv.ctx.worktree.resolve())
    return CommandResult(
        success=True,
        exit_code=0,
        stdout=f"Wrote {len(data)} bytes to {shown}\n",
        duration=time.monotonic() - started,
    )


class _Refused(ValueError):
    """A path the worktree refuses: a failure of this command (as any bad value), which
    keeps the refusal's error code."""

    def __init__(self, exc: ProdigyError) -> None:
        super().__init__(exc.message)
        self.code = exc.code


def _prepare(spec: WriteFileSpec, inv: Invocation) -> tuple[Path, bytes]:
    raw_path = inv.ctx.interpolate(spec.path, inv.store)
    root = inv.ctx.worktree.resolve()
    try:
        target = inv.ctx.inside_worktree(inv.cwd / raw_path, shown=raw_path)
    except ProdigyError as exc:
        raise _Refused(exc) from None
    if not spec.create_dirs and not target.parent.is_dir():
        raise ValueError(
            f"folder {target.parent.relative_to(root)} does not exist (set create_dirs: true)"
        )
    content = inv.ctx.interpolate(spec.content, inv.store)
    return target, _format(content, spec.format).encode()


def _format(content: str, fmt: str) -> str:
    if fmt == "json":
        try:
            return json.dumps(json.loads(content), indent=2, ensure_ascii=False) + "\n"
        except ValueError as exc:
            raise ValueError(f"Invalid JSON: {exc}") from exc
    if fmt == "yaml":
        try:
            return yaml.safe_dump(yaml.safe_load(content), sort_keys=False, allow_unicode=True)
        except yaml.YAMLError as exc:
            raise ValueError(f"Invalid YAML: {exc}") from exc
    return content
