"""All client errors go through one handler: one line for the user, a stable exit code
(exitcodes.py has the table). The errors of talking to the daemon are defined here too.

Every command, `--help` included, runs inside the handler, so this module imports nothing
it needs only once something went wrong (json, the protocol, the paths: a few milliseconds
of `--help`).

An unexpected crash exits 70, writes a crash log to $PRODIGY_HOME/logs/ (one new file per crash,
prodigyctl-crash-<time>.<ns>-<pid>.log) and prints its path.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator
from typing import Any

import click

from prodigyctl.exitcodes import EXIT_CRASH, EXIT_INTERRUPTED, EXIT_UNREACHABLE, exit_for_error


class DaemonUnreachable(Exception):
    """No daemon answers and none could be started."""


class RpcError(Exception):
    def __init__(self, code: int, message: str, data: Any = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.data = data if isinstance(data, dict) else {}

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


@contextlib.contextmanager
def error_handler() -> Iterator[None]:
    try:
        yield
    except RpcError as err:
        from prodigyd import protocol

        if err.code == protocol.INVALID_PARAMS and "Extra inputs" in err.message:
            err.data.setdefault(
                "hint",
                "prodigyd may be older than prodigyctl: restart it with "
                "`prodigyctl daemon stop` (running jobs resume on the next start)",
            )
        _report(err.render(), {"code": err.code, "message": err.message, **err.data})
        sys.exit(exit_for_error(err.code))
    except DaemonUnreachable as err:
        _report(str(err), {"code": None, "message": str(err)})
        sys.exit(EXIT_UNREACHABLE)
    except KeyboardInterrupt:
        click.echo("interrupted", err=True)
        sys.exit(EXIT_INTERRUPTED)
    except click.ClickException as err:  # usage errors: click's own message, exit 2
        err.show()
        sys.exit(err.exit_code)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(EXIT_INTERRUPTED)
    except click.exceptions.Exit as err:
        sys.exit(err.exit_code)
    except SystemExit:
        raise
    except Exception:
        sys.exit(_crash())


def _report(text: str, data: dict[str, object]) -> None:
    """One error on stderr: a line for people, or a JSON object under --json."""
    if "--json" in sys.argv[1:]:
        import json

        click.echo(json.dumps({"error": data}, ensure_ascii=False), err=True)
    else:
        click.echo(f"error: {text}", err=True)


def _crash() -> int:
    import platform  # only when crashing: every command imports this module
    import traceback

    from prodigyd import paths
    from prodigyd.store.atomic import create_unique  # sqlite3 and more: not on the hot path

    path, fd = create_unique(paths.logs_dir(), paths.crash_log_prefix(), ".log")
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(
            f"prodigyctl crash\ncommand: prodigyctl {' '.join(sys.argv[1:2])} (arguments omitted: "
            f"they may hold secrets)\npython: {sys.version}\n"
            f"platform: {platform.platform()}\n\n{traceback.format_exc()}"
        )
    click.echo(f"error: prodigyctl crashed; details in {path}", err=True)
    return EXIT_CRASH
