"""Turning daemon events into what the user reads: human lines, or JSON lines with --json."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import click

from prodigyctl.client import dumps
from prodigyd import errorcodes
from prodigyd.eventtypes import EventType, run_name

if TYPE_CHECKING:
    from prodigyctl.progress import StatusLine, Tracker


def step_line(step: dict[str, Any]) -> str:
    """A completed step as `sessions show` and `checkpoints show` list it: a step its
    `when:` skipped says so (it is recorded done, so a resume does not run it)."""
    skipped = " (skipped: when condition is false)" if step.get("skipped") else ""
    return f"  {step['step_index'] + 1}. {step['command']} ({step['duration']:.2f}s){skipped}"


def counted(count: int, noun: str, plural: str | None = None) -> str:
    """`1 entry`, `2 entries`: a count with its noun in the right number."""
    return f"{count} {noun if count == 1 else plural or noun + 's'}"


def job_tag(session_id: object) -> str:
    """A short name for a job in interleaved output: the id's random suffix (6 hex digits);
    a name that is no session's id (the triggers' log) whole."""
    text = str(session_id)
    tag = text[-6:]
    if text[-7:-6] == "-" and all(char in "0123456789abcdef" for char in tag):
        return tag
    return text


class Renderer:
    """Renders events; with `tag`, every human line starts with `[<job tag>] ` so the lines
    of several jobs can be told apart when they are interleaved.

    `verbose` (the count of `-v`): 0 on a terminal keeps a live progress line for a map
    phase or a foreach step and shows only each item's outcome above it (not every agent's
    steps and output); 1 shows every line, as when not on a terminal; 2 adds what Claude
    says and its token counts. `--json` is every event, whatever `verbose` says.
    """

    def __init__(
        self,
        *,
        as_json: bool,
        show_output: bool = True,
        tag: bool = False,
        verbose: int = 0,
        live: bool = True,
    ) -> None:
        self.as_json = as_json
        self.show_output = show_output
        self.tag = tag
        self.verbose = verbose
        self.color = sys.stdout.isatty()
        self.status: StatusLine | None = None
        self.trackers: dict[str, Tracker] = {}  # by session: `follow` shows several jobs
        self._step_errors: dict[tuple[Any, Any], str] = {}  # (session, item): shown already
        if live and self.color and not as_json:
            from prodigyctl.progress import StatusLine, Tracker

            self.status = StatusLine(sys.stdout)
            self._new_tracker = Tracker

    def __call__(self, event: dict[str, Any]) -> None:
        if self.as_json:
            click.echo(dumps(event))
            return
        tracker = self._tracker(event)
        line = None if self._condensed(event, tracker) else self.human(event)
        if line is not None and self.tag:
            prefix = self._style(f"[{job_tag(event.get('session_id'))}]", fg="cyan") + " "
            line = "\n".join(prefix + part for part in line.splitlines())
        if self.status is None:
            if line is not None:
                click.echo(line, color=self.color)
            return
        if line is not None:
            self.status.above(line)
        self._redraw()

    def close(self) -> None:
        """Take the progress line off the terminal (before a prompt, or on Ctrl-C)."""
        if self.status is not None:
            self.status.clear()

    def _tracker(self, event: dict[str, Any]) -> Tracker | None:
        """The item counts of the event's session, fed with it (None without a live line)."""
        if self.status is None:
            return None
        key = str(event.get("session_id"))
        tracker = self.trackers.get(key)
        if tracker is None:
            tracker = self.trackers[key] = self._new_tracker()
        tracker.feed(event)
        return tracker

    def _redraw(self) -> None:
        assert self.status is not None
        now = time.monotonic()
        lines = [
            (f"[{job_tag(sid)}] " if self.tag else "") + tracker.current.line(now)
            for sid, tracker in self.trackers.items()
            if tracker.current is not None
        ]
        if lines:
            self.status.show(" | ".join(lines))
        else:
            self.status.clear()

    def _condensed(self, event: dict[str, Any], tracker: Tracker | None) -> bool:
        """Whether the progress line stands for this event (verbose 0, items in progress):
        an item's start, steps and output; its outcome still shows."""
        if self.verbose or tracker is None or tracker.current is None:
            return False
        kind = event.get("event_type")
        if kind in (EventType.AGENT_COMPLETED, EventType.AGENT_FAILED, EventType.STEP_FAILED):
            return False
        return "item_id" in event or kind in _ITEM_DETAIL

    def human(self, event: dict[str, Any]) -> str | None:
        """The event's line(s) for a person; None for a type not shown (see `_LINES`)."""
        kind = str(event.get("event_type"))
        render = _LINES.get(kind) or (_VERBOSE_LINES.get(kind) if self.verbose >= 2 else None)
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
        steps = e.get("total_steps")
        if e.get("mode") == "mapreduce":  # its steps are setup's and reduce's, beside the map
            what = "a MapReduce job" + (
                f" ({counted(steps, 'step')} in setup and reduce)" if steps else ""
            )
        else:
            what = counted(steps or 0, "step")
        return f"{verb} {e['session_id']}: {what} in {e.get('worktree')}"

    def _phase_started(self, e: dict[str, Any]) -> str:
        return self._style(f"── {e['phase']} phase", bold=True)

    def _phase_skipped(self, e: dict[str, Any]) -> str:
        return f"── {e['phase']} phase skipped: {e.get('reason')}"

    def _run_started(self, e: dict[str, Any]) -> str:
        """`── input 2/5 (b.md)`, `── iteration 2/3`, or both (the original's
        "Processing input i/n" and "Starting iteration i/N")."""
        return self._style(f"── {run_name(e)}", bold=True)

    def _run_finished(self, e: dict[str, Any]) -> str | None:
        if e.get("success"):
            return None
        return self._style(f"✗ {run_name(e)} failed", fg="red")

    def _map_phase_started(self, e: dict[str, Any]) -> str:
        pending, parallel = e["pending"], e["max_parallel"]
        text = f"Processing {counted(pending, 'item')} with {counted(parallel, 'parallel agent')}"
        done = e["total_items"] - e["pending"]
        return text + (f" ({done} of {e['total_items']} already done)" if done else "")

    def _agent_started(self, e: dict[str, Any]) -> str:
        again = f" (attempt {e['attempt']})" if e.get("attempt", 1) > 1 else ""
        worker = e.get("worker")
        on = f" on dask worker {worker}" if worker not in (None, "local") else ""
        return f"started{again}{on} in {e.get('worktree')}"

    def _agent_completed(self, e: dict[str, Any]) -> str:
        commits = len(e.get("commits") or [])
        merged = f", {counted(commits, 'commit')} merged" if commits else ""
        return self._style(f"✓ done in {e.get('duration', 0):.2f}s{merged}", fg="green")

    def _agent_failed(self, e: dict[str, Any]) -> str:
        first = (e.get("error") or "failed").splitlines()[0]
        reason = e.get("failure_reason") or "failed"
        if self._step_errors.pop((e.get("session_id"), e.get("item_id")), None) == first:
            return self._style(f"✗ {reason}", fg="red")  # its step's line said why
        return self._style(f"✗ {reason}: {first}", fg="red")

    def _agent_retrying(self, e: dict[str, Any]) -> str:
        return f"↻ retrying (attempt {e['attempt']})"

    def _map_phase_completed(self, e: dict[str, Any]) -> str:
        if e.get("message"):
            return e["message"]
        unrun = e["total"] - e["successful"] - e["failed"]  # a limit or a stop came first
        text = (
            f"Map phase completed: {e['successful']} successful, {e['failed']} failed"
            + (f", {unrun} not run" if unrun > 0 else "")
            + f" (total: {e['total']})"
        )
        if e.get("failed") and e.get("dlq"):
            queue = e.get("dlq_job") or e["session_id"]  # a DLQ retry's: its job's queue
            text += f"; failed items are in the DLQ: prodigyctl dlq ls {queue}"
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
        return self._style(
            f"  │ … {e['stream']} past {e['after']} lines is not shown live "
            "(the step's output_file: keeps all of it)",
            dim=True,
        )

    def _step_completed(self, e: dict[str, Any]) -> str | None:
        if "index" not in e:  # a handler or nested step
            note = f" ({e['note']})" if e.get("note") else ""
            return f"  ↳ {e['display']}: ok{note}"
        if e.get("skipped"):  # its note says why, as "skipped: when condition is false"
            why = str(e.get("note") or "").removeprefix("skipped: ")
            return f"  - skipped: {why}" if why else "  - skipped"
        note = f" {e['note']}" if e.get("note") else ""
        return self._style(f"  ✓ {e.get('duration', 0):.2f}s{note}", fg="green")

    def _validation(self, e: dict[str, Any]) -> str:
        return self._style(f"  {e.get('message')}", fg="green" if e.get("passed") else "yellow")

    def _goal_attempt(self, e: dict[str, Any]) -> str:
        return (
            f"  🎯 attempt {e['attempt']}/{e['max_attempts']}: score {_number(e['score'])} "
            f"(threshold {_number(e['threshold'])})"
        )

    def _goal_finished(self, e: dict[str, Any]) -> str:
        return self._style(f"  {e.get('message')}", fg="green" if e.get("success") else "yellow")

    def _step_failed(self, e: dict[str, Any]) -> str:
        first = (e.get("error") or "failed").splitlines()[0]
        if "item_id" in e:  # its agent's failure line need not repeat it
            self._step_errors[(e.get("session_id"), e["item_id"])] = first
        return self._style(f"  ✗ step {e['step']}: {first}", fg="red")

    def _step_retrying(self, e: dict[str, Any]) -> str:
        return f"  ↻ retrying step {e['step']} (attempt {e['attempt']}, after {e['delay']:.1f}s)"

    def _claude_tool_invoked(self, e: dict[str, Any]) -> str:
        return f"  🔧 {e.get('tool_name')}"

    def _claude_message(self, e: dict[str, Any]) -> str | None:
        text = str(e.get("content") or "").strip()
        return self._style("  💬 " + text.replace("\n", "\n     "), dim=True) if text else None

    def _claude_token_usage(self, e: dict[str, Any]) -> str:
        return self._style(
            f"  tokens: {e.get('input_tokens')} in, {e.get('output_tokens')} out, "
            f"{e.get('cache_read_tokens')} cache read, "
            f"{e.get('cache_creation_tokens')} cache write",
            dim=True,
        )

    def _claude_api_retry(self, e: dict[str, Any]) -> str:
        """`Claude API retry 3/10: 529 Overloaded`: the CLI waits and retries by itself, for
        minutes at worst, and the user should see why nothing else happens meanwhile."""
        what = str(e.get("error") or "error").replace("_", " ").capitalize()
        status = f"{e['error_status']} " if e.get("error_status") is not None else ""
        delay = (e.get("retry_delay_ms") or 0) / 1000
        return self._style(
            f"  ⟳ Claude API retry {e.get('attempt')}/{e.get('max_retries')}: {status}{what}"
            f" (next try in {delay:.1f}s)",
            fg="yellow",
        )

    def _claude_permission_denied(self, e: dict[str, Any]) -> str:
        return self._style(f"  ⛔ Claude was denied {e.get('tool_name')}", fg="yellow")

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
        error = errorcodes.label(e.get("code"))  # events of older daemons have no code
        return self._style(f"✗ {error}: merge refused: {e.get('error')}", fg="red")

    def _session_finished(self, e: dict[str, Any]) -> str:
        status = e.get("status")
        sid = e["session_id"]
        if status == "completed":
            done = self._style(f"session {sid} completed", fg="green", bold=True)
            if e.get("message"):  # a run never merged: where its result is
                done += f" ({e['message']})"
            return done + _not_recorded(e)
        if status == "awaiting_merge":
            waits = f"session {sid} succeeded; its changes wait on branch prodigy-{sid}"
            return waits + _not_recorded(e)
        if status == "interrupted" and e.get("resumes"):  # by the next daemon, by itself
            stopped = (
                f"session {sid} interrupted: prodigyd stopped; it resumes when prodigyd starts "
                f"again (follow it: prodigyctl logs -f {sid})"
            )
            return stopped + _not_recorded(e)
        if status == "interrupted":
            stopped = f"session {sid} interrupted. Resume with: prodigyctl resume {sid}"
            return stopped + _not_recorded(e)
        if status == "cancelled" and e.get("error") in (None, "cancelled"):  # by a person
            return self._style(f"session {sid} cancelled", fg="red") + _not_recorded(e)
        text = f"session {sid} {status}: {e.get('error')}"
        if e.get("code"):  # prodigy stopped it (a spent budget, a refused path)
            text = f"{errorcodes.label(e['code'])}: {text}"
        kept = f"(worktree kept: {e['worktree']})" if e.get("worktree") else ""  # none yet
        if status == "failed" and "prodigyctl " in str(e.get("error")):
            # the error names what to run next (a resume, a DLQ retry): no second hint
            text += f"\n{kept}" if kept else ""
        elif status == "failed":
            text += f"\nResume with: prodigyctl resume {sid}   {kept}".rstrip()
        return self._style(text, fg="red") + _not_recorded(e)


