"""`prodigyd`: startup → serve → shutdown.

Startup reads the configuration (`$PRODIGY_HOME/config.toml` + `PRODIGY_*`), takes an
exclusive flock next to the socket (so two racing starts yield one daemon), then either uses
the listening socket systemd passed (socket activation) or removes a stale socket and binds
its own, 0600 inside a 0700 folder. It recovers the job journal, writes the pid file and
reports readiness: on `--ready-fd` (the client that spawned us blocks on that pipe instead
of polling) and to systemd (`READY=1`). The daemon logs to `$PRODIGY_HOME/logs/prodigyd.log`
and never keeps its parent's stdout/stderr. It starts on a full disk too: what cannot be
written yet (the journal's changes, the pid file) waits for the mender in scheduler.py, and
`daemon.status` says what it is.

Shutdown (SIGTERM, SIGINT or `daemon.stop`), in order: tell systemd `STOPPING=1`, refuse
new work (clients are still served and told "shutting down"), let running steps finish
within the grace period (or, with drain, every job), interrupt the rest resumably, stop
accepting connections, close the logs, remove the socket (unless systemd owns it) and the
pid file. A second signal exits at once.
"""

from __future__ import annotations

from prodigyd import no_openssl  # first: what would load OpenSSL is imported without it

# isort: split
import argparse
import asyncio
import contextlib
import fcntl
import logging
import os
import signal
import socket
import stat
import sys
import time
from collections.abc import Callable, Coroutine, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from prodigyd import errorcodes, paths, proc, systemd
from prodigyd.config import Config, ConfigError, WorktreeConfig, load, misspelt_variables
from prodigyd.errors import NoSpace
from prodigyd.store import journal, scratch
from prodigyd.store.atomic import ensure_dir, write_bytes_atomic
from prodigyd.version import version

if TYPE_CHECKING:
    from prodigyd.pool import PoolSettings

log = logging.getLogger("prodigyd")

Accept = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Coroutine[Any, Any, None]]


