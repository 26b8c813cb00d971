"""Session ids: generated unique, validated whenever a client names one.

Ids become file names under the store, so anything a client sends is checked against one
pattern before it touches a path (no `../`, no slashes, no hidden files).
"""

from __future__ import annotations

import re
import secrets
import time

from prodigyd.errors import ProdigyError

_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")


def new_session_id(mode: str = "standard") -> str:
    """`workflow-<epoch-ms>-<6 hex>`, or `mapreduce-...` for a MapReduce job: the original's
    prefixes, without its same-second (MapReduce) and same-millisecond clashes."""
    prefix = "mapreduce" if mode == "mapreduce" else "workflow"
    return f"{prefix}-{int(time.time() * 1000)}-{secrets.token_hex(3)}"


def check_id(value: str, what: str = "session id") -> str:
    if not isinstance(value, str) or not _ID.fullmatch(value) or ".." in value:
        raise ProdigyError(
            f"invalid {what}: {value!r}",
            hint="ids are letters, digits, '.', '_' and '-' (see `prodigyctl sessions ls`)",
        )
    return value
