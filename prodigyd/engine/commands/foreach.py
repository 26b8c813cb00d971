"""`foreach:` — run `do` once per item of a list, of a variable's value (`foreach: "${files}"`:
`_variable_items`) or of a command's output lines (§2.13).

Items run in the session's worktree (the original ran them in the daemon's own directory),
`parallel` at a time, each in a child scope with `${item}`, `${index}` (0-based) and
`${total}`; every `do` step goes through the full step pipeline, and Claude steps are invoked
as everywhere else. The step fails if any item failed; without `continue_on_error`, the first
failure also stops new items from starting (those already running finish).
"""

from __future__ import annotations

import asyncio
import re
import time
from collections import deque
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from prodigyd import proc
from prodigyd.engine.commands.base import Invocation
from prodigyd.engine.commands.shell import sh
from prodigyd.engine.context import CommandResult, StepStopped
from prodigyd.engine.gitvars import GitTracker
from prodigyd.eventtypes import EventType
from prodigyd.workflow.interpolate import MISSING, VariableStore
from prodigyd.workflow.model import ForeachSpec, Step

if TYPE_CHECKING:
    from prodigyd.engine.step import StepRunner


async def run(step: Step, inv: Invocation) -> CommandResult:
    from prodigyd.engine.step import StepRunner  # the pipeline runs this kind: no cycle at import

    spec = step.foreach
    assert spec is not None
    started = time.monotonic()
    items, problem = await _items(spec, inv)
    if problem is not None:
        return problem
    runner = StepRunner(
        inv.ctx, GitTracker(inv.ctx.worktree, None, track=False), conversations=inv.conversations
    )
    outcomes: dict[int, bool] = {}
    queue = deque(enumerate(items))
    abort = asyncio.Event()

    stopped = False
    running = 0

    def progress() -> None:
        """Item counts for a follower's progress line (prodigyctl/progress.py)."""
        failed = sum(1 for ok in outcomes.values() if not ok)
        inv.ctx.events.emit(
            EventType.FOREACH_PROGRESS,
            step=inv.label,
            total=len(items),
            done=len(outcomes) - failed,
            failed=failed,
            running=running,
        )

    async def worker() -> None:
        nonlocal stopped, running
        while queue and not abort.is_set():
            index, item = queue.popleft()
            running += 1
            progress()
            try:
                outcomes[index] = await _one(runner, spec, inv, index, item, len(items))
            except StepStopped:  # the others finish their item; then the whole step stops
                stopped = True
                abort.set()
                return
            finally:
                running -= 1
            progress()
            if not outcomes[index] and not spec.continue_on_error:
                abort.set()

    await asyncio.gather(*(worker() for _ in range(min(spec.parallel, len(items)) or 1)))
    if stopped:
        raise StepStopped
    failed = sum(1 for ok in outcomes.values() if not ok)
    summary = (
        f"Foreach completed: {len(items)} total, {len(outcomes) - failed} successful, "
        f"{failed} failed" + (f", {len(items) - len(outcomes)} not run" if abort.is_set() else "")
    )
    return CommandResult(
        success=failed == 0,
        exit_code=0 if failed == 0 else 1,
        stdout=summary + "\n",
        duration=time.monotonic() - started,
        error=None if failed == 0 else summary,
    )


async def _one(
    runner: StepRunner, spec: ForeachSpec, inv: Invocation, index: int, item: Any, total: int
) -> bool:
    store = inv.store.child()
    store.update({"item": item, "index": index, "total": total})
    for number, do_step in enumerate(spec.do, start=1):
        report = await runner.run(do_step, label=f"{inv.label}.{index + 1}.{number}", store=store)
        if not report.success:
            return False
    return True


async def _items(spec: ForeachSpec, inv: Invocation) -> tuple[list[Any], CommandResult | None]:
    """The items: the list as given (interpolated when text), the value of the one variable
    the input names, or one per non-empty line of the command's output; `max_items` caps
    them."""
    if isinstance(spec.items, list):
        items = [inv.ctx.interpolate(i, inv.store) if isinstance(i, str) else i for i in spec.items]
    else:
        items, problem = await _text_items(spec.items, inv)
        if problem is not None:
            return [], problem
    return (items[: spec.max_items] if spec.max_items else items), None


async def _text_items(text: str, inv: Invocation) -> tuple[list[Any], CommandResult | None]:
    """The items of a text input: the value of the variable it names alone, else the lines
    the command prints (or why the command failed)."""
    named = _variable_items(text, inv.store, inv.env)
    if named is not None:
        return named, None
    argv, env = sh(inv.ctx.interpolate(text, inv.store), inv.env, inv.ctx.masker)
    done = await proc.run(argv, cwd=inv.cwd, env=env, timeout=inv.timeout)
    if not done.ok:
        error = f"foreach input command failed with exit code {done.returncode}"
        return [], CommandResult(
            False,
            done.returncode,
            done.stdout,
            done.stderr,
            done.duration,
            done.timed_out,
            error=error,
        )
    return _lines(done.stdout), None


#: An input that is one `${...}` and nothing else (modifiers allowed, a `:-default` not).
_ONE_REFERENCE = re.compile(r"\s*\$\{((?:(?!:-)[^{}])+)\}\s*")


def _variable_items(text: str, store: VariableStore, env: Mapping[str, str]) -> list[Any] | None:
    """The items of an input naming one variable alone (`${files}`), or None when it is a
    command: any other text, or a name of the environment or with no value (the shell's, as
    in the original, which never interpolated the input: `${FIND_FILES}` runs). Iterating a
    captured value is what such an input means; running a captured list as a command never
    is. A list gives its elements; text its lines, as the command that printed it would;
    anything else is one item."""
    match = _ONE_REFERENCE.fullmatch(text)
    value = MISSING if match is None or match[1] in env else store.resolve(match[1])
    if value is MISSING:
        return None
    if isinstance(value, list | tuple):
        return list(value)
    return _lines(value) if isinstance(value, str) else [value]


def _lines(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if line.strip()]
