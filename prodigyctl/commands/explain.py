"""`explain CODE`: what an error code means and what to do about it (as `rustc --explain`).

The text is the registry's (prodigyd/errorcodes.py), the same docs/errors.md lists.
"""

from __future__ import annotations

import click

from prodigyctl.client import dumps
from prodigyctl.commands import command
from prodigyctl.errors import fail
from prodigyctl.exitcodes import EXIT_NOT_FOUND, EXIT_OK
from prodigyctl.options import json_option
from prodigyd import errorcodes


@command("explain")
@click.argument("code")
@json_option
def explain(*, code: str, as_json: bool) -> int:
    """What error CODE (E1002, as in `error[E1002]: ...`) means and what to do about it."""
    wanted = code.strip().upper()
    wanted = f"E{wanted}" if wanted.isdigit() else wanted  # `explain 1002` as `E1002`
    entry = errorcodes.REGISTRY.get(wanted)
    if entry is None:
        fail(
            errorcodes.NOT_FOUND,
            f"no error code {code!r}; docs/errors.md lists them all",
            EXIT_NOT_FOUND,
        )
    if as_json:
        click.echo(dumps(entry._asdict()))
    else:
        click.echo(f"{entry.code}: {entry.title}\n\n{click.wrap_text(entry.help, 79)}")
    return EXIT_OK
