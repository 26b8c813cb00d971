"""The suite's Dask servers listen on 127.0.0.1 only: the scheduler and workers serve HTTP
(health routes) even without a dashboard, and Dask puts that server on 0.0.0.0 unless told."""

from __future__ import annotations

import os
import socket
from pathlib import Path

from tests.dask.cluster import Cluster


def _listening(pid: int) -> list[str]:
    """The local addresses of the TCP sockets `pid` listens on (IPv4 and IPv6)."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        target = os.readlink(fd) if fd.is_symlink() else ""
        if target.startswith("socket:["):
            inodes.add(target[len("socket:[") : -1])
    found = []
    for table, family in (("tcp", socket.AF_INET), ("tcp6", socket.AF_INET6)):
        for line in Path(f"/proc/{pid}/net/{table}").read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] == "0A" and fields[9] in inodes:  # 0A: LISTEN
                host = bytes.fromhex(fields[1].split(":")[0])
                words = [host[i : i + 4][::-1] for i in range(0, len(host), 4)]  # host order
                found.append(socket.inet_ntop(family, b"".join(words)))
    return found


def test_the_scheduler_and_workers_listen_on_loopback_only(two_workers: Cluster):
    for proc in two_workers.procs:
        if proc.poll() is None:
            addresses = _listening(proc.pid)
            assert len(addresses) >= 2  # its RPC and its HTTP server
            assert set(addresses) == {"127.0.0.1"}, addresses
