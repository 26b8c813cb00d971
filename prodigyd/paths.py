"""THE one place that knows where prodigy keeps things.

Every location is derived from `PRODIGY_HOME` *on each call* (never cached at import), so a
test that sets `PRODIGY_HOME` isolates the store, the socket, the worktrees and the logs at
once, and no code path can reach the real `~/.prodigy` behind its back.

Every folder, and every file the store has one of, has its function here; the files a
module keeps many of in its own folder (an event log per daemon run, a checkpoint journal
per phase, a spool entry per hook run, a log per agent attempt or claude step) are named
by that module.

Layout (reference §5, with the [R] clean-ups):

    $PRODIGY_HOME/
      prodigyd.sock  prodigyd.pid         socket (when PRODIGY_HOME is set) and pid file
      prodigyd.lock                       beside them: held by the one running daemon
      prodigyd.hook-start                 beside them: the daemon a git hook started last
      config.toml                         the configuration (config.py, docs/config.md)
      journal.db                          jobs and session records (SQLite, WAL)
      watched.json                        the repositories the daemon watches
      state/<session-id>/checkpoints/     per-step checkpoints
      events/<repo-id>/<session-id>/      events-<stamp>.jsonl
      locks/<session-id>.lock             resume locks
      logs/prodigyd.log[.1]               daemon log; logs/prodigyd.out its stdout and stderr
                                          when a client started it; logs/claude/ raw Claude
                                          streams
      worktrees/<repo-id>/                the worktree pool (pool.py): wt-<hex>/ slots,
                                          named/<name>/, <session-id>/ when on demand
      logs/agents/<session-id>/           one log per map agent attempt
      workflows/inline-<sha>.yml          workflows submitted as text (exec, batch, run -)
      spool/<id>.event|.stdin|.env        git hook events waiting for the daemon (watch/spool.py)
      spool/rejected/                     entries set aside, each with its reason
      .space-probe                        written and deleted to tell a full disk has room
"""

from __future__ import annotations

import functools
import os
from pathlib import Path


def home() -> Path:
    """The store root: `$PRODIGY_HOME`, else `~/.prodigy`.

    Every journal access and every store path asks for it (dozens of times a job), so the
    answer is kept for the variables it comes from (tests change them); a `$PRODIGY_HOME`
    that is relative once expanded depends on the working folder too: worked out each time."""
    env = os.environ.get("PRODIGY_HOME")
    if env and not os.path.isabs(os.path.expanduser(env)):  # `~/x` with a relative HOME too
        return Path(env).expanduser().absolute()
    return _home(env, os.environ.get("HOME"))


@functools.lru_cache(maxsize=8)
def _home(env: str | None, user_home: str | None) -> Path:
    """`home()` for a `$PRODIGY_HOME` absolute once expanded, or none; `user_home` is
    `$HOME`, which `~` and Path.home() read (only a key here)."""
    if env:
        return Path(env).expanduser().absolute()
    return Path.home() / ".prodigy"


def socket_path() -> Path:
    """Where the daemon listens.

    `$PRODIGY_HOME/prodigyd.sock` when PRODIGY_HOME is set (so each test has its own
    daemon), else `$XDG_RUNTIME_DIR/prodigy/prodigyd.sock`, else `~/.prodigy/prodigyd.sock`.

    XDG_RUNTIME_DIR is read here rather than through platformdirs, which checks the folder
    and falls back to /run/user/<uid>: the hook shim and the socket unit (`%t`) follow this
    rule and could not follow that one.
    """
    if os.environ.get("PRODIGY_HOME"):
        return home() / "prodigyd.sock"
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    if runtime:
        return runtime_socket_path(runtime)
    return home() / "prodigyd.sock"


def runtime_socket_path(runtime_dir: str) -> Path:
    """The socket in the runtime folder, where prodigyd.socket (`%t`) listens too."""
    return Path(runtime_dir) / "prodigy" / "prodigyd.sock"


