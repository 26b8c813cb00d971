"""Workflows written for the user: `prodigyctl exec`, `batch` and `goal-seek` (reference §6).

These commands describe one small workflow on the command line; this module writes it out,
and it is submitted as inline workflow text (`jobs.submit` `workflow_text`), so it runs,
checkpoints, resumes and merges like any workflow file. The text is JSON, which is also
YAML: the client builds it without importing a YAML library, and the daemon's loader reads
it (with line numbers for errors) like any other workflow.

Kept from the original: a command written `claude: /cmd args` or `shell: cmd` is what its
prefix says; without a prefix, one starting with `/` is a Claude command, anything else a
shell command; `--retry N` means N attempts in all; `batch` finds its files with `find`
and reduces to one summary line; both merge without asking.
Fixed: `batch` never offers files inside `.git`, hands agents paths relative to the
repository (`src/a.py`, not `./src/a.py`) in a stable order, and matches a pattern with a
`/` against the whole path (`-path`), since `find -name` never matches one.
"""

from __future__ import annotations

import fnmatch
import json
import shlex
from typing import Any

#: The original's default and its "0 means default".
DEFAULT_PARALLEL = 5


#: The original's step prefixes, as `exec "claude: /refactor main.rs"` writes them.
PREFIXES = ("claude", "shell")


def command_step(command: str, *, retry: int = 1, timeout: float | None = None) -> dict[str, Any]:
    """One step for `command`: its `claude:`/`shell:` prefix decides, else Claude when it
    starts with `/`, else shell."""
    kind, text = split_prefix(command)
    if not text:
        raise ValueError("the command is empty")
    step: dict[str, Any] = {kind: text}
    if retry < 1:
        raise ValueError(f"--retry must be at least 1 (attempts in all), not {retry}")
    if retry > 1:
        step["retry"] = {"attempts": retry}
    if timeout is not None:
        step["timeout"] = _positive(timeout, "--timeout")
    return step


def split_prefix(command: str) -> tuple[str, str]:
    """(step kind, command text) of a command line: `claude: X` and `shell: X` name their
    kind (the original's spelling; `prodigyctl exec "claude: /x"` once ran a shell command
    called `claude:`), a bare `/x` is Claude, the rest is shell."""
    text = command.strip()
    head, sep, rest = text.partition(":")
    if sep and head.strip().lower() in PREFIXES:
        return head.strip().lower(), rest.strip()
    return ("claude" if text.startswith("/") else "shell"), text


def exec_workflow(command: str, *, retry: int = 1, timeout: float | None = None) -> str:
    """A one-step workflow running `command`."""
    step = command_step(command, retry=retry, timeout=timeout)
    return _text({"name": "exec", "commands": [step]})


def goal_seek_workflow(
    goal: str,
    *,
    command: str,
    validate: str,
    threshold: float,
    max_attempts: int,
    timeout: float | None = None,
    fail_on_incomplete: bool = True,
) -> str:
    """A one-step workflow seeking `goal`: `command` (a `/` starts a Claude command) until
    `validate` prints a score of at least `threshold`."""
    if not goal.strip():
        raise ValueError("the goal is empty")
    if not validate.strip():
        raise ValueError("--validate is empty")
    if not 0 <= threshold <= 100:
        raise ValueError(f"--threshold must be between 0 and 100, not {threshold:g}")
    if max_attempts < 1:
        raise ValueError(f"--max-attempts must be at least 1, not {max_attempts}")
    spec: dict[str, Any] = {
        "goal": goal,
        **command_step(command),
        "validate": validate,
        "threshold": int(threshold) if float(threshold).is_integer() else threshold,
        "max_attempts": max_attempts,
        "fail_on_incomplete": fail_on_incomplete,
    }
    if timeout is not None:
        spec["timeout_seconds"] = _positive(timeout, "--timeout")
    return _text({"name": "goal-seek", "commands": [{"goal_seek": spec}]})


def batch_workflow(
    pattern: str,
    command: str,
    *,
    parallel: int = DEFAULT_PARALLEL,
    retry: int = 1,
    timeout: float | None = None,
) -> str:
    """A MapReduce workflow running `command` once per file matching `pattern`, each in its
    own agent (`${item}` is the file's path relative to the repository)."""
    if not pattern.strip():
        raise ValueError("the file pattern is empty")
    if parallel < 0:
        raise ValueError(f"--parallel must be 0 (the default, {DEFAULT_PARALLEL}) or more")
    spec: dict[str, Any] = {
        "input": find_command(pattern),
        "max_parallel": parallel or DEFAULT_PARALLEL,
        "agent_template": [command_step(command, retry=retry)],
    }
    if timeout is not None:
        spec["agent_timeout_secs"] = _positive(timeout, "--timeout")
    return _text(
        {
            "name": "batch",
            "mode": "mapreduce",
            "map": spec,
            "reduce": [
                {"shell": "echo 'Batch processing complete. Processed ${map.successful} items.'"}
            ],
        }
    )


def find_command(pattern: str) -> str:
    """The shell command listing the repository's files that match `pattern`."""
    test = "-path" if "/" in pattern else "-name"
    target = f"./{pattern.removeprefix('./')}" if test == "-path" else pattern
    return (
        f"find . -path ./.git -prune -o -type f {test} {shlex.quote(target)} -print"
        " | sed 's|^\\./||' | LC_ALL=C sort"
    )


def matching_files(paths: list[str], patterns: tuple[str, ...] | list[str]) -> list[str]:
    """The `paths` (relative to the repository) that match any of `patterns` by the rule
    `find_command` gives `find` (`run --map` matches committed files with it, so a pattern
    means the same to `run --map` and `batch`): without a `/`, the file's name; with one,
    the whole path, `*` crossing folders. In `paths`' order, each once."""
    wanted = []
    for path in paths:
        for pattern in patterns:
            if "/" in pattern:
                hit = fnmatch.fnmatchcase(path, pattern.removeprefix("./"))
            else:
                hit = fnmatch.fnmatchcase(path.rsplit("/", 1)[-1], pattern)
            if hit:
                wanted.append(path)
                break
    return wanted


def _positive(value: float, option: str) -> float:
    if value <= 0:
        raise ValueError(f"{option} must be a positive number of seconds, not {value:g}")
    return int(value) if float(value).is_integer() else value


def _text(workflow: dict[str, Any]) -> str:
    return json.dumps(workflow, indent=2, ensure_ascii=False) + "\n"
