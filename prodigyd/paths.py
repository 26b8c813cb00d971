"""THE one place that knows where prodigy keeps things.

Every location is derived from `PRODIGY_HOME` *on each call* (never cached at import), so a
test that sets `PRODIGY_HOME` isolates the store, the socket, the worktrees and the logs at
once, and no code path can reach the real `~/.prodigy` behind its back.

Layout (reference §5, with the [R] clean-ups):

    $PRODIGY_HOME/
      prodigyd.sock  prodigyd.pid         socket (when PRODIGY_HOME is set) and pid file
      prodigyd.hook-start                 beside them: the daemon a git hook started last
      journal.db                          jobs and session records (SQLite, WAL)
      state/<session-id>/checkpoints/     per-step checkpoints
      events/<repo-id>/<session-id>/      events-<stamp>.jsonl
      locks/<session-id>.lock             resume locks
      logs/prodigyd.log                   daemon log; logs/claude/ raw Claude streams
      worktrees/<repo-id>/                the worktree pool (pool.py): wt-<hex>/ slots,
                                          named/<name>/, <session-id>/ when on demand
      logs/agents/<session-id>/           one log per map agent attempt
      workflows/inline-<sha>.yml          workflows submitted as text (exec, batch, run -)
      spool/<id>.event|.stdin|.env        git hook events waiting for the daemon (watch/spool.py)
"""

from __future__ import annotations

import os
from pathlib import Path


def home() -> Path:
    """The store root: `$PRODIGY_HOME`, else `~/.prodigy`."""
    env = os.environ.get("PRODIGY_HOME")
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
        return Path(runtime) / "prodigy" / "prodigyd.sock"
    return home() / "prodigyd.sock"


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


def hook_start_file() -> Path:
    """Which daemon a git hook started last, and when: `<pid> <seconds of uptime>`. The hook
    shim (hooks/prodigy-hook) writes and reads it, so that a burst of commits with no
    daemon running starts one daemon, not one each, once the burst is over (the starter
    keeps `<this>.quiet` to tell when the last hook wrote it)."""
    return socket_path().parent / "prodigyd.hook-start"


def checkpoints_dir(session_id: str) -> Path:
    return home() / "state" / session_id / "checkpoints"


def events_dir(repo_id: str, session_id: str) -> Path:
    return home() / "events" / repo_id / session_id


def locks_dir() -> Path:
    return home() / "locks"


def logs_dir() -> Path:
    return home() / "logs"


def daemon_log() -> Path:
    return logs_dir() / "prodigyd.log"


def claude_logs_dir() -> Path:
    return logs_dir() / "claude"


def agent_logs_dir(session_id: str) -> Path:
    """One log file per map agent attempt: `logs/agents/<session-id>/<item>.attempt-N.log`."""
    return logs_dir() / "agents" / session_id


# The XDG user folders, by platformdirs' rules (which ignore a relative value since 4.11.8),
# through its Unix class even on macOS, whose own folders are not where systemd and man-db
# look. Imported in the call: ~10 ms that the client's hot path never needs.


def user_config_home() -> Path:
    """`$XDG_CONFIG_HOME` when absolute, else `~/.config`: systemd's user units are under it."""
    from platformdirs.unix import Unix

    return Unix().user_config_path


def user_data_home() -> Path:
    """`$XDG_DATA_HOME` when absolute, else `~/.local/share`: man-db searches its man/."""
    from platformdirs.unix import Unix

    return Unix().user_data_path


def spool_dir() -> Path:
    return home() / "spool"


def watched_file() -> Path:
    """The repositories the daemon watches (prodigyd/watch/repos.py)."""
    return home() / "watched.json"


def inline_workflows_dir() -> Path:
    return home() / "workflows"


def worktrees_dir(repo_id: str) -> Path:
    return home() / "worktrees" / repo_id


def repo_id(repo_root: Path) -> str:
    """`<basename>-<8 hex of the absolute path>`: two repos named `app` never share storage."""
    import hashlib  # here: the client imports this module on its hot path, and rarely needs it

    resolved = str(Path(repo_root).resolve())
    digest = hashlib.sha256(resolved.encode()).hexdigest()[:8]
    return f"{Path(resolved).name}-{digest}"
