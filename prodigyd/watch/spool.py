"""Git hook events, handed from the hook shims to the daemon through a spool folder.

A hook must never make git wait (lefthook adds 16-20 ms to a commit, pre-commit 139 ms): the
shim (prodigyctl/commands/hooks.py) starts no Python, opens no socket and spawns as little
as it can (one `git rev-parse`, one `env -0`). It writes one entry of up to three files in
`$PRODIGY_HOME/spool/` and returns:

- `<id>.env` (optional): the hook's environment, `env -0` style. A triggered job runs in
  it, as a job `prodigyctl run` submits runs in the client's (without it: in the daemon's).
- `<id>.stdin` (optional): what git gave the hook on standard input (pre-push: the refs
  being pushed, `<local ref> <sha> <remote ref> <sha>` per line).
- `<id>.event`, written last: `key=value` lines, `version=1`, `hook` (post-commit,
  pre-push), `repo` (the worktree git ran the hook in), `head` (its commit then), `branch`
  (`refs/heads/<name>`, or `HEAD` when detached), `remote` (pre-push: the remote's name),
  and a last line `end=1`. An entry is complete when that line is there: no rename (one
  more process) is needed to publish it.

`<id>` is `<uptime>-<pid>`: unique while the machine is up, and made without a process.
Entries are taken oldest first by the time their event file was written. The daemon
watches the folder, submits what an entry triggers, and deletes it only then. The
idempotency key of each submission is a hash of the entry's content (not of its name), so
an entry read twice (a daemon killed between the submit and the delete) submits once, and
no two events are ever mistaken for one. An entry that cannot be read is moved to
`spool/rejected/` with a `.reason` file beside it, never deleted; so is one left
incomplete for INCOMPLETE_SECONDS (its hook was killed while writing it); its `.env` is
deleted then, as it is when the entry is done: a job keeps the environment it runs in in
the journal (store/journal.py), never in the spool.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import time
from dataclasses import dataclass
from pathlib import Path

from prodigyd import paths
from prodigyd.git.repo import HEADS, SHA
from prodigyd.store.atomic import ensure_dir, write_bytes_atomic

VERSION = "1"
#: The hooks the shims are installed as, and the `on:` event each one is.
HOOK_EVENTS = {"post-commit": "commit", "pre-push": "push"}
HOOKS = tuple(HOOK_EVENTS)
REJECTED = "rejected"
EVENT, STDIN, ENV, REASON = ".event", ".stdin", ".env", ".reason"
END = "end=1"
INCOMPLETE_SECONDS = 600
ZERO = re.compile(r"0+")


class SpoolError(Exception):
    """An entry that does not say what it should; the message names the file and line."""


@dataclass(frozen=True)
class PushedRef:
    """One line of pre-push's standard input."""

    local_ref: str
    local_sha: str
    remote_ref: str
    remote_sha: str

    @property
    def branch(self) -> str | None:
        """The local branch pushed; None for a tag, or for a deletion (nothing is pushed)."""
        if ZERO.fullmatch(self.local_sha) or not self.local_ref.startswith(HEADS):
            return None
        return self.local_ref.removeprefix(HEADS)

    @property
    def remote_known(self) -> bool:
        return not ZERO.fullmatch(self.remote_sha)


@dataclass(frozen=True)
class HookEvent:
    id: str
    hook: str
    repo: Path
    head: str | None
    branch: str | None  # short name; None when detached
    remote: str | None
    pushed: tuple[PushedRef, ...]
    env: dict[str, str]
    digest: str  # of the entry's event and stdin: the same for the same event, read twice


def pending() -> list[Path]:
    """Event files, oldest first; complete or not (`read` tells)."""
    try:
        entries = [e for e in os.scandir(paths.spool_dir()) if e.name.endswith(EVENT)]
    except FileNotFoundError:
        return []
    stamped = []
    for entry in entries:
        with contextlib.suppress(FileNotFoundError):
            stamped.append((entry.stat().st_mtime_ns, entry.name, Path(entry.path)))
    return [path for _, _, path in sorted(stamped)]


