"""A prodigyd a test starts and `kill -9`s itself, and a one-shot raw RPC call.

For crash tests: the `daemon` fixture stops its daemon politely, these let it die hard.
"""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from tests.cli import wait_for


def rpc(home: Path, method: str, params: dict[str, Any]) -> Any:
    """One JSON-RPC call on a fresh connection; RuntimeError carries a JSON-RPC error."""
    with socket.socket(socket.AF_UNIX) as sock:
        sock.settimeout(20)
        sock.connect(str(home / "prodigyd.sock"))
        sock.sendall(
            json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": params}).encode()
            + b"\n"
        )
        reply = json.loads(sock.makefile("rb").readline())
    if "error" in reply:
        raise RuntimeError(reply["error"])
    return reply["result"]


class Daemon:
    """A prodigyd we start and `kill -9` ourselves (not the fixture: it must die hard)."""

    def __init__(self, home: Path) -> None:
        self.home = home
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "prodigyd.main"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_for(self._answers, timeout=60, what="prodigyd to answer")

    def _answers(self) -> bool:
        try:
            return bool(rpc(self.home, "ping", {})["pong"])
        except (OSError, ValueError, RuntimeError):
            return False

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()


def submit_until_acked(home: Path, params: dict[str, Any], give_up: float = 120.0) -> str:
    """`jobs.submit` with an idempotency key, retried while the daemon is down (or being
    killed) until acknowledged; returns the job id. A retry of the same key never makes
    a second job."""
    assert "idempotency_key" in params, "a retried submission needs an idempotency key"
    deadline = time.monotonic() + give_up
    while True:
        try:
            return str(rpc(home, "jobs.submit", params)["id"])
        except (OSError, ValueError, RuntimeError):
            if time.monotonic() > deadline:
                raise
            time.sleep(0.01)
