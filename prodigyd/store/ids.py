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


#: The word every session id starts with, by the kind of its workflow.
KIND_WORDS = ("workflow-", "mapreduce-")


def new_session_id(mode: str = "standard") -> str:
    """`workflow-<epoch-ms>-<6 hex>`, or `mapreduce-...` for a MapReduce job: the original's
    prefixes, without its same-second (MapReduce) and same-millisecond clashes."""
    prefix = KIND_WORDS[1] if mode == "mapreduce" else KIND_WORDS[0]
    return f"{prefix}{int(time.time() * 1000)}-{secrets.token_hex(3)}"


def is_id(value: object) -> bool:
    """Whether `value` has the shape of an id (safe as a file name)."""
    return isinstance(value, str) and _ID.fullmatch(value) is not None and ".." not in value


def check_id(value: str, what: str = "session id") -> str:
    if not is_id(value):
        raise ProdigyError(
            f"invalid {what}: {value!r}",
            hint="ids are letters, digits, '.', '_' and '-' (see `prodigyctl sessions ls`)",
        )
    return value
