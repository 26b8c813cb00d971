"""The installed prodigy's version. Its one home is the distribution's metadata (the
`version` of pyproject.toml); `prodigyctl --version`, the man pages, `prodigyd --version`
and the daemon's `ping` and `daemon.status` all read it here."""

from __future__ import annotations

import functools

#: The distribution's name, as pyproject.toml spells it.
DISTRIBUTION = "prodigy"


@functools.cache
def version() -> str:
    # Imported on demand: the metadata reader and its email parser cost a few milliseconds,
    # which neither a quick client command nor the daemon's start should pay.
    from importlib.metadata import version as installed

    return installed(DISTRIBUTION)
