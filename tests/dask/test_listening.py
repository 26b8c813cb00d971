"""The suite's Dask servers listen on 127.0.0.1 only: the scheduler and workers serve HTTP
(health routes) even without a dashboard, and Dask puts that server on 0.0.0.0 unless told."""

from __future__ import annotations

import os
import socket
import sys
from pathlib import Path

from tests.dask.cluster import Cluster


def _listening(pid: int) -> list[str]:
    """The local addresses of the TCP sockets `pid` listens on (IPv4 and IPv6)."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:  # closed meanwhile
            continue
        if target.startswith("socket:["):
            inodes.add(target[len("socket:[") : -1])
    found = []
    for table, family in (("tcp", socket.AF_INET), ("tcp6", socket.AF_INET6)):
        for line in Path(f"/proc/{pid}/net/{table}").read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] == "0A" and fields[9] in inodes:  # 0A: LISTEN
                host = bytes.fromhex(fields[1].split(":")[0])
                if sys.byteorder == "little":  # the kernel prints each 32-bit word as a number
                    host = b"".join(host[i : i + 4][::-1] for i in range(0, len(host), 4))
                found.append(socket.inet_ntop(family, host))
    return found


def test_the_scheduler_and_workers_listen_on_loopback_only(two_workers: Cluster):
    live = [proc for proc in two_workers.procs if proc.poll() is None]  # a test may kill one
    assert len(live) >= 3  # the scheduler and two workers: none is left unchecked
    for proc in live:
        addresses = _listening(proc.pid)
        assert len(addresses) >= 2  # its RPC and its HTTP server
        assert set(addresses) == {"127.0.0.1"}, addresses
