"""`watch add|rm|ls`: repositories the daemon watches itself, without git hooks.

The daemon keeps the list (prodigyd/watch/repos.py) and watches each repository's refs and
`.prodigy/workflows/` files (prodigyd/watch/refwatch.py); these commands only ask it.
PATH is any folder inside the repository (default: the current one); the daemon resolves
it to the repository's top folder, so the client never runs git.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from prodigyctl.client import Client, dumps
from prodigyctl.commands import command, group
from prodigyctl.exitcodes import EXIT_OK
from prodigyctl.options import json_option
from prodigyd import protocol

watch = group(
    "watch", "Repositories the daemon watches itself: their triggers fire without git hooks."
)
path_argument = click.argument("path", required=False, metavar="[PATH]")


@command("add", watch)
@path_argument
@json_option
def add(*, path: str | None, as_json: bool) -> int:
    """Watch the repository holding PATH (default: the current one)."""
    with Client.connect() as client:
        result = client.call(protocol.WATCH_ADD, {"path": _absolute(path)})
    if as_json:
        click.echo(dumps(result))
        return EXIT_OK
    verb = "watching" if result["added"] else "already watching"
    click.echo(f"{verb} {result['path']}")
    _echo_problems(result)
    return EXIT_OK


@command("rm", watch)
@path_argument
@json_option
def remove(*, path: str | None, as_json: bool) -> int:
    """Stop watching the repository holding PATH (default: the current one)."""
    with Client.connect() as client:
        result = client.call(protocol.WATCH_REMOVE, {"path": _absolute(path)})
    if as_json:
        click.echo(dumps(result))
    else:
        click.echo(f"no longer watching {result['path']}")
    return EXIT_OK


@command("ls", watch)
@json_option
def list_watched(*, as_json: bool) -> int:
    """The watched repositories: watching, polling, or missing."""
    with Client.connect() as client:
        result = client.call(protocol.WATCH_LIST)
    if as_json:
        click.echo(dumps(result))
        return EXIT_OK
    if not result["repositories"]:
        click.echo("No repository is watched (prodigyctl watch add PATH).")
    for repo in result["repositories"]:
        click.echo(f"{repo['status']:<9} {repo['path']}")
        _echo_problems(repo)
    return EXIT_OK


def _echo_problems(repo: dict[str, Any]) -> None:
    if repo["status"] == "missing":
        click.echo(f"  {repo['problem']}")
    for workflow in repo["workflows"]:
        if workflow["error"]:
            click.echo(f"  {workflow['path']}: does not load:\n    {workflow['error']}")


def _absolute(path: str | None) -> str:
    return str(Path(path or ".").absolute())