def read(event_file: Path) -> HookEvent | None:
    """The entry whose event file this is; None while it is still being written."""
    text = _text(event_file)
    if not text.endswith(f"{END}\n"):
        if time.time() - event_file.stat().st_mtime > INCOMPLETE_SECONDS:
            raise SpoolError(f"{event_file}: incomplete (no {END!r} line) since its hook died")
        return None
    fields = _fields(event_file, text)
    if fields.get("version") != VERSION:
        raise SpoolError(f"{event_file}: version {fields.get('version')!r}, expected 1")
    hook = fields.get("hook", "")
    if hook not in HOOKS:
        raise SpoolError(f"{event_file}: hook {hook!r} is not one of {', '.join(HOOKS)}")
    repo = fields.get("repo", "")
    if not os.path.isabs(repo):
        raise SpoolError(f"{event_file}: repo {repo!r} is not an absolute path")
    head = fields.get("head") or None
    if head is not None and not SHA.fullmatch(head):
        raise SpoolError(f"{event_file}: head {head!r} is not a commit id")
    branch = fields.get("branch", "")
    stdin = _text(_part(event_file, STDIN), missing="")
    return HookEvent(
        id=event_file.name.removesuffix(EVENT),
        hook=hook,
        repo=Path(repo),
        head=head,
        branch=branch.removeprefix(HEADS) if branch.startswith(HEADS) else None,
        remote=fields.get("remote") or None,
        pushed=_pushed(_part(event_file, STDIN), stdin) if hook == "pre-push" else (),
        env=_env(_part(event_file, ENV)),
        digest=hashlib.sha256(f"{text}\0{stdin}".encode()).hexdigest(),
    )


def done(event_file: Path) -> None:
    """Delete an entry: its event file last, so a crash never leaves parts without it."""
    for suffix in (ENV, STDIN, EVENT):
        with contextlib.suppress(FileNotFoundError):
            _part(event_file, suffix).unlink()


def reject(event_file: Path, reason: str) -> Path:
    """Move a bad entry aside (kept for the user to look at), with the reason beside it.

    Its environment is deleted, not kept: it holds the user's tokens, nothing will run in
    it, and the event file says what went wrong."""
    folder = ensure_dir(paths.spool_dir() / REJECTED)
    with contextlib.suppress(FileNotFoundError):
        _part(event_file, ENV).unlink()
    for suffix in (STDIN, EVENT):
        with contextlib.suppress(FileNotFoundError):
            part = _part(event_file, suffix)
            os.replace(part, folder / part.name)
    target = folder / event_file.name
    write_bytes_atomic(target.with_name(target.name.removesuffix(EVENT) + REASON),
                       f"{reason}\n".encode())  # fmt: skip
    return target


def _part(event_file: Path, suffix: str) -> Path:
    return event_file.with_name(event_file.name.removesuffix(EVENT) + suffix)


def _text(path: Path, missing: str | None = None) -> str:
    try:
        return path.read_text()
    except FileNotFoundError:
        if missing is None:
            raise SpoolError(f"{path}: gone") from None
        return missing
    except (OSError, UnicodeDecodeError) as exc:
        raise SpoolError(f"{path}: cannot be read ({exc})") from exc


def _fields(path: Path, text: str) -> dict[str, str]:
    fields = {}
    for number, line in enumerate(text.splitlines(), 1):
        key, sep, value = line.partition("=")
        if not sep or not key.isidentifier():
            raise SpoolError(f"{path}:{number}: expected key=value, got {line!r}")
        fields[key] = value
    return fields


def _pushed(path: Path, text: str) -> tuple[PushedRef, ...]:
    refs = []
    for number, line in enumerate(text.splitlines(), 1):
        parts = line.split()
        if not parts:
            continue
        if len(parts) != 4 or not (SHA.fullmatch(parts[1]) and SHA.fullmatch(parts[3])):
            raise SpoolError(
                f"{path}:{number}: expected '<local ref> <sha> <remote ref> <sha>', got {line!r}"
            )
        refs.append(PushedRef(*parts))
    return tuple(refs)


def _env(path: Path) -> dict[str, str]:
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise SpoolError(f"{path}: cannot be read ({exc})") from exc
    env = {}
    for item in data.split(b"\0"):
        key, sep, value = item.decode(errors="surrogateescape").partition("=")
        if sep and key:
            env[key] = value
    return env
