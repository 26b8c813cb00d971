"""`daemon install-service [--uninstall]`: run prodigyd under the user's systemd.

It writes prodigyd.service and prodigyd.socket to the user unit folder, with ExecStart set
to this installation's prodigyd, and prints the systemctl line that enables them; it never
runs systemctl itself, since it cannot know whether a user manager is there to answer.
Every file it writes starts with MARKER, and it only overwrites or removes files that do:
a unit the user wrote by hand is never touched.

The units are the files in the source tree's systemd/, shipped as package data through the
prodigyctl/systemd link to it; ExecStart in prodigyd.service is EXEC_PLACEHOLDER there.
"""

from __future__ import annotations

import math
import os
import sys
import sysconfig
from collections.abc import Sequence
from pathlib import Path

import click

from prodigyctl.client import dumps
from prodigyctl.errors import fail
from prodigyctl.exitcodes import EXIT_CONFLICT, EXIT_OK, EXIT_USAGE
from prodigyd import errorcodes, paths
from prodigyd.store.atomic import write_bytes_atomic

#: The first line of every unit file install-service writes: the proof that it may change it.
MARKER = "# Installed by prodigyctl daemon install-service"

#: Replaced by the rendered ExecStart command line.
EXEC_PLACEHOLDER = "@PRODIGYD@"
#: Where the service unit's TimeoutStopSec goes (`render`).
TIMEOUT_PLACEHOLDER = "@TIMEOUT_STOP@"

SERVICE_UNIT = "prodigyd.service"
SOCKET_UNIT = "prodigyd.socket"

ENABLE_LINE = f"systemctl --user daemon-reload && systemctl --user enable --now {SOCKET_UNIT}"
# `;`: stop fails for units systemd never loaded, and the reload must happen regardless.
DISABLE_LINE = f"systemctl --user stop {SOCKET_UNIT} {SERVICE_UNIT}; systemctl --user daemon-reload"

#: The unit files as shipped: systemd/ in the source tree (prodigyctl/systemd links to it),
#: package data once installed.
UNITS_DIR = Path(__file__).parents[1] / "systemd"
UNITS = (SERVICE_UNIT, SOCKET_UNIT)


def install_service(*, uninstall: bool, as_json: bool) -> int:
    """Install (or remove) both units; refuse, changing nothing, if either is not ours."""
    folder = paths.user_units_dir()
    foreign = [folder / name for name in UNITS if _is_foreign(folder / name)]
    if foreign:
        message = "\n".join(
            f"{path} was not written by prodigyctl (its first line is not {MARKER!r}); "
            "move it away to let install-service manage it"
            for path in foreign
        )
        fail(errorcodes.CONFLICT, message, EXIT_CONFLICT)
    if uninstall:
        return _uninstall(folder, as_json=as_json)
    return _install(folder, as_json=as_json)


def daemon_argv() -> list[str]:
    """The command systemd runs: this installation's own prodigyd."""
    return installed_argv("prodigyd", "prodigyd.main")


def installed_argv(script: str, module: str) -> list[str]:
    """How to run this installation's `script` from outside it (systemd, a git hook).

    The console script beside this interpreter, else `python -m <module>`; never a PATH
    lookup, which can find another environment's copy, or a pyenv shim that picks its
    Python by the current directory.
    """
    path = Path(sysconfig.get_path("scripts")) / script
    if os.access(path, os.X_OK):
        return [str(path)]
    return [sys.executable, "-P", "-m", module]  # -P: no folder of the caller's on sys.path


def exec_command(argv: Sequence[str]) -> str:
    """`argv` as an ExecStart value that systemd splits back into the same words.

    systemd expands `%` specifiers everywhere but `$VARIABLES` only in the arguments; the
    executable path is otherwise taken literally, so `$` is doubled in the arguments alone.
    """
    path, *args = argv
    words = [path.replace("%", "%%"), *(arg.replace("%", "%%").replace("$", "$$") for arg in args)]
    return " ".join(_quoted(word) for word in words)


def render(name: str, argv: Sequence[str], *, grace: float = 30.0) -> str:
    """The unit file install-service writes for `name`, marked as its own: `grace` is the
    daemon's shutdown_grace_seconds, which systemd must wait out before its SIGKILL."""
    template = (UNITS_DIR / name).read_text()
    text = template.replace(EXEC_PLACEHOLDER, exec_command(argv))
    return f"{MARKER}\n{text.replace(TIMEOUT_PLACEHOLDER, f'{math.ceil(grace) + 60}s')}"


