"""Scripted turns for the Messages API stand-in (standin.py), shared by the real-CLI tests
and the capture script, and the `api` fixture's type."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tests.claude_api.harness import StandIn

#: The `api` fixture (conftest.py): `api(script)` starts a stand-in and selects its claude.
Api = Callable[..., StandIn]


def bash_turn(command: str, text: str = "Running it.", **usage: int) -> dict[str, Any]:
    """A reply that says `text` and asks to run `command` with Bash."""
    return {
        "content": [
            {"type": "text", "text": text},
            {"type": "tool_use", "name": "Bash", "input": {"command": command}},
        ],
        "usage": usage,
    }


def text_turn(text: str, **usage: int) -> dict[str, Any]:
    """A reply that only says `text`."""
    return {"content": [{"type": "text", "text": text}], "usage": usage}