#: sun_path is 108 bytes on Linux, the last one a NUL.
MAX_SOCKET_PATH_BYTES = 107


def socket_path_problem() -> str | None:
    """Why the socket cannot live where `socket_path()` says (a path the kernel refuses as
    too long), for an error that says what to do instead of "AF_UNIX path too long"."""
    path = socket_path()
    size = len(os.fsencode(path))
    if size <= MAX_SOCKET_PATH_BYTES:
        return None
    return (
        f"the socket path {path} is {size} bytes; Unix sockets allow at most "
        f"{MAX_SOCKET_PATH_BYTES}: set PRODIGY_HOME to a shorter folder"
    )


def pid_file() -> Path:
    return socket_path().parent / "prodigyd.pid"


def instance_lock_file() -> Path:
    """Flocked by the running daemon, so two racing starts yield one daemon."""
    return socket_path().parent / "prodigyd.lock"


def hook_start_file() -> Path:
    """Which daemon a git hook started last, and when: `<pid> <seconds of uptime>`. The hook
    shim (hooks/prodigy-hook) writes and reads it, so that a burst of commits with no
    daemon running starts one daemon, not one each, once the burst is over (the starter
    tells that by the spool folder no longer being newer than this file)."""
    return socket_path().parent / "prodigyd.hook-start"


def config_file() -> Path:
    return home() / "config.toml"


def journal_file() -> Path:
    """The job journal (store/journal.py); SQLite keeps its -wal and -shm files beside it."""
    return _journal_file(home())


@functools.lru_cache(maxsize=8)
def _journal_file(root: Path) -> Path:
    # Kept: asked for by every journal access, and a Path join costs more than the look-up.
    return root / "journal.db"


def space_probe_file() -> Path:
    """A file the daemon's mender writes and deletes to tell the disk has room again."""
    return home() / ".space-probe"


def state_root() -> Path:
    return home() / "state"


def state_dir(session_id: str) -> Path:
    """A session's own state folder: its checkpoints, and (before the pool) worktree.json."""
    return state_root() / session_id


def checkpoints_dir(session_id: str) -> Path:
    return state_dir(session_id) / "checkpoints"


def legacy_worktree_file(session_id: str) -> Path:
    """Where sessions started before the pool kept their base commit."""
    return state_dir(session_id) / "worktree.json"


def events_root() -> Path:
    return home() / "events"


def events_dir(repo_id: str, session_id: str) -> Path:
    return events_root() / repo_id / session_id


def locks_dir() -> Path:
    return home() / "locks"


def lock_file(session_id: str) -> Path:
    return locks_dir() / f"{session_id}.lock"


def logs_dir() -> Path:
    return home() / "logs"


def daemon_log() -> Path:
    return logs_dir() / "prodigyd.log"


def daemon_output_file() -> Path:
    """The stdout and stderr of a daemon a client started (what it printed before logging)."""
    return logs_dir() / "prodigyd.out"


def claude_logs_dir() -> Path:
    return logs_dir() / "claude"


def claude_log_prefix(session_id: str) -> str:
    """How the raw Claude stream logs of a session begin (`<session-id>-step<label>-...`,
    one file per invocation, in the flat `claude_logs_dir()`)."""
    return f"{session_id}{_CLAUDE_LOG_MARK}"


def claude_log_session(name: str) -> str | None:
    """The session a Claude stream log's file name belongs to (claude_log_prefix)."""
    session_id, mark, _ = name.partition(_CLAUDE_LOG_MARK)
    return session_id if mark and session_id else None


_CLAUDE_LOG_MARK = "-step"


def agents_logs_root() -> Path:
    return logs_dir() / "agents"


def agent_logs_dir(session_id: str) -> Path:
    """One log file per map agent attempt: `logs/agents/<session-id>/<item>.attempt-N.log`."""
    return agents_logs_root() / session_id


