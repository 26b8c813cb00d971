"""Regenerate `tests/claude_api/captured/*.jsonl`: the real CLI's stream for each scenario.

Each scenario runs the pinned `claude` (install.py) once against the Messages API stand-in
(harness.py), in a fresh git repository with a fresh HOME, exactly as prodigy calls it
(`-p --output-format stream-json --verbose`, the prompt after `--`), and saves its stdout
unchanged: uuids, timestamps and temp paths stay, they are what the real stream looks like.
The fake's agreement test (tests/unit/test_fake_matches_real.py) and the parser's tests read
these files, so re-run this after bumping `install.PINNED`:

    PRODIGY_TEST_CLAUDE_CLI=/path/to/claude python -m tests.claude_api.capture [NAME ...]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from tests.claude_api import install
from tests.claude_api.harness import standin
from tests.claude_api.turns import bash_turn

OUT = Path(__file__).resolve().parent / "captured"


def _error(status: int, kind: str, message: str, times: int | None = None) -> dict[str, Any]:
    turn: dict[str, Any] = {
        "error": {"status": status, "type": kind, "message": message, "retry_after": 0},
        "content": [{"type": "text", "text": "Answered after the retries."}],
    }
    if times is not None:
        turn["times"] = times
    return turn


#: name -> (prompt, stand-in turns for that prompt, extra CLI args, CLAUDE_CODE_MAX_RETRIES)
SCENARIOS: dict[str, tuple[str, list[dict[str, Any]], list[str], int]] = {
    "success": (
        "add a greeting",
        [
            bash_turn(
                "echo hello > hello.txt && git add hello.txt && git commit -qm greet",
                input_tokens=120,
                output_tokens=30,
                cache_read_input_tokens=9000,
                cache_creation_input_tokens=700,
            ),
            {
                "content": [{"type": "text", "text": "Committed hello.txt."}],
                "usage": {
                    "input_tokens": 200,
                    "output_tokens": 12,
                    "cache_read_input_tokens": 9700,
                    "cache_creation_input_tokens": 0,
                },
            },
        ],
        ["--dangerously-skip-permissions"],
        2,
    ),
    "retry_then_success": (
        "say hello",
        [_error(529, "overloaded_error", "Overloaded", times=2)],
        ["--dangerously-skip-permissions"],
        10,
    ),
    "auth_401": (
        "say hello",
        [_error(401, "authentication_error", "invalid x-api-key")],
        ["--dangerously-skip-permissions"],
        2,
    ),
    "rate_limit_429": (
        "say hello",
        [_error(429, "rate_limit_error", "Number of request tokens has exceeded your limit")],
        ["--dangerously-skip-permissions"],
        2,
    ),
    "overloaded_529": (
        "say hello",
        [_error(529, "overloaded_error", "Overloaded")],
        ["--dangerously-skip-permissions"],
        2,
    ),
    "server_500": (
        "say hello",
        [_error(500, "api_error", "Internal server error")],
        ["--dangerously-skip-permissions"],
        2,
    ),
    "max_turns": (
        "loop forever",
        [bash_turn("true"), bash_turn("true"), {"content": [{"type": "text", "text": "done"}]}],
        ["--dangerously-skip-permissions", "--max-turns", "1"],
        2,
    ),
    "permission_denied": (
        "commit please",
        [
            bash_turn("git commit --allow-empty -qm x", text="Committing."),
            {"content": [{"type": "text", "text": "I could not commit."}]},
        ],
        ["--permission-mode", "dontAsk"],
        2,
    ),
}


def capture(name: str, cli: str, work: Path, out: Path = OUT) -> Path:
    """Run scenario `name` and write its stdout to <out>/<name>.jsonl; returns the path."""
    prompt, turns, extra, retries = SCENARIOS[name]
    folder = work / name
    repo, home = folder / "repo", folder / "home"
    home.mkdir(parents=True)
    ident = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t"}
    ident |= {"GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@t"}
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    subprocess.run(
        ["git", "-C", str(repo), "commit", "-q", "--allow-empty", "-m", "init"],
        check=True,
        env={**os.environ, **ident},
    )
    script = {"conversations": [{"match": prompt, "turns": turns}]}
    with standin(folder / "api", script, cli) as server:
        env = {
            "HOME": str(home),
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "IS_SANDBOX": "1",
            "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
            "CLAUDE_CODE_MAX_RETRIES": str(retries),
            **ident,
        }
        argv = [str(server.claude), "-p", "--output-format", "stream-json", "--verbose"]
        done = subprocess.run(
            [*argv, *extra, "--", prompt],
            cwd=repo,
            env=env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
    out.mkdir(parents=True, exist_ok=True)
    target = out / f"{name}.jsonl"
    target.write_text(done.stdout, encoding="utf-8")
    print(f"{name}: exit {done.returncode}, {len(done.stdout.splitlines())} lines -> {target}")
    if done.stderr.strip():
        print(f"  stderr: {done.stderr.strip()[:300]}")
    return target


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", metavar="NAME", help=", ".join(SCENARIOS))
    args = parser.parse_args(argv)
    unknown = sorted(set(args.names) - set(SCENARIOS))
    if unknown:
        parser.error(f"unknown scenario {', '.join(unknown)}; known: {', '.join(SCENARIOS)}")
    cli = install.ensure_cli()
    with tempfile.TemporaryDirectory(prefix="claude-capture-") as work:
        for name in args.names or SCENARIOS:
            capture(name, cli, Path(work))
    return 0


if __name__ == "__main__":
    sys.exit(main())