def _install(folder: Path, *, as_json: bool) -> int:
    from prodigyd.config import ConfigError, load

    argv = daemon_argv()
    try:
        grace = load().shutdown_grace_seconds
    except ConfigError as err:  # the daemon would not start either: say so now
        fail(err.code, err.render(), EXIT_USAGE)
    written = {
        folder / name: _write_if_changed(folder / name, render(name, argv, grace=grace))
        for name in UNITS
    }
    warning = _socket_mismatch()
    if as_json:
        files = [{"path": str(path), "changed": changed} for path, changed in written.items()]
        report = {"installed": files, "exec_start": exec_command(argv), "next": ENABLE_LINE}
        click.echo(dumps({**report, "warnings": [warning] if warning else []}))
        return EXIT_OK
    for path, changed in written.items():
        click.echo(f"{'wrote' if changed else 'unchanged'} {path}")
    click.echo(f"ExecStart={exec_command(argv)}")
    if warning:
        click.echo(f"warning: {warning}", err=True)
    click.echo(f"to start prodigyd on demand, now and at every login, run:\n  {ENABLE_LINE}")
    return EXIT_OK


def _uninstall(folder: Path, *, as_json: bool) -> int:
    units = [folder / name for name in UNITS if (folder / name).exists()]
    removed = [*_enablement_links(folder, units), *units]
    for path in removed:
        path.unlink()
    if as_json:
        click.echo(dumps({"removed": [str(path) for path in removed], "next": DISABLE_LINE}))
        return EXIT_OK
    if not units:
        click.echo(f"no prodigyd units installed in {folder}")
        return EXIT_OK
    for path in removed:
        click.echo(f"removed {path}")
    click.echo(f"to stop the units that may still run, run:\n  {DISABLE_LINE}")
    return EXIT_OK


def _enablement_links(folder: Path, units: Sequence[Path]) -> list[Path]:
    """The `*.wants/` and `*.requires/` links that `systemctl enable` made to `units`.

    They are removed with the files because `systemctl disable` refuses a unit whose file is
    already gone before systemd 256 (systemd#33254), which would leave them dangling.
    """
    targets = {unit.resolve() for unit in units}
    candidates = [*folder.glob("*.wants/*"), *folder.glob("*.requires/*")]
    return [link for link in candidates if link.is_symlink() and link.resolve() in targets]


def _is_foreign(path: Path) -> bool:
    """A unit file at `path` that install-service did not write (a symlink never is ours)."""
    if path.is_symlink():
        return True
    if not path.exists():
        return False
    try:
        with path.open(encoding="utf-8", errors="replace") as file:
            return file.readline().rstrip("\n") != MARKER
    except OSError:
        return True


def _write_if_changed(path: Path, text: str) -> bool:
    """Write `text` atomically unless the file holds it already; whether it wrote."""
    data = text.encode()
    if path.exists() and path.read_bytes() == data:
        return False
    write_bytes_atomic(path, data, mode=0o644)
    return True


def _socket_mismatch() -> str | None:
    """Why the client in this environment would miss the socket unit, if it would.

    prodigyd.socket listens on $XDG_RUNTIME_DIR/prodigy/prodigyd.sock, which is prodigyctl's
    socket only when PRODIGY_HOME is unset and XDG_RUNTIME_DIR is set.
    """
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    if runtime and paths.socket_path() == paths.runtime_socket_path(runtime):
        return None
    store = ""
    if os.environ.get("PRODIGY_HOME"):  # the units set none: that daemon's store is the default
        store = f" (and its store is the default one, not PRODIGY_HOME's {paths.home()})"
    return (
        f"prodigyctl here uses the socket {paths.socket_path()}, but prodigyd.socket listens "
        f"on $XDG_RUNTIME_DIR/prodigy/prodigyd.sock{store}: unset PRODIGY_HOME, in a login "
        "session that sets XDG_RUNTIME_DIR, for prodigyctl to reach the systemd-managed daemon"
    )


def _quoted(word: str) -> str:
    """`word` in double quotes (C escapes inside) when systemd would otherwise split it."""
    if not any(char.isspace() or char in "\"'\\;" for char in word):
        return word
    return '"' + word.replace("\\", "\\\\").replace('"', '\\"') + '"'