def crash_log_prefix() -> str:
    """How the crash logs prodigyctl writes into `logs_dir()` begin (prodigyctl/errors.py)."""
    return "prodigyctl-crash"


# The XDG user folders, by platformdirs' rules (which ignore a relative value since 4.11.8),
# through its Unix class even on macOS, whose own folders are not where systemd and man-db
# look. Imported in the call: ~10 ms that the client's hot path never needs.


def user_units_dir() -> Path:
    """Where systemd looks for the user's own units: `$XDG_CONFIG_HOME/systemd/user`
    (`$XDG_CONFIG_HOME` when absolute, else `~/.config`)."""
    from platformdirs.unix import Unix

    return Unix().user_config_path / "systemd" / "user"


def user_man_dir() -> Path:
    """The user's man folder, which man-db searches: `$XDG_DATA_HOME/man` (`$XDG_DATA_HOME`
    when absolute, else `~/.local/share`)."""
    from platformdirs.unix import Unix

    return Unix().user_data_path / "man"


def spool_dir() -> Path:
    return home() / "spool"


def scratch_dir() -> Path:
    """The daemon's temporary folders (store/scratch.py)."""
    return home() / "tmp"


def spares_dir() -> Path:
    """Empty files made ahead for map agents' logs (store/spares.py)."""
    return scratch_dir() / "spares"


def rejected_spool_dir() -> Path:
    """Spool entries set aside (watch/spool.py `reject`), kept for the user to look at."""
    return spool_dir() / "rejected"


def watched_file() -> Path:
    """The repositories the daemon watches (prodigyd/watch/repos.py)."""
    return home() / "watched.json"


def watched_refs_file(repo_root: Path) -> Path:
    """The refs the watcher last acted on in a watched repository (watch/repos.py)."""
    return home() / "watched" / f"{repo_id(repo_root)}.json"


def inline_workflows_dir() -> Path:
    return home() / "workflows"


def inline_workflow_file(digest: str) -> Path:
    """A workflow submitted as text, named for (a prefix of) its SHA-256."""
    return inline_workflows_dir() / f"inline-{digest}.yml"


def templates_dir() -> Path:
    """The user's workflow template registry (`prodigyctl template`); a repository's own
    is `.prodigy/templates/` in it (prodigyd.workflow.compose.registry)."""
    return home() / "templates"


def worktrees_root() -> Path:
    return home() / "worktrees"


def worktrees_dir(repo_id: str) -> Path:
    """One repository's pooled and on-demand worktrees."""
    return worktrees_root() / repo_id


def named_worktrees_dir(repo_id: str) -> Path:
    """One repository's named worktrees (`worktree: NAME`), kept between runs."""
    return worktrees_dir(repo_id) / "named"


def repo_id(repo_root: Path) -> str:
    """`<basename>-<8 hex of the absolute path>`: two repos named `app` never share storage."""
    import hashlib  # here: the client imports this module on its hot path, and rarely needs it

    resolved = real_path(repo_root)
    digest = hashlib.sha256(resolved.encode()).hexdigest()[:8]
    return f"{os.path.basename(resolved)}-{digest}"


def real_path(path: Path | str) -> str:
    """os.path.realpath(path), asked of the kernel when the path exists: the name of a
    descriptor opened on it (O_PATH: nothing is read), three calls however deep it is,
    where realpath makes one lstat per part in Python (~6 µs against ~20 for a repository
    four folders deep; every submission asks it). realpath itself for a path that is not
    there, a descriptor the kernel names otherwise, or no /proc."""
    try:
        fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
    except OSError:
        return os.path.realpath(path)
    try:
        named = os.readlink(f"/proc/self/fd/{fd}")
    except OSError:
        return os.path.realpath(path)
    finally:
        os.close(fd)
    if not named.startswith("/") or named.endswith(" (deleted)"):
        return os.path.realpath(path)
    return named
