"""prodigy's daemon and the code its client shares.

Importing the package first keeps pydantic's plugins out of every prodigy process (the
daemon, the client, a Dask worker): pydantic builds each model's validator through
`pydantic.plugin._loader.get_plugins`, whose module imports importlib.metadata (with it
email, zipfile, csv, tempfile) to scan every installed distribution's entry points for
plugins (observability hooks such as logfire's) prodigy never asks for: ~1 MB a daemon held
for good and ~15 ms of every start. The loader registered here finds none, as pydantic's own
does with PYDANTIC_DISABLE_PLUGINS set; any other name a later pydantic asks it for is
handed over to pydantic's real module. Nothing happens if pydantic's loader is loaded
already.
"""

from __future__ import annotations

import sys
import types

PLUGIN_LOADER = "pydantic.plugin._loader"


def _no_plugins() -> tuple[()]:
    return ()


def _real_loader(name: str) -> object:
    if name.startswith("__"):  # the import system's and introspection's probes
        raise AttributeError(name)
    import importlib

    del sys.modules[PLUGIN_LOADER]
    return getattr(importlib.import_module(PLUGIN_LOADER), name)


if PLUGIN_LOADER not in sys.modules:
    _loader = types.ModuleType(PLUGIN_LOADER, "pydantic's plugin loader, finding none")
    vars(_loader).update(get_plugins=_no_plugins, __getattr__=_real_loader)
    sys.modules[PLUGIN_LOADER] = _loader
