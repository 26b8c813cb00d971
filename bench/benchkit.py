"""What the benchmarks share: starting and stopping the daemon processes they time, and the
rows of issue 15's table (figure, same-run floor, ratio, target, peers) they print."""

from __future__ import annotations

import argparse
import compileall
import json
import math
import os
import select
import signal
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

#: The project's own sources, compiled before anything is timed: an installed program runs
#: from bytecode, and with PYTHONDONTWRITEBYTECODE set (as on some machines) an editable
#: checkout would otherwise compile itself at every start of the client and the daemon.
for _package in ("prodigyd", "prodigyctl"):
    compileall.compile_dir(Path(__file__).parents[1] / _package, quiet=1)


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


# -- rows of issue 15's table --------------------------------------------------------------

#: The event loops a daemon row is measured on (prodigyd's `event_loop` setting).
LOOPS = ("uvloop", "asyncio")  # the daemon's default (docs/config.md, event_loop) first
#: What a machine-readable row line starts with; bench/all.py collects these.
ROW_PREFIX = "BENCHROW "


@dataclass
class Peer:
    """A peer tool's figure on the same row, measured in the same run, and what it measures."""

    name: str
    value: float
    what: str


@dataclass
class Row:
    """One row of the performance table: prodigy's figure against a floor measured in the
    same run, and the target as a ratio to that floor (or, with `over`, as the most prodigy
    may add to the floor, in the row's unit)."""

    key: str
    metric: str
    unit: str
    prodigy: float
    floor: float
    floor_label: str
    target: float
    over: bool = False
    loop: str | None = None
    peers: list[Peer] = field(default_factory=list)

    @property
    def ratio(self) -> float:
        return self.prodigy / self.floor if self.floor else math.inf

    @property
    def passes(self) -> bool:
        if self.over:
            return self.prodigy - self.floor <= self.target
        return self.ratio <= self.target

    def target_text(self) -> str:
        if self.over:
            return f"<= +{self.target:g} {self.unit} over the floor"
        return f"<= {self.target:g}x"


def fmt(value: float, unit: str) -> str:
    """A figure with a precision that suits its size."""
    digits = 0 if abs(value) >= 100 else 1 if abs(value) >= 10 else 2
    return f"{value:.{digits}f} {unit}"


def emit(row: Row) -> None:
    """Print a row for people (figure, floor, ratio, target with PASS/MISS, peers) and once
    more as one JSON line for bench/all.py. A MISS is a finding, never a failure."""
    verdict = "PASS" if row.passes else "MISS"
    loop = f" [{row.loop}]" if row.loop else ""
    print(f"  row: {row.metric}{loop}")
    print(
        f"    prodigy {fmt(row.prodigy, row.unit)}; floor {fmt(row.floor, row.unit)}"
        f" ({row.floor_label})"
    )
    extra = row.prodigy - row.floor
    print(
        f"    ratio {row.ratio:.2f}x ({'+' if extra >= 0 else '-'}{fmt(abs(extra), row.unit)});"
        f" target {row.target_text()}: {verdict}"
    )
    for peer in row.peers:
        print(
            f"    peer {peer.name}: {fmt(peer.value, row.unit)}"
            f" ({peer.value / row.floor:.2f}x the floor; {peer.what})"
        )
    print(ROW_PREFIX + json.dumps(asdict(row), ensure_ascii=False), flush=True)


def add_common_args(parser: argparse.ArgumentParser, *, peers: bool = True) -> None:
    """--loop (the daemon's event loop) and, for a row with peers, the peer options (every
    row script takes them all: bench/all.py passes them to each)."""
    parser.add_argument("--loop", choices=LOOPS, default=LOOPS[0], help="the daemon's event loop")
    if not peers:
        return
    parser.add_argument(
        "--peers",
        action="store_true",
        help="install missing peer tools (apt, pip into a temporary venv, npm into a temporary"
        " prefix) and measure them; without it only peers already installed are measured",
    )
    parser.add_argument(
        "--no-peers", action="store_true", help="measure no peer, even one that is installed"
    )
    parser.add_argument(
        "--peer-dir",
        type=Path,
        help="where pip and npm peers are installed (bench/all.py shares one; default: the"
        " benchmark's temporary folder)",
    )


def rss_mb(pid: int) -> float:
    """Resident set size of a process, in MB (VmRSS from /proc)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise SystemExit(f"no VmRSS for pid {pid}")
