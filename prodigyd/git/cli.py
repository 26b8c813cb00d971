"""The one door to the git command line.

Everything that changes a worktree or a branch runs the git CLI: a git subprocess costs
the event loop nothing, while libgit2 holds the GIL during checkout-sized work
(deps-probe §1a). Only small reads go through pygit2 (git/objects.py), with this door as
their fallback. Every git child goes through `prodigyd.proc.run`, so it gets its own
process group and is killed with the job that started it.
"""

from __future__ import annotations

import asyncio
import os
import re
import shlex
import textwrap
from collections.abc import Mapping
from pathlib import Path
from typing import NoReturn

from prodigyd.errors import GitError
from prodigyd.proc import Completed, run
from prodigyd.store import space

#: Variables that pin git to one repository. A git hook (or a `git rebase --exec`) that
#: starts prodigyctl exports them; inherited, they would make every git call we run inside
#: a session worktree act on the hook's repository instead.
REPO_PINNING_VARS = frozenset(
    {
        "GIT_DIR",
        "GIT_INDEX_FILE",
        "GIT_WORK_TREE",
        "GIT_OBJECT_DIRECTORY",
        "GIT_ALTERNATE_OBJECT_DIRECTORIES",
        "GIT_PREFIX",
        "GIT_COMMON_DIR",
    }
)


#: Set in every process prodigy starts: a job's steps (engine/env.py) and prodigy's own git
#: calls (`git_env`: its merges). A git hook that runs inside one of them sees it, so the
#: hook shim can tell prodigy's commits from the user's (watch/spool.py, `by=`) and a
#: session's commit never fires an `on:` trigger again (docs/workflows.md, "Triggers").
AUTOMATION_VAR = "PRODIGY_AUTOMATION"
#: Set in every process of a session (engine/session.py) and of its map agents: which one.
SESSION_VAR = "PRODIGY_SESSION_ID"


#: git 2.39 dies when it reads the admin folder of a worktree another git is adding at
#: that moment ("fatal: failed to read .git/worktrees/<name>/commondir": the file exists
#: but is still empty). Every command that looks at all worktrees can meet it: `worktree
#: add` and `list`, `branch -D`, `checkout -B`. It dies while checking, before changing
#: anything, so the command is simply run again.
WORKTREE_RACE = re.compile(r"^fatal: failed to read .*/worktrees/[^/\n]+/commondir", re.M)
RACE_ATTEMPTS = 6


def git_env(base: Mapping[str, str] | None = None) -> dict[str, str]:
    """An environment for a git child: `base` (default: ours) minus repository pinning.

    Credentials helpers (GIT_SSH*, GIT_ASKPASS), GIT_CONFIG_* and the author/committer
    identity pass through untouched. GIT_TERMINAL_PROMPT=0 makes a git that wants a
    password fail instead of waiting on a terminal the daemon does not have; LC_ALL=C keeps
    messages in the English we parse; AUTOMATION_VAR marks what git does (and the hooks it
    runs) as prodigy's.
    """
    source = os.environ if base is None else base
    env = {key: value for key, value in source.items() if key not in REPO_PINNING_VARS}
    env["GIT_TERMINAL_PROMPT"] = "0"
    env["LC_ALL"] = "C"
    env[AUTOMATION_VAR] = "true"
    return env


async def git(
    cwd: Path | str,
    *args: str,
    check: bool = True,
    env: Mapping[str, str] | None = None,
) -> Completed:
    """Run `git <args>` in `cwd`.

    With `check` a failure raises a GitError that names the command and carries its exit
    code and output, so the user sees git's own explanation. `env` is the base environment
    (default: ours); it is always passed through `git_env`.
    """
    argv = ["git", *args]
    child_env = git_env(env)
    for attempt in range(1, RACE_ATTEMPTS + 1):
        try:
            done = await run(argv, cwd=cwd, env=child_env)
        except OSError as exc:  # no git on PATH, or cwd is not a directory
            raise GitError(
                f"Cannot run `{shlex.join(argv)}` in {cwd}: {exc.strerror or exc}",
                hint="check that git is installed and the directory exists",
            ) from exc
        if done.ok or not WORKTREE_RACE.search(done.stderr):
            break
        await asyncio.sleep(0.005 * attempt)
    if check and not done.ok:
        raise_failure(done, cwd)
    return done


def raise_failure(done: Completed, cwd: Path | str) -> NoReturn:
    """Raise the GitError for a git that failed: for callers that check exit codes themselves.

    A git that ran out of disk space (worktrees live in the store, so a full store fills
    them too) raises NoSpace naming the path instead, as every other full-disk write does."""
    full = space.in_git_output(done.stderr, cwd)
    if full is not None:
        raise space.no_space(full, details=describe_failure(done))
    raise GitError(f"`{shlex.join(done.argv)}` failed in {cwd}", details=describe_failure(done))


def describe_failure(done: Completed) -> str:
    """The exit code and both output streams of a failed git, indented for reading."""
    status = "timed out" if done.timed_out else f"exit code {done.returncode}"
    parts = [status]
    for name, text in (("stdout", done.stdout), ("stderr", done.stderr)):
        body = text.rstrip("\n")
        parts.append(f"{name}:\n{textwrap.indent(body, '    ')}" if body else f"{name}: (empty)")
    return "\n".join(parts)
