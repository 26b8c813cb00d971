"""A real Dask cluster on 127.0.0.1 for the tests: `dask scheduler` and `dask worker`
processes (no nanny, so killing a worker's process loses the worker, as a crashed machine
would), each logging to its own file, all stopped and reaped by `close`."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import distributed

from tests.cli import wait_for
from tests.gitutil import GIT_TEST_ENV, REPO_PINNING_VARS


class Cluster:
    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.scheduler_file = folder / "scheduler.json"
        self.procs: list[subprocess.Popen[bytes]] = []
        self.workers: dict[str, subprocess.Popen[bytes]] = {}  # address -> its process
        home = folder / "home"
        home.mkdir(parents=True, exist_ok=True)
        env = {k: v for k, v in os.environ.items() if k not in REPO_PINNING_VARS}
        self.env = {**env, **GIT_TEST_ENV, "HOME": str(home), "GIT_TEMPLATE_DIR": ""}
        self.env.pop("PRODIGY_HOME", None)
        self._start("scheduler", "--host", "127.0.0.1", "--port", "0")
        wait_for(self.scheduler_file.exists, timeout=60, what="the Dask scheduler")
        self.address: str = json.loads(self.scheduler_file.read_text())["address"]

    def _start(self, what: str, *args: str) -> subprocess.Popen[bytes]:
        n = len(self.procs)
        log = open(self.folder / f"{n}-{what}.log", "wb")  # noqa: SIM115 - closed with the process
        # Its HTTP server (health routes) runs even without the dashboard, on 0.0.0.0 unless
        # told otherwise: every server a test starts listens on 127.0.0.1.
        argv = [
            *(sys.executable, "-m", f"distributed.cli.dask_{what}", "--no-dashboard"),
            *("--dashboard-address", "127.0.0.1:0", *args),
        ]
        if what == "scheduler":
            argv += ["--scheduler-file", str(self.scheduler_file)]
        proc = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=self.env,
            cwd=self.folder,
        )
        log.close()
        self.procs.append(proc)
        return proc

    def add_worker(self) -> str:
        """Start one more worker (two threads) and wait until the scheduler has it."""
        before = set(self.addresses())
        proc = self._start(
            "worker",
            "--scheduler-file",
            str(self.scheduler_file),
            "--no-nanny",
            "--nthreads",
            "2",
            "--host",
            "127.0.0.1",
            "--local-directory",
            str(self.folder / f"worker-{len(self.procs)}"),
        )
        found: list[str] = []

        def joined() -> bool:
            assert proc.poll() is None, "a dask worker exited at start; see its log"
            found[:] = sorted(set(self.addresses()) - before)
            return bool(found)

        wait_for(joined, timeout=60, what="a Dask worker to join")
        self.workers[found[0]] = proc
        return found[0]

    def addresses(self) -> list[str]:
        with distributed.Client(self.address, timeout=30) as client:
            return sorted(client.scheduler_info(n_workers=-1)["workers"])

    def kill_worker(self, address: str) -> None:
        proc = self.workers.pop(address)
        proc.send_signal(signal.SIGKILL)
        proc.wait()

    def close(self) -> None:
        """The workers first (they close fast while their scheduler still answers), then
        the scheduler."""
        workers, scheduler = self.procs[1:], self.procs[:1]
        for group in (workers, scheduler):
            for proc in group:
                if proc.poll() is None:
                    proc.terminate()
            for proc in group:
                try:
                    proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
