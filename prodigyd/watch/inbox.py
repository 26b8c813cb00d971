"""The daemon's side of git hooks: read spool entries as they arrive, submit what they
trigger, then delete them (watch/spool.py says why nothing is lost or fired twice).

The folder is watched with inotify on the event loop (watch/inotify.py: an entry is read as
soon as the shim closes it, and an idle daemon sleeps). When the watch cannot be set up
(inotify limits, an odd file system) the inbox says so in the log and polls once a second
instead of giving up. Entries are handled
one at a time, oldest first. Problems a user should see (a triggered workflow that does not
load or is refused at submission) are kept, the latest fire.RECENT, for `triggers.list`.

Each run it would start goes through watch/fire.py, the path the repository watcher's
events take too: one idempotency key per (repository, workflow, event, commit), then the
gate (watch/gate.py), every run not started kept as a `trigger_dropped` event.

A full disk (store/space.py) loses no event: an entry whose job cannot be submitted, or
that cannot be set aside, stays in the spool, and it and those after it (in order) are
tried again every RETRY_SECONDS until they fit. Nothing an entry holds stops the inbox:
its task runs until the daemon stops.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import TYPE_CHECKING

from prodigyd import paths
from prodigyd.errors import NoSpace, ProdigyError, ShuttingDown
from prodigyd.store.atomic import ensure_dir
from prodigyd.watch import spool, triggers
from prodigyd.watch.fire import Sighting, TriggerPath
from prodigyd.watch.gate import TriggerLimits
from prodigyd.watch.inotify import FolderWatch

if TYPE_CHECKING:
    from prodigyd.scheduler import Scheduler

log = logging.getLogger("prodigyd.watch")

POLL_SECONDS = 1.0
#: How often entries kept back by a full disk are tried again (the mender's pace).
RETRY_SECONDS = 2.0


class HookInbox:
    def __init__(self, scheduler: Scheduler, limits: TriggerLimits | None = None) -> None:
        self.scheduler = scheduler
        self.path = TriggerPath(scheduler, limits)  # shared with the repository watcher
        self.problems, self.dropped = self.path.problems, self.path.dropped
        self.waiting: str | None = None  # the entry a full disk kept back in the last drain
        self._told: str | None = None  # the entry whose wait is in `problems` already

    async def run(self) -> None:
        """Drain the spool now, whenever it changes, and (while an entry waits for disk
        space) every RETRY_SECONDS; runs until cancelled."""
        folder = paths.spool_dir()
        try:
            while True:  # again when the folder itself goes away (and is made again)
                ensure_dir(folder)
                async with FolderWatch(folder) as watch:
                    await self.drain()
                    while await watch.wait(RETRY_SECONDS if self.waiting else None):
                        await self.drain()
                log.warning("the spool %s went away; making it again", folder)
        except (OSError, ProdigyError) as exc:  # no watch (or no folder): poll
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
                self._set_aside(entry, f"internal error: {exc!r} (see {paths.daemon_log()})")
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
        submitted: list[str] = []
        for firing in await triggers.firings(event):
            sighting = Sighting(event.repo, firing, event.env, {"hook_event": event.id})
            try:
                record = await self.path.fire(sighting)
            except ShuttingDown:
                return submitted  # the entry stays; the next daemon submits the rest
            except NoSpace:
                raise  # the entry stays; submitted again once there is room
            except ProdigyError as exc:
                self._problem(entry.name, f"{firing.workflow}: {exc.render()}")
                continue
            if record is not None:
                submitted.append(record.id)
        spool.done(entry)
        return submitted

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
        self.path.problem("hook event", event_id, message)
