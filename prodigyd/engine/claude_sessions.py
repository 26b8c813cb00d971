"""Claude conversations a step can resume, recorded in its phase's checkpoint journal.

An interrupted `claude:` step (prodigyd killed or restarted, a step timeout, a stop by a
budget, a cancel or Ctrl-C) continues its conversation with `claude --resume <id>` in the
same worktree, instead of starting the task over. For that, prodigy names each new
conversation itself (`--session-id`) and appends it to the phase's journal, synced,
before claude starts: whenever the run is cut off afterwards, the id is on disk.

- **Interrupted** means the process did not end by itself: prodigy killed it (a timeout,
  a stop) or prodigyd died under it. Its conversation stays open and the next run of the
  same invocation (the same step label, the same prompt: on resume, or the step's next
  `retry` attempt) resumes it.
- **Finished** means the process ended by itself, with a result or an error: a retry or
  a resume of that step starts a new conversation, and the CLI's files for the finished
  one are deleted at once (claude/session_files.py).

A conversation still open when its session completes or is cancelled is deleted then.
Only the steps of a checkpointed sequential phase (a standard workflow, MapReduce setup
and reduce, with everything nested in them) have a `Conversations`; map agents, the merge
workflow and merge-conflict resolution rerun from the start, so their claude runs with
`--no-session-persistence` and nothing is saved to resume.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from prodigyd.claude import session_files
from prodigyd.engine.journal import CheckpointLog, RunJournal
from prodigyd.engine.plan import REDUCE, SETUP
from prodigyd.store.checkpoints import MAIN

#: The key of a conversation's records in a phase journal (step records have others).
RECORD = "claude_conversation"

#: The prompt a resumed conversation is continued with.
CONTINUE_PROMPT = (
    "Your previous run of this task was interrupted before it finished (prodigy stopped "
    "it, or was restarted). The working tree is as you left it. Continue the task from "
    "where you stopped and finish it as originally asked."
)


@dataclass(frozen=True)
class Conversation:
    """One Claude conversation an invocation started."""

    step: str  # the invocation's label: "3", "3.on_failure.1", "reduce.2"
    session_id: str  # Claude's own id
    config_dir: str  # where the CLI keeps its files for it (~/.claude of the job's HOME)
    prompt_sha256: str  # the task it was given: another prompt is another task
    base: str | None = None  # HEAD as its step started (commit_required counts from there)

    def prune(self) -> None:
        session_files.prune(Path(self.config_dir), self.session_id)


def prompt_digest(prompt: str) -> str:
    return hashlib.sha256(prompt.encode()).hexdigest()


class Conversations:
    """One phase's Claude conversations: which are open, and recording their changes."""

    def __init__(self, log: CheckpointLog, records: Iterable[dict[str, Any]]) -> None:
        self._log = log
        self._open = open_conversations(records)

    def interrupted(self, step: str) -> Conversation | None:
        """The open conversation of invocation `step`, if its last run was interrupted."""
        return self._open.get(step)

    async def started(self, conversation: Conversation) -> None:
        """Record a new conversation; returns once the record is durable."""
        await self._log.write({RECORD: {"state": "started", **asdict(conversation)}})
        self._open[conversation.step] = conversation

    async def finished(self, conversation: Conversation) -> None:
        """Record that `conversation` can no longer be resumed, and delete its files."""
        await self._log.write({RECORD: {"state": "finished", **asdict(conversation)}})
        if self._open.get(conversation.step) == conversation:
            del self._open[conversation.step]
        conversation.prune()


def open_conversations(records: Iterable[dict[str, Any]]) -> dict[str, Conversation]:
    """The conversations a phase journal records as started and not finished, by step."""
    found: dict[str, Conversation] = {}
    for record in records:
        entry = record.get(RECORD)
        if not isinstance(entry, dict):
            continue
        try:
            conversation = Conversation(**{k: v for k, v in entry.items() if k != "state"})
        except TypeError:  # a record of another shape: not ours to act on
            continue
        if entry.get("state") == "started":
            found[conversation.step] = conversation
        elif found.get(conversation.step) == conversation:
            del found[conversation.step]
    return found


def prune_session(journal: RunJournal, session_id: str) -> None:
    """Delete the files of every conversation still open in the session's phases: called
    when the session is over (completed or cancelled), so none can be resumed."""
    for phase in (MAIN, SETUP, REDUCE):
        records = journal.checkpoint_records(session_id, phase)
        for conversation in open_conversations(records).values():
            conversation.prune()
