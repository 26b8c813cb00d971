"""The daemon's side of git hooks: read spool entries as they arrive, submit what they
trigger, then delete them (watch/spool.py says why nothing is lost or fired twice).

The folder is watched with watchfiles (inotify; a 5 ms step keeps a trigger's latency
near Watchman's). When the watch cannot be set up (inotify limits, an odd file system) the
inbox says so in the log and polls once a second instead of giving up. Entries are handled
one at a time, oldest first. Problems a user should see (a triggered workflow that does not
load or is refused at submission) are kept, the latest fire.RECENT, for `triggers.list`.

Each run it would start goes through watch/fire.py, the path the repository watcher's
events take too: one idempotency key per (repository, workflow, event, commit), then the
gate (watch/gate.py), every run not started kept as a `trigger_dropped` event.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import TYPE_CHECKING

from prodigyd import paths
from prodigyd.errors import ProdigyError, ShuttingDown
from prodigyd.store.atomic import ensure_dir
from prodigyd.watch import spool, triggers
from prodigyd.watch.fire import Occasion, TriggerPath
from prodigyd.watch.gate import TriggerLimits

if TYPE_CHECKING:
    from prodigyd.jobs import JobManager

log = logging.getLogger("prodigyd.watch")

POLL_SECONDS = 1.0


class HookInbox:
    def __init__(self, jobs: JobManager, limits: TriggerLimits | None = None) -> None:
        self.jobs = jobs
        self.path = TriggerPath(jobs, limits)  # shared with the repository watcher
        self.problems, self.dropped = self.path.problems, self.path.dropped

    async def run(self) -> None:
        """Drain the spool now and whenever it changes; runs until cancelled."""
        folder = ensure_dir(paths.spool_dir())
        await self.drain()
        try:
            from watchfiles import awatch

            async for _ in awatch(folder, watch_filter=None, recursive=False, step=5,
                                  debounce=200):  # fmt: skip
                await self.drain()
        except (OSError, RuntimeError) as exc:  # no inotify watch: poll instead
            log.warning("cannot watch %s (%s); polling it every %gs", folder, exc, POLL_SECONDS)
            while True:
                await asyncio.sleep(POLL_SECONDS)
                await self.drain()

    async def drain(self) -> None:
        for entry in spool.pending():
            try:
                await self.handle(entry)
            except OSError as exc:  # a path the entry's checks did not foresee failing
                self._set_aside(entry, str(exc))
            except ProdigyError as exc:  # its workflows folder cannot be listed
                self._set_aside(entry, exc.render())
            except Exception as exc:  # a bug must not stop every later hook: set it aside
                log.exception("hook event %s", entry.name)
                self._set_aside(entry, f"internal error: {exc!r} (see prodigyd.log)")

    async def handle(self, entry: Path) -> list[str]:
        """Submit what one entry triggers; returns the ids of the jobs it made."""
        try:
            event = spool.read(entry)
        except spool.SpoolError as exc:
            self._set_aside(entry, str(exc))
            return []
        if event is None:  # still being written: its last write wakes the watch again
            return []
        submitted = []
        for firing in await triggers.firings(event):
            occasion = Occasion(event.repo, firing, event.env, {"hook_event": event.id})
            try:
                record = await self.path.fire(occasion)
            except ShuttingDown:
                return submitted  # the entry stays; the next daemon submits the rest
            except ProdigyError as exc:
                self._problem(entry.name, f"{firing.workflow}: {exc.render()}")
                continue
            if record is not None:
                submitted.append(record.id)
        spool.done(entry)
        return submitted

    def _set_aside(self, entry: Path, reason: str) -> None:
        """Move a bad entry to spool/rejected/; if even that fails, it stays, and says so."""
        try:
            moved = spool.reject(entry, reason)
        except OSError as exc:
            self._problem(entry.name, f"{reason}; it cannot be set aside ({exc})")
            return
        self._problem(entry.name, f"{reason}; the entry was moved to {moved}")

    def _problem(self, event_id: str, message: str) -> None:
        self.path.problem("hook event", event_id, message)
