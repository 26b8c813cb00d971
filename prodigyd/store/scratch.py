"""The daemon's temporary folders, in the store (`$PRODIGY_HOME/tmp/`), not in `/tmp`.

A map agent's bundles on their way to a Dask worker and a snapshot's temporary index are
made here and removed when done. A daemon killed meanwhile cannot remove them, and in
`/tmp` nothing would: the next daemon empties this folder as it starts, before any job
runs (one daemon per store: main.py's instance lock), so nothing a killed daemon left
outlives it by more than a restart.
"""

from __future__ import annotations

import logging
import shutil
import tempfile

from prodigyd import paths
from prodigyd.store.atomic import ensure_dir

log = logging.getLogger("prodigyd.scratch")


def folder(prefix: str) -> tempfile.TemporaryDirectory[str]:
    """A new temporary folder in the store, removed when the `with` block ends."""
    return tempfile.TemporaryDirectory(prefix=prefix, dir=ensure_dir(paths.scratch_dir()))


def clear() -> None:
    """Remove what earlier daemons left (at start: no job of this one runs yet). A folder
    that cannot be removed is logged and left; the store works without."""
    root = paths.scratch_dir()
    try:
        entries = list(root.iterdir())
    except FileNotFoundError:
        return
    except OSError as exc:
        log.warning("cannot read %s: %s", root, exc.strerror)
        return
    for entry in entries:
        try:
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry)
            else:
                entry.unlink()
        except OSError as exc:
            log.warning("cannot remove %s, left by an earlier daemon: %s", entry, exc.strerror)
    if entries:
        log.info("removed %d temporary folder(s) an earlier daemon left in %s", len(entries), root)
