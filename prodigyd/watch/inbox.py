"""The daemon's side of git hooks: read spool entries as they arrive, submit what they
trigger, then delete them (watch/spool.py says why nothing is lost or fired twice).

The folder is watched with watchfiles (inotify; a 5 ms step keeps a trigger's latency
near Watchman's). When the watch cannot be set up (inotify limits, an odd file system) the
inbox says so in the log and polls once a second instead of giving up. Entries are handled
one at a time, oldest first. Problems a user should see (a triggered workflow that does not
load or is refused at submission) are kept, the latest RECENT of them, for `triggers.list`.

Before a run is submitted it passes the gate (watch/gate.py): prodigy's own commits, a run
of the same workflow and branch still queued, the rate limit and the queue cap each stop
it, and every run so stopped is kept as a `trigger_dropped` event (watch/dropped.py).

A full disk (store/space.py) loses no event: an entry whose job cannot be submitted, or
that cannot be set aside, stays in the spool, and it and those after it (in order) are
tried again every RETRY_SECONDS until they fit. Nothing an entry holds stops the inbox:
its task runs until the daemon stops.
"""

from __future__ import annotations

import asyncio
import collections
import hashlib
import logging
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from prodigyd import paths
from prodigyd.engine.session import RunRequest
from prodigyd.errors import NoSpace, ProdigyError, ShuttingDown
from prodigyd.git.cli import REPO_PINNING_VARS
from prodigyd.store.atomic import ensure_dir
from prodigyd.watch import spool, triggers
from prodigyd.watch.dropped import DropLog, repository
from prodigyd.watch.gate import KEY_PREFIX, Gate, TriggerLimits

if TYPE_CHECKING:
    from prodigyd.jobs import JobManager

log = logging.getLogger("prodigyd.watch")

RECENT = 50
POLL_SECONDS = 1.0
#: How often entries kept back by a full disk are tried again (the mender's pace).
RETRY_SECONDS = 2.0


