"""What the benchmarks share: starting and stopping the daemon processes they time."""

from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
import time


def start_daemon(env: dict[str, str]) -> tuple[subprocess.Popen[bytes], float]:
    """Start prodigyd and block until it says `ready` on its pipe (as prodigyctl does).

    Returns the process and the seconds from exec to ready.
    """
    read_fd, write_fd = os.pipe()
    started = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-m", "prodigyd.main", "--ready-fd", str(write_fd)],
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        pass_fds=(write_fd,),
    )
    os.close(write_fd)
    try:
        ready, _, _ = select.select([read_fd], [], [], 30)
        word = os.read(read_fd, 64).decode().strip() if ready else ""
        elapsed = time.perf_counter() - started
    finally:
        os.close(read_fd)
    if word != "ready":
        stop(proc, timeout=30)
        raise SystemExit(f"prodigyd did not become ready (said {word!r})")
    return proc, elapsed


def stop(proc: subprocess.Popen[bytes], *, timeout: float) -> None:
    """SIGTERM a process we started (a daemon checkpoints on it), SIGKILL after `timeout`."""
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
