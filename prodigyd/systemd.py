"""systemd integration for prodigyd, in the standard library alone.

Under the `Type=notify` unit (systemd/prodigyd.service) the daemon tells systemd when it is
ready, what it is doing and that it is still alive, and it takes its listening socket from
prodigyd.socket. Outside systemd every function here is a cheap no-op, so the daemon calls
them unconditionally.

The protocols are a few lines each, which does not justify the python-systemd C extension:

- sd_notify(3): one datagram of newline-separated `KEY=VALUE` lines, sent to the AF_UNIX
  socket named by `$NOTIFY_SOCKET` (a path, or `@name` in the abstract namespace).
- sd_watchdog_enabled(3): `$WATCHDOG_USEC` is the deadline between two `WATCHDOG=1`; it is
  meant for `$WATCHDOG_PID` when that is set.
- sd_listen_fds(3): when `$LISTEN_PID` is our pid, fds 3 .. 3+`$LISTEN_FDS`-1 are the
  listening sockets systemd opened for us.
"""

from __future__ import annotations

import asyncio
import os
import socket

#: The first fd systemd passes (SD_LISTEN_FDS_START): 0-2 stay stdin, stdout and stderr.
LISTEN_FDS_START = 3

_LISTEN_VARS = ("LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES")


def notify(*assignments: str) -> bool:
    """Send `assignments` (e.g. "READY=1", "STATUS=...") to systemd as one datagram.

    Returns whether it was sent, and never raises: a daemon must not fail because its
    supervisor is gone. The socket is non-blocking, so a wedged systemd makes this return
    False instead of stalling the event loop that calls it.
    """
    address = _notify_address()
    if address is None or not assignments:
        return False
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
            sock.setblocking(False)
            sock.connect(address)
            data = "\n".join(assignments).encode()
            return sock.send(data) == len(data)
    except OSError:
        return False


def ready(status: str) -> bool:
    """Startup is complete: systemd starts the units ordered after us and reports us active."""
    return notify("READY=1", f"STATUS={_one_line(status)}")


def supervised() -> bool:
    """Whether systemd listens for notifications: a caller skips work whose only use is
    a status line nobody reads (the scheduler's job counts)."""
    return _notify_address() is not None


def status(text: str) -> bool:
    """Set the one-line status `systemctl --user status prodigyd` shows."""
    return notify(f"STATUS={_one_line(text)}")


def stopping() -> bool:
    """Shutdown has begun, so systemd reports "deactivating" rather than a hang."""
    return notify("STOPPING=1")


def watchdog_interval() -> float | None:
    """Seconds between two `WATCHDOG=1` pings, or None when no watchdog is armed for us.

    Half the deadline, as sd_watchdog_enabled(3) advises: one late ping must not be fatal.
    """
    usec = os.environ.get("WATCHDOG_USEC", "")
    pid = os.environ.get("WATCHDOG_PID")
    if not usec.isdigit() or int(usec) == 0:
        return None
    if pid is not None and pid != str(os.getpid()):
        return None
    return int(usec) / 2 / 1_000_000


async def watchdog_loop() -> None:
    """Ping systemd every `watchdog_interval()` until cancelled; return at once without one.

    It runs on the event loop on purpose: a loop blocked past WatchdogSec is exactly the hang
    systemd should restart the daemon for.
    """
    interval = watchdog_interval()
    if interval is None:
        return
    while True:
        notify("WATCHDOG=1")
        await asyncio.sleep(interval)


def listen_sockets() -> list[socket.socket]:
    """The listening sockets systemd passed us (socket activation); [] when there are none.

    The LISTEN_* variables are removed from os.environ in every case, as libsystemd does:
    a child that inherited them could otherwise mistake our fds for its own. The sockets are
    made non-inheritable for the same reason.
    """
    pid, count, _ = (os.environ.pop(name, None) for name in _LISTEN_VARS)
    if pid != str(os.getpid()) or count is None or not count.isdigit():
        return []
    sockets = []
    for fd in range(LISTEN_FDS_START, LISTEN_FDS_START + int(count)):
        sock = socket.socket(fileno=fd)
        sock.set_inheritable(False)
        sockets.append(sock)
    return sockets


def _notify_address() -> str | None:
    address = os.environ.get("NOTIFY_SOCKET", "")
    if address.startswith("@"):
        return "\0" + address[1:]  # the abstract namespace
    if address.startswith("/"):
        return address
    return None  # unset, or a transport this daemon does not speak (vsock:, systemd >= 253)


def _one_line(text: str) -> str:
    """A newline in a STATUS would start a new assignment (it could say READY=1)."""
    return " ".join(text.splitlines())
