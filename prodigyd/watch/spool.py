"""Git hook events, handed from the hook shims to the daemon through a spool folder.

A hook must never make git wait (lefthook adds 16-20 ms to a commit, pre-commit 139 ms): the
shim (hooks/prodigy-hook, installed by prodigyctl/commands/hooks.py) starts no Python, opens
no socket and starts no process (but a `git rev-parse` when git's files do not say what
HEAD is). It writes one entry of up to three files in `$PRODIGY_HOME/spool/` and returns:

- `<id>.env` (optional): `NAME=value` items, each ended by a NUL: the part of the hook's
  environment a job needs (the variables the shim names, listed in docs/workflows.md), and
  those `PRODIGY_HOOK_ENV` names. A triggered job runs in it, as a job `prodigyctl run`
  submits runs in the client's (without it: in the daemon's).
- `<id>.stdin` (optional): what git gave the hook on standard input (pre-push: the refs
  being pushed, `<local ref> <sha> <remote ref> <sha>` per line).
- `<id>.event`, written last: `key=value` lines, `version=1`, `hook` (post-commit,
  pre-push), `repo` (the worktree git ran the hook in), `head` (its commit then), `branch`
  (`refs/heads/<name>`, or `HEAD` when detached), `remote` (pre-push: the remote's name),
  `automation` and `session` (the hook's PRODIGY_AUTOMATION and PRODIGY_SESSION_ID: set
  when a process prodigy started made the commit or push, watch/triggers.py), and a last
  line `end=1`. An entry is complete when that line is there: no rename (one
  more process) is needed to publish it.

`<id>` is `<uptime>-<pid>`: unique while the machine is up, and made without a process.
Entries are taken oldest first by the time their event file was written. The daemon
watches the folder, submits what an entry triggers, and deletes it only then. The
idempotency key of each submission names the event, not the entry (watch/fire.py: the
repository, workflow, event and commit), so an entry read twice (a daemon killed between
the submit and the delete) submits once, and a commit the repository watcher saw too runs
once. An entry that cannot be read is moved to
`spool/rejected/` with a `.reason` file beside it, never deleted; so is one left
incomplete for INCOMPLETE_SECONDS (its hook was killed while writing it); its `.env` is
deleted then, as it is when the entry is done: a job keeps the environment it runs in in
the journal (store/journal.py), never in the spool.

Anyone who can write the folder can put anything in it, and the daemon reads it on its event
loop: each file is opened without following a link and without blocking (a FIFO would wait
for a writer, and every client with it), and only a regular file of ours, of at most
MAX_FILE_BYTES, is read. The repository an entry names must be a folder of ours, checked
before any of its workflow files is read: a triggered workflow runs as this user.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import stat
import time
from dataclasses import dataclass
from pathlib import Path

from prodigyd import paths
from prodigyd.files import Unreadable, failure_reason, read_regular
from prodigyd.git.cli import AUTOMATION_VAR, SESSION_VAR
from prodigyd.git.repo import HEADS, SHA
from prodigyd.store.atomic import ensure_dir, write_bytes_atomic

VERSION = "1"
#: The hooks the shims are installed as, and the `on:` event each one is.
HOOK_EVENTS = {"post-commit": "commit", "pre-push": "push"}
HOOKS = tuple(HOOK_EVENTS)
EVENT, STDIN, ENV, REASON = ".event", ".stdin", ".env", ".reason"
SUFFIXES = (EVENT, STDIN, ENV, REASON)
END = "end=1"
INCOMPLETE_SECONDS = 600
#: An event is a few lines; pre-push's stdin a line per ref; the environment a few KiB.
MAX_FILE_BYTES = 8 * 1024 * 1024
#: How much of a bad value a reason quotes (a 10,000-character repo= helps nobody).
SHOWN_CHARS = 200
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
    automation: bool  # PRODIGY_AUTOMATION=true: a process prodigy started fired the hook
    session: str | None  # PRODIGY_SESSION_ID: the session whose process it was
    digest: str  # of the entry's event and stdin: the same for the same event, read twice


def pending() -> list[Path]:
    """Event files, oldest first; complete or not (`read` tells). A link or a FIFO is
    listed too (by its own time, not its target's), for `read` to refuse."""
    try:
        entries = [e for e in os.scandir(paths.spool_dir()) if e.name.endswith(EVENT)]
    except FileNotFoundError:
        return []
    stamped = []
    for entry in entries:
        with contextlib.suppress(OSError):
            written = entry.stat(follow_symlinks=False).st_mtime_ns
            stamped.append((written, entry.name, Path(entry.path)))
    return [path for _, _, path in sorted(stamped)]


def read(event_file: Path) -> HookEvent | None:
    """The entry whose event file this is; None while it is still being written."""
    text, written = _event_text(event_file)
    if not text.endswith(f"{END}\n"):
        if time.time() - written > INCOMPLETE_SECONDS:
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
        raise SpoolError(f"{event_file}: repo {_shown(repo)} is not an absolute path")
    head = fields.get("head") or None
    if head is not None and not SHA.fullmatch(head):
        raise SpoolError(f"{event_file}: head {head!r} is not a commit id")
    branch = fields.get("branch", "")
    _check_repo(event_file, repo)
    stdin = _text(_part(event_file, STDIN), missing="")
    env = _env(_part(event_file, ENV))
    if "automation" not in fields:  # a shim installed before it wrote these lines
        fields = {**fields, **_markers(env)}
    return HookEvent(
        id=event_file.name.removesuffix(EVENT),
        hook=hook,
        repo=Path(os.path.realpath(repo)),  # as the workflows' paths are kept (no links)
        head=head,
        branch=branch.removeprefix(HEADS) if branch.startswith(HEADS) else None,
        remote=fields.get("remote") or None,
        pushed=_pushed(_part(event_file, STDIN), stdin) if hook == "pre-push" else (),
        env=env,
        automation=fields.get("automation") == "true",
        session=fields.get("session") or None,
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
    it, and the event file says what went wrong. The reason is written first: on a full
    disk (NoSpace) the entry stays whole in the spool, never set aside without its reason;
    the moves after it need no space."""
    folder = ensure_dir(paths.rejected_spool_dir())
    stem = _free_stem(folder, event_file.name.removesuffix(EVENT))
    write_bytes_atomic(folder / f"{stem}{REASON}", f"{reason}\n".encode())
    with contextlib.suppress(FileNotFoundError):
        _part(event_file, ENV).unlink()
    for suffix in (STDIN, EVENT):
        with contextlib.suppress(FileNotFoundError):
            os.replace(_part(event_file, suffix), folder / f"{stem}{suffix}")
    return folder / f"{stem}{EVENT}"


def _free_stem(folder: Path, stem: str) -> str:
    """`stem`, else `stem.2`, `stem.3`...: ids repeat after a reboot, and a rejected entry
    is never overwritten (nor a folder named like one in the way of the move)."""
    candidate, number = stem, 1
    while any(os.path.lexists(folder / f"{candidate}{suffix}") for suffix in SUFFIXES):
        number += 1
        candidate = f"{stem}.{number}"
    return candidate


def _part(event_file: Path, suffix: str) -> Path:
    return event_file.with_name(event_file.name.removesuffix(EVENT) + suffix)


def _event_text(event_file: Path) -> tuple[str, float]:
    """The event file's text, and when it was written."""
    read = _read(event_file)
    if read is None:
        raise SpoolError(f"{event_file}: gone")
    data, info = read
    return _decode(event_file, data), info.st_mtime


def _text(path: Path, missing: str) -> str:
    read = _read(path)
    return missing if read is None else _decode(path, read[0])


def _decode(path: Path, data: bytes) -> str:
    try:
        return data.decode()
    except UnicodeDecodeError as exc:
        raise SpoolError(f"{path}: cannot be read ({exc})") from exc


def _read(path: Path) -> tuple[bytes, os.stat_result] | None:
    """A spool file's bytes and status; None when there is no such file. Anything but a
    regular file of ours (a link, a FIFO, a folder, another user's) is refused unread."""
    try:
        return read_regular(path, limit=MAX_FILE_BYTES, follow_links=False, owner=os.getuid())
    except FileNotFoundError:
        return None
    except Unreadable as exc:
        raise SpoolError(f"{path}: {exc}") from None
    except OSError as exc:  # ELOOP: a link; ENXIO: a socket
        raise SpoolError(f"{path}: cannot be read ({exc.strerror})") from None


def _check_repo(event_file: Path, repo: str) -> None:
    """The repository must be a folder we own: its workflows would run as us."""
    try:
        info = os.stat(repo)
    except (OSError, ValueError) as exc:  # ENAMETOOLONG, ENOENT, EACCES; ValueError: a NUL
        raise SpoolError(f"{event_file}: repo {_shown(repo)}: {failure_reason(exc)}") from None
    if not stat.S_ISDIR(info.st_mode):
        raise SpoolError(f"{event_file}: repo {_shown(repo)} is not a folder")
    if info.st_uid != os.getuid():
        raise SpoolError(
            f"{event_file}: repo {_shown(repo)} is owned by uid {info.st_uid}, "
            f"not by uid {os.getuid()}: its workflows are not run"
        )


def _shown(value: str) -> str:
    return repr(value if len(value) <= SHOWN_CHARS else value[:SHOWN_CHARS] + "...")


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


def _markers(env: dict[str, str]) -> dict[str, str]:
    """The `automation` and `session` lines an older shim did not write, from the
    environment it spooled (all of it): hooks installed before still stop the loops."""
    return {"automation": env.get(AUTOMATION_VAR, ""), "session": env.get(SESSION_VAR, "")}


def _env(path: Path) -> dict[str, str]:
    read = _read(path)
    if read is None:
        return {}
    env = {}
    for item in read[0].split(b"\0"):
        key, sep, value = item.decode(errors="surrogateescape").partition("=")
        if sep and key:
            env[key] = value
    return env
