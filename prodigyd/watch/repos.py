"""The repositories the daemon watches without hooks (`prodigyctl watch add|rm|ls`).

Kept in `$PRODIGY_HOME/watched.json`, written whole and atomically (store/atomic.py) by the
daemon alone, so the list survives restarts and a crash leaves the old list or the new
one. A repository is its working tree's top folder, resolved, as `git rev-parse
--show-toplevel` names it: a linked worktree can be watched on its own (its workflow files
are its own), and shares its refs with the repository's other worktrees.

A file that does not parse is moved aside (`watched.json.corrupt-*`, atomic.read_json) and
the daemon starts with no repository watched, saying so in its log: the list is easy to
make again, and a daemon that does not start helps nobody.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass

from prodigyd import paths
from prodigyd.errors import StoreError
from prodigyd.store.atomic import ensure_dir, read_json, write_json_atomic

log = logging.getLogger("prodigyd.watch")

VERSION = 1


@dataclass(frozen=True)
class Watched:
    path: str  # the working tree's top folder, resolved
    added_at: str  # ISO 8601, UTC


def load() -> list[Watched]:
    """The watched repositories, in the order they were added."""
    try:
        data = read_json(paths.watched_file())
    except FileNotFoundError:
        return []
    except StoreError as exc:
        log.error("%s; no repository is watched", exc.render())
        return []
    try:
        return [Watched(str(e["path"]), str(e["added_at"])) for e in data["repositories"]]
    except (KeyError, TypeError) as exc:
        log.error(
            "%s: unexpected content (%r); no repository is watched", paths.watched_file(), exc
        )
        return []


def save(entries: list[Watched]) -> None:
    """Replace the list, durably (temp file, fsync, rename)."""
    ensure_dir(paths.home())
    data = {"version": VERSION, "repositories": [asdict(e) for e in entries]}
    write_json_atomic(paths.watched_file(), data)
