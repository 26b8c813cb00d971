"""`prodigyctl daemon stop` when the daemon outlives the wait (its running steps finish
first): it says the daemon is stopping, not that it stopped."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from prodigyctl.commands import daemon
from prodigyd import paths


class _Answers:
    def call(self, *_: Any) -> dict[str, Any]:
        return {}


@pytest.fixture
def still_running(isolated: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    @contextlib.contextmanager
    def connect(**_: Any) -> Iterator[_Answers]:
        yield _Answers()

    monkeypatch.setattr(daemon.Client, "connect", connect)
    monkeypatch.setattr(daemon, "STOP_WAIT_SECONDS", 0.05)
    paths.pid_file().parent.mkdir(parents=True, exist_ok=True)
    paths.pid_file().write_text("1\n")  # a daemon that does not go within the wait
    yield
    paths.pid_file().unlink()


def test_a_daemon_still_running_after_the_wait_is_stopping(
    still_running: None, capsys: pytest.CaptureFixture[str]
):
    assert daemon.stop(drain=False, as_json=True) == 0
    assert json.loads(capsys.readouterr().out) == {"running": True, "stopped": False}
    daemon.stop(drain=False, as_json=False)
    assert capsys.readouterr().out.startswith("prodigyd is stopping: it still runs after")
