"""The daemon's process loads no OpenSSL: its event loop and hashlib come without it.

OpenSSL is ~4.5 MB of a ~43 MB idle daemon (issue 15's resident-memory row: libcrypto's
pages its start touches, libssl's, and `ssl`'s own) and 5-10 ms of its start (`python -X
importtime`, importing `ssl`), for nothing prodigyd does: it serves a Unix socket, talks
to git, shells and agents through pipes and to a Dask scheduler through distributed's
comms (which import `ssl` themselves if ever needed: a later `import ssl` loads the real
module as usual), and hashes a few bytes at a time (a spool entry, a trigger key, a path).

So prodigyd/main.py imports this module before anything else:
- asyncio is imported with `ssl` absent, which takes its modules' own path for a Python
  built without it (they bind `ssl = None`; only TLS transports need it).
- hashlib and hmac are imported with `_hashlib` (OpenSSL's hashes) absent, which gives
  them Python's built-in ones: the same digests. Not on a Python built without those
  (Fedora's has only blake2 built in): hashlib then loads OpenSSL's as usual.
- uvloop (`loop_factory`) has no path without `ssl` (it reads a few of its names as it is
  imported), so it is imported with a stand-in module holding those names: classes that
  refuse to be made, errors nothing raises and the error numbers, used only where the
  loop is asked for TLS. Should a later uvloop read a name the stand-in lacks (`ssl.NAME`
  or `from ssl import NAME`), it is imported again with the real `ssl`: never worse
  than before.

So the daemon's loop cannot open a TLS connection itself (asyncio says its ssl module is
not available; uvloop's stand-in classes say the same); distributed's `tls://` comms,
which wrap their sockets with the real `ssl` themselves, work on either loop. A process
that imported one of these already (a test importing prodigyd.main) keeps it. (pygit2,
loaded once a trigger watches a repository, links libgit2's own OpenSSL: that is its
cost, paid then.)
"""

from __future__ import annotations

import importlib
import importlib.util
import logging
import sys
import types
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import asyncio

#: Names of `ssl` uvloop reads as it is imported (its includes/stdlib.pxi).
_UVLOOP_READS_CLASSES = ("SSLContext", "MemoryBIO")
_UVLOOP_READS_ERRORS = (
    "SSLError",
    "SSLWantReadError",
    "SSLSyscallError",
    "SSLZeroReturnError",
    "CertificateError",
)
_UVLOOP_READS_NUMBERS = {
    "SSL_ERROR_WANT_READ": 2,
    "SSL_ERROR_WANT_WRITE": 3,
    "SSL_ERROR_SYSCALL": 5,
}


def _import_without(modules: tuple[str, ...], absent: str) -> None:
    """Import `modules` while `import absent` raises ImportError; nothing when one of them
    is imported already."""
    if any(name in sys.modules for name in (*modules, absent)):
        return
    sys.modules[absent] = None  # type: ignore[assignment]  # what makes `import` refuse it
    try:
        for name in modules:
            importlib.import_module(name)
    finally:
        del sys.modules[absent]


def _builtin_hashes() -> bool:
    """Whether this Python has hashlib's guaranteed hashes built in (3.12 merged the
    modules of the SHA-2 family into `_sha2`)."""
    found = importlib.util.find_spec
    sha2 = found("_sha2") is not None or None not in (found("_sha256"), found("_sha512"))
    return sha2 and None not in (found("_md5"), found("_sha1"), found("_blake2"), found("_sha3"))


def _no_tls(*_: object, **__: object) -> None:
    raise RuntimeError("prodigyd's event loop was loaded without TLS support")


def _tls_stand_in() -> types.ModuleType:
    """A module `ssl` with what uvloop reads of it: its classes refuse to be made (with a
    clear error, should the loop ever be asked for TLS), its errors are nobody's."""
    stand_in = types.ModuleType("ssl", "what uvloop reads of ssl, for a loop without TLS")
    for name in _UVLOOP_READS_CLASSES:
        setattr(stand_in, name, type(name, (), {"__init__": _no_tls}))
    for name in _UVLOOP_READS_ERRORS:
        setattr(stand_in, name, type(name, (OSError,), {}))
    vars(stand_in).update(_UVLOOP_READS_NUMBERS, create_default_context=_no_tls)
    return stand_in


def _import_uvloop() -> types.ModuleType:
    """uvloop, imported with the stand-in for `ssl` unless that is imported already."""
    if "ssl" not in sys.modules:
        stand_in = sys.modules["ssl"] = _tls_stand_in()
        try:
            return importlib.import_module("uvloop")
        except (AttributeError, ImportError) as exc:  # a name the stand-in lacks?
            if isinstance(exc, ImportError) and exc.name != "ssl":
                raise  # uvloop itself is missing or broken: as without the stand-in
            for name in [name for name in sys.modules if name.partition(".")[0] == "uvloop"]:
                del sys.modules[name]
            logging.getLogger("prodigyd").info("uvloop reads more of ssl: loaded with it")
        finally:
            if sys.modules.get("ssl") is stand_in:
                del sys.modules["ssl"]
    return importlib.import_module("uvloop")


def loop_factory(name: str) -> Callable[[], asyncio.AbstractEventLoop] | None:
    """The factory for asyncio.Runner of the loop named in config (`event_loop`); None:
    asyncio's own."""
    if name == "uvloop":
        factory: Callable[[], asyncio.AbstractEventLoop] = _import_uvloop().new_event_loop
        return factory
    return None


_import_without(("asyncio",), "ssl")
if _builtin_hashes():
    _import_without(("hashlib", "hmac"), "_hashlib")  # hmac, too, imports `_hashlib` itself
