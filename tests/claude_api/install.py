"""The pinned real Claude Code CLI for the suite: found, or installed once with npm.

The real-CLI tests run exactly this version, so a new CLI release cannot change what CI
tests without a commit here. The install goes into the checkout's `.cache/` (ignored by
git), never into `~` or a global prefix; `PRODIGY_TEST_CLAUDE_CLI` names an installed
binary of the pinned version instead. Without one and without npm the tests skip, saying so.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

#: The Claude Code release the real-CLI tests run; bump it deliberately, with a new capture
#: of its stream (tests/claude_api/captured/) and the fake updated to match.
PINNED = "2.1.332"
PACKAGE = "@anthropic-ai/claude-code"
BINARY_ENV = "PRODIGY_TEST_CLAUDE_CLI"
CACHE = Path(__file__).resolve().parents[2] / ".cache" / f"claude-code-{PINNED}"


class Unavailable(Exception):
    """Why the real CLI cannot be had here; the message is the skip reason."""


def version_of(binary: str) -> str:
    done = subprocess.run(
        [binary, "--version"], capture_output=True, text=True, timeout=60, check=False
    )
    return done.stdout.split(" ", 1)[0].strip()


def ensure_cli() -> str:
    """The path of the pinned `claude`, installing it with npm on first use."""
    named = os.environ.get(BINARY_ENV)
    if named:
        found = version_of(named)
        if found != PINNED:
            raise Unavailable(f"{BINARY_ENV}={named} is claude {found!r}, the suite pins {PINNED}")
        return named
    CACHE.parent.mkdir(parents=True, exist_ok=True)
    # One install at a time: test processes running side by side (pytest -n) share CACHE.
    with open(CACHE.parent / f"claude-code-{PINNED}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        return _installed()


def _installed() -> str:
    """`ensure_cli` under its lock: the cached install when it is the pinned version, else
    a new one, staged beside the cache and moved into place whole."""
    binary = CACHE / "node_modules" / ".bin" / "claude"
    if binary.exists() and version_of(str(binary)) == PINNED:
        return str(binary)
    npm = shutil.which("npm")
    if npm is None:
        raise Unavailable(
            f"npm not found: install Node.js and npm to run the real Claude CLI tests "
            f"({PACKAGE}@{PINNED}; .ci/run installs them), or set {BINARY_ENV}"
        )
    staging = Path(tempfile.mkdtemp(prefix="claude-code-", dir=CACHE.parent))
    done = subprocess.run(
        [
            npm,
            "install",
            "--prefix",
            str(staging),
            "--no-audit",
            "--no-fund",
            f"{PACKAGE}@{PINNED}",
        ],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
        env={**os.environ, "npm_config_update_notifier": "false"},
    )
    if done.returncode != 0:
        shutil.rmtree(staging, ignore_errors=True)
        raise Unavailable(f"npm install {PACKAGE}@{PINNED} failed: {done.stderr.strip()[-500:]}")
    shutil.rmtree(CACHE, ignore_errors=True)
    os.replace(staging, CACHE)
    if version_of(str(binary)) != PINNED:
        raise Unavailable(f"{binary} does not report version {PINNED} after npm install")
    return str(binary)
