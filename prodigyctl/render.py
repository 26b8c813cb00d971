"""Turning daemon events into what the user reads: human lines, or JSON lines with --json."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

import click

from prodigyctl.client import dumps
from prodigyd.eventtypes import EventType


def job_tag(session_id: object) -> str:
    """A short name for a job in interleaved output: the id's random suffix (6 hex digits)."""
    return str(session_id)[-6:]


class Renderer:
    """Renders events; with `tag`, every human line starts with `[<job tag>] ` so the lines
    of several jobs can be told apart when they are interleaved."""

    def __init__(self, *, as_json: bool, show_output: bool = True, tag: bool = False) -> None:
        self.as_json = as_json
        self.show_output = show_output
        self.tag = tag
        self.color = sys.stdout.isatty()

    def __call__(self, event: dict[str, Any]) -> None:
        if self.as_json:
            click.echo(dumps(event))
            return
        line = self.human(event)
        if line is None:
            return
        if self.tag:
            prefix = self._style(f"[{job_tag(event.get('session_id'))}]", fg="cyan") + " "
            line = "\n".join(prefix + part for part in line.splitlines())
        click.echo(line, color=self.color)

    def human(self, event: dict[str, Any]) -> str | None:
        """The event's line(s) for a person; None for a type not shown (see `_LINES`)."""
        render = _LINES.get(str(event.get("event_type")))
        line = render(self, event) if render else None
        if line is None or "item_id" not in event:
            return line
        tag = self._style(f"[{event['item_id']}]", fg="blue")  # a map agent's event
        return "\n".join(f"{tag} {part.lstrip()}" for part in line.splitlines())

    def _style(self, text: str, **kw: Any) -> str:
        return click.style(text, **kw) if self.color else text

    def _session_queued(self, e: dict[str, Any]) -> str:
        verb = "resume queued" if e.get("resumed") else "queued"
        return f"{verb}: {e['session_id']} ({e.get('workflow')})"

    def _session_started(self, e: dict[str, Any]) -> str:
        verb = "resuming" if e.get("resumed") else "session"
        return f"{verb} {e['session_id']}: {e.get('total_steps')} steps in {e.get('worktree')}"

    def _phase_started(self, e: dict[str, Any]) -> str:
        return self._style(f"── {e['phase']} phase", bold=True)

    def _phase_skipped(self, e: dict[str, Any]) -> str:
        return f"── {e['phase']} phase skipped: {e.get('reason')}"

    def _map_phase_started(self, e: dict[str, Any]) -> str:
        text = f"Processing {e['pending']} items with {e['max_parallel']} parallel agents"
        done = e["total_items"] - e["pending"]
        return text + (f" ({done} of {e['total_items']} already done)" if done else "")

    def _agent_started(self, e: dict[str, Any]) -> str:
        again = f" (attempt {e['attempt']})" if e.get("attempt", 1) > 1 else ""
        return f"started{again} in {e.get('worktree')}"

    def _agent_completed(self, e: dict[str, Any]) -> str:
        commits = len(e.get("commits") or [])
        merged = f", {commits} commit{'s' if commits != 1 else ''} merged" if commits else ""
        return self._style(f"✓ done in {e.get('duration', 0):.2f}s{merged}", fg="green")

    def _agent_failed(self, e: dict[str, Any]) -> str:
        first = (e.get("error") or "failed").splitlines()[0]
        return self._style(f"✗ {e.get('failure_reason') or 'failed'}: {first}", fg="red")

    def _agent_retrying(self, e: dict[str, Any]) -> str:
        return f"↻ retrying (attempt {e['attempt']})"

    def _map_phase_completed(self, e: dict[str, Any]) -> str:
        if e.get("message"):
            return e["message"]
        text = (
            f"Map phase completed: {e['successful']} successful, {e['failed']} failed "
            f"(total: {e['total']})"
        )
        if e.get("failed") and e.get("dlq"):
            text += "; failed items are in the DLQ: prodigyctl dlq ls " + str(e["session_id"])
        return self._style(text, fg="yellow" if e.get("failed") else "green")

    def _step_started(self, e: dict[str, Any]) -> str | None:
        if "index" not in e:  # a handler or nested step: its result line says enough
            return None
        return self._style(f"[{e['index']}/{e['total']}] {e['display']}", bold=True)

    def _step_skipped(self, e: dict[str, Any]) -> str:
        return f"  skipping already completed step {e['step']}: {e['display']}"

    def _step_output(self, e: dict[str, Any]) -> str | None:
        if not self.show_output:
            return None
        return self._style(f"  │ {e.get('line', '')}", dim=True)

    def _step_output_truncated(self, e: dict[str, Any]) -> str | None:
        if not self.show_output:
            return None
        return self._style(f"  │ … more {e['stream']} not shown live", dim=True)

    def _step_completed(self, e: dict[str, Any]) -> str | None:
        if "index" not in e:  # a handler or nested step
            note = f" ({e['note']})" if e.get("note") else ""
            return f"  ↳ {e['display']}: ok{note}"
        if e.get("skipped"):
            return f"  - skipped ({e.get('note')})"
        note = f" {e['note']}" if e.get("note") else ""
        return self._style(f"  ✓ {e.get('duration', 0):.2f}s{note}", fg="green")

    def _validation(self, e: dict[str, Any]) -> str:
        return self._style(f"  {e.get('message')}", fg="green" if e.get("passed") else "yellow")

    def _step_failed(self, e: dict[str, Any]) -> str:
        first = (e.get("error") or "failed").splitlines()[0]
        return self._style(f"  ✗ step {e['step']}: {first}", fg="red")

    def _step_retrying(self, e: dict[str, Any]) -> str:
        return f"  ↻ retrying step {e['step']} (attempt {e['attempt']}, after {e['delay']:.1f}s)"

    def _claude_tool_invoked(self, e: dict[str, Any]) -> str:
        return f"  🔧 {e.get('tool_name')}"

    def _claude_result(self, e: dict[str, Any]) -> str:
        cost = e.get("total_cost_usd") or 0
        return (
            f"  claude: {e.get('num_turns')} turns, ${cost:.4f}, "
            f"{e.get('input_tokens')}→{e.get('output_tokens')} tokens"
        )

    def _claude_session_resumed(self, e: dict[str, Any]) -> str:
        return f"  ↻ resuming Claude conversation {e.get('claude_session_id')} where it stopped"

    def _claude_resume_failed(self, e: dict[str, Any]) -> str:
        first = (e.get("error") or "").splitlines()[0] if e.get("error") else "it is gone"
        text = (
            f"  warning: Claude conversation {e.get('claude_session_id')} cannot be resumed "
            f"({first}); step {e.get('step')} starts afresh"
        )
        return self._style(text, fg="yellow")

    def _merge_started(self, e: dict[str, Any]) -> str:
        return f"merging {e['source']} into {e['target']}"

    def _merge_completed(self, e: dict[str, Any]) -> str:
        return self._style(f"✓ {e.get('message')}", fg="green")

    def _merge_failed(self, e: dict[str, Any]) -> str:
        return self._style(f"✗ merge refused: {e.get('error')}", fg="red")

    def _session_finished(self, e: dict[str, Any]) -> str:
        status = e.get("status")
        sid = e["session_id"]
        if status == "completed":
            done = self._style(f"session {sid} completed", fg="green", bold=True)
            return done + _not_recorded(e)
        if status == "awaiting_merge":
            waits = f"session {sid} succeeded; its changes wait on branch prodigy-{sid}"
            return waits + _not_recorded(e)
        if status == "interrupted":
            stopped = f"session {sid} interrupted. Resume with: prodigyctl resume {sid}"
            return stopped + _not_recorded(e)
        text = f"session {sid} {status}: {e.get('error')}"
        if status == "failed":
            text += f"\nResume with: prodigyctl resume {sid}   (worktree kept: {e.get('worktree')})"
        return self._style(text, fg="red") + _not_recorded(e)


