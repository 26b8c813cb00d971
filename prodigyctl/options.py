"""Options that several commands take, each spelled once: a flag means the same thing, in
the same words, wherever it appears. Options of one module's commands live in that module.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

import click

if TYPE_CHECKING:
    from click.shell_completion import CompletionItem

#: A function a decorator hands back (click's options return the function they decorate).
F = TypeVar("F", bound=Callable[..., Any])

json_option = click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")


def note(text: str, as_json: bool) -> None:
    """A line for a person (`Following ...; Ctrl-C to stop.`, `resuming ID`) on stderr, and
    none under --json: there stdout holds the JSON and stderr an error object, if anything."""
    if not as_json:
        click.echo(text, err=True)


path_option = click.option(
    "-p", "--path", metavar="REPO", help="Repository to run in (default: the current one)."
)
detach_option = click.option(
    "--detach", is_flag=True, help="Return once the job is accepted; print its id."
)
yes_option = click.option("-y", "--yes", is_flag=True, help="Merge the result without asking.")
output_option = click.option(
    "-o", "--output", metavar="FILE", help="Write to FILE (atomically), not stdout."
)


def stacked(*decorators: Callable[[F], F]) -> Callable[[F], F]:
    """Options several commands take together, as one decorator: `--help` lists them in
    the order given, as if stacked one above the other over the command."""

    def apply(function: F) -> F:
        for decorator in reversed(decorators):
            function = decorator(function)
        return function

    return apply


def format_option(help: str | None = None) -> Callable[[F], F]:
    """`--format json|csv` of an export; `help` says what its CSV holds."""
    return click.option(
        "--format",
        "fmt",
        type=click.Choice(["json", "csv"]),
        default="json",
        show_default=True,
        help=help,
    )


def since_option(what: str) -> Callable[[F], F]:
    """`--since WHEN` for `what` (`events`), sent to the daemon as a stored timestamp."""
    return click.option(
        "--since",
        metavar="WHEN",
        callback=_since,
        help=f"Only {what} since WHEN: 30s, 10m, 2h, 3d ago, or an ISO 8601 time (UTC by default).",
    )


def _since(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    from prodigyctl.commands.events import parse_since

    return None if value is None else parse_since(value)


def complete_ids(
    ctx: click.Context, param: click.Parameter, incomplete: str
) -> list[CompletionItem]:
    """Session and job ids for shell completion, from the daemon if one is running.

    Never starts a daemon (a Tab press must not spawn one) and never fails: with no daemon,
    or any error, there is simply nothing to offer.
    """
    from click.shell_completion import CompletionItem

    from prodigyctl.client import Client
    from prodigyd import protocol

    try:
        with Client.connect(autostart=False) as client:
            rows = client.call(protocol.SESSIONS_LIST, {"limit": 1000})
    except Exception:  # completion offers nothing rather than a traceback
        return []
    return [
        CompletionItem(row["id"], help=f"{row.get('status')} {row.get('workflow') or ''}".strip())
        for row in rows
        if str(row.get("id", "")).startswith(incomplete)
    ]


def id_argument(name: str, **settings: Any) -> Callable[[F], F]:
    """A session or job id argument: any unique prefix or a job's tag is accepted (the
    daemon resolves it, store/sessions.py `resolve`), and the shell completes it from the
    daemon's sessions."""
    return click.argument(name, shell_complete=complete_ids, **settings)


def _count_verbose(ctx: click.Context, param: click.Parameter, value: int) -> None:
    ctx.meta["verbose"] = value


#: `-v`/`-vv` of the commands that show a session's progress; read back with `verbosity()`
#: where the renderer is made, so the commands' own signatures need not pass it along.
verbose_option = click.option(
    "-v",
    "--verbose",
    count=True,
    expose_value=False,
    callback=_count_verbose,
    help="More output: -v every line (no progress line), -vv also what Claude says.",
)


def verbosity() -> int:
    """The count of `-v` given to the running command (0 outside a command)."""
    ctx = click.get_current_context(silent=True)
    return int(ctx.meta.get("verbose", 0)) if ctx is not None else 0
