"""The one path from a git event to a run, whoever saw the event: a hook's spool entry
(watch/inbox.py) or the daemon's own watch of a repository's refs (watch/refwatch.py).

Every firing gets one idempotency key per (repository, workflow, event, commit): the
repository is its main worktree (the one every worktree shares), the workflow its file
name, the event and commit `Firing.identity`. So a commit seen by a hook and by the
watcher makes one run, and so does a spool entry read twice (a daemon killed between
submitting it and deleting it). A key met before is skipped before the gate, silently:
it is the same event again, not a newer one to coalesce, and its drop (if it was
dropped) is on record already.

Then the gate (watch/gate.py), in this order: prodigy's own events, a queued run of the
same workflow and branch (coalescing), the rate limit, the queue cap. Each run stopped
there is kept as a `trigger_dropped` event (watch/dropped.py).

The rate limit keeps the newest event it refuses of each workflow and branch, and fires it
again once the window lets a run in (a trailing run): a burst's last commit, which a
linter most needs to see, is never dropped for good while the daemon runs (in memory: a
daemon stop forgets it, as it forgets the window). Not an event of prodigy's own commits
(`include_prodigy_commits`): a run it starts would commit again, and the limit would no
longer end such a loop.
"""

from __future__ import annotations

import asyncio
import collections
import hashlib
import logging
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from prodigyd.errors import NoSpace, ProdigyError, ShuttingDown
from prodigyd.git.cli import REPO_PINNING_VARS
from prodigyd.store import journal
from prodigyd.store.sessions import SessionRecord
from prodigyd.watch.dropped import DropLog, repository
from prodigyd.watch.gate import ALONE_PREFIX, KEY_PREFIX, Gate, TriggerLimits
from prodigyd.watch.triggers import Firing

if TYPE_CHECKING:
    from prodigyd.engine.admission import RunRequest
    from prodigyd.scheduler import Scheduler

log = logging.getLogger("prodigyd.watch")

#: How many problems `triggers.list` shows.
RECENT = 50
#: How many keys are remembered in memory: those of drops, which the journal does not keep.
REMEMBERED = 10_000
#: How soon a trailing run a full disk refused is tried again (watch/inbox.py's pace).
NO_SPACE_RETRY_SECONDS = 2.0
#: Added to the wait for a held sighting's turn: the loop may run a timer a clock tick
#: early (uvloop counts milliseconds), and the rate window would still be full then.
TIMER_SLACK_SECONDS = 0.005


#: What a held sighting is kept by: (repository, workflow file name, branch).
Held = tuple[str, str, str]


@dataclass(frozen=True)
class Sighting:
    """One firing, and where it came from: `worktree` is where the run is submitted (its
    workflow file's worktree), `env` the environment it runs in (the daemon's when empty),
    `origin` fields that say who saw it (`hook_event`, `watcher`), kept with a drop."""

    worktree: Path
    firing: Firing
    env: Mapping[str, str] = field(default_factory=dict)
    origin: Mapping[str, Any] = field(default_factory=dict)


