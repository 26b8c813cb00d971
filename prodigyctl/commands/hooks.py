"""`hooks install|uninstall|status` and `triggers ls`: git events that start workflows.

`hooks install` writes a POSIX-sh shim for post-commit and pre-push into the repository's
hooks folder, `git rev-parse --git-path hooks`: the common one every worktree shares, or
`core.hooksPath` when it is set (said out loud, not refused). The shim starts no Python
and opens no socket: it writes one spool entry for prodigyd (prodigyd/watch/spool.py says
what is in it), starts the daemon in the background when none runs, and exits 0. So a
commit or a push never waits for prodigy and never fails because of it.

An existing hook that is not ours is kept: it moves to `<hook>.prodigy-legacy` and the
shim runs it first, with the same arguments and standard input, and exits with its status
when it fails (a refused push is no push, so it triggers nothing). `uninstall` removes our
shims and moves the chained hooks back. Our files are recognised by MARKER, never by
name. `PRODIGY_HOOKS=0` turns the shims off for one command (`PRODIGY_HOOKS=0 git commit`).
"""

from __future__ import annotations

import shlex
import subprocess
from pathlib import Path
from typing import Any

import click

from prodigyctl.client import Client, dumps
from prodigyctl.commands.service import installed_argv
from prodigyctl.errors import EXIT_CONFLICT, EXIT_FAILED, EXIT_OK
from prodigyd import protocol
from prodigyd.git.cli import REPO_PINNING_VARS, git_env
from prodigyd.watch.spool import HOOKS

MARKER = "# prodigy-hook v1"
LEGACY_SUFFIX = ".prodigy-legacy"

SHIM = r"""#!/bin/sh
@MARKER@: installed by `prodigyctl hooks install`, removed by
# `prodigyctl hooks uninstall`. It hands this git event to prodigyd through its spool
# folder and returns at once: it never makes git wait, and never makes it fail.
hook=${0##*/}
legacy="$0@LEGACY@"
status=0
if [ "$hook" = pre-push ]; then
    input=$(cat; echo x)
    input=${input%x}
    if [ -x "$legacy" ]; then
        printf '%s' "$input" | "$legacy" "$@" || status=$?
    fi
elif [ -x "$legacy" ]; then
    "$legacy" "$@" || status=$?
fi
if [ "$status" -ne 0 ] || [ "${PRODIGY_HOOKS:-1}" = 0 ]; then
    exit "$status"
fi
exec </dev/null >/dev/null 2>&1
umask 077
remote=$1
spool=${PRODIGY_HOME:-$HOME/.prodigy}/spool
[ -d "$spool" ] || mkdir -p "$spool" || exit 0
up=0
read -r up _ </proc/uptime
base=$spool/$up-$$
env -0 >"$base.env"
if [ "$hook" = pre-push ]; then printf '%s' "$input" >"$base.stdin"; fi
set -- $(git rev-parse HEAD --symbolic-full-name HEAD)
{
    echo "version=1"
    echo "hook=$hook"
    echo "repo=$PWD"
    echo "head=$1"
    echo "branch=$2"
    echo "remote=$remote"
    echo "automation=$PRODIGY_AUTOMATION"
    echo "session=$PRODIGY_SESSION_ID"
    echo "end=1"
} >"$base.event"
if [ -n "$PRODIGY_HOME" ]; then run=$PRODIGY_HOME
elif [ -n "$XDG_RUNTIME_DIR" ]; then run=$XDG_RUNTIME_DIR/prodigy
else run=$HOME/.prodigy; fi
pid=
read -r pid <"$run/prodigyd.pid"
if [ -z "$pid" ] || ! kill -0 "$pid"; then
    env@UNSET@ @PRODIGYCTL@ daemon start &
fi
exit 0
"""


def shim() -> str:
    """The hook script, with this installation's prodigyctl baked in."""
    return (
        SHIM.replace("@MARKER@", MARKER)
        .replace("@LEGACY@", LEGACY_SUFFIX)
        .replace("@UNSET@", "".join(f" -u {name}" for name in sorted(REPO_PINNING_VARS)))
        .replace("@PRODIGYCTL@", shlex.join(installed_argv("prodigyctl", "prodigyctl.main")))
    )


def hooks_dir(path: str | None) -> tuple[Path, bool]:
    """The folder git runs this repository's hooks from, and whether core.hooksPath chose it
    (rather than the git common dir every worktree shares)."""
    where = Path(path or ".").absolute()
    done = subprocess.run(
        ["git", "rev-parse", "--path-format=absolute", "--git-path", "hooks", "--git-common-dir"],
        cwd=where, capture_output=True, text=True, check=False, env=git_env(),
    )  # fmt: skip
    if done.returncode != 0:
        raise click.UsageError(f"{where} is not in a git repository ({done.stderr.strip()})")
    folder, common = (Path(line) for line in done.stdout.splitlines()[:2])
    return folder, folder != common / "hooks"


def ours(path: Path) -> bool:
    try:
        with path.open() as handle:
            return MARKER in handle.read(200)
    except (OSError, UnicodeDecodeError):
        return False