#: How each type reads; the types not here show no line (`--json` and `events ls` show
#: every one).
_LINES: dict[str, Callable[[Renderer, dict[str, Any]], str | None]] = {
    EventType.SESSION_QUEUED: Renderer._session_queued,
    EventType.SESSION_STARTED: Renderer._session_started,
    EventType.PHASE_STARTED: Renderer._phase_started,
    EventType.PHASE_SKIPPED: Renderer._phase_skipped,
    EventType.MAP_PHASE_STARTED: Renderer._map_phase_started,
    EventType.AGENT_STARTED: Renderer._agent_started,
    EventType.AGENT_COMPLETED: Renderer._agent_completed,
    EventType.AGENT_FAILED: Renderer._agent_failed,
    EventType.AGENT_RETRYING: Renderer._agent_retrying,
    EventType.MAP_PHASE_COMPLETED: Renderer._map_phase_completed,
    EventType.STEP_STARTED: Renderer._step_started,
    EventType.STEP_SKIPPED: Renderer._step_skipped,
    EventType.STEP_OUTPUT: Renderer._step_output,
    EventType.STEP_OUTPUT_TRUNCATED: Renderer._step_output_truncated,
    EventType.STEP_COMPLETED: Renderer._step_completed,
    EventType.VALIDATION: Renderer._validation,
    EventType.STEP_FAILED: Renderer._step_failed,
    EventType.STEP_RETRYING: Renderer._step_retrying,
    EventType.CLAUDE_TOOL_INVOKED: Renderer._claude_tool_invoked,
    EventType.CLAUDE_RESULT: Renderer._claude_result,
    EventType.CLAUDE_SESSION_RESUMED: Renderer._claude_session_resumed,
    EventType.CLAUDE_RESUME_FAILED: Renderer._claude_resume_failed,
    EventType.MERGE_STARTED: Renderer._merge_started,
    EventType.MERGE_COMPLETED: Renderer._merge_completed,
    EventType.MERGE_FAILED: Renderer._merge_failed,
    EventType.SESSION_FINISHED: Renderer._session_finished,
}


def _not_recorded(e: dict[str, Any]) -> str:
    """The warning for an outcome the daemon could not record yet (a full disk)."""
    problem = e.get("not_recorded")
    if not problem:
        return ""
    return f"\nwarning: not recorded yet: {problem}; prodigyd records it once there is room"