class TriggerPath:
    """Gate, keys and drops of every triggered run: one instance per daemon."""

    def __init__(self, scheduler: Scheduler, limits: TriggerLimits | None = None) -> None:
        self.scheduler = scheduler
        self.gate = Gate(limits or TriggerLimits())
        self.dropped = DropLog()
        self.problems: collections.deque[dict[str, Any]] = collections.deque(maxlen=RECENT)
        self._seen: collections.OrderedDict[str, None] = collections.OrderedDict()
        # Admission and submission as one step: the gate reads the queue and the rate
        # window, and both change only once the awaited submit is done; two firings let in
        # between (a hook and the watcher, two worktrees) would both pass.
        self._admission = asyncio.Lock()
        #: The newest rate-limited sighting of each (repository, workflow, branch), with the
        #: timer that fires it once the window allows (the module docstring), and the tasks
        #: doing so.
        self._held: dict[Held, tuple[Sighting, asyncio.TimerHandle]] = {}
        self._trailing: set[asyncio.Task[None]] = set()

    async def fire(self, sighting: Sighting, *, again: bool = False) -> SessionRecord | None:
        """Submit the run, or say why not; None when it is not submitted. Raises what
        `Scheduler.submit` raises (ShuttingDown, ProdigyError): the caller decides.
        `again`: a held sighting's trailing try (its key is known: it was dropped)."""
        key = key_of(sighting)
        if (key in self._seen and not again) or journal.has_key(key):
            return None
        self._remember(key)
        firing = sighting.firing
        async with self._admission:
            if not self._admitted(sighting, again=again):
                return None
            try:
                record = await self.scheduler.submit(request_of(sighting), idempotency_key=key)
            except BaseException:
                self._seen.pop(key, None)  # not submitted: a later sighting may try again
                raise
            self.gate.started(repository(sighting.worktree), firing.workflow)
        log.info("%s: %s started %s", firing.reason, firing.workflow, record.id)
        return record

    def problem(self, what: str, event: str, message: str) -> None:
        """Keep a problem for `triggers.list` (and log it); `event` names its source (a
        spool entry, a watched repository), `what` says what that is."""
        log.error("%s %s: %s", what, event, message)
        self.problems.append({"event": event, "at": time.time(), "error": message})

    def _remember(self, key: str) -> None:
        self._seen[key] = None
        while len(self._seen) > REMEMBERED:
            self._seen.popitem(last=False)

    def _admitted(self, sighting: Sighting, *, again: bool = False) -> bool:
        """Whether the firing may submit a new run; if not, why is kept (watch/gate.py).
        Nothing here awaits: a queued run found here cannot start before it is replaced.
        A held sighting's trailing try (`again`) the rate limit refuses once more (its
        window filled again meanwhile) is held again, its drop not recorded twice."""
        firing = sighting.firing
        if firing.by_prodigy and not firing.trigger.include_prodigy_commits:
            why = f"{firing.by_prodigy} (the trigger has no include_prodigy_commits)"
            self._drop(sighting, "prodigy_commit", why)
            return False
        branch = firing.branch  # None: a tag, a deleted branch; such runs never coalesce
        queued = None if branch is None else self.gate.queued_run(firing.workflow, branch)
        if queued is not None:
            older = queued.triggered_by
            if older != firing.reason:  # else: this event, seen again after a restart
                self.gate.replace(queued, firing.reason, env_of(sighting), firing.start_commit)
                self._drop(
                    sighting,
                    "coalesced",
                    f"queued run {queued.id} takes it instead of: {older}",
                    session=queued.id,
                    replaced=older,
                )
            return False
        refusal = self.gate.refusal(repository(sighting.worktree), firing.workflow)
        if refusal is not None:
            why, message = refusal
            # not prodigy's own commits: those a run of it makes would keep a loop going
            if why == "rate_limited" and branch is not None and not firing.by_prodigy:
                self._hold(sighting, branch, again=again)
                if again:
                    return False
                message += "; the newest such event runs once the limit lets one in"
            self._drop(sighting, why, message)
            return False
        return True

    def _hold(self, sighting: Sighting, branch: str, *, again: bool = False) -> None:
        """Keep the newest rate-limited sighting of its workflow and branch; the first held
        sets the timer that fires it when the workflow's window frees a run. A trailing
        try held `again` gives way to a newer sighting held meanwhile."""
        where = repository(sighting.worktree)
        held = (str(where), sighting.firing.workflow.name, branch)
        if again and held in self._held:
            return
        wait = self.gate.free_in(where, sighting.firing.workflow) + TIMER_SLACK_SECONDS
        self._keep(held, sighting, wait)

    def _keep(self, held: Held, sighting: Sighting, seconds: float) -> None:
        """Hold `sighting` for `held`: on the timer already set, else on one set now."""
        if held in self._held:
            timer = self._held[held][1]
        else:
            timer = asyncio.get_running_loop().call_later(seconds, self._release, held)
        self._held[held] = (sighting, timer)

    def _release(self, held: Held) -> None:
        sighting, _ = self._held.pop(held)
        task = asyncio.create_task(self._fire_trailing(held, sighting), name="trailing run")
        self._trailing.add(task)
        task.add_done_callback(self._trailing.discard)

    async def _fire_trailing(self, held: Held, sighting: Sighting) -> None:
        """Fire a held sighting; on a full disk it is held again, as the hook inbox and the
        watcher keep theirs, and tried again a little later."""
        try:
            await self.fire(sighting, again=True)
        except ShuttingDown:
            pass  # the daemon stops: forgotten, as the rate window is
        except NoSpace:
            if held not in self._held:  # else a newer one came meanwhile: it goes instead
                self._keep(held, sighting, NO_SPACE_RETRY_SECONDS)
        except ProdigyError as exc:
            why = f"{sighting.firing.workflow}: {exc.render()}"
            self.problem("trailing run", sighting.firing.reason, why)
        except Exception:
            log.exception("trailing run of %s failed", sighting.firing.workflow)

    async def close(self) -> None:
        """Forget the held sightings (a stop forgets them, as it forgets the rate window)
        and stop the trailing runs under way: none may reach the gate or the drop log
        once the daemon has begun stopping."""
        for _, timer in self._held.values():
            timer.cancel()
        self._held.clear()
        for task in list(self._trailing):
            task.cancel()
        await asyncio.gather(*self._trailing, return_exceptions=True)

    def _drop(self, sighting: Sighting, why: str, message: str, **fields: Any) -> None:
        firing = sighting.firing
        self.dropped.record(
            sighting.worktree,
            why,
            f"{firing.workflow.name}: {firing.reason}: {message}",
            workflow=str(firing.workflow),
            branch=firing.branch,
            event=firing.reason,
            **sighting.origin,
            **fields,
        )


def request_of(sighting: Sighting) -> RunRequest:
    """The job a trigger submits: in the worktree that saw it and environment, on the
    event's branch (the checked-out one when the firing has none: a tag, a deleted
    branch)."""
    from prodigyd.engine.admission import RunRequest  # the engine: imported by the first job

    firing = sighting.firing
    return RunRequest(
        workflow=str(firing.workflow),
        cwd=str(sighting.worktree),
        env=env_of(sighting),
        repo=str(sighting.worktree),
        merge_policy=firing.trigger.merge,
        branch=firing.branch,
        triggered_by=firing.reason,
        start_commit=firing.start_commit,
    )


def env_of(sighting: Sighting) -> dict[str, str]:
    """The hook's environment (the daemon's when there is none), without the variables
    that pin git to the hook's repository, with the event's `${trigger.*}`."""
    base = sighting.env or os.environ
    env = {k: v for k, v in base.items() if k not in REPO_PINNING_VARS}
    return {**env, **sighting.firing.variables}


def key_of(sighting: Sighting) -> str:
    """One key per (repository, workflow, event, commit), whoever saw the event."""
    firing = sighting.firing
    what = f"{repository(sighting.worktree).resolve()}\0{firing.workflow.name}\0{firing.identity}"
    prefix = KEY_PREFIX if firing.branch is not None else ALONE_PREFIX
    return f"{prefix}{hashlib.sha256(what.encode()).hexdigest()}"
