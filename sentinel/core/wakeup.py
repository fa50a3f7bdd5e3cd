"""Wake a polling thread when a directory changes (inotify), so that a poll runs at once.

A poller that looks every second misses what starts and ends between two looks — a `dpkg -r`
of a small package takes 50 ms, and with it goes the chance to see who held the lock. Watching
the directory (write, create, delete, move of any entry) turns the sleep between polls
into a wait that ends on the first event. Where inotify is unavailable the wait is a plain sleep.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import select
import threading
from pathlib import Path

_IN_NONBLOCK = 0o4000
_IN_CLOEXEC = 0o2000000
# MODIFY CLOSE_WRITE CREATE DELETE MOVED_TO MOVED_FROM: what a writer does. Not OPEN: the poller
# itself opens the files it reads (a lock file to query it), and must not wake itself.
_MASK = 0x02 | 0x08 | 0x100 | 0x200 | 0x80 | 0x40


def _libc() -> ctypes.CDLL | None:
    try:
        return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    except OSError:
        return None


class DirectoryWakeup:
    """`wait(timeout, stop)`: sleep up to `timeout`, less when something happens in the directories."""

    def __init__(self, directories: list[Path]) -> None:
        self._fd = -1
        libc = _libc()
        if libc is None:
            return
        fd = int(libc.inotify_init1(_IN_NONBLOCK | _IN_CLOEXEC))
        if fd < 0:
            return
        watched = 0
        for directory in directories:
            if int(libc.inotify_add_watch(fd, os.fsencode(str(directory)), _MASK)) >= 0:
                watched += 1
        if watched:
            self._fd = fd
        else:
            os.close(fd)

    @property
    def active(self) -> bool:
        """Whether inotify watches anything (else `wait` is a sleep)."""
        return self._fd >= 0

    def wait(self, timeout: float, stop: threading.Event) -> None:
        """Until `timeout` passed, `stop` is set, or a watched directory changed."""
        if self._fd < 0:
            stop.wait(timeout)
            return
        ready, _, _ = select.select([self._fd], [], [], timeout)
        if ready:
            try:
                while os.read(self._fd, 65536):
                    pass
            except BlockingIOError:
                pass

    def close(self) -> None:
        """Release the inotify descriptor."""
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
