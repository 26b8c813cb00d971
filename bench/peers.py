"""Finding, and with --peers installing, the peer tools issue 15's rows compare against.

Apt tools (task-spooler, nq, watchman) are installed system-wide, only when running as
root with apt-get present; pip tools (pre-commit, dbos) go into a virtualenv and npm tools
(lefthook) into a prefix, both under a folder the caller gives (the benchmark's temporary
folder, or one bench/all.py shares between scripts). Whatever cannot be had is skipped
with the reason printed: a missing peer is never a failure.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
from pathlib import Path

#: apt package -> the executables it may install (Debian calls task-spooler's `tsp`).
APT = {"task-spooler": ("tsp", "ts"), "nq": ("nq",), "watchman": ("watchman",)}
#: pip package -> what to run in its virtualenv.
PIP = {"pre-commit": "pre-commit", "dbos": "python"}
#: npm package -> its executable.
NPM = {"lefthook": "lefthook"}


class Peers:
    """Peer executables for one benchmark run; each is looked up (and installed) once."""

    def __init__(self, args: argparse.Namespace, tmp: Path) -> None:
        self.install = bool(args.peers)
        self.enabled = not args.no_peers
        self.folder = args.peer_dir or tmp / "peers"
        self.found: dict[str, Path | None] = {}

    def get(self, package: str) -> Path | None:
        """The peer's executable, or None after printing why it is skipped."""
        if package not in self.found:
            path, reason = (None, "--no-peers") if not self.enabled else self._find(package)
            if path is None:
                print(f"  peer {package}: skipped ({reason})")
            self.found[package] = path
        return self.found[package]

    def _find(self, package: str) -> tuple[Path | None, str]:
        if package in APT:
            return self._apt(package)
        if package in PIP:
            return self._pip(package)
        return self._npm(package)

    def _apt(self, package: str) -> tuple[Path | None, str]:
        if found := _which(package):
            return found, ""
        if not self.install:
            return None, "not installed; --peers installs it"
        if os.geteuid() != 0 or shutil.which("apt-get") is None:
            return None, "not installed, and installing needs root and apt-get"
        if problem := _quiet(["apt-get", "install", "-y", "-q", package]):
            return None, f"apt-get install failed: {problem}"
        found = _which(package)
        return (found, "") if found else (None, "apt-get installed no executable")

    def _pip(self, package: str) -> tuple[Path | None, str]:
        venv = self.folder / f"venv-{package}"
        path = venv / "bin" / PIP[package]
        if path.exists() and (venv / ".installed").exists():
            return path, ""
        if not self.install:
            return None, "needs pip into a temporary venv; --peers installs it"
        if problem := _quiet([sys.executable, "-m", "venv", str(venv)]):
            return None, f"venv failed: {problem}"
        if problem := _quiet([str(venv / "bin" / "python"), "-m", "pip", "install", "-q", package]):
            return None, f"pip install failed: {problem}"
        (venv / ".installed").touch()
        return path, ""

    def _npm(self, package: str) -> tuple[Path | None, str]:
        prefix = self.folder / f"npm-{package}"
        path = prefix / "node_modules" / ".bin" / NPM[package]
        if path.exists():
            return path, ""
        if not self.install:
            return None, "needs npm into a temporary prefix; --peers installs it"
        if shutil.which("npm") is None:
            return None, "no npm on PATH"
        prefix.mkdir(parents=True, exist_ok=True)
        # --ignore-scripts: lefthook's postinstall runs `lefthook install` in the repository
        # npm was started from (INIT_CWD), writing hooks into the user's own .git.
        argv = ["npm", "install", "--prefix", str(prefix), "--ignore-scripts", "--silent", package]
        if problem := _quiet(argv, cwd=prefix):
            return None, f"npm install failed: {problem}"
        return (path, "") if path.exists() else (None, "npm installed no executable")


def _which(package: str) -> Path | None:
    for name in APT[package]:
        if found := shutil.which(name):
            return Path(found)
    return None


def _quiet(argv: list[str], cwd: Path | None = None) -> str:
    """Run an installer; '' when it worked, else the last line it printed."""
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    print(f"  installing peer: {' '.join(argv)}", flush=True)
    try:
        done = subprocess.run(
            argv, cwd=cwd, capture_output=True, text=True, env=env, timeout=600, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as error:
        return str(error)
    if done.returncode == 0:
        return ""
    lines = (done.stderr or done.stdout).strip().splitlines()
    return lines[-1] if lines else f"exit {done.returncode}"
