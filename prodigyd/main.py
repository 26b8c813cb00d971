"""`prodigyd`: startup → serve → shutdown.

Startup takes an exclusive flock next to the socket (so two racing starts yield one daemon),
removes a stale socket, binds it 0600 inside a 0700 folder, writes the pid file and reports
readiness on `--ready-fd` (the client that spawned us blocks on that pipe instead of
polling). The daemon logs to `$PRODIGY_HOME/logs/prodigyd.log` and never keeps its parent's
stdout/stderr.

Shutdown (SIGTERM, SIGINT or `daemon.stop`), in order: stop accepting connections, refuse
new work, interrupt running sessions (they are checkpointed and resumable), close the logs,
remove the socket and pid file. A second signal exits at once.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import fcntl
import logging
import os
import signal
import sys
import time
from collections.abc import Iterator

from prodigyd import paths
from prodigyd.store.atomic import ensure_dir

log = logging.getLogger("prodigyd")

VERSION = "0.1.0"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="prodigyd", description="The prodigy daemon.")
    parser.add_argument("--ready-fd", type=int, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--version", action="version", version=f"prodigyd {VERSION}")
    args = parser.parse_args(argv)
    _setup_logging()
    with _single_instance() as owned:
        if not owned:
            _report_ready(args.ready_fd, "running")
            print(f"prodigyd already running (socket {paths.socket_path()})", file=sys.stderr)
            return 0
        return _run(args.ready_fd)


def _run(ready_fd: int | None) -> int:
    loop_factory = None
    if os.environ.get("PRODIGY_LOOP") == "uvloop":
        import uvloop

        loop_factory = uvloop.new_event_loop
    with asyncio.Runner(loop_factory=loop_factory) as runner:
        return runner.run(_serve(ready_fd))


@contextlib.contextmanager
def _single_instance() -> Iterator[bool]:
    folder = ensure_dir(paths.socket_path().parent)
    os.chmod(folder, 0o700)
    fd = os.open(folder / "prodigyd.lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        yield True
    finally:
        os.close(fd)


async def _serve(ready_fd: int | None) -> int:
    from prodigyd.api.handlers import DaemonState
    from prodigyd.engine.context import EngineSettings
    from prodigyd.jobs import JobManager, SchedulerSettings
    from prodigyd.server import Connection

    ensure_dir(paths.home())
    settings = EngineSettings(claude_log_dir=paths.claude_logs_dir())
    jobs = JobManager(settings, SchedulerSettings())
    state = DaemonState(jobs=jobs, started=time.monotonic(), version=VERSION)
    stop = asyncio.Event()
    connections: set[asyncio.Task[None]] = set()

    async def accept(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        connections.add(task)
        try:
            await Connection(reader, writer, state, stop.set).serve()
        finally:
            connections.discard(task)

    sock = paths.socket_path()
    with contextlib.suppress(FileNotFoundError):
        sock.unlink()  # we hold the instance lock, so any socket here is stale
    old_umask = os.umask(0o177)
    try:
        from prodigyd.protocol import MAX_MESSAGE_BYTES

        server = await asyncio.start_unix_server(accept, path=str(sock), limit=MAX_MESSAGE_BYTES)
    finally:
        os.umask(old_umask)
    os.chmod(sock, 0o600)
    paths.pid_file().write_text(f"{os.getpid()}\n")
    _install_signals(stop)
    jobs.start()
    log.info("prodigyd %s listening on %s (pid %d)", VERSION, sock, os.getpid())
    _report_ready(ready_fd, "ready")
    await stop.wait()
    log.info("shutting down")
    server.close()
    await state.jobs.shutdown(drain=state.drain)
    for task in list(connections):
        task.cancel()
    await asyncio.gather(*connections, return_exceptions=True)
    with contextlib.suppress(FileNotFoundError):
        sock.unlink()
    with contextlib.suppress(FileNotFoundError):
        paths.pid_file().unlink()
    log.info("stopped")
    return 0


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


def _setup_logging() -> None:
    log_file = ensure_dir(paths.logs_dir()) / "prodigyd.log"
    handlers: list[logging.Handler] = [logging.FileHandler(log_file)]
    if sys.stderr is not None and sys.stderr.isatty():
        handlers.append(logging.StreamHandler())
    logging.basicConfig(
        level=os.environ.get("PRODIGY_LOG_LEVEL", "INFO").upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        handlers=handlers,
    )


if __name__ == "__main__":
    sys.exit(main())
