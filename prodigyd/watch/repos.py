"""The repositories the daemon watches without hooks (`prodigyctl watch add|rm|ls`).

Kept in `$PRODIGY_HOME/watched.json`, written whole and atomically (store/atomic.py) by the
daemon alone, so the list survives restarts and a crash leaves the old list or the new
one. A repository is its working tree's top folder, resolved, as `git rev-parse
--show-toplevel` names it: a linked worktree can be watched on its own (its workflow files
are its own), and shares its refs with the repository's other worktrees.

A file that does not parse is moved aside (`watched.json.corrupt-*`, atomic.read_json) and
the daemon starts with no repository watched, saying so in its log: the list is easy to
make again, and a daemon that does not start helps nobody.

Beside it, `watched/<repo id>.json` keeps, per watched repository, the refs the watcher
last acted on (watch/refwatch.py): the next daemon starts from them, so a ref moved while
no daemon was watching still fires. Written whole after each change acted on, but not
fsync'd (it changes with every commit): a power loss may bring an older state back, and
then the refs moved since are looked at again, the runs already submitted not submitted
twice (their idempotency keys). A state that does not read is set aside the same way and
the repository starts from its refs as they are.
"""

from __future__ import annotations

import contextlib
import logging
from dataclasses import asdict, dataclass
from pathlib import Path

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


def load_refs(repo: Path) -> dict[str, str] | None:
    """The refs the watcher last acted on in `repo`; None when none were kept (a repository
    watched by an earlier prodigyd) or they do not read."""
    path = paths.watched_refs_file(repo)
    try:
        data = read_json(path)
    except FileNotFoundError:
        return None
    except StoreError as exc:
        log.error("%s; %s starts from its refs as they are", exc.render(), repo)
        return None
    except OSError as exc:  # unreadable, or not movable aside (a read-only store)
        log.error("cannot read %s (%s); %s starts from its refs as they are", path, exc, repo)
        return None
    try:
        if data["path"] != str(repo):  # another repository with the same id
            return None
        return {str(ref): str(sha) for ref, sha in data["refs"].items()}
    except (KeyError, TypeError, AttributeError) as exc:
        log.error(
            "%s: unexpected content (%r); %s starts from its refs as they are", path, exc, repo
        )
        return None


def save_refs(repo: Path, refs: dict[str, str]) -> None:
    """Replace the refs kept for `repo`, whole (see the module docstring: not fsync'd)."""
    data = {"version": VERSION, "path": str(repo), "refs": refs}
    write_json_atomic(paths.watched_refs_file(repo), data, durable=False)


def forget_refs(repo: Path) -> None:
    """Drop the refs kept for a repository no longer watched."""
    with contextlib.suppress(FileNotFoundError):
        paths.watched_refs_file(repo).unlink()
