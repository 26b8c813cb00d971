"""A small blocking JSON-RPC client for prodigyd, and the daemon auto-start.

Blocking sockets are the fastest client here (deps-probe §3) and keep imports light: this
module needs only the stdlib and `prodigyd.paths`/`prodigyd.protocol`, never pydantic. The
socket is `_socket`'s, the C type the `socket` module wraps: that module (its enums, built
on import, and `selectors`) costs 3.5 ms of `run --detach`, and the client needs nothing of
it: it connects, sends, and reads lines through a buffered file on the socket's descriptor.
`_socket` is imported only to connect: `--help`, `validate`, `config` and the other
commands that never talk to the daemon do without it.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from prodigyctl.errors import DaemonUnreachable, RpcError
from prodigyctl.exitcodes import EXIT_UNREACHABLE, EXIT_USAGE
from prodigyd import errorcodes, paths, protocol

if TYPE_CHECKING:
    from _socket import socket
    from pathlib import Path

#: How long a client waits for a daemon it started to say it is ready.
START_TIMEOUT_SECONDS = 20.0

#: How many of the last lines a daemon that failed to start wrote are shown: enough for its
#: error (a config file's names the file and line) or the end of a traceback.
FAILURE_LINES = 10

EventHandler = Callable[[dict[str, Any]], None]


class Client:
    def __init__(self, sock: socket) -> None:
        self.sock = sock
        self.reader = open(sock.fileno(), "rb", closefd=False)  # noqa: SIM115 (close() closes it)
        self._next_id = 0
        self.on_event: EventHandler | None = None

    @classmethod
    def connect(cls, *, autostart: bool = True) -> Client:
        problem = paths.socket_path_problem()
        if problem is not None:
            raise DaemonUnreachable(problem, exit_code=EXIT_USAGE)  # the user's to fix
        try:
            return cls(_open_socket())
        except OSError:
            if not autostart:
                raise DaemonUnreachable(
                    f"prodigyd is not running (socket {paths.socket_path()})"
                ) from None
        start_daemon()
        return cls(_connect_with_retry())

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.reader.close()
            self.sock.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def call(self, method: str, params: dict[str, Any] | None = None) -> Any:
        """Send a request and wait for its reply; notifications meanwhile go to `on_event`."""
        self._next_id += 1
        msg_id = self._next_id
        try:
            self.sock.sendall(protocol.encode(protocol.request(msg_id, method, params)))
        except ConnectionError as exc:  # EPIPE, ECONNRESET: it went away (stdout's: main.py)
            raise DaemonUnreachable(
                "prodigyd closed the connection", errorcodes.CONNECTION_LOST
            ) from exc
        for message in self._messages():
            if message.get("id") == msg_id and ("result" in message or "error" in message):
                if "error" in message:
                    err = message["error"]
                    raise RpcError(err.get("code", 0), err.get("message", "error"), err.get("data"))
                return message["result"]
            self._dispatch(message)
        raise DaemonUnreachable("prodigyd closed the connection", errorcodes.CONNECTION_LOST)

    def events(self) -> Iterator[dict[str, Any]]:
        """Yield subscribed events as they arrive, until the connection closes."""
        for message in self._messages():
            if message.get("method") == protocol.EVENT_NOTIFICATION:
                yield message["params"]["event"]

    def _dispatch(self, message: dict[str, Any]) -> None:
        if message.get("method") == protocol.EVENT_NOTIFICATION and self.on_event:
            self.on_event(message["params"]["event"])

    def _messages(self) -> Iterator[dict[str, Any]]:
        while True:
            line = self.reader.readline()
            if not line:
                return
            with contextlib.suppress(ValueError):
                message = json.loads(line)
                if isinstance(message, dict):
                    yield message


def _open_socket() -> socket:
    import _socket

    sock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
    try:
        sock.connect(str(paths.socket_path()))
    except OSError:
        sock.close()
        raise
    return sock


def _connect_with_retry() -> socket:
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    delay = 0.005
    while True:
        try:
            return _open_socket()
        except OSError:
            if time.monotonic() > deadline:
                raise DaemonUnreachable(
                    f"prodigyd did not start listening on {paths.socket_path()}; "
                    f"see {paths.daemon_log()}",
                    errorcodes.DAEMON_START_FAILED,
                ) from None
            time.sleep(delay)
            delay = min(delay * 2, 0.2)


def start_daemon() -> None:
    """Spawn prodigyd detached (own session, output to a log file) and wait until it is ready.

    The daemon reports readiness on a pipe we pass it, so we block on a read instead of
    polling the socket; a daemon that dies early closes the pipe, and we show what it wrote
    (why it stopped) and where its log is.
    """
    import select  # only here: most commands never start a daemon, and imports cost time
    import subprocess

    from prodigyd.store.atomic import ensure_dir

    output = paths.daemon_output_file()
    ensure_dir(output.parent)
    read_fd, write_fd = os.pipe()
    out_fd = os.open(output, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    start = os.fstat(out_fd).st_size  # what this daemon writes begins here
    with open(out_fd, "ab") as out:
        daemon = subprocess.Popen(
            # -P: the user's folder (this one) does not go first on the daemon's sys.path,
            # where a `yaml.py` of theirs would take the place of a library
            [sys.executable, "-P", "-m", "prodigyd.main", "--ready-fd", str(write_fd)],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=out,
            pass_fds=(write_fd,),
            start_new_session=True,
            close_fds=True,
        )
    os.close(write_fd)
    try:
        ready, _, _ = select.select([read_fd], [], [], START_TIMEOUT_SECONDS)
        word = os.read(read_fd, 64).decode().strip() if ready else ""
    finally:
        os.close(read_fd)
    if word not in ("ready", "running"):
        said = _written_since(output, start)
        reason = f":\n{said}\nsee" if said else "; see"
        with contextlib.suppress(subprocess.TimeoutExpired):  # it closed the pipe: ending
            daemon.wait(timeout=2 if ready else 0)
        raise DaemonUnreachable(
            f"prodigyd failed to start{reason} {paths.daemon_log()} and {output}",
            errorcodes.DAEMON_START_FAILED,
            # prodigyd's 2: its config or its socket path, which the user fixes
            exit_code=EXIT_USAGE if daemon.returncode == 2 else EXIT_UNREACHABLE,
        )


def _written_since(path: Path, offset: int) -> str:
    """The last lines written to `path` past `offset`, indented: what a daemon that failed
    to start printed, so the user reads why without opening the file."""
    try:
        with open(path, "rb") as written:
            written.seek(offset)
            text = written.read().decode(errors="replace")
    except OSError:  # the reason is lost, not the error: the message still names the file
        return ""
    return "\n".join(f"  {line}" for line in text.strip().splitlines()[-FAILURE_LINES:])


def is_tty() -> bool:
    return sys.stdout.isatty() and sys.stdin.isatty()


def dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)