class HookInbox:
    def __init__(self, jobs: JobManager, limits: TriggerLimits | None = None) -> None:
        self.jobs = jobs
        self.problems: collections.deque[dict[str, Any]] = collections.deque(maxlen=RECENT)
        self.gate = Gate(limits or TriggerLimits())
        self.dropped = DropLog()
        self.waiting: str | None = None  # the entry a full disk kept back in the last drain
        self._told: str | None = None  # the entry whose wait is in `problems` already

    async def run(self) -> None:
        """Drain the spool now, whenever it changes, and (while an entry waits for disk
        space) every RETRY_SECONDS; runs until cancelled."""
        folder = paths.spool_dir()
        try:
            ensure_dir(folder)
            from watchfiles import awatch

            await self.drain()
            async for changes in awatch(folder, watch_filter=None, recursive=False, step=5,
                                        debounce=200, rust_timeout=int(RETRY_SECONDS * 1000),
                                        yield_on_timeout=True):  # fmt: skip
                if changes or self.waiting is not None:
                    await self.drain()
        except (OSError, RuntimeError, ProdigyError) as exc:  # no watch (or no folder): poll
            log.warning("cannot watch %s (%s); polling it every %gs", folder, exc, POLL_SECONDS)
            while True:
                await self.drain()
                await asyncio.sleep(POLL_SECONDS)

    async def drain(self) -> None:
        """Handle every entry, oldest first; never raises. Stops at one a full disk keeps
        back (it and those after it are tried again: see the module docstring)."""
        self.waiting = None
        try:
            entries = spool.pending()
        except OSError as exc:
            log.error("cannot list the spool %s: %s", paths.spool_dir(), exc)
            return
        for entry in entries:
            try:
                await self.handle(entry)
            except NoSpace as exc:
                self._wait_for_space(entry, exc)
                return
            except OSError as exc:  # a path the entry's checks did not foresee failing
                self._set_aside(entry, str(exc))
            except ProdigyError as exc:  # its workflows folder cannot be listed
                self._set_aside(entry, exc.render())
            except Exception as exc:  # a bug must not stop every later hook: set it aside
                log.exception("hook event %s", entry.name)
                self._set_aside(entry, f"internal error: {exc!r} (see prodigyd.log)")
            if self.waiting is not None:  # it could not even be set aside: keep the order
                return
        self._told = None

    async def handle(self, entry: Path) -> list[str]:
        """Submit what one entry triggers; returns the ids of the jobs it made. NoSpace
        when a job does not fit: the entry stays, and the jobs it submitted already are
        not submitted again when it is read again (their idempotency keys)."""
        try:
            event = spool.read(entry)
        except spool.SpoolError as exc:
            self._set_aside(entry, str(exc))
            return []
        if event is None:  # still being written: its last write wakes the watch again
            return []
        submitted = []
        for firing in await triggers.firings(event):
            try:
                if not self._admitted(event, firing):
                    continue
                record = await self.jobs.submit(
                    _request(event, firing), idempotency_key=_key(event, firing)
                )
            except ShuttingDown:
                return submitted  # the entry stays; the next daemon submits the rest
            except NoSpace:
                raise  # the entry stays; submitted again once there is room
            except ProdigyError as exc:
                self._problem(entry.name, f"{firing.workflow}: {exc.render()}")
                continue
            self.gate.started(repository(event.repo), firing.workflow)
            log.info("%s: %s started %s", firing.reason, firing.workflow, record.id)
            submitted.append(record.id)
        spool.done(entry)
        return submitted

    def _admitted(self, event: spool.HookEvent, firing: triggers.Firing) -> bool:
        """Whether the firing may submit a new run; if not, why is kept (watch/gate.py).
        Nothing here awaits: a queued run found here cannot start before it is replaced."""
        if firing.by_prodigy and not firing.trigger.include_prodigy_commits:
            why = f"{firing.by_prodigy} (the trigger has no include_prodigy_commits)"
            self._drop(event, firing, "prodigy_commit", why)
            return False
        queued = self.gate.queued_run(firing.workflow, firing.branch)
        if queued is not None:
            older = queued.triggered_by
            if older != firing.reason:  # else: this entry, read again, queued it
                self.gate.replace(queued, firing.reason, _env(event))
                self._drop(event, firing, "coalesced",
                           f"queued run {queued.id} takes it instead of: {older}",
                           session=queued.id, replaced=older)  # fmt: skip
            return False
        refusal = self.gate.refusal(repository(event.repo), firing.workflow)
        if refusal is not None:
            self._drop(event, firing, *refusal)
            return False
        return True

    def _drop(
        self, event: spool.HookEvent, firing: triggers.Firing, why: str, message: str,
        **fields: Any,
    ) -> None:  # fmt: skip
        self.dropped.record(
            event.repo, why, f"{firing.workflow.name}: {firing.reason}: {message}",
            workflow=str(firing.workflow), branch=firing.branch, event=firing.reason,
            hook_event=event.id, **fields,
        )  # fmt: skip

    def _set_aside(self, entry: Path, reason: str) -> None:
        """Move a bad entry to spool/rejected/; if even that fails, it stays, and says so
        (on a full disk it is tried again, as an entry waiting for space)."""
        try:
            moved = spool.reject(entry, reason)
        except NoSpace as exc:
            self._wait_for_space(entry, exc, reason=reason)
            return
        except (OSError, ProdigyError) as exc:
            self._problem(entry.name, f"{reason}; it cannot be set aside ({exc})")
            return
        except Exception as exc:  # a bug: the entry stays, the inbox goes on
            log.exception("setting hook event %s aside", entry.name)
            self._problem(entry.name, f"{reason}; it cannot be set aside ({exc!r})")
            return
        self._problem(entry.name, f"{reason}; the entry was moved to {moved}")

    def _wait_for_space(self, entry: Path, exc: NoSpace, *, reason: str | None = None) -> None:
        """Keep the entry for a later try; say so once per entry, not at every retry."""
        if self._told != entry.name:
            what = f"{reason}; it cannot be set aside" if reason else "it waits in the spool"
            self._problem(entry.name, f"{what} until there is room: {exc.message}")
        self.waiting = self._told = entry.name

    def _problem(self, event_id: str, message: str) -> None:
        log.error("hook event %s: %s", event_id, message)
        self.problems.append({"event": event_id, "at": time.time(), "error": message})


def _request(event: spool.HookEvent, firing: triggers.Firing) -> RunRequest:
    """The job a trigger submits: in the hook's worktree and environment (without the
    variables that pin git to the hook's repository; the daemon's own when the entry has
    none), on the event's branch."""
    return RunRequest(
        workflow=str(firing.workflow),
        cwd=str(event.repo),
        env=_env(event),
        repo=str(event.repo),
        merge_policy=firing.trigger.merge,
        branch=firing.branch,
        triggered_by=firing.reason,
    )


def _env(event: spool.HookEvent) -> dict[str, str]:
    return {k: v for k, v in (event.env or os.environ).items() if k not in REPO_PINNING_VARS}


def _key(event: spool.HookEvent, firing: triggers.Firing) -> str:
    """One job per (event, workflow, branch), however often the entry is read."""
    what = f"{event.digest}\0{firing.workflow}\0{firing.branch}".encode()
    return f"{KEY_PREFIX}{hashlib.sha256(what).hexdigest()}"
