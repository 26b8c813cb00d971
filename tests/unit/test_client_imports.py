"""The client's hot path (`--help`, `run --detach`, the hooks' daemon start) imports only
what it uses: click, the paths and the protocol. The store, the engine and their libraries
(sqlite3, pydantic, yaml, asyncio), and platformdirs, load only in the commands that need
them."""

from __future__ import annotations

import subprocess
import sys

HEAVY = (
    "sqlite3",
    "pydantic",
    "yaml",
    "asyncio",
    "platformdirs",
    "prodigyd.store",
    "prodigyd.engine",
)

PROBE = """
import contextlib, io, sys
from prodigyctl.main import cli
with contextlib.redirect_stdout(io.StringIO()):
    try:
        cli.main(["--help"], standalone_mode=False)
    except SystemExit:
        pass
print("\\n".join(sorted(sys.modules)))
"""


def test_help_imports_no_store_engine_or_their_libraries():
    loaded = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True,
                            check=True).stdout.split()  # fmt: skip
    heavy = [m for m in loaded if any(m == h or m.startswith(h + ".") for h in HEAVY)]
    assert heavy == []
