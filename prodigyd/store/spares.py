"""Empty files made ahead, in a worker thread, for files the event loop would otherwise
create on its way: a map agent's attempt log (engine/mapreduce/runner.py, `run_agent`).

On this machine's ext4 a new file costs 0.1-0.4 ms once the disk has been idle a few
milliseconds, or while a sync is under way (the inode's allocation waits for the file
system's journal), where renaming a file made beforehand into place costs a directory
entry. A map phase made one such file per item on the loop, the one thread its items
share: in an interleaved A/B (two daemons, their phases alternating, 2026-12-05) a
100-item phase took 324.5 ms with spares against 422.5 ms without, a 20-item one 68.5
and 75.5 ms against 86.0 and 92.5 ms (bench/README.md).

The spares wait in the store's temporary folder (`$PRODIGY_HOME/tmp/spares/`, emptied by
each daemon as it starts: store/scratch.py): once a store has used one, the daemon makes
them up to `READY` whenever no job runs (`top_up`), and a batch at once whenever fewer
than `LOW` are left (a phase of hundreds of items). `create` takes one by renaming it to
the file's name; with none left, or when the rename fails (a spare gone; another file
system, EXDEV: no spare is tried again for that store), it creates the file as before. A
spare is made as `open(path, "w")` would make the file (the same flags and mode, under
the daemon's umask), so nothing about the file tells which way it was made.
"""

from __future__ import annotations

import asyncio
import errno
import itertools
import logging
import os
from pathlib import Path
from typing import TextIO

from prodigyd import paths

log = logging.getLogger("prodigyd.spares")

#: Spares kept ready once a store has used some: made up to this whenever the daemon is
#: idle (`top_up`), so a map phase of fewer items makes none while it runs.
READY = 128
#: Fewer spares than this left while files are taken: a batch is made at once.
LOW = 16
#: Spares made at a time then.
BATCH = 64

#: The spares ready, by their folder (one per store: PRODIGY_HOME is read per call).
_READY: dict[str, list[str]] = {}
#: The batch being made for a folder, by the loop that asked for it.
_MAKING: dict[str, asyncio.AbstractEventLoop] = {}
#: Folders whose spares cannot be renamed to where the files go (another file system).
_ACROSS: set[str] = set()
_NAMES = itertools.count()


def create(path: Path | str) -> TextIO:
    """`open(path, "w", encoding="utf-8")`, with a spare when one is ready (see the module
    docstring). On the event loop; without one running, no batch is made."""
    folder = str(paths.spares_dir())
    if folder not in _ACROSS:
        ready = _READY.setdefault(folder, [])
        if len(ready) < LOW:
            _make_soon(folder, ready)
        if ready:
            try:
                os.rename(ready.pop(), path)
            except OSError as exc:  # made as before; the spare is left for the next start
                if exc.errno == errno.EXDEV:  # `path` is on another file system: so are
                    _ACROSS.add(folder)  # the others, and the files they are for
            else:
                return open(path, "a", encoding="utf-8")  # the caller closes it
    return open(path, "w", encoding="utf-8")  # the caller closes it


def top_up() -> None:
    """Make spares up to READY in a worker thread, for a store that has used some: what the
    daemon does once no job runs (scheduler.py)."""
    folder = str(paths.spares_dir())
    ready = _READY.get(folder)
    if ready is not None and len(ready) < READY and folder not in _ACROSS:
        _make_soon(folder, ready, READY - len(ready))


def _make_soon(folder: str, ready: list[str], count: int = BATCH) -> None:
    """Make `count` spares in a worker thread, unless a batch is being made."""
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        return
    asker = _MAKING.get(folder)
    if asker is not None and not asker.is_closed():  # (a closed loop's batch never lands)
        return
    _MAKING[folder] = loop
    names = [f"{folder}/spare-{os.getpid()}-{next(_NAMES)}" for _ in range(count)]
    made = loop.run_in_executor(None, _make, folder, names)

    def done(future: asyncio.Future[list[str]]) -> None:
        _MAKING.pop(folder, None)
        ready.extend(future.result())

    made.add_done_callback(done)


def _make(folder: str, names: list[str]) -> list[str]:
    """The spares of `names` made (blocking: a worker thread's); those that could not be
    (a full disk) are not, and said at debug level: the files are then made as before."""
    made: list[str] = []
    try:
        os.makedirs(folder, exist_ok=True)
        for name in names:
            os.close(os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o666))
            made.append(name)
    except OSError as exc:
        log.debug("spare files: %d of %d made in %s (%s)", len(made), len(names), folder, exc)
    return made
