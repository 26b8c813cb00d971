"""The installed prodigy's version. Its one home is the distribution's metadata (the
`version` of pyproject.toml); `prodigyctl --version`, the man pages, `prodigyd --version`
and the daemon's `ping` and `daemon.status` all read it here."""

from __future__ import annotations

import functools
import os
import re
import sys

#: The distribution's name, as pyproject.toml spells it.
DISTRIBUTION = "prodigy"


@functools.cache
def version() -> str:
    """The `Version:` of the first `prodigy` distribution on sys.path, the one
    importlib.metadata would find, read by hand from its `.dist-info/METADATA` (pip
    installs, editable ones included, always leave one). importlib.metadata imports email,
    zipfile, csv and tempfile, ~1 MB a daemon would hold for good (its `ping` answers
    with the version) and a few milliseconds of a client's start. An `.egg-info` (what a
    source checkout on sys.path has: `pip install -e` leaves one at its top) is read alike,
    from its PKG-INFO; importlib.metadata is asked when the first one found says no
    version."""
    for entry in sys.path:
        try:
            names = os.listdir(entry or ".")
        except OSError:
            continue
        for name in names:
            stem, _, kind = name.rpartition(".")
            if kind not in _INFO or _normalized(stem.split("-", 1)[0]) != DISTRIBUTION:
                continue
            found = _metadata_version(os.path.join(entry, name, _INFO[kind]))
            return found or _from_importlib()
    return _from_importlib()


#: The folders a distribution's metadata lives in, and the file in each that has its
#: headers (the same `Name:`/`Version:` format).
_INFO = {"dist-info": "METADATA", "egg-info": "PKG-INFO"}


def _normalized(name: str) -> str:
    """A distribution name as packaging compares them (PEP 503)."""
    return re.sub(r"[-_.]+", "-", name).lower()


def _from_importlib() -> str:
    from importlib.metadata import version as installed

    return installed(DISTRIBUTION)


def _metadata_version(path: str) -> str | None:
    """The `Version:` header of a METADATA or PKG-INFO file (its headers end at the first
    blank line)."""
    try:
        with open(path, encoding="utf-8", errors="replace") as metadata:
            for line in metadata:
                if not line.strip():
                    break
                key, _, value = line.partition(":")
                if key == "Version":
                    return value.strip()
    except OSError:
        pass
    return None
