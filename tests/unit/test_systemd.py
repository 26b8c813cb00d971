"""prodigyd.systemd against real sockets and processes, the way systemd drives a daemon.

notify() is checked by receiving its datagrams on a real AF_UNIX socket (path and abstract);
listen_sockets() by handing a real listening socket to a child as fd 3, both by hand and
through systemd's own `systemd-socket-activate`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from prodigyd import systemd
from tests.cli import wait_for

#: A child that takes its socket from listen_sockets(), serves one connection with a report
#: of what it saw, and checks that a second call finds nothing (the variables are gone).
SERVE_ONE = """
import json, os
from prodigyd import systemd
sockets = systemd.listen_sockets()
conn, _ = sockets[0].accept()
report = {
    "count": len(sockets),
    "fd": sockets[0].fileno(),
    "address": sockets[0].getsockname(),
    "inheritable": sockets[0].get_inheritable(),
    "listen_env": sorted(name for name in os.environ if name.startswith("LISTEN_")),
    "again": len(systemd.listen_sockets()),
}
conn.sendall(json.dumps(report).encode())
conn.close()
"""

#: What systemd does before exec: move the socket to fd 3 and name our pid in LISTEN_PID.
#: execv keeps the pid, so LISTEN_PID is still right for the program it runs (argv[2]).
EXEC_ACTIVATED = """
import os, sys
fd = int(sys.argv[1])
if fd != 3:
    os.dup2(fd, 3)
    os.close(fd)
