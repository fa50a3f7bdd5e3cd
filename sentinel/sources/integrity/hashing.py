"""Hashing one file safely: bounded buffer, never a FIFO or device, re-read when it changes.

The file is opened with O_NOFOLLOW|O_NONBLOCK (a symlink swapped in is refused, a FIFO swapped
in does not block) and checked with fstat to be a regular file. If its (size, mtime, ctime)
moved while it was read, it is read again (up to `retries` times): a hash of a half-written
file would be a false "modified" and then a false "unchanged".
"""

from __future__ import annotations

import errno
import hashlib
import os
import stat
import threading
import time
from collections.abc import Callable
from typing import NamedTuple

_OPEN_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY | getattr(os, "O_CLOEXEC", 0)


class Throttle:
    """Paces scan workers to a CPU share and an I/O rate (both 1/0 = unlimited).

    After `work` seconds of busy time a worker sleeps work * (1 - share) / share, so each worker
    uses at most `share` of a core; bytes are paced against `io_rate` across all workers.
    Sleeping waits on `stop`, so a shutdown is never delayed by pacing.
    """

    def __init__(
        self,
        cpu_share: float = 1.0,
        io_rate: int = 0,
        stop: threading.Event | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.cpu_share = cpu_share
        self.io_rate = io_rate
        self.stop = stop or threading.Event()
        self._clock = clock
        self._lock = threading.Lock()
        # when the bytes read so far are "paid for"; idle time is not credit: a scan after an
        # hour of quiet is paced from its own start, not allowed an hour's worth of bytes at once
        self._io_due = clock()

    @property
    def unlimited(self) -> bool:
        """Whether pacing is a no-op."""
        return self.cpu_share >= 1.0 and self.io_rate <= 0

    def pace(self, work: float, nbytes: int) -> None:
        """Account for `work` busy seconds and `nbytes` read; sleep as much as the limits ask."""
        delay = 0.0
        if 0 < self.cpu_share < 1.0:
            delay = work * (1.0 - self.cpu_share) / self.cpu_share
        if self.io_rate > 0:
            now = self._clock()
            with self._lock:
                self._io_due = max(self._io_due, now) + nbytes / self.io_rate
                due = self._io_due
            delay = max(delay, due - now)
        if delay > 0.0005:
            self.stop.wait(delay)


UNLIMITED = Throttle()


class HashResult(NamedTuple):
    """The digest (None when the file could not be read) and why not."""

    sha256: str | None
    problem: str = ""  # "", "unreadable", "vanished", "special", "unstable"
    read: int = 0


def hash_file(
    path: str, *, buffer: int = 256 * 1024, retries: int = 3, expect: tuple[int, int, int, int] | None = None
) -> HashResult:
    """SHA-256 of a regular file, read in `buffer`-sized pieces.

    `expect` is the (size, mtime, ctime, inode) the caller saw with lstat: when the file still
    matches it after reading, one fstat is saved (small files are mostly syscalls, and every
    syscall is a GIL hand-over between the hashing threads).
    """
    try:
        fd = os.open(path, _OPEN_FLAGS)
    except OSError as exc:
        return HashResult(None, _problem(exc))
    try:
        total = 0
        before = expect
        for attempt in range(retries + 1):
            if before is None or attempt:
                st = os.fstat(fd)
                if not stat.S_ISREG(st.st_mode):
                    return HashResult(None, "special")
                before = _stamp(st)
            if attempt:
                os.lseek(fd, 0, os.SEEK_SET)
            digest = hashlib.sha256()
            size = 0
            while True:
                chunk = os.read(fd, buffer)
                size += len(chunk)
                digest.update(chunk)  # releases the GIL for large chunks: workers hash in parallel
                if len(chunk) < buffer:  # a short read of a regular file is its end (checked below)
                    break
                if size > before[0] + buffer:  # not the file lstat saw (a device swapped in?)
                    break
            total += size
            after = os.fstat(fd)
            if not stat.S_ISREG(after.st_mode):
                return HashResult(None, "special")
            if _stamp(after) == before:
                return HashResult(digest.hexdigest(), "", total)
        return HashResult(digest.hexdigest(), "unstable", total)
    except OSError as exc:
        return HashResult(None, _problem(exc))
    finally:
        os.close(fd)


def _stamp(st: os.stat_result) -> tuple[int, int, int, int]:
    return st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino


def _problem(exc: OSError) -> str:
    if exc.errno in (errno.ENOENT, errno.ENOTDIR):
        return "vanished"
    if exc.errno == errno.ELOOP:  # O_NOFOLLOW on a symlink swapped in after lstat
        return "special"
    if exc.errno in (errno.ENXIO, errno.ENODEV, errno.EWOULDBLOCK):
        return "special"
    return "unreadable"
