"""`ping` round trip to prodigyd against a bare asyncio echo server, measured in the same run.

The client is the one prodigyctl uses: a blocking Unix socket and `makefile().readline()`,
one persistent connection, N sequential requests after a warm-up. The floor is the least
any newline-delimited JSON-RPC server on the same event loop can do: an
`asyncio.start_unix_server` that does readline, `json.loads`, writes the reply and drains,
run as its own process (deps-probe §3 measured 82-86 µs p50 for it here). The difference
is what prodigyd's request path adds (a task per request, dispatch, params validation, the
write lock). Target (issue 15): ping p50 <= 1.3x the echo's. The echo is plain asyncio in
every run; `--loop uvloop` runs the daemon on uvloop.

Peer: Watchman (apt), a private server of its own (`--foreground`, its socket, state and
log in the temporary folder): `["version"]` on one persistent connection with the same
client, its JSON protocol being newline-delimited too.

Both servers run at once and are measured in alternating blocks, so a busy moment on the
machine hits both. On a VM the round trip depends mostly on where the scheduler puts the
two processes: on one CPU a reply is a context switch, across CPUs it is a cross-CPU
wake-up, several times slower. So each pair is measured three ways: as the OS places them
(the headline, what users get), all pinned to one CPU, and client and servers pinned
apart.

    python bench/rpc_latency.py [--requests 5000] [--warmup 500] [--loop uvloop] [--peers]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import select
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from benchkit import Peer, Row, add_common_args, emit, stop
from peers import Peers

TARGET_RATIO = 1.3

ECHO_SERVER = """
import asyncio, json, sys

async def handle(reader, writer):
    while True:
        line = await reader.readline()
        if not line:
            break
        msg = json.loads(line)
        reply = {"jsonrpc": "2.0", "id": msg.get("id"), "result": msg.get("params")}
        writer.write(json.dumps(reply, separators=(",", ":")).encode() + b"\\n")
        await writer.drain()
    writer.close()

async def main(path):
    server = await asyncio.start_unix_server(handle, path=path)
    async with server:
        await server.serve_forever()

asyncio.run(main(sys.argv[1]))
"""


def bench_env(root: Path, loop: str) -> dict[str, str]:
    return {
        **os.environ,
        "PRODIGY_HOME": str(root / "home"),
        "HOME": str(root),
        "PRODIGY_EVENT_LOOP": loop,
        "GIT_AUTHOR_NAME": "bench",
        "GIT_AUTHOR_EMAIL": "bench@example.com",
        "GIT_COMMITTER_NAME": "bench",
        "GIT_COMMITTER_EMAIL": "bench@example.com",
    }


@contextlib.contextmanager
def process(argv: list[str], env: dict[str, str], *, ready_fd: bool = False) -> Iterator[int]:
    """Run a server process; yield its pid once ready; always SIGTERM it and wait."""
    read_fd, write_fd = os.pipe() if ready_fd else (-1, -1)
    if ready_fd:
        argv = [*argv, "--ready-fd", str(write_fd)]
    proc = subprocess.Popen(
        argv,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        pass_fds=(write_fd,) if ready_fd else (),
    )
    try:
        if ready_fd:
            os.close(write_fd)
            ready, _, _ = select.select([read_fd], [], [], 20)
            word = os.read(read_fd, 64).decode().strip() if ready else ""
            os.close(read_fd)
            if word != "ready":
                raise SystemExit(f"{argv} did not become ready (said {word!r})")
        yield proc.pid
    finally:
        stop(proc, timeout=30)


def connect(path: Path, timeout: float = 10.0) -> socket.socket:
    deadline = time.monotonic() + timeout
    while True:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.connect(str(path))
            return sock
        except OSError:
            sock.close()
            if time.monotonic() > deadline:
                raise
            time.sleep(0.01)


def json_rpc(method: str) -> tuple[Callable[[int], Any], Callable[[Any, int], bool]]:
    """A JSON-RPC request for `method`, and the check of its reply."""
    return (
        lambda i: {"jsonrpc": "2.0", "id": i, "method": method, "params": {}},
        lambda reply, i: reply.get("id") == i and "result" in reply,
    )


#: Watchman's cheapest command, and the check of its reply.
WATCHMAN_VERSION = (lambda _: ["version"], lambda reply, _: "version" in reply)


class Conn:
    """One persistent blocking connection, used the way prodigyctl's client uses it."""

    def __init__(
        self, path: Path, protocol: tuple[Callable[[int], Any], Callable[[Any, int], bool]]
    ) -> None:
        self.sock = connect(path)
        self.reader = self.sock.makefile("rb")
        self.request, self.ok = protocol
        self.next_id = 0

    def round_trips(self, n: int) -> list[float]:
        """Seconds per request/reply, n sequential requests."""
        times: list[float] = []
        for _ in range(n):
            self.next_id += 1
            payload = self.request(self.next_id)
            data = json.dumps(payload, separators=(",", ":")).encode() + b"\n"
            started = time.perf_counter()
            self.sock.sendall(data)
            reply = json.loads(self.reader.readline())
            times.append(time.perf_counter() - started)
            if not self.ok(reply, self.next_id):
                raise SystemExit(f"bad reply to {payload}: {reply}")
        return times

    def close(self) -> None:
        self.reader.close()
        self.sock.close()


