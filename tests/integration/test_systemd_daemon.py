"""The real prodigyd under systemd's protocols: sd_notify to a fake NOTIFY_SOCKET, and
socket activation through systemd-socket-activate (systemd itself is not PID 1 here)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tests.cli import ctl, wait_for

ACTIVATOR = shutil.which("systemd-socket-activate") or (
    "/lib/systemd/systemd-socket-activate"
    if os.path.exists("/lib/systemd/systemd-socket-activate")
    else None
)


def _messages(sock: socket.socket, until: str, timeout: float = 30.0) -> list[str]:
    sock.settimeout(timeout)
    seen: list[str] = []
    while not any(until in m for m in seen):
        seen.append(sock.recv(4096).decode())
    return seen


def test_daemon_reports_ready_status_watchdog_and_stopping(
    isolated: Path, repo: Path, tmp_path: Path
):
    notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    notify.bind(str(tmp_path / "notify.sock"))
    env = {**os.environ, "NOTIFY_SOCKET": str(tmp_path / "notify.sock"), "WATCHDOG_USEC": "200000"}
    daemon = subprocess.Popen(
        [sys.executable, "-m", "prodigyd.main"],
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        ready = _messages(notify, "READY=1")
        assert any("STATUS=listening on" in m for m in ready)
        assert ctl("daemon", "status").returncode == 0  # READY came when it accepts connections
        assert any("WATCHDOG=1" in m for m in _messages(notify, "WATCHDOG=1"))
        wf = tmp_path / "wf.yml"
        wf.write_text("- shell: 'true'\n")
        assert ctl("run", str(wf), "-y", cwd=repo).returncode == 0
        assert any("STATUS=1 running, 0 queued" in m for m in _messages(notify, "STATUS=1 running"))
        daemon.send_signal(signal.SIGTERM)
        assert any("STOPPING=1" in m for m in _messages(notify, "STOPPING=1"))
        assert daemon.wait(timeout=60) == 0
    finally:
        daemon.kill()
        daemon.wait()
    assert not (isolated / "prodigyd.sock").exists()


@pytest.mark.skipif(ACTIVATOR is None, reason="systemd-socket-activate is not installed")
def test_socket_activation_uses_the_passed_fd(isolated: Path):
    sock_path = isolated / "prodigyd.sock"
    isolated.mkdir(mode=0o700, parents=True, exist_ok=True)
    assert ACTIVATOR is not None
    # The activator clears the environment: pass on what keeps the daemon in this test's home.
    keep = [arg for name in ("PRODIGY_HOME", "HOME", "PATH") for arg in ("-E", name)]
    activator = subprocess.Popen(
        [ACTIVATOR, "-l", str(sock_path), *keep, sys.executable, "-m", "prodigyd.main"],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for(sock_path.exists, what="the activator to listen")
        assert not (isolated / "prodigyd.pid").exists()  # nothing runs until a client connects
        status = ctl("daemon", "status", "--json")  # the first connection starts prodigyd
        assert status.returncode == 0, status.stderr
        assert json.loads(status.stdout)["home"] == str(isolated)
        assert (isolated / "prodigyd.pid").exists()
        ctl("daemon", "stop", "--json", timeout=60)
        wait_for(lambda: not (isolated / "prodigyd.pid").exists(), what="prodigyd to exit")
        assert sock_path.exists()  # systemd's socket stays for the next activation
    finally:
        activator.terminate()
        activator.wait(timeout=30)


def test_a_start_outside_systemd_leaves_a_listening_socket_alone(isolated: Path):
    """A hook's `prodigyd --detach` while systemd's prodigyd.socket listens and its
    service has not started: the socket stays systemd's (removing it would end socket
    activation until the unit restarts), and the start steps aside, successfully."""
    isolated.mkdir(mode=0o700, parents=True, exist_ok=True)
    sock_path = isolated / "prodigyd.sock"
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)  # systemd's, as it holds it
    listener.bind(str(sock_path))
    listener.listen()
    try:
        done = subprocess.run(
            [sys.executable, "-m", "prodigyd.main"],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        assert "served by another process" in done.stderr
        assert not (isolated / "prodigyd.pid").exists()
        with socket.socket(socket.AF_UNIX) as client:
            client.connect(str(sock_path))  # still reaches systemd's listener
    finally:
        listener.close()
    # a socket nobody listens on any more (a killed daemon's) is replaced, as always
    assert ctl("daemon", "start").returncode == 0
    try:
        assert ctl("daemon", "status").returncode == 0
    finally:
        ctl("daemon", "stop")