os.environ.update(LISTEN_PID=str(os.getpid()), LISTEN_FDS="1", LISTEN_FDNAMES="prodigyd.sock")
os.execv(sys.executable, [sys.executable, "-c", sys.argv[2]])
"""


@pytest.fixture
def notify_socket(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[socket.socket]:
    """A fake systemd: a datagram socket bound at a path that NOTIFY_SOCKET names."""
    path = tmp_path / "notify.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(str(path))
        sock.settimeout(10)
        monkeypatch.setenv("NOTIFY_SOCKET", str(path))
        yield sock


def _received(sock: socket.socket) -> str:
    return sock.recv(4096).decode()


def test_notify_sends_one_datagram_to_a_path_socket(notify_socket: socket.socket) -> None:
    assert systemd.notify("READY=1", "STATUS=2 running, 0 queued")
    assert _received(notify_socket) == "READY=1\nSTATUS=2 running, 0 queued"


def test_notify_reaches_an_abstract_socket(monkeypatch: pytest.MonkeyPatch) -> None:
    name = f"prodigy-test-{os.getpid()}-{id(monkeypatch)}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind("\0" + name)
        sock.settimeout(10)
        monkeypatch.setenv("NOTIFY_SOCKET", "@" + name)
        assert systemd.notify("WATCHDOG=1")
        assert _received(sock) == "WATCHDOG=1"


def test_ready_status_and_stopping_send_their_assignments(notify_socket: socket.socket) -> None:
    assert systemd.ready("listening")
    assert _received(notify_socket) == "READY=1\nSTATUS=listening"
    assert systemd.status("1 running, 0 queued")
    assert _received(notify_socket) == "STATUS=1 running, 0 queued"
    assert systemd.stopping()
    assert _received(notify_socket) == "STOPPING=1"


def test_a_status_cannot_smuggle_in_another_assignment(notify_socket: socket.socket) -> None:
    assert systemd.status("first\nREADY=1")
    assert _received(notify_socket) == "STATUS=first READY=1"


@pytest.mark.parametrize("value", [None, "", "relative/notify.sock", "vsock:2:1234"])
def test_notify_without_a_usable_socket_returns_false(
    value: str | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    if value is None:
        monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    else:
        monkeypatch.setenv("NOTIFY_SOCKET", value)
    assert systemd.notify("READY=1") is False


def test_notify_to_a_socket_nobody_listens_on_returns_false(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NOTIFY_SOCKET", str(tmp_path / "gone.sock"))
    assert systemd.notify("READY=1") is False


def test_notify_never_blocks_when_systemd_stops_reading(notify_socket: socket.socket) -> None:
    # The receiver never reads, so its queue fills; a blocking send would hang here.
    sent = 0
    while systemd.notify("WATCHDOG=1"):
        sent += 1
        assert sent < 100_000, "the queue never filled"
    assert sent > 0


@pytest.mark.parametrize(
    ("usec", "pid", "expected"),
    [
        ("30000000", None, 15.0),
        ("30000000", "self", 15.0),
        ("30000000", "1", None),
        (None, None, None),
        ("0", None, None),
        ("soon", None, None),
    ],
)
def test_watchdog_interval_is_half_the_deadline_when_meant_for_us(
    usec: str | None, pid: str | None, expected: float | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in (("WATCHDOG_USEC", usec), ("WATCHDOG_PID", pid)):
        if value is None:
            monkeypatch.delenv(name, raising=False)
        else:
            monkeypatch.setenv(name, str(os.getpid()) if value == "self" else value)
    assert systemd.watchdog_interval() == expected


async def test_watchdog_loop_pings_until_cancelled(
    notify_socket: socket.socket, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WATCHDOG_USEC", "100000")
    monkeypatch.delenv("WATCHDOG_PID", raising=False)
    notify_socket.setblocking(False)
    loop = asyncio.get_running_loop()
    task = asyncio.create_task(systemd.watchdog_loop())
    try:
        for _ in range(2):
            data = await asyncio.wait_for(loop.sock_recv(notify_socket, 4096), 10)
            assert data == b"WATCHDOG=1"
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def test_watchdog_loop_returns_at_once_without_a_watchdog(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("WATCHDOG_USEC", raising=False)
    await asyncio.wait_for(systemd.watchdog_loop(), 10)


def test_listen_sockets_meant_for_another_process_are_ignored_and_cleared(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("LISTEN_PID", "1")
    monkeypatch.setenv("LISTEN_FDS", "1")
    monkeypatch.setenv("LISTEN_FDNAMES", "prodigyd.sock")
    assert systemd.listen_sockets() == []
    assert not [name for name in os.environ if name.startswith("LISTEN_")]


def test_listen_sockets_without_activation_is_empty(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES"):
        monkeypatch.delenv(name, raising=False)
    assert systemd.listen_sockets() == []


def _ask(path: Path) -> bytes:
    """Connect to `path` (retrying until it listens) and read all the child sends."""
    client = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    wait_for(lambda: client.connect_ex(str(path)) == 0, what=f"a listener on {path}")
    with client:
        client.settimeout(30)
        chunks = []
        while chunk := client.recv(4096):
            chunks.append(chunk)
    return b"".join(chunks)


def _assert_served_as_activated(raw: bytes, path: Path) -> None:
    assert json.loads(raw) == {
        "count": 1,
        "fd": 3,
        "address": str(path),
        "inheritable": False,
        "listen_env": [],
        "again": 0,
    }


def test_listen_sockets_takes_over_a_socket_passed_as_fd_3(tmp_path: Path) -> None:
    path = tmp_path / "activated.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as listener:
        listener.bind(str(path))
        listener.listen()
        fd = listener.fileno()
        child = subprocess.Popen(
            [sys.executable, "-c", EXEC_ACTIVATED, str(fd), SERVE_ONE], pass_fds=(fd,)
        )
        try:
            raw = _ask(path)
        finally:
            returncode = child.wait(timeout=60)
    assert returncode == 0
    _assert_served_as_activated(raw, path)


def test_listen_sockets_under_systemd_socket_activate(tmp_path: Path) -> None:
    activate = shutil.which("systemd-socket-activate") or shutil.which(
        "systemd-socket-activate", path="/lib/systemd:/usr/lib/systemd"
    )
    if activate is None:
        pytest.skip("systemd-socket-activate is not installed (Debian: apt-get install systemd)")
    path = tmp_path / "activated.sock"
    child = subprocess.Popen(
        [
            activate,
            "--listen",
            str(path),
            "--fdname=prodigyd.sock",
            sys.executable,
            "-c",
            SERVE_ONE,
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        raw = _ask(path)
    finally:
        _, stderr = child.communicate(timeout=60)
    assert child.returncode == 0, stderr
    _assert_served_as_activated(raw, path)
