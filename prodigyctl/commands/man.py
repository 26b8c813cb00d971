"""`man ls|show|install`: the man pages shipped with prodigyctl (see prodigyctl/manpages.py).

`install` copies them into the user's man folder, `$XDG_DATA_HOME/man` (default
`~/.local/share/man`), in man1/, man5/ and man8/; man-db searches it when `~/.local/bin`
is on PATH, and otherwise it can be added to MANPATH. Installing again replaces them;
`--uninstall` removes exactly the pages prodigyctl ships, nothing else. `show` formats one
page with `man -l`, so a page can be read before anything is installed.

`--help` loads this module to list the commands: manpages.py and subprocess are imported
by the functions that use them.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import click

from prodigyctl.client import dumps
from prodigyctl.commands import command, group
from prodigyctl.errors import fail
from prodigyctl.exitcodes import EXIT_NOT_FOUND, EXIT_OK, EXIT_USAGE
from prodigyctl.options import json_option
from prodigyd import errorcodes, paths

man = group(
    "man",
    "Man pages: prodigyctl(1) and one per command, prodigyd(8), prodigy-workflow(5), "
    "prodigy-config(5).",
)


@command("ls", man)
@json_option
def list_pages(*, as_json: bool) -> int:
    """The pages shipped with prodigyctl."""
    from prodigyctl.manpages import shipped_paths

    names = [page.name for page in shipped_paths()]
    click.echo(dumps(names) if as_json else "\n".join(names))
    return EXIT_OK


# Formats the page on stdout (`man -l`).
@command("show", man)
@click.argument("topic", nargs=-1, required=True)
def show(*, topic: tuple[str, ...]) -> int:
    """Read one page: a command (`dlq retry`) or a page name (`prodigy-workflow`)."""
    import subprocess

    wanted = " ".join(topic)
    page = find(wanted)
    if page is None:
        message = f"no man page for {wanted!r}; `prodigyctl man ls` lists them"
        fail(errorcodes.NOT_FOUND, message, EXIT_NOT_FOUND)
    if shutil.which("man") is None:
        fail(errorcodes.ERROR, f"`man` is not installed; the page is {page}", EXIT_USAGE)
    return subprocess.run(["man", "-l", str(page)], check=False).returncode


def find(topic: str) -> Path | None:
    """The page for a topic: a page name (with its section, as `man ls` lists it, or
    without), or a command path with or without `prodigyctl`."""
    from prodigyctl.manpages import shipped_paths

    words = topic.replace("-", " ").split()
    wanted = {topic, "-".join(words), "-".join(["prodigyctl", *words])}
    pages = shipped_paths()
    return next((page for page in pages if page.name == topic or page.stem in wanted), None)


@command("install", man)
@click.option(
    "--dir",
    "folder",
    metavar="DIR",
    help="Man folder to install into (default: $XDG_DATA_HOME/man, ~/.local/share/man).",
)
@click.option("--uninstall", is_flag=True, help="Remove the pages instead.")
@json_option
def install(*, folder: str | None, uninstall: bool, as_json: bool) -> int:
    """Install the pages where `man` finds them (man1/, man5/, man8/ of DIR)."""
    from prodigyctl.manpages import shipped_paths

    root = Path(folder).expanduser().absolute() if folder else paths.user_man_dir()
    done = []
    for page in shipped_paths():
        target = root / f"man{page.suffix[1:]}" / page.name
        if uninstall:
            if target.exists():
                target.unlink()
                done.append(str(target))
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(page, target)
        done.append(str(target))
    if as_json:
        click.echo(dumps({"dir": str(root), "uninstalled" if uninstall else "installed": done}))
    elif uninstall:
        click.echo(f"removed {len(done)} man pages from {root}")
    else:
        click.echo(f"installed {len(done)} man pages in {root}")
        click.echo(
            "read them with `man prodigyctl`; if man does not find them: "
            f'export MANPATH="{root}:$MANPATH"'
        )
    return EXIT_OK
