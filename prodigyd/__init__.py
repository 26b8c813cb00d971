"""prodigy's daemon and the code its client shares.

Importing the package first keeps pydantic's plugins out of every prodigy process (the
daemon, the client, a Dask worker): pydantic builds each model's validator through
`pydantic.plugin._loader.get_plugins`, whose module imports importlib.metadata (with it
email, zipfile, csv, tempfile) to scan every installed distribution's entry points for
plugins (observability hooks such as logfire's) prodigy never asks for: ~1 MB a daemon held
for good and ~15 ms of every start. The loader registered here finds none, as pydantic's own
does with PYDANTIC_DISABLE_PLUGINS set; any other name a later pydantic asks it for is
handed over to pydantic's real module. Nothing happens if pydantic's loader is loaded
already. A process that imports prodigyd (a Dask worker running map agents included) has
no pydantic plugins for any of its models: decided so, as nothing prodigy runs uses them,
and a plugin installed beside it would instrument the daemon's every validation.
"""

from __future__ import annotations

import sys
import threading
import types
from importlib.machinery import ModuleSpec

PLUGIN_LOADER = "pydantic.plugin._loader"

_handover = threading.Lock()
_real: types.ModuleType | None = None  # pydantic's own loader, once a name was asked of it


def _no_plugins(*_: object, **__: object) -> tuple[()]:
    return ()


def _real_loader(name: str) -> object:
    """Any name but `get_plugins`: the first such request puts pydantic's module in the
    stand-in's place (once, whichever thread asks), and every one is answered by it."""
    global _real
    if name.startswith("__"):  # the import system's and introspection's probes
        raise AttributeError(name)
    with _handover:
        if _real is None:
            import importlib

            if sys.modules.get(PLUGIN_LOADER) is _loader:
                del sys.modules[PLUGIN_LOADER]
            _real = importlib.import_module(PLUGIN_LOADER)
    return getattr(_real, name)


_loader = types.ModuleType(PLUGIN_LOADER, "pydantic's plugin loader, finding none")
_loader.__spec__ = ModuleSpec(PLUGIN_LOADER, None)
vars(_loader).update(get_plugins=_no_plugins, __getattr__=_real_loader)
sys.modules.setdefault(PLUGIN_LOADER, _loader)  # nothing when pydantic's is loaded already