class _PrintVersion(argparse.Action):
    """`--version`, which reads the version only when asked: every start would pay for it."""

    def __call__(self, parser: argparse.ArgumentParser, *_: object) -> None:
        print(f"prodigyd {version()}")
        parser.exit()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="prodigyd", description="The prodigy daemon.")
    parser.add_argument("--ready-fd", type=int, default=None, help=argparse.SUPPRESS)
    # A git hook starts us in the background of its own process group: leave it, so that a
    # Ctrl-C meant for that git (or for a script running it) does not stop the daemon.
    parser.add_argument("--detach", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument(
        "--version", action=_PrintVersion, nargs=0, help="show program's version number and exit"
    )
    args = parser.parse_args(argv)
    if args.detach:
        with contextlib.suppress(OSError):  # EPERM: leading a process group already
            os.setsid()
        # Nor keep the files the git that ran the hook was given past 0-2 (the hook made
        # those /dev/null and the log): a pipe of its caller's (a CI harness, a make
        # jobserver) would not reach its end while this daemon runs.
        os.closerange(3, os.sysconf("SC_OPEN_MAX"))
    _name_process()
    _leave_the_starting_folder()
    activated = systemd.listen_sockets()  # first: before anything can spawn a child
    proc.keep_store_private()  # before the first file or folder is made
    try:
        config = load()
    except ConfigError as err:
        print(f"{errorcodes.label(err.code)}: {err.render()}", file=sys.stderr)
        return 2
    problem = (None if activated else paths.socket_path_problem()) or _occupied(activated)
    if problem is not None:
        print(f"{errorcodes.label(errorcodes.DAEMON_UNREACHABLE)}: {problem}", file=sys.stderr)
        return 2
    _setup_logging(config.log_level, int(config.retention.daemon_log_mb * 1024 * 1024))
    for warning in misspelt_variables(os.environ):
        log.warning("%s", warning)
    with _single_instance() as owned:
        if not owned:
            _report_ready(args.ready_fd, "running")
            print(f"prodigyd already running (socket {paths.socket_path()})", file=sys.stderr)
            return 1 if activated else 0  # under systemd, losing the lock is a failed start
        if not activated and _served_by_another(paths.socket_path()):
            _report_ready(args.ready_fd, "running")
            print(
                f"{paths.socket_path()} is served by another process (systemd's "
                "prodigyd.socket?): it starts prodigyd itself, so this one leaves it be",
                file=sys.stderr,
            )
            return 0
        return _run(config, args.ready_fd, activated)


def _occupied(activated: list[socket.socket]) -> str | None:
    """Why the instance lock or the socket cannot be where they go: something else is there
    (a folder, a FIFO...). The daemon removes a stale socket, never anything else, and
    would fail on it with a traceback, or wait on a FIFO for good."""
    places = [(paths.instance_lock_file(), stat.S_ISREG, "a regular file (the instance lock)")]
    if not activated:  # systemd's socket is where systemd put it
        places.append((paths.socket_path(), stat.S_ISSOCK, "prodigyd's socket"))
    for path, fits, meant in places:
        try:
            mode = path.lstat().st_mode
        except FileNotFoundError:
            continue
        except OSError as exc:
            return f"cannot use {path}: {exc.strerror}"
        if not fits(mode):
            return f"{path} is {_kind(mode)}, not {meant}: move it away or remove it"
    return None


def _kind(mode: int) -> str:
    for test, name in (
        (stat.S_ISDIR, "a folder"),
        (stat.S_ISFIFO, "a FIFO"),
        (stat.S_ISLNK, "a symbolic link"),
        (stat.S_ISSOCK, "a socket"),
        (stat.S_ISREG, "a regular file"),
    ):
        if test(mode):
            return name
    return "a device"


def _leave_the_starting_folder() -> None:
    """Work from `/`, as daemons do: the folder a `prodigyctl` or a git hook started it
    in (a user's repository) is nobody's business for the daemon's life, and a path a
    client sends relative to it would silently mean that folder (clients send absolute
    paths: api/schemas.py). A relative PRODIGY_HOME is fixed to where it points first."""
    if os.environ.get("PRODIGY_HOME"):
        os.environ["PRODIGY_HOME"] = str(paths.home())
    with contextlib.suppress(OSError):
        os.chdir("/")


def _name_process() -> None:
    """Name this process `prodigyd` (its /proc/PID/comm, what `ps -o comm`, `pgrep` and
    top show), not `python3.11`: the git hook tells a running daemon from a process that
    has the pid a stale pid file names (after a kill -9 or a reboot) by that name, and
    starts one for the latter. Threads started later inherit it."""
    with contextlib.suppress(OSError), open("/proc/self/comm", "w") as comm:
        comm.write(PROCESS_NAME)


#: This process's name (`_name_process`); hooks/prodigy-hook checks it.
PROCESS_NAME = "prodigyd"


def _served_by_another(sock: Path) -> bool:
    """Whether something listens on the socket we would bind. Holding the instance lock,
    no other prodigyd can: it is systemd's prodigyd.socket, whose service has not started
    yet (a hook started us, say). Removing that socket would cut systemd's activation off
    for good; connecting here has systemd start its prodigyd, which takes the lock once
    this process has exited (a failed start meanwhile is retried: Restart=on-failure)."""
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    probe.setblocking(False)
    try:
        probe.connect(str(sock))
    except BlockingIOError:
        return True  # a listener with a full backlog
    except OSError:
        return False  # none there, or a stale file a dead daemon left (ECONNREFUSED)
    finally:
        probe.close()
    return True


def _run(config: Config, ready_fd: int | None, activated: list[socket.socket]) -> int:
    with asyncio.Runner(loop_factory=no_openssl.loop_factory(config.event_loop)) as runner:
        return runner.run(_serve(config, ready_fd, activated))


def _pool_settings(section: WorktreeConfig) -> PoolSettings:
    """`[worktree_config]` as the pool's settings; a 0 limit means none."""
    from prodigyd.pool import PoolSettings
    from prodigyd.store.worktrees import Strategy

    return PoolSettings(
        strategy=Strategy(section.allocation_strategy),
        size=section.parallel_worktrees,
        spare=section.spare,
        idle_timeout=section.idle_timeout_secs or None,
        max_age=section.max_age_secs or None,
        cleanup_on_complete=section.cleanup_on_complete,
        keep_failed=section.keep_failed,
        max_disk_mb=section.max_disk_mb or None,
        gc_interval=section.gc_interval_secs or None,
    )


@contextlib.contextmanager
def _single_instance() -> Iterator[bool]:
    folder = ensure_dir(paths.socket_path().parent)
    os.chmod(folder, 0o700)
    fd = os.open(paths.instance_lock_file(), os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        yield True
    finally:
        os.close(fd)


async def _serve(config: Config, ready_fd: int | None, activated: list[socket.socket]) -> int:
    from prodigyd.api.handlers import DaemonState
    from prodigyd.engine.context import EngineSettings
    from prodigyd.pool import WorktreePool
    from prodigyd.retention import Policy, Retention
    from prodigyd.scheduler import Scheduler, SchedulerSettings
    from prodigyd.server import Connection
    from prodigyd.watch.gate import TriggerLimits
    from prodigyd.watch.inbox import HookInbox
    from prodigyd.watch.refwatch import RepoWatcher

    ensure_dir(paths.home())
    scratch.clear()  # what a killed daemon left: before a recovered job can make its own
    engine = EngineSettings(
        claude_bin=config.claude.binary,
        claude_skip_permissions=config.claude.skip_permissions,
        claude_model=config.claude.model,
        claude_extra_args=tuple(config.claude.extra_args),
        claude_log_dir=paths.claude_logs_dir(),
        claude_timeout=config.claude.timeout or None,
    )
    settings = SchedulerSettings(
        max_concurrent_jobs=config.max_concurrent_jobs,
        auto_resume=config.auto_resume,
        shutdown_grace_seconds=config.shutdown_grace_seconds,
        executor=config.executor,
    )
    scheduler = Scheduler(engine, settings, WorktreePool(_pool_settings(config.worktree_config)))
    limits = TriggerLimits(**config.triggers.model_dump())
    inbox = HookInbox(scheduler, limits)
    watcher = RepoWatcher(inbox.path)  # one trigger path for hook and watcher events
    retention = Retention(
        Policy.from_config(config.retention),
        busy=lambda: set(scheduler.running),
        forget=scheduler.forget,
    )
    state = DaemonState(
        scheduler=scheduler,
        started=time.monotonic(),
        inbox=inbox,
        watcher=watcher,
        retention=retention,
    )
    stop = asyncio.Event()
    connections: set[asyncio.Task[None]] = set()

    async def accept(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        connections.add(task)
        try:
            await Connection(reader, writer, state, stop.set).serve()
        except asyncio.CancelledError:
            # Shutdown cancels connections. This coroutine is the task's outermost, so it
            # ends quietly: Python 3.11's stream callback otherwise logs every cancelled
            # connection task as an "Exception in callback" with a traceback.
            pass
        finally:
            connections.discard(task)

    server, sock = await _listen(accept, activated)
    _install_signals(stop)
    try:
        _write_pid_file()
    except NoSpace:  # a full disk: start all the same, write it once there is room
        scheduler.writes_to_retry.append(_write_pid_file)
    scheduler.start()
    watchdog = asyncio.create_task(systemd.watchdog_loop())
    _report_ready(ready_fd, "ready")
    systemd.ready(f"listening on {sock}")
    # After the ready report: reading the version (installed metadata) need not delay it.
    log.info("prodigyd %s listening on %s (pid %d)", version(), sock, os.getpid())
    hooks = asyncio.create_task(inbox.run(), name="hook inbox")
    watching = asyncio.create_task(watcher.run(), name="repository watcher")
    retaining = asyncio.create_task(retention.run(), name="retention")
    warming = asyncio.create_task(_warm_up(), name="warm-up")
    await stop.wait()
    warming.cancel()
    hooks.cancel()  # an entry being handled stays in the spool for the next start
    watching.cancel()
    await inbox.path.close()  # held trailing runs: forgotten, none started from now on
    retaining.cancel()  # a removal cut off is finished by the next daemon (store/removals.py)
    log.info("shutting down%s", " (draining)" if state.drain else "")
    systemd.stopping()
    # Keep serving while jobs settle: status, logs and follow still work, submissions are
    # refused with a clear "shutting down" instead of a refused connection.
    await scheduler.shutdown(drain=state.drain)
    await watcher.close()  # after the jobs: it sees their merges as prodigy's (watch/refwatch.py)
    inbox.dropped.close()
    server.close()
    for task in list(connections):
        task.cancel()
    await asyncio.gather(*connections, return_exceptions=True)
    if not activated:  # systemd owns an activated socket: unlinking it breaks reactivation
        with contextlib.suppress(FileNotFoundError):
            sock.unlink()
    # The journal is closed (SQLite folds and deletes its -wal file) before the pid file
    # goes: `daemon stop` returns once it is gone, and finds the store settled.
    journal.close_all()
    log.info("stopped")
    with contextlib.suppress(FileNotFoundError):
        paths.pid_file().unlink()
    watchdog.cancel()  # last: keep pinging systemd through the shutdown grace
    return 0


#: What the first job needs beyond `ready`, in the order _warm_up imports it.
_WARM_UP = (
    "prodigyd.workflow.load",
    "prodigyd.workflow.compose",
    "prodigyd.engine.admission",
    "prodigyd.engine.step",
    "prodigyd.engine.session",
    "prodigyd.engine.mapreduce.runner",
)


async def _warm_up() -> None:
    """Import and build what the first job needs (the engine, the workflow loader, their
    models) once the daemon is ready: its start does not wait for them and neither, unless
    it comes meanwhile, does the first job. On the loop, a piece at a time (a request waits
    for one piece at most), not in a worker thread: an import racing the loop's own (a job
    recovered at start) could meet a partly initialised module, and pydantic does not
    build a model in two threads."""
    import gc
    import importlib

    for name in _WARM_UP:
        await asyncio.sleep(0)
        importlib.import_module(name)
    from prodigyd.api.schemas import SubmitParams
    from prodigyd.workflow.model import Workflow

    for model in (Workflow, SubmitParams):
        await asyncio.sleep(0)
        model.model_rebuild()
    # What start and warm-up built (modules, models, their schemas) lives as long as the
    # daemon: moved out of the collector's sight, a full collection during a map phase
    # walks only what jobs made (one walked all of it in ~50-100 ms on a busy machine).
    gc.freeze()


async def _listen(accept: Accept, activated: list[socket.socket]) -> tuple[asyncio.Server, Path]:
    """Serve on systemd's socket when socket-activated, else bind our own."""
    from prodigyd.protocol import MAX_MESSAGE_BYTES

    if activated:
        path = Path(activated[0].getsockname())
        if path != paths.socket_path():
            log.warning("systemd passed %s but clients look for %s", path, paths.socket_path())
        server = await asyncio.start_unix_server(accept, sock=activated[0], limit=MAX_MESSAGE_BYTES)
        return server, path
    sock = paths.socket_path()
    with contextlib.suppress(FileNotFoundError):
        sock.unlink()  # we hold the instance lock, and nothing listens (main): it is stale
    old_umask = os.umask(0o177)
    try:
        server = await asyncio.start_unix_server(accept, path=str(sock), limit=MAX_MESSAGE_BYTES)
    finally:
        os.umask(old_umask)
    os.chmod(sock, 0o600)
    return server, sock


def _write_pid_file() -> None:
    """Whole or not at all (`daemon stop` reads it), but not fsync'd: after a power loss
    the pid it names is stale anyway, and start-up need not wait for the disk."""
    pid = f"{os.getpid()}\n".encode()
    write_bytes_atomic(paths.pid_file(), pid, mode=0o600, durable=False)


def _install_signals(stop: asyncio.Event) -> None:
    loop = asyncio.get_running_loop()

    def on_signal(signum: int) -> None:
        if stop.is_set():
            log.warning("second signal: exiting now")
            os._exit(1)
        log.info("received %s", signal.Signals(signum).name)
        stop.set()

    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, on_signal, signum)


def _report_ready(fd: int | None, word: str) -> None:
    if fd is None:
        return
    with contextlib.suppress(OSError):
        os.write(fd, f"{word}\n".encode())
        os.close(fd)


def _setup_logging(level: str, max_bytes: int) -> None:
    """Log to prodigyd.log, which is rotated to prodigyd.log.1 (the one older file kept)
    once it passes `max_bytes` (`retention.daemon_log_mb`; 0: never)."""
    from prodigyd.logfile import RotatingLog

    log_file = paths.daemon_log()
    ensure_dir(log_file.parent)
    handlers: list[logging.Handler] = [RotatingLog(log_file, max_bytes)]
    if sys.stderr is not None and sys.stderr.isatty():
        handlers.append(logging.StreamHandler())
    logging.basicConfig(
        level=level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        handlers=handlers,
    )


if __name__ == "__main__":
    sys.exit(main())
