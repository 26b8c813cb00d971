"""All client errors go through one handler: `error[E1001]: ...` for the user (or a JSON
object under --json) with the error's stable code (prodigyd/errorcodes.py), and a stable exit
code (exitcodes.py has the table). The errors of talking to the daemon are defined here too.

Every command, `--help` included, runs inside the handler, so this module imports nothing
it needs only once something went wrong (json, the protocol, the paths, the registry of
error codes: a few milliseconds of `--help`).

An unexpected crash exits 70, writes a crash log to $PRODIGY_HOME/logs/ (one new file per crash,
prodigyctl-crash-<time>.<ns>-<pid>.log) and prints its path; when that folder cannot take it,
the log goes to the temp folder, and when no log can be written the traceback is printed. An
OSError of a command whose $PRODIGY_HOME is unusable (a file, a folder that cannot be made or
written) is no crash: the error says what is wrong with the home (E5004, exit 2).
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, NoReturn

import click

from prodigyctl.exitcodes import (
    EXIT_CRASH,
    EXIT_INTERRUPTED,
    EXIT_UNREACHABLE,
    EXIT_USAGE,
    exit_for_error,
)

if TYPE_CHECKING:
    from pathlib import Path

    from prodigyd.errors import ProdigyError


class DaemonUnreachable(Exception):
    """No daemon answers and none could be started, or it went away mid-request; `code`
    says which (prodigyd/errorcodes.py; DAEMON_UNREACHABLE when not given). `exit_code`:
    5, or 2 when the daemon refused to start for the user to fix (its config)."""

    def __init__(
        self, message: str, code: str | None = None, *, exit_code: int = EXIT_UNREACHABLE
    ) -> None:
        from prodigyd import errorcodes

        super().__init__(message)
        self.code = code or errorcodes.DAEMON_UNREACHABLE
        self.exit_code = exit_code


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
        """The daemon's error as the user should read it: location, message, details, hint,
        exactly as a command that loads the workflow itself (validate) shows its own."""
        from prodigyd import errorcodes
        from prodigyd.errors import Location, ProdigyError

        data = self.data
        errors = data.get("errors") or []
        message = self.message
        if errors and data.get("code") not in (None, errorcodes.INVALID_PARAMS):
            # a refusal with a code of its own (an ambiguous id): its words, not the
            # protocol's "Invalid params: session_id: ..."
            message = str(errors[0].get("message"))
        details = [str(data["details"]).rstrip("\n")] if data.get("details") else []
        details += [
            f"  {err.get('field')}: {err.get('message')}" for err in data.get("errors", [])[1:]
        ]
        location = data.get("location")
        return ProdigyError(
            message,
            hint=data.get("hint"),
            location=Location.from_dict(location) if isinstance(location, dict) else None,
            details="\n".join(details) or None,
        ).render()


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
        sys.exit(err.exit_code)
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
    except OSError:
        _fail_if_home_unusable()
        sys.exit(_crash())
    except Exception as err:
        # a ProdigyError of a command that loads workflows itself (run --dry-run); only
        # then is prodigyd.errors imported, which the other commands need not pay for
        errors = sys.modules.get("prodigyd.errors")
        if errors is None or not isinstance(err, errors.ProdigyError):
            sys.exit(_crash())
        from prodigyd import protocol

        show_error(err)
        sys.exit(exit_for_error(protocol.CODE_FOR_KIND.get(err.kind, protocol.PRODIGY_ERROR)))


def fail(code: str, message: str, exit_code: int, *, hint: str | None = None) -> NoReturn:
    """End a command with an error the client itself found, shown as the handler shows the
    daemon's: `error[CODE]: message` and its hint, or under --json an error object."""
    text = f"{message}\nhint: {hint}" if hint else message
    _report(code, text, {"message": message, **({"hint": hint} if hint else {})})
    raise SystemExit(exit_code)


def show_error(err: ProdigyError) -> None:
    """Print a prodigy error, as the handler prints one a command raised, for a command that
    met it itself (a config file's) and returns its own exit code: its text, or under
    --json its fields in an error object."""
    _report(err.code, err.render(), err.to_dict())


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
    shows_usage = getattr(err, "shows_usage", True)  # not a refused spelling of the original's
    if ctx is not None and shows_usage and "--json" not in sys.argv[1:]:
        hint = ""
        if ctx.command.get_help_option(ctx) is not None:
            hint = f"Try '{ctx.command_path} {ctx.help_option_names[0]}' for help.\n"
        click.echo(f"{ctx.get_usage()}\n{hint}", err=True, color=ctx.color)
    _report(code, err.format_message(), {"message": err.format_message()})


def _fail_if_home_unusable() -> None:
    """End the command with what is wrong with prodigy's home when that is why it failed:
    every command that starts the daemon or writes to the store makes a folder under it
    first, so a home that is a file (or under one), or cannot be made or written to, ends
    them with an OSError from deep inside, not a bug to report. Asked only once one came."""
    from prodigyd import errorcodes, paths

    home = paths.home()
    problem = _home_problem(home)
    if problem is not None:
        source = "$PRODIGY_HOME" if os.environ.get("PRODIGY_HOME") else "prodigy's home"
        hint = "set PRODIGY_HOME to a folder you can write to (it is made when missing)"
        message = f"{source} {home} cannot be used: {problem}"
        fail(errorcodes.HOME_UNUSABLE, message, EXIT_USAGE, hint=hint)


def _home_problem(home: Path) -> str | None:
    """Why `home` cannot hold prodigy's files (made when missing), or None when it can."""
    import tempfile

    try:
        os.makedirs(home, mode=0o700, exist_ok=True)
        with tempfile.TemporaryFile(dir=home):  # written and gone: the home takes files
            pass
    except OSError as exc:
        blocker = next((p for p in (home, *home.parents) if p.exists()), None)
        if blocker is not None and not blocker.is_dir():
            return f"{blocker} is not a folder"
        return f"{exc.filename or home}: {exc.strerror}"
    return None


def _crash() -> int:
    """Report a bug: `error[E2007]` naming the crash log that holds the traceback, or the
    traceback itself when no log could be written. Never raises: a crash report that
    crashes hides the first error behind its own."""
    import platform  # only when crashing: every command imports this module
    import traceback

    from prodigyd import errorcodes

    report = (
        f"prodigyctl crash\ncommand: prodigyctl {' '.join(sys.argv[1:2])} (arguments omitted: "
        f"they may hold secrets)\npython: {sys.version}\n"
        f"platform: {platform.platform()}\n\n{traceback.format_exc()}"
    )
    path = _write_crash_log(report)
    message = (
        f"prodigyctl crashed; details in {path}"
        if path is not None
        else f"prodigyctl crashed, and no crash log could be written:\n{report}"
    )
    _report(errorcodes.CLIENT_CRASH, message, {"message": message})
    return EXIT_CRASH


def _write_crash_log(report: str) -> Path | None:
    """A new crash log holding `report`: under $PRODIGY_HOME/logs/, else (that folder is
    unusable, or the disk full) in the temp folder; None when neither takes it."""
    import tempfile
    from pathlib import Path

    from prodigyd import paths

    for folder in (paths.logs_dir, lambda: Path(tempfile.gettempdir())):
        try:
            from prodigyd.store.atomic import create_unique  # sqlite3 and more: not hot

            path, fd = create_unique(folder(), paths.crash_log_prefix(), ".log")
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write(report)
        except Exception:  # this folder cannot take it (nor the import): the next may
            continue
        return path
    return None