def pin(pids: list[int], client_cpus: set[int], server_cpus: set[int]) -> None:
    """Pin this process and every thread of the server processes to the given CPUs."""
    os.sched_setaffinity(0, client_cpus)
    for pid in pids:
        for tid in os.listdir(f"/proc/{pid}/task"):
            with contextlib.suppress(ProcessLookupError):
                os.sched_setaffinity(int(tid), server_cpus)


def measure(conns: list[Conn], n: int, warmup: int, blocks: int = 10) -> tuple[list[float], ...]:
    """Interleave blocks of requests to each server, so both see the same machine state."""
    for conn in conns:
        conn.round_trips(warmup)
    results: list[list[float]] = [[] for _ in conns]
    for _ in range(blocks):
        for conn, times in zip(conns, results, strict=True):
            times.extend(conn.round_trips(n // blocks))
    return tuple(results)


def pct(values: list[float], p: int) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[p - 1]


def line(label: str, times: list[float]) -> str:
    us = [t * 1e6 for t in times]
    return (
        f"    {label:<30} p50 {statistics.median(us):7.1f} µs   p99 {pct(us, 99):7.1f} µs"
        f"   max {max(us):8.1f} µs"
    )


def watchman_argv(binary: Path, folder: Path) -> list[str]:
    """A private Watchman server in the foreground, everything of its own in `folder`."""
    folder.mkdir()
    return [
        str(binary),
        "--foreground",
        "--no-save-state",
        f"--sockname={folder / 'sock'}",
        f"--statefile={folder / 'state'}",
        f"--logfile={folder / 'log'}",
        f"--pidfile={folder / 'pid'}",
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=5000)
    parser.add_argument("--warmup", type=int, default=500)
    add_common_args(parser)
    args = parser.parse_args()
    cpus = sorted(os.sched_getaffinity(0))
    placements: list[tuple[str, set[int] | None, set[int] | None]] = [
        ("as the OS schedules it", None, None),
        (f"all on CPU {cpus[0]}", {cpus[0]}, {cpus[0]}),
    ]
    if len(cpus) > 1:
        placements.append((f"client CPU {cpus[1]}, server CPU {cpus[0]}", {cpus[1]}, {cpus[0]}))
    print(
        f"python {sys.version.split()[0]}, prodigyd on {args.loop}, asyncio echo, "
        f"blocking-socket client, {args.requests} sequential requests per server and placement"
        f" on one connection (after {args.warmup} warm-up), interleaved in blocks"
    )
    headline: dict[str, float] = {}
    with (
        tempfile.TemporaryDirectory(prefix="prodigy-bench-") as tmp,
        contextlib.ExitStack() as stack,
    ):
        root = Path(tmp)
        env = bench_env(root, args.loop)
        echo_sock = root / "echo.sock"
        pids = {
            "echo": stack.enter_context(
                process([sys.executable, "-c", ECHO_SERVER, str(echo_sock)], env)
            ),
            "ping": stack.enter_context(
                process([sys.executable, "-m", "prodigyd.main"], env, ready_fd=True)
            ),
        }
        conns = {
            "echo": Conn(echo_sock, json_rpc("echo")),
            "ping": Conn(root / "home" / "prodigyd.sock", json_rpc("ping")),
        }
        watchman = Peers(args, root).get("watchman")
        if watchman is not None:
            argv = watchman_argv(watchman, root / "watchman")
            pids["watchman"] = stack.enter_context(process(argv, env))
            conns["watchman"] = Conn(root / "watchman" / "sock", WATCHMAN_VERSION)
        labels = {
            "echo": "floor: bare asyncio echo",
            "ping": "prodigyd ping",
            "watchman": "peer: watchman version",
        }
        try:
            for label, client_cpus, server_cpus in placements:
                pin(list(pids.values()), client_cpus or set(cpus), server_cpus or set(cpus))
                results = dict(
                    zip(
                        conns,
                        measure(list(conns.values()), args.requests, args.warmup),
                        strict=True,
                    )
                )
                p50 = {name: statistics.median(times) for name, times in results.items()}
                headline = headline or p50
                print(f"  {label}:")
                for name, times in results.items():
                    print(line(labels[name], times))
                print(
                    f"    ratio p50 ping / echo floor    {p50['ping'] / p50['echo']:7.2f}x"
                    f"   (p99 {pct(results['ping'], 99) / pct(results['echo'], 99):.2f}x,"
                    f" prodigyd adds {(p50['ping'] - p50['echo']) * 1e6:.1f} µs)"
                )
        finally:
            os.sched_setaffinity(0, set(cpus))
            for conn in conns.values():
                conn.close()
    peers = []
    if "watchman" in headline:
        peers.append(
            Peer("Watchman", headline["watchman"] * 1e6, '`["version"]` on a persistent connection')
        )
    emit(
        Row(
            key="ping",
            metric="`ping` p50, persistent connection",
            unit="µs",
            prodigy=headline["ping"] * 1e6,
            floor=headline["echo"] * 1e6,
            floor_label="bare asyncio echo",
            target=TARGET_RATIO,
            loop=args.loop,
            peers=peers,
        )
    )


if __name__ == "__main__":
    main()
