"""Suite-wide isolation: every test gets its own PRODIGY_HOME, HOME and git identity.

- PRODIGY_HOME (store, socket, worktrees) and HOME (so nothing can reach the real
  ~/.prodigy or ~/.claude, and git reads no user config) point into the test's tmp dir.
- The fake claude is selected with PRODIGY_CLAUDE_BIN.
- A full disk a test leaves known to this process (prodigyd.store.space), the writes it
  held back and the journal's connection are forgotten: the next test starts clean.
- After each test, any daemon still running in that PRODIGY_HOME is stopped and the test
  fails: a leaked daemon can hold CI's pipes open.
- The real ~/.prodigy and ~/.claude are checked before and after the session.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from prodigyd.store import claude_invocations, journal, locks, space
from prodigyd.store import sessions as session_store
from tests import cli
from tests.gitutil import make_repo, use_git_identity

FAKE_CLAUDE = Path(__file__).parent / "fake_claude" / "claude"
REAL_HOME = Path(os.path.expanduser("~"))
_GUARDED = [REAL_HOME / ".prodigy", REAL_HOME / ".claude"]


def _fingerprint() -> list[tuple[str, float | None]]:
    return [(str(p), p.stat().st_mtime if p.exists() else None) for p in _GUARDED]


@pytest.fixture(scope="session", autouse=True)
def _real_home_untouched() -> Iterator[None]:
    before = _fingerprint()
    yield
    assert _fingerprint() == before, "the test suite touched the real ~/.prodigy or ~/.claude"


@pytest.fixture(autouse=True)
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A private PRODIGY_HOME/HOME for this test; yields PRODIGY_HOME."""
    home = tmp_path / "prodigy-home"
    user_home = tmp_path / "user-home"
    user_home.mkdir()
    for name in (
        "XDG_RUNTIME_DIR",
        "XDG_CONFIG_HOME",
        "XDG_DATA_HOME",
        "PRODIGY_TEST_MODE",
        "PRODIGY_NO_COMMIT_VALIDATION",
        "NOTIFY_SOCKET",
        "WATCHDOG_USEC",
        "WATCHDOG_PID",
        "LISTEN_PID",
        "LISTEN_FDS",
        "LISTEN_FDNAMES",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("PRODIGY_HOME", str(home))
    monkeypatch.setenv("HOME", str(user_home))
    use_git_identity(monkeypatch)
    monkeypatch.setenv("GIT_TEMPLATE_DIR", "")
    monkeypatch.setenv("PRODIGY_CLAUDE_BIN", str(FAKE_CLAUDE))
    _forget_process_state()  # what another test left in this process is not this test's
    yield home
    journal.close_all()
    _forget_process_state()
    _stop_leaked_daemon(home)


def _forget_process_state() -> None:
    """A full disk known to the process, and the writes it held back (a session record, a
    Claude invocation's): the next save that fits would write another test's into this
    test's journal; and the session locks a test's scheduler did not release."""
    space.clear()
    session_store._unsaved.clear()
    claude_invocations._unsaved.clear()
    locks._held.clear()


def _stop_leaked_daemon(home: Path) -> None:
    pid_file = home / "prodigyd.pid"
    if not pid_file.exists():
        return
    try:
        pid = int(pid_file.read_text().strip())
        os.kill(pid, signal.SIGTERM)
    except (ValueError, ProcessLookupError):
        return
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.02)
    else:
        os.kill(pid, signal.SIGKILL)
    pytest.fail(f"test left prodigyd (pid {pid}) running; use the `daemon` fixture")


@pytest.fixture
def daemon(isolated: Path) -> Iterator[Path]:
    """A real prodigyd for this test, stopped (and awaited) at teardown."""
    cli.ctl("daemon", "start", check=True)
    yield isolated
    cli.ctl("daemon", "stop", check=True)
    assert not (isolated / "prodigyd.sock").exists()


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A real git repository on branch main with one commit."""
    return make_repo(tmp_path / "repo", {"README.md": "# demo\n"})