#: How each type reads; the types not here show no line (`--json` and `events ls` show
#: every one).
_LINES: dict[str, Callable[[Renderer, dict[str, Any]], str | None]] = {
    EventType.SESSION_QUEUED: Renderer._session_queued,
    EventType.SESSION_STARTED: Renderer._session_started,
    EventType.PHASE_STARTED: Renderer._phase_started,
    EventType.PHASE_SKIPPED: Renderer._phase_skipped,
    EventType.MAP_PHASE_STARTED: Renderer._map_phase_started,
    EventType.RUN_STARTED: Renderer._run_started,
    EventType.RUN_FINISHED: Renderer._run_finished,
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
    EventType.GOAL_ATTEMPT: Renderer._goal_attempt,
    EventType.GOAL_FINISHED: Renderer._goal_finished,
    EventType.STEP_FAILED: Renderer._step_failed,
    EventType.STEP_RETRYING: Renderer._step_retrying,
    EventType.CLAUDE_TOOL_INVOKED: Renderer._claude_tool_invoked,
    EventType.CLAUDE_RESULT: Renderer._claude_result,
    EventType.CLAUDE_API_RETRY: Renderer._claude_api_retry,
    EventType.CLAUDE_PERMISSION_DENIED: Renderer._claude_permission_denied,
    EventType.CLAUDE_SESSION_RESUMED: Renderer._claude_session_resumed,
    EventType.CLAUDE_RESUME_FAILED: Renderer._claude_resume_failed,
    EventType.MERGE_STARTED: Renderer._merge_started,
    EventType.MERGE_COMPLETED: Renderer._merge_completed,
    EventType.MERGE_FAILED: Renderer._merge_failed,
    EventType.SESSION_FINISHED: Renderer._session_finished,
}


#: Shown only with -vv.
_VERBOSE_LINES: dict[str, Callable[[Renderer, dict[str, Any]], str | None]] = {
    EventType.CLAUDE_MESSAGE: Renderer._claude_message,
    EventType.CLAUDE_TOKEN_USAGE: Renderer._claude_token_usage,
}

#: The lines of a foreach item's steps, which the progress line stands for at verbose 0.
_ITEM_DETAIL = frozenset(
    {
        EventType.STEP_STARTED,
        EventType.STEP_OUTPUT,
        EventType.STEP_OUTPUT_TRUNCATED,
        EventType.STEP_COMPLETED,
        EventType.CLAUDE_TOOL_INVOKED,
        EventType.CLAUDE_RESULT,
    }
)


def _not_recorded(e: dict[str, Any]) -> str:
    """The warning for an outcome the daemon could not record yet (a full disk)."""
    problem = e.get("not_recorded")
    if not problem:
        return ""
    return f"\nwarning: not recorded yet: {problem}; prodigyd records it once there is room"


def _number(value: Any) -> str:
    """A score as the engine's messages show it (engine/score.py `format_score`): 66.6667,
    not 66.66666666666667."""
    return f"{value:g}" if isinstance(value, int | float) else str(value)