def install(*, path: str | None, as_json: bool) -> int:
    folder, custom = hooks_dir(path)
    blocked = [
        hook
        for hook in HOOKS
        if (folder / hook).exists()
        and not ours(folder / hook)
        and (folder / f"{hook}{LEGACY_SUFFIX}").exists()
    ]
    if blocked:
        for hook in blocked:
            click.echo(
                f"error: {folder / hook} is not prodigy's, and {hook}{LEGACY_SUFFIX} is taken; "
                "move one of them away",
                err=True,
            )
        return EXIT_CONFLICT
    folder.mkdir(parents=True, exist_ok=True)
    report = []
    for hook in HOOKS:
        target = folder / hook
        chained = target.exists() and not ours(target)
        if chained:
            target.rename(folder / f"{hook}{LEGACY_SUFFIX}")
        tmp = folder / f".{hook}.prodigy-tmp"
        tmp.write_text(shim())
        tmp.chmod(0o755)
        tmp.replace(target)
        report.append({"hook": hook, "path": str(target), "chained": chained})
    if as_json:
        click.echo(dumps({"hooks_dir": str(folder), "hooks_path": custom, "installed": report}))
        return EXIT_OK
    for entry in report:
        note = f" (runs your old hook first: {entry['hook']}{LEGACY_SUFFIX})"
        click.echo(f"installed {entry['path']}{note if entry['chained'] else ''}")
    if custom:
        click.echo(f"note: core.hooksPath is set, so they went to {folder}")
    click.echo(
        "workflows in .prodigy/workflows/ with `on: commit` or `on: push` now run by "
        "themselves; `prodigyctl triggers ls` lists them"
    )
    return EXIT_OK


def uninstall(*, path: str | None, as_json: bool) -> int:
    folder, _ = hooks_dir(path)
    removed, restored = [], []
    for hook in HOOKS:
        target, legacy = folder / hook, folder / f"{hook}{LEGACY_SUFFIX}"
        if not ours(target):
            continue
        target.unlink()
        removed.append(str(target))
        if legacy.exists():
            legacy.rename(target)
            restored.append(str(target))
    if as_json:
        click.echo(dumps({"hooks_dir": str(folder), "removed": removed, "restored": restored}))
    else:
        for name in removed:
            click.echo(f"removed {name}" + (" (your old hook is back)" if name in restored else ""))
        if not removed:
            click.echo(f"no prodigy hooks in {folder}")
    return EXIT_OK


def status(*, path: str | None, as_json: bool) -> int:
    """Exit 0 when every hook is installed, else 1 (for scripts: `hooks status || ...`)."""
    folder, _ = hooks_dir(path)
    rows = [_hook_status(folder, hook) for hook in HOOKS]
    if as_json:
        click.echo(dumps({"hooks_dir": str(folder), "hooks": rows}))
        return EXIT_OK
    for row in rows:
        chained = " (chains your old hook)" if row["chained"] else ""
        click.echo(f"{row['hook']:<12} {row['state']}{chained}")
    return EXIT_OK if all(row["state"] == "installed" for row in rows) else EXIT_FAILED


def _hook_status(folder: Path, hook: str) -> dict[str, Any]:
    target = folder / hook
    state = "installed" if ours(target) else "not prodigy's" if target.exists() else "missing"
    chained = (folder / f"{hook}{LEGACY_SUFFIX}").exists()
    return {"hook": hook, "path": str(target), "state": state, "chained": chained}


def list_triggers(*, path: str | None, as_json: bool) -> int:
    """The triggered workflows of this repository, as the daemon reads them."""
    with Client.connect() as client:
        result = client.call(protocol.TRIGGERS_LIST, {"repo": str(Path(path or ".").absolute())})
    if as_json:
        click.echo(dumps(result))
        return EXIT_OK
    if not result["workflows"]:
        click.echo(f"no workflows in {result['repo']}/.prodigy/workflows/")
    for workflow in result["workflows"]:
        if workflow["error"]:
            click.echo(f"{workflow['path']}: does not load:\n  {workflow['error']}")
            continue
        events = ", ".join(_describe(t) for t in workflow["on"]) or "no on: triggers"
        click.echo(f"{workflow['path']}: {events}")
    if result.get("dropped"):
        click.echo("recently not run:")
    for drop in result.get("dropped", []):
        click.echo(f"  {drop['timestamp']} {drop['why']}: {drop['message']}")
    for problem in result["problems"]:
        click.echo(f"recent problem (hook event {problem['event']}): {problem['error']}", err=True)
    return EXIT_OK


def _describe(trigger: dict[str, Any]) -> str:
    parts = [trigger["event"]]
    if trigger["branches"]:
        parts.append("on " + " ".join(trigger["branches"]))
    if trigger["paths"]:
        parts.append("touching " + " ".join(trigger["paths"]))
    parts.append(f"merge {trigger['merge']}")
    if trigger.get("include_prodigy_commits"):
        parts.append("including prodigy's commits")
    return " ".join(parts)
