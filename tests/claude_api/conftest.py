"""Fixtures for the tests that run the real Claude Code CLI against the stand-in.

`real_claude` is the pinned CLI (installed once per checkout, see install.py) or a skip
with the reason; `api` starts a stand-in with a script and selects its wrapper as the
`claude` prodigy runs, with CLAUDE_CODE_MAX_RETRIES low so a scripted error does not wait
through the CLI's ten retries.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest

from tests.claude_api import install
from tests.claude_api.harness import StandIn, standin


@pytest.fixture(scope="session")
def real_claude() -> str:
    try:
        return install.ensure_cli()
    except install.Unavailable as exc:
        pytest.skip(str(exc))


@pytest.fixture
def api(
    real_claude: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Callable[[dict[str, Any]], StandIn]]:
    """`api(script)` starts a stand-in and points PRODIGY_CLAUDE_BIN at its wrapper."""
    with ExitStack() as stack:

        def start(script: dict[str, Any], retries: int = 2) -> StandIn:
            server = stack.enter_context(standin(tmp_path / "api", script, real_claude))
            monkeypatch.setenv("PRODIGY_CLAUDE_BIN", str(server.claude))
            monkeypatch.setenv("CLAUDE_CODE_MAX_RETRIES", str(retries))
            return server

        yield start
