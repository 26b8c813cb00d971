"""The installed prodigy's version. Its one home is the distribution's metadata (the
`version` of pyproject.toml); `prodigyctl --version`, the man pages, `prodigyd --version`
and the daemon's `ping` and `daemon.status` all read it here."""

from __future__ import annotations

import functools
import os
import sys

#: The distribution's name, as pyproject.toml spells it.
DISTRIBUTION = "prodigy"


@functools.cache
def version() -> str:
    """The `Version:` of the first `prodigy-*.dist-info/METADATA` on sys.path, which is
    the one importlib.metadata would find (pip installs, editable ones included, always
    leave one). Read by hand: importlib.metadata imports email, zipfile, csv and tempfile,
    ~1 MB a daemon would hold for good (its `ping` answers with the version) and a few
    milliseconds of a client's start. Anything else (an egg, a zip) goes to it."""
    for entry in sys.path:
        try:
            names = os.listdir(entry or ".")
        except OSError:
            continue
        for name in names:
            if name.endswith(".dist-info") and name.split("-", 1)[0] == DISTRIBUTION:
                found = _metadata_version(os.path.join(entry, name, "METADATA"))
                if found:
                    return found
    from importlib.metadata import version as installed

    return installed(DISTRIBUTION)


def _metadata_version(path: str) -> str | None:
    """The `Version:` header of a METADATA file (its headers end at the first blank line)."""
    try:
        with open(path, encoding="utf-8") as metadata:
            for line in metadata:
                if not line.strip():
                    break
                key, _, value = line.partition(":")
                if key == "Version":
                    return value.strip()
    except OSError:
        pass
    return None
