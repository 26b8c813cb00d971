"""The fake claude prints what the real 2.1.332 printed, line kind by line kind, key by key.

The real streams are tests/claude_api/captured/ (see tests/claude_api/README.md); the fake
is scripted per scenario to do the same (tests/claude_api/agreement.py). A new field in
the real CLI's stream, or a changed type, fails here until the fake has it too.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from prodigyd.claude.cli import StreamParser
from tests.claude_api import agreement
from tests.claude_api.capture import OUT, SCENARIOS


def test_every_captured_scenario_has_a_fake_script() -> None:
    assert set(agreement.FAKE_RULES) == set(SCENARIOS)
    assert {path.stem for path in OUT.glob("*.jsonl")} == set(SCENARIOS)


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_the_fake_agrees_with_the_captured_real_stream(name: str, tmp_path: Path) -> None:
    real = (OUT / f"{name}.jsonl").read_text(encoding="utf-8")

    fake = agreement.run_fake(name, tmp_path)

    assert agreement.differences(real, fake) == []


def test_the_comparison_sees_a_missing_key_and_a_changed_type() -> None:
    real = '{"type":"result","usage":{"input_tokens":3},"is_error":false,"errors":["x"]}'
    fake = '{"type":"result","usage":{},"is_error":0,"errors":[],"extra":1}'

    assert sorted(agreement.differences(real, fake)) == [
        "line 1 (result/None).is_error: real is bool (False), fake is number",
        "line 1 (result/None).usage: fake lacks 'input_tokens'",
        "line 1 (result/None): fake adds 'extra'",
    ]


def _read(stream: str) -> tuple[list[str], tuple[object, ...]]:
    parser = StreamParser()
    events = [e["event_type"] for line in stream.splitlines() for e in parser.feed(line)]
    r = parser.finish()
    figures = (r.is_error, r.error_kind, r.subtype, r.terminal_reason, r.input_tokens)
    figures += (r.output_tokens, r.cache_read_tokens, r.cache_creation_tokens)
    figures += (r.api_error.status if r.api_error else None, len(r.permission_denials))
    return events, figures


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_prodigy_reads_the_fake_as_it_reads_the_real_cli(name: str, tmp_path: Path) -> None:
    real = (OUT / f"{name}.jsonl").read_text(encoding="utf-8")

    fake = agreement.run_fake(name, tmp_path)

    assert _read(fake) == _read(real)
