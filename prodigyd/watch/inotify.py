"""One folder watched with Linux inotify on the event loop itself: no thread and no timer.

watchfiles' `awatch` wakes its worker thread every `step` milliseconds, changes or not
(and takes the GIL each time to look at its stop event and at signals): at the 5 ms step
the hook inbox needs for a trigger's latency, an idle daemon woke 200 times a second
forever. Here the kernel's inotify descriptor is read by the loop's selector, so an idle
daemon sleeps, and a change is seen as soon as the file that made it is closed (no step,
no debounce).

Linux only, as inotify is; `FolderWatch` raises OSError where it cannot be set up (no
libc symbol, no more watches), and its user falls back to polling.
"""

from __future__ import annotations

import asyncio
import os
import struct
from pathlib import Path

#: A file opened for writing was closed, or a file was moved in (linux/inotify.h).
IN_CLOSE_WRITE = 0x00000008
IN_MOVED_TO = 0x00000080
#: The watch is gone (its folder was deleted or moved away).
IN_IGNORED = 0x00008000
IN_DELETE_SELF = 0x00000400
IN_MOVE_SELF = 0x00000800
IN_NONBLOCK = os.O_NONBLOCK
IN_CLOEXEC = os.O_CLOEXEC
_HEADER = struct.Struct("iIII")  # wd, mask, cookie, len (then len bytes of name)


class FolderWatch:
    """Wakes `wait()` when a file in `folder` is closed after writing or moved in. Use as
    an async context manager; `wait()` returns False once the folder itself is gone."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._fd = -1
        self._changed = asyncio.Event()
        self._gone = False

    async def __aenter__(self) -> FolderWatch:
        import ctypes.util  # here: only the daemon's inbox needs it

        libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
        try:
            init, add = libc.inotify_init1, libc.inotify_add_watch
        except AttributeError as exc:
            raise OSError(f"no inotify in this C library ({exc})") from exc
        fd = init(IN_NONBLOCK | IN_CLOEXEC)
        if fd < 0:
            raise _errno("inotify_init1")
        mask = IN_CLOSE_WRITE | IN_MOVED_TO | IN_DELETE_SELF | IN_MOVE_SELF
        if add(fd, os.fsencode(self.folder), mask) < 0:
            error = _errno(f"inotify_add_watch {self.folder}")
            os.close(fd)
            raise error
        self._fd = fd
        asyncio.get_running_loop().add_reader(fd, self._read)
        return self

    async def __aexit__(self, *_exc: object) -> None:
        if self._fd >= 0:
            asyncio.get_running_loop().remove_reader(self._fd)
            os.close(self._fd)
            self._fd = -1

    async def wait(self, timeout: float | None = None) -> bool:
        """Wait for a change (or `timeout` seconds); False when the folder went away."""
        if not self._changed.is_set() and not self._gone:
            try:
                await asyncio.wait_for(self._changed.wait(), timeout)
            except TimeoutError:
                pass
        self._changed.clear()
        return not self._gone

    def _read(self) -> None:
        """Take every queued event off the descriptor (the loop calls this when it is
        readable); an overflow, like any event, just says: look at the folder."""
        try:
            data = os.read(self._fd, 65536)
        except BlockingIOError:
            return
        offset = 0
        while offset + _HEADER.size <= len(data):
            _wd, mask, _cookie, length = _HEADER.unpack_from(data, offset)
            if mask & (IN_IGNORED | IN_DELETE_SELF | IN_MOVE_SELF):
                self._gone = True
            offset += _HEADER.size + length
        self._changed.set()


def _errno(what: str) -> OSError:
    import ctypes

    err = ctypes.get_errno()
    return OSError(err, f"{what}: {os.strerror(err)}")
