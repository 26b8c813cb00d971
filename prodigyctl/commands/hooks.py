"""`hooks install|uninstall|status` and `triggers ls`: git events that start workflows.

`hooks install` copies the POSIX-sh shim, `hooks/prodigy-hook`, in as post-commit and
pre-push, into the repository's hooks folder, `git rev-parse --git-path hooks`: the common
one every worktree shares, or `core.hooksPath` when it is set (said out loud, not refused).
The shim starts no Python and opens no socket: it writes one spool entry for prodigyd
(prodigyd/watch/spool.py says what is in it), starts this installation's prodigyd in the
background when none runs (one for a burst of commits), and exits 0. So a commit or a
push never waits for prodigy and never fails because of it.

An existing hook that is not ours is kept: it moves to `<hook>.prodigy-legacy` and the
shim runs it first, with the same arguments and standard input, and exits with its status
when it fails (a refused push is no push, so it triggers nothing). `uninstall` removes our
shims and moves the chained hooks back. Our files are recognised by OURS, never by
name; `status` calls one that is not this installation's shim `outdated`.
`PRODIGY_HOOKS=0` turns the shims off for one command (`PRODIGY_HOOKS=0 git commit`).

git, the spool and the unit helpers of service.py load the store and asyncio: the functions
that use them import them, so `--help` does not.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, NamedTuple

import click

from prodigyctl.client import Client, dumps
from prodigyctl.commands import command, group
from prodigyctl.errors import fail
from prodigyctl.exitcodes import EXIT_CONFLICT, EXIT_FAILED, EXIT_OK, EXIT_USAGE
from prodigyctl.options import json_option, path_option
from prodigyd import errorcodes, protocol

#: What marks a hook file as prodigy's, whatever its version (the current one is MARKER).
OURS = "# prodigy-hook v"
MARKER = f"{OURS}2"
LEGACY_SUFFIX = ".prodigy-legacy"
#: The shim, a real file: `hooks/prodigy-hook` in the source tree (prodigyctl/hooks links to
#: it), package data once installed. It is the same for post-commit and pre-push.
SHIM_FILE = Path(__file__).parents[1] / "hooks" / "prodigy-hook"
#: The line of it that says how to run prodigyd; `install` writes this installation's there.
DAEMON_LINE = 'run_prodigyd() { exec prodigyd "$@"; }'
#: The line of it that names the home `install` ran with (`installed_home`), when it had one.
HOME_LINE = "installed_home=''"

hooks = group(
    "hooks", "Git hooks (post-commit, pre-push) that start the repository's triggered workflows."
)
triggers = group(
    "triggers", "Workflows in .prodigy/workflows/ that git events start (their `on:` triggers)."
)


def shim(*, home: str | None, _daemon: Sequence[str] | None = None) -> str:
    """The hook script, with this installation's prodigyd baked in (`_daemon`: another
    command, for tests) and `home` (`installed_home`)."""
    import shlex

    from prodigyctl.commands.service import daemon_argv

    text = SHIM_FILE.read_text()
    lines = text.splitlines()
    if lines.count(DAEMON_LINE) != 1 or lines.count(HOME_LINE) != 1 or MARKER not in text[:200]:
        raise click.ClickException(f"{SHIM_FILE} is not prodigy's hook shim: reinstall prodigy")
    argv = daemon_argv() if _daemon is None else _daemon
    text = text.replace(DAEMON_LINE, f'run_prodigyd() {{ exec {shlex.join(argv)} "$@"; }}')
    return text if home is None else text.replace(HOME_LINE, f"installed_home={shlex.quote(home)}")


def installed_home() -> str | None:
    """The home the hooks keep for commits made without PRODIGY_HOME: this one's, when it
    is set (whoever sets it does so for a reason the hooks should not forget)."""
    import os

    from prodigyd import paths

    return str(paths.home()) if os.environ.get("PRODIGY_HOME") else None


class HooksDir(NamedTuple):
    folder: Path  # where git runs this repository's hooks from
    custom: bool  # core.hooksPath chose it (not the git common dir every worktree shares)
    bare: bool  # a bare repository: pushed to, it runs neither of prodigy's hooks


def hooks_dir(path: str | None) -> HooksDir:
    """Where git runs the repository's hooks from, and what kind of place that is. A path
    outside a repository, or no folder at all, is E3001, as the daemon says it for
    `triggers ls`."""
    asked = ["--path-format=absolute", "--git-path", "hooks", "--git-common-dir"]
    folder, common, bare = _rev_parse(path, [*asked, "--is-bare-repository"])
    return HooksDir(Path(folder), Path(folder) != Path(common) / "hooks", bare == "true")


def _rev_parse(path: str | None, asked: list[str]) -> list[str]:
    """`git rev-parse ASKED...` in the repository at `path`, line by line; E3001 outside
    one."""
    import subprocess

    from prodigyd.git.cli import git_env

    where = Path(path or ".").absolute()
    done = subprocess.run(  # -C, not cwd=: a missing folder is git's to report, not an OSError
        ["git", "-C", str(where), "rev-parse", *asked],
        capture_output=True,
        text=True,
        check=False,
        env=git_env(),
    )
    if done.returncode != 0:
        fail(
            errorcodes.NOT_A_REPO,
            f"Not a git repository: {where}",
            EXIT_USAGE,
            hint="run prodigyctl from inside a git repository, or pass -p/--path REPO",
        )
    return done.stdout.splitlines()


def ours(path: Path) -> bool:
    """Whether `path` is a hook prodigy wrote, of this version or an earlier one."""
    try:
        with path.open() as handle:
            return OURS in handle.read(200)
    except (OSError, UnicodeDecodeError):
        return False


def _refuse_unfit(where: HooksDir, path: str | None, *, force: bool) -> None:
    """Refuse a repository whose hooks never run (a bare one: it is pushed to, and git runs
    no post-commit or pre-push there), and, unless forced, a core.hooksPath inside the
    working tree (a husky's `.husky`): a hook written there would be committed, with this
    machine's paths in it, for every clone, the team's own hook moved aside where no clone
    has it."""
    if where.bare:
        fail(
            errorcodes.NOT_A_REPO,
            f"{Path(path or '.').absolute()} is a bare repository: git runs no post-commit or "
            "pre-push hook in a repository that is only pushed to",
            EXIT_USAGE,
            hint="install the hooks in the clone you commit and push from",
        )
    if not where.custom or force:
        return
    [top] = _rev_parse(path, ["--show-toplevel"])
    if where.folder.resolve().is_relative_to(Path(top).resolve()):
        fail(
            errorcodes.CONFLICT,
            f"core.hooksPath is {where.folder}, inside the working tree: prodigy's hooks "
            "written there would be committed with the repository (with this machine's paths "
            "in them), and the hooks they replace moved aside where no other clone has them",
            EXIT_CONFLICT,
            hint="install with --force to write them there all the same (and keep them out "
            "of your commits), or unset core.hooksPath in this clone (`git config --unset "
            "core.hooksPath`) to have them in .git/hooks",
        )


@command("install", hooks)
@path_option
@click.option(
    "--force",
    is_flag=True,
    help="Install into a core.hooksPath folder inside the working tree (a .husky) all the same.",
)
@json_option
def install(
    *,
    path: str | None,
    as_json: bool,
    force: bool = False,
    _daemon: Sequence[str] | None = None,
) -> int:
    """Install the hooks; a hook already there is kept and run first."""
    from prodigyd.watch.spool import HOOKS

    where = hooks_dir(path)
    _refuse_unfit(where, path, force=force)
    folder, custom = where.folder, where.custom
    blocked = [
        hook
        for hook in HOOKS
        if (folder / hook).exists()
        and not ours(folder / hook)
        and (folder / f"{hook}{LEGACY_SUFFIX}").exists()
    ]
    if blocked:
        message = "\n".join(
            f"{folder / hook} is not prodigy's, and {hook}{LEGACY_SUFFIX} is taken; "
            "move one of them away"
            for hook in blocked
        )
        fail(errorcodes.CONFLICT, message, EXIT_CONFLICT)
    text = shim(home=installed_home(), _daemon=_daemon)
    folder.mkdir(parents=True, exist_ok=True)
    report = []
    for hook in HOOKS:
        target = folder / hook
        chained = target.exists() and not ours(target)
        if chained:
            target.rename(folder / f"{hook}{LEGACY_SUFFIX}")
        tmp = folder / f".{hook}.prodigy-tmp"
        tmp.write_text(text)
        tmp.chmod(0o755)
        tmp.replace(target)
        report.append({"hook": hook, "path": str(target), "chained": chained})
    home = installed_home()
    if as_json:
        hooks_path = str(folder) if custom else None  # core.hooksPath's folder, when set
        shown = {"hooks_dir": str(folder), "hooks_path": hooks_path, "home": home}
        click.echo(dumps({**shown, "installed": report}))
        return EXIT_OK
    for entry in report:
        note = f" (runs your old hook first: {entry['hook']}{LEGACY_SUFFIX})"
        click.echo(f"installed {entry['path']}{note if entry['chained'] else ''}")
    if custom:
        click.echo(f"note: core.hooksPath is set, so they went to {folder}")
    if home is not None:
        click.echo(f"note: a commit made without PRODIGY_HOME set (an editor's) uses {home}")
    click.echo(_what_runs(path))
    return EXIT_OK


def _what_runs(path: str | None) -> str:
    """What the hooks now start: the workflows of the repository's .prodigy/workflows/, or,
    when it has none, what to add there, so no one waits for a commit to run nothing."""
    from prodigyctl.gittop import repository_top
    from prodigyd.watch.triggers import FOLDER, SUFFIXES

    folder = (repository_top(path) or Path(path or ".").absolute()) / FOLDER
    if folder.is_dir() and any(f.suffix in SUFFIXES and f.is_file() for f in folder.iterdir()):
        return (
            f"workflows in {FOLDER}/ with `on: commit` or `on: push` now run by "
            "themselves; `prodigyctl triggers ls` lists them"
        )
    return (
        f"nothing runs yet: the hooks start the workflows in {folder}/ with `on: commit` or "
        '`on: push`, and there are none; add one (docs/workflows.md, "Triggers")'
    )


@command("uninstall", hooks)
@path_option
@json_option
def uninstall(*, path: str | None, as_json: bool) -> int:
    """Remove prodigy's hooks and put back the ones they chained."""
    from prodigyd.watch.spool import HOOKS

    folder = hooks_dir(path).folder
    removed, restored, left = [], [], []
    for hook in HOOKS:
        target, legacy = folder / hook, folder / f"{hook}{LEGACY_SUFFIX}"
        if not ours(target):
            if legacy.exists():  # ours was replaced by another's: this one is nobody's now
                left.append(str(legacy))
            continue
        target.unlink()
        removed.append(str(target))
        if legacy.exists():
            legacy.rename(target)
            restored.append(str(target))
    if as_json:
        shown = {"hooks_dir": str(folder), "removed": removed, "restored": restored}
        click.echo(dumps({**shown, "left_over": left}))
        return EXIT_OK
    for name in removed:
        click.echo(f"removed {name}" + (" (your old hook is back)" if name in restored else ""))
    if not removed:
        click.echo(f"no prodigy hooks in {folder}")
    for name in left:  # never removed or moved here: it is the user's hook
        click.echo(
            f"note: {name} is the hook prodigy's ran first, left when another tool replaced "
            "prodigy's: move it back, or remove it",
            err=True,
        )
    return EXIT_OK


# For scripts: `prodigyctl hooks status || ...`.
@command("status", hooks)
@path_option
@json_option
def status(*, path: str | None, as_json: bool) -> int:
    """Whether each hook is installed (exit 1 when one is not)."""
    from prodigyd.watch.spool import HOOKS

    folder = hooks_dir(path).folder
    rows = [_hook_status(folder, hook) for hook in HOOKS]
    code = EXIT_OK if all(row["state"] == "installed" for row in rows) else EXIT_FAILED
    if as_json:
        click.echo(dumps({"hooks_dir": str(folder), "hooks": rows}))
        return code
    for row in rows:
        chained = " (chains your old hook)" if row["chained"] else ""
        click.echo(f"{row['hook']:<12} {row['state']}{chained}")
        if row["left_over"]:
            click.echo(
                f"  {row['left_over']}: the hook prodigy's once ran first, run by nothing now "
                "(another tool replaced prodigy's hook): move it back, or remove it"
            )
    if any(row["state"] == "outdated" for row in rows):
        click.echo("`prodigyctl hooks install` replaces the outdated hooks")
    return code


def _hook_status(folder: Path, hook: str) -> dict[str, Any]:
    """`installed`; `outdated` (an earlier prodigy's, or another installation's: `install`
    replaces it); `not prodigy's`; or `missing`."""
    target = folder / hook
    if ours(target):
        state = "installed" if _homeless(_text(target)) == shim(home=None) else "outdated"
    else:
        state = "not prodigy's" if target.exists() else "missing"
    legacy = folder / f"{hook}{LEGACY_SUFFIX}"
    # Only our hook chains the one it moved aside; beside another's, that copy is left over
    chained = legacy.exists() and ours(target)
    left = str(legacy) if legacy.exists() and not chained else None
    return {
        "hook": hook,
        "path": str(target),
        "state": state,
        "chained": chained,
        "left_over": left,
    }


def _homeless(text: str | None) -> str | None:
    """The hook's text with the home it keeps left out: which home that is (the one
    `install` ran with) does not make a hook outdated, whatever the caller's now is."""
    import re

    if text is None:
        return None
    return re.sub(r"(?m)^installed_home=.*$", HOME_LINE, text, count=1)


def _text(path: Path) -> str | None:
    try:
        return path.read_text()
    except (OSError, UnicodeDecodeError):
        return None


@command("ls", triggers)
@path_option
@json_option
def list_triggers(*, path: str | None, as_json: bool) -> int:
    """The repository's triggered workflows, and the latest problems with hook events."""
    from prodigyd.watch.spool import HOOKS

    with Client.connect() as client:
        result = client.call(protocol.TRIGGERS_LIST, {"repo": str(Path(path or ".").absolute())})
    folder = hooks_dir(result["repo"]).folder
    result["hooks"] = all(ours(folder / hook) for hook in HOOKS)  # installed here
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
    for line in _undelivered(result):
        click.echo(f"note: {line}", err=True)
    return EXIT_OK


#: Which events each way of seeing git events delivers (docs/workflows.md, "Triggers"),
#: and how it is set up.
_DELIVERERS = (
    ("hooks", {"commit", "push"}, "`prodigyctl hooks install`"),
    ("watched", {"commit", "ref", "files"}, "`prodigyctl watch add`"),
)


def _undelivered(result: dict[str, Any]) -> list[str]:
    """What the workflows' triggers wait for that nothing here delivers: `on: push` with no
    hooks installed, `on: ref` in a repository nobody watches, and so on."""
    wanted = {t["event"] for w in result["workflows"] for t in w["on"]}
    lines = []
    for event in sorted(wanted):
        ways = [(key, fix) for key, events, fix in _DELIVERERS if event in events]
        if not any(result[key] for key, _ in ways):
            fixes = " or ".join(fix for _, fix in ways)
            lines.append(f"nothing here delivers `on: {event}`: {fixes} does")
    return lines


def _describe(trigger: dict[str, Any]) -> str:
    parts = [trigger["event"]]
    if trigger["branches"]:
        parts.append("on " + " ".join(trigger["branches"]))
    if trigger.get("tags"):
        parts.append("tags " + " ".join(trigger["tags"]))
    if trigger["paths"]:
        parts.append("touching " + " ".join(trigger["paths"]))
    if trigger.get("ignore"):
        parts.append("except " + " ".join(trigger["ignore"]))
    if trigger["event"] == "files" and trigger.get("settle") is not None:
        parts.append(f"settle {trigger['settle']:g}s")
    parts.append(f"merge {trigger['merge']}")
    if trigger.get("include_prodigy_commits"):
        parts.append("including prodigy's commits")
    return " ".join(parts)
