"""`config show|get|set|unset|path`: read and edit `$PRODIGY_HOME/config.toml`.

These commands never talk to the daemon: the client reads and writes the file itself.
prodigyd reads its configuration once, at start, so a change applies after `prodigyctl
daemon stop` (the next command starts it again). Values shown are what a daemon started
from *this* environment would use, since PRODIGY_* variables override the file.

Importing `prodigyd.config` pulls in pydantic, so each command imports it itself: `--help`
and the other commands stay fast.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

import click

from prodigyctl.client import dumps
from prodigyctl.commands import command, group
from prodigyctl.errors import show_error
from prodigyctl.exitcodes import EXIT_OK, EXIT_USAGE
from prodigyctl.options import json_option
from prodigyd import paths

if TYPE_CHECKING:
    from prodigyd import config as cfg

#: Appended to set/unset: the running daemon keeps the configuration it started with.
RESTART_NOTE = "restart prodigyd to apply: prodigyctl daemon stop"


config = group(
    "config", "Show or edit $PRODIGY_HOME/config.toml (prodigyd reads it when it starts)."
)


@command("show", config)
@json_option
def show(*, as_json: bool) -> int:
    """Every setting, its value and where the value comes from (default, file or env)."""
    from prodigyd import config as cfg

    try:
        values = cfg.describe(cfg.load())
        origins = cfg.sources(os.environ)
    except cfg.ConfigError as err:
        return _fail(err)
    for warning in cfg.misspelt_variables(os.environ):
        click.echo(f"warning: {warning}", err=True)
    path = paths.config_file()
    if as_json:
        keys = {key: {"value": value, "source": origins[key]} for key, value in values.items()}
        click.echo(dumps({"file": str(path), "exists": path.exists(), "keys": keys}))
        return EXIT_OK
    absent = "" if path.exists() else " (does not exist: defaults apply)"
    click.echo(f"config file: {path}{absent}")
    rows = [("KEY", "VALUE", "SOURCE")]
    rows += [(key, _human(value), origins[key]) for key, value in values.items()]
    widths = [max(len(row[column]) for row in rows) for column in range(2)]
    for key, value, source in rows:
        click.echo(f"{key:<{widths[0]}}  {value:<{widths[1]}}  {source}")
    return EXIT_OK


# --json adds where the value comes from.
@command("get", config)
@click.argument("key")
@json_option
def get(*, key: str, as_json: bool) -> int:
    """Print the value of KEY (dotted, e.g. claude.model)."""
    from prodigyd import config as cfg

    try:
        value = cfg.get_value(cfg.load(), key)
        source = cfg.sources(os.environ)[key]
    except cfg.ConfigError as err:
        return _fail(err)
    click.echo(dumps({"key": key, "value": value, "source": source}) if as_json else _human(value))
    return EXIT_OK


# It warns when an environment variable will still override the file, and of the file's other
# problems (the value set must be valid; the rest need not be yet). ignore_unknown_options:
# `config set claude.extra_args --verbose` passes `--verbose` as VALUE.
@command("set", config, context_settings={"ignore_unknown_options": True})
@click.argument("key")
@click.argument("value")
def set_(*, key: str, value: str) -> int:
    """Write KEY = VALUE to the config file; applies when prodigyd restarts."""
    from prodigyd import config as cfg

    try:
        written = cfg.set_value(key, value)
        source = cfg.sources(os.environ)[key]
        left = cfg.check_file()
    except cfg.ConfigError as err:
        return _fail(err)
    click.echo(f"{key} = {_human(written)} ({RESTART_NOTE})")
    _warn_if_overridden(source)
    _warn_of_problems(left)
    return EXIT_OK


@command("unset", config)
@click.argument("key")
def unset(*, key: str) -> int:
    """Remove KEY from the config file, so its default applies; applies when prodigyd restarts."""
    from prodigyd import config as cfg

    try:
        cfg.unset_value(key)
        source = cfg.sources(os.environ).get(key, "default")
        left = cfg.check_file()
    except cfg.ConfigError as err:
        return _fail(err)
    click.echo(f"{key} unset ({RESTART_NOTE})")
    _warn_if_overridden(source)
    _warn_of_problems(left)
    return EXIT_OK


@command("path", config)
def path() -> int:
    """Print where the config file is (or would be)."""
    click.echo(str(paths.config_file()))
    return EXIT_OK


def _warn_if_overridden(source: str) -> None:
    if source.startswith("env:"):
        variable = source.removeprefix("env:")
        click.echo(f"note: {variable} is set here and overrides the config file", err=True)


def _warn_of_problems(problems: list[str]) -> None:
    """What set/unset left wrong in the file: they edit a file with problems (one fix at a
    time), and prodigyd refuses to start until none is left."""
    for problem in problems:
        click.echo(f"warning: {problem}", err=True)


def _human(value: Any) -> str:
    """Values as TOML spells them, so they can be pasted back into `config set`."""
    if value is None:
        return "(not set)"
    if isinstance(value, bool | list):
        return dumps(value)
    return str(value)


def _fail(err: cfg.ConfigError) -> int:
    """A bad config file or key: a usage error (exit 2), an error object under --json."""
    show_error(err)
    return EXIT_USAGE
