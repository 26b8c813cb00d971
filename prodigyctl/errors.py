"""All client errors go through one handler: `error[E1001]: ...` for the user (or a JSON
object under --json) with the error's stable code (prodigyd/errorcodes.py), and a stable exit
code (exitcodes.py has the table). The errors of talking to the daemon are defined here too.

Every command, `--help` included, runs inside the handler, so this module imports nothing
it needs only once something went wrong (json, the protocol, the paths, the registry of
error codes: a few milliseconds of `--help`).

An unexpected crash exits 70, writes a crash log to $PRODIGY_HOME/logs/ (one new file per crash,
prodigyctl-crash-<time>.<ns>-<pid>.log) and prints its path.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator
from typing import Any, NoReturn

import click

from prodigyctl.exitcodes import EXIT_CRASH, EXIT_INTERRUPTED, EXIT_UNREACHABLE, exit_for_error


class DaemonUnreachable(Exception):
    """No daemon answers and none could be started, or it went away mid-request; `code`
    says which (prodigyd/errorcodes.py; DAEMON_UNREACHABLE when not given)."""

    def __init__(self, message: str, code: str | None = None) -> None:
        from prodigyd import errorcodes

        super().__init__(message)
        self.code = code or errorcodes.DAEMON_UNREACHABLE


class RpcError(Exception):
    def __init__(self, code: int, message: str, data: Any = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.data = data if isinstance(data, dict) else {}

    @property
    def errorcode(self) -> str:
        """The stable error code (E1001): the daemon's, else its JSON-RPC code's."""
        from prodigyd import protocol

        code = self.data.get("code")
        return code if isinstance(code, str) else protocol.errorcode(self.code)

    def render(self) -> str:
        """The daemon's error as the user should read it: location, message, details, hint."""
        data = self.data
        loc = data.get("location") or {}
        where = ":".join(str(loc[k]) for k in ("file", "line", "column") if loc.get(k) is not None)
        head = f"{where}: {self.message}" if where else self.message
        if loc.get("field"):
            head += f" ({loc['field']})"
        parts = [head]
        if data.get("details"):
            parts.append(str(data["details"]).rstrip("\n"))
        for err in data.get("errors", [])[1:]:
            parts.append(f"  {err.get('field')}: {err.get('message')}")
        if data.get("hint"):
            parts.append(f"hint: {data['hint']}")
        return "\n".join(parts)


RESTART = "restart it with `prodigyctl daemon stop` (running jobs resume on the next start)"


def _hint_restart(err: RpcError) -> None:
    """A request refused as invalid may be one an older running daemon does not know (the
    client was upgraded under it): then the hint says to restart it. Asked only on such an
    error: one `ping`, for the protocol version it speaks."""
    from prodigyd import protocol

    if "hint" in err.data:
        return
    spoken = _daemon_protocol()
    if spoken is not None and spoken < protocol.PROTOCOL_VERSION:
        err.data["hint"] = (
            f"the running prodigyd speaks protocol {spoken}, this prodigyctl "
            f"{protocol.PROTOCOL_VERSION}: {RESTART}"
        )
    elif "Extra inputs" in err.message:  # the same protocol number: a development build
        err.data["hint"] = f"prodigyd may be older than prodigyctl: {RESTART}"


def _daemon_protocol() -> int | None:
    """The protocol version the running daemon reports; None when it cannot be asked."""
    from prodigyctl.client import Client

    try:
        with Client.connect(autostart=False) as client:
            return int(client.call("ping")["protocol"])
    except (RpcError, DaemonUnreachable, OSError, KeyError, TypeError, ValueError):
        return None


@contextlib.contextmanager
def error_handler() -> Iterator[None]:
    try:
        yield
    except RpcError as err:
        from prodigyd import protocol

        if err.code == protocol.INVALID_PARAMS:
            _hint_restart(err)
        _report(
            err.errorcode, err.render(), {"message": err.message, **err.data, "rpc_code": err.code}
        )
        sys.exit(exit_for_error(err.code))
    except DaemonUnreachable as err:
        _report(err.code, str(err), {"message": str(err)})
        sys.exit(EXIT_UNREACHABLE)
    except KeyboardInterrupt:
        click.echo("interrupted", err=True)
        sys.exit(EXIT_INTERRUPTED)
    except click.ClickException as err:  # usage errors: click's usage line, exit 2
        _click_error(err)
        sys.exit(err.exit_code)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(EXIT_INTERRUPTED)
    except click.exceptions.Exit as err:
        sys.exit(err.exit_code)
    except SystemExit:
        raise
    except Exception as err:
        # a ProdigyError of a command that loads workflows itself (run --dry-run); only
        # then is prodigyd.errors imported, which the other commands need not pay for
        errors = sys.modules.get("prodigyd.errors")
        if errors is None or not isinstance(err, errors.ProdigyError):
            sys.exit(_crash())
        from prodigyd import protocol

        _report(err.code, err.render(), err.to_dict())
        sys.exit(exit_for_error(protocol.CODE_FOR_KIND.get(err.kind, protocol.PRODIGY_ERROR)))


def fail(code: str, message: str, exit_code: int, *, hint: str | None = None) -> NoReturn:
    """End a command with an error the client itself found, shown as the handler shows the
    daemon's: `error[CODE]: message` and its hint, or under --json an error object."""
    text = f"{message}\nhint: {hint}" if hint else message
    _report(code, text, {"message": message, **({"hint": hint} if hint else {})})
    raise SystemExit(exit_code)


def _report(code: str, text: str, data: dict[str, object]) -> None:
    """One error on stderr: `error[CODE]: text` for people, or under --json an object whose
    `code` is the stable code (`data` adds kind, hint, location, ...)."""
    from prodigyd import errorcodes

    if "--json" in sys.argv[1:]:
        import json

        fields = {"code": code, **{key: value for key, value in data.items() if key != "code"}}
        click.echo(json.dumps({"error": fields}, ensure_ascii=False), err=True)
    else:
        click.echo(f"{errorcodes.label(code)}: {text}", err=True)


def _click_error(err: click.ClickException) -> None:
    """click's error, with the code in its `error[E0002]:` line: the usage and the `--help`
    pointer first for a usage error, as click prints them."""
    from prodigyd import errorcodes

    code = errorcodes.USAGE if isinstance(err, click.UsageError) else errorcodes.ERROR
    ctx = getattr(err, "ctx", None)
    if ctx is not None and "--json" not in sys.argv[1:]:
        hint = ""
        if ctx.command.get_help_option(ctx) is not None:
            hint = f"Try '{ctx.command_path} {ctx.help_option_names[0]}' for help.\n"
        click.echo(f"{ctx.get_usage()}\n{hint}", err=True, color=ctx.color)
    _report(code, err.format_message(), {"message": err.format_message()})


def _crash() -> int:
    import platform  # only when crashing: every command imports this module
    import traceback

    from prodigyd import errorcodes, paths
    from prodigyd.store.atomic import create_unique  # sqlite3 and more: not on the hot path

    path, fd = create_unique(paths.logs_dir(), paths.crash_log_prefix(), ".log")
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(
            f"prodigyctl crash\ncommand: prodigyctl {' '.join(sys.argv[1:2])} (arguments omitted: "
            f"they may hold secrets)\npython: {sys.version}\n"
            f"platform: {platform.platform()}\n\n{traceback.format_exc()}"
        )
    click.echo(
        f"{errorcodes.label(errorcodes.CLIENT_CRASH)}: prodigyctl crashed; details in {path}",
        err=True,
    )
    return EXIT_CRASH
