"""Start the Messages API stand-in for a test and hand out a `claude` that can reach only it.

The stand-in runs as its own process (log to files, never the test's pipes). As root, where
network namespaces work, it serves inside a new one with only `lo`, and the `claude` given
to prodigy is a two-line wrapper that `nsenter`s that namespace and execs the pinned CLI:
the CLI then cannot reach anything but the stand-in, whatever it tries. Elsewhere the
wrapper execs the CLI directly and `CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC` (which prodigy
sets for every run) keeps it to the API it is pointed at.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
DUMMY_KEY = "sk-ant-standin-0000000000000000"


def netns_available() -> bool:
    """True when this process may make and enter network namespaces (root, unshare works)."""
    if os.geteuid() != 0 or not shutil.which("nsenter") or not shutil.which("unshare"):
        return False
    done = subprocess.run(["unshare", "-n", "true"], capture_output=True, check=False)
    return done.returncode == 0


@dataclass
class StandIn:
    """A running stand-in: where it listens, the wrapper to run claude with, its request log."""

    base_url: str
    claude: Path
    log: Path
    isolated: bool
    pid: int

    def requests(self, path: str = "/v1/messages") -> list[dict[str, Any]]:
        """Every request the stand-in received on `path`, in arrival order."""
        if not self.log.exists():
            return []
        text = self.log.read_text()
        whole = text[: text.rfind("\n") + 1]  # a record still being written is read later
        records = [json.loads(line) for line in whole.splitlines() if line]
        return [r for r in records if r["path"].split("?", 1)[0] == path]

    def conversations(self) -> list[dict[str, Any]]:
        """The bodies of the main-loop requests (those with tools), in order."""
        return [r["body"] for r in self.requests() if (r["body"] or {}).get("tools")]


@contextmanager
def standin(folder: Path, script: dict[str, Any], cli: str) -> Iterator[StandIn]:
    """Run the stand-in with `script` until the block ends; `cli` is the real claude."""
    folder.mkdir(parents=True, exist_ok=True)
    script_file = folder / "script.json"
    script_file.write_text(json.dumps(script), encoding="utf-8")
    port_file = folder / "port"
    log = folder / "requests.jsonl"
    isolated = netns_available()
    argv = [sys.executable, "-m", "tests.claude_api.standin", "--script", str(script_file)]
    argv += ["--port-file", str(port_file), "--log", str(log)]
    if isolated:
        argv.append("--netns")
    with (folder / "standin.out").open("wb") as out:
        server = subprocess.Popen(
            argv, cwd=ROOT, stdin=subprocess.DEVNULL, stdout=out, stderr=out, start_new_session=True
        )
    try:
        port = _wait_for_port(port_file, server, folder)
        base_url = f"http://127.0.0.1:{port}"
        wrapper = folder / "claude"
        enter = f"nsenter --net=/proc/{server.pid}/ns/net -- " if isolated else ""
        wrapper.write_text(
            "#!/bin/sh\n"
            f"export ANTHROPIC_BASE_URL={base_url} ANTHROPIC_API_KEY={DUMMY_KEY}\n"
            f'exec {enter}{shlex.quote(cli)} "$@"\n',
            encoding="utf-8",
        )
        wrapper.chmod(0o755)
        yield StandIn(base_url, wrapper, log, isolated, server.pid)
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(5)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


def _wait_for_port(port_file: Path, server: subprocess.Popen[bytes], folder: Path) -> int:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if port_file.exists():
            return int(port_file.read_text())
        if server.poll() is not None:
            break
        time.sleep(0.02)
    output = (folder / "standin.out").read_text(errors="replace")
    raise RuntimeError(f"the Messages API stand-in did not start:\n{output}")
