"""The fake `claude` and the real one, line by line: same line kinds, same keys, same types.

For every scenario in capture.SCENARIOS, `FAKE_RULES` scripts the fake to do what the
stand-in made the real CLI do, and `differences` compares two streams: the lines'
(type, subtype) in order, then each pair of lines recursively by keys and JSON value types
(numbers are numbers, whatever their value; an empty list matches any list). Used by the
always-run tests/unit/test_fake_matches_real.py against the captured streams, and by
tests/claude_api/test_fake_agreement.py against the real CLI run there and then.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

FAKE = Path(__file__).resolve().parents[1] / "fake_claude" / "claude"
STREAM = ["-p", "--output-format", "stream-json", "--verbose"]
SKIP = ["--dangerously-skip-permissions"]

#: Each tool's own record of what it did (a Bash diff, a file's lines): prodigy reads none
#: of it, and its keys depend on the tool and on what the command changed.
FREE_FORM = {"tool_use_result"}
#: Keys the real CLI prints only in some environments (the socket path is missing when it
#: runs under pytest): either side may lack them.
OPTIONAL = {"messaging_socket_path"}
#: Objects keyed by the model's name, which differs between the stand-in and the fake.
KEYED_BY_MODEL = {"modelUsage", "model_usage_since_last_result"}

# name -> (fake rule, claude args, CLAUDE_CODE_MAX_RETRIES): what the stand-in scripted (its
# default usage is 10 input and 5 output tokens per API message)
FAKE_RULES: dict[str, tuple[dict[str, Any], list[str], int]] = {
    "success": (
        {
            "actions": [
                {
                    "say": "Running it.",
                    "shell": "echo hello > hello.txt && git add hello.txt && git commit -qm greet",
                }
            ],
            "result": "Committed hello.txt.",
            "input_tokens": 320,
            "output_tokens": 42,
            "cache_read_tokens": 18700,
            "cache_creation_tokens": 700,
        },
        SKIP,
        2,
    ),
    "retry_then_success": (
        {
            "api_retries": [529, 529],
            "result": "Answered after the retries.",
            "input_tokens": 10,
            "output_tokens": 5,
        },
        SKIP,
        10,
    ),
    "auth_401": ({"api_retries": [401, 401], "api_error": 401}, SKIP, 2),
    "rate_limit_429": ({"api_retries": [429, 429], "api_error": 429}, SKIP, 2),
    "server_500": ({"api_retries": [500, 500], "api_error": 500}, SKIP, 2),
    "overloaded_529": ({"api_retries": [529, 529], "api_error": 529}, SKIP, 2),
    "max_turns": (
        {
            "actions": [{"say": "Running it.", "shell": "true"}, {"shell": "true"}],
            "input_tokens": 10,
            "output_tokens": 5,
        },
        [*SKIP, "--max-turns", "1"],
        2,
    ),
    "permission_denied": (
        {
            "actions": [{"say": "Committing.", "commit": "x", "denied": True}],
            "result": "I could not commit.",
            "input_tokens": 20,
            "output_tokens": 10,
        },
        ["--permission-mode", "dontAsk"],
        2,
    ),
}


def run_fake(name: str, work: Path) -> str:
    """The fake's stdout for scenario `name`, run in a fresh repository under `work`."""
    rule, args, retries = FAKE_RULES[name]
    repo, home = work / name / "repo", work / name / "home"
    home.mkdir(parents=True)
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    scenario = work / name / "scenario.json"
    scenario.write_text(json.dumps({"rules": [rule]}), encoding="utf-8")
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(home),
        "IS_SANDBOX": "1",
        "CLAUDE_CODE_MAX_RETRIES": str(retries),
        "FAKE_CLAUDE_SCENARIO": str(scenario),
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@t",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@t",
    }
    done = subprocess.run(
        [str(FAKE), *STREAM, *args, "--", "scenario " + name],
        cwd=repo,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    return done.stdout


def kinds(stream: str) -> list[tuple[str, str | None]]:
    """Each line's (type, subtype): the stream's outline."""
    return [(line.get("type"), line.get("subtype")) for line in _lines(stream)]


def differences(real: str, fake: str) -> list[str]:
    """Where the fake's stream is shaped unlike the real one (empty: they agree)."""
    real_lines, fake_lines = _lines(real), _lines(fake)
    if kinds(real) != kinds(fake):
        return [f"line kinds differ:\n  real {kinds(real)}\n  fake {kinds(fake)}"]
    found: list[str] = []
    for number, (r, f) in enumerate(zip(real_lines, fake_lines, strict=True), start=1):
        found += _compare(r, f, f"line {number} ({r.get('type')}/{r.get('subtype')})")
    return found


def _lines(stream: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stream.splitlines() if line.strip()]


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "number"
    return type(value).__name__


def _compare(real: Any, fake: Any, path: str) -> list[str]:
    name = path.rsplit(".", 1)[-1]
    if name in FREE_FORM:
        return []
    if _kind(real) != _kind(fake):
        return [f"{path}: real is {_kind(real)} ({real!r:.60}), fake is {_kind(fake)}"]
    if isinstance(real, dict):
        if name in KEYED_BY_MODEL:
            if real and fake:
                return _compare(next(iter(real.values())), next(iter(fake.values())), path + "[]")
            return [] if bool(real) == bool(fake) else [f"{path}: one side is empty"]
        found = [f"{path}: fake lacks {k!r}" for k in real if k not in fake and k not in OPTIONAL]
        found += [f"{path}: fake adds {k!r}" for k in fake if k not in real and k not in OPTIONAL]
        for key in real.keys() & fake.keys():
            found += _compare(real[key], fake[key], f"{path}.{key}")
        return found
    if isinstance(real, list) and real and fake:
        return _compare(real[0], fake[0], f"{path}[0]")
    return []
