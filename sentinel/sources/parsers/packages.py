"""Records every package manager parser produces, and the small OS facts they share.

- `Package`: one installed package (name, version, architecture, source package).
- `LoggedAction`: one install/upgrade/remove the manager's own log recorded (dpkg.log, dnf).
- `Transaction`: one front-end run (apt's history.log block, a dnf transaction): when, the
  command line, who asked, and what it did.
- `lock_holder()`: who holds a POSIX lock on the manager's lock file (dpkg and rpm both lock
  with fcntl), read with F_GETLK — no lock is taken.
- `LogCursor`/`read_new()`: the lines appended to a log since the last read, across rotation.
"""

from __future__ import annotations

import fcntl
import os
import struct
from dataclasses import dataclass, field
from pathlib import Path

_FLOCK = "hhqqi4x"  # struct flock (Linux, 64-bit): type, whence, start, len, pid, padding
MAX_LOG_READ = 8 << 20  # bytes read from a log in one go (a first start reads the tail only)


@dataclass(frozen=True, slots=True)
class Package:
    """One installed package as the package database describes it."""

    name: str
    version: str
    arch: str
    source: str = ""

    @property
    def key(self) -> str:
        """`name:arch`: unique in the database (multi-arch packages repeat the name)."""
        return f"{self.name}:{self.arch}"


@dataclass(frozen=True, slots=True)
class LoggedAction:
    """One action the package manager logged: install, upgrade, remove, purge (or configure)."""

    time: float  # wall clock, seconds
    action: str
    package: str  # name:arch
    old: str  # "" when there was none
    new: str  # "" when removed


@dataclass(slots=True)
class Transaction:
    """One run of a front end (apt, dnf): who ran what, and when."""

    start: float
    end: float | None = None
    commandline: str = ""
    user: str = ""  # the login name that ran it ("" when not logged)
    uid: int | None = None
    actions: list[tuple[str, str, str, str]] = field(default_factory=list)  # (verb, pkg, old, new)


def lock_holder(path: Path) -> int | None:
    """The pid holding a POSIX write lock on `path` (0 if unknown), or None when it is free."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK)
    except OSError:
        return None
    try:
        query = struct.pack(_FLOCK, fcntl.F_WRLCK, os.SEEK_SET, 0, 0, 0)
        kind, _whence, _start, _len, pid = struct.unpack(_FLOCK, fcntl.fcntl(fd, fcntl.F_GETLK, query))
    except OSError:
        return None
    finally:
        os.close(fd)
    return None if kind == fcntl.F_UNLCK else max(pid, 0)


@dataclass(frozen=True, slots=True)
class LogCursor:
    """Where the last read of a log ended: its inode and offset."""

    inode: int = 0
    offset: int = 0

    def to_json(self) -> list[int]:
        """For the state file."""
        return [self.inode, self.offset]

    @classmethod
    def from_json(cls, value: object) -> LogCursor:
        """From the state file (a bad value starts over)."""
        if isinstance(value, list) and len(value) == 2 and all(isinstance(v, int) for v in value):
            return cls(value[0], value[1])
        return cls()


def read_new(path: Path, cursor: LogCursor | None) -> tuple[str, LogCursor]:
    """The text appended since `cursor` (None: a first read, which takes only the end of the log).

    A different inode or a shorter file means the log was rotated: it is read from its start.
    Only whole lines are consumed; a line still being written is read next time.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK)
    except OSError:
        return "", cursor or LogCursor()
    try:
        st = os.fstat(fd)
        if cursor is None:
            return "", LogCursor(st.st_ino, st.st_size)
        start = cursor.offset if cursor.inode == st.st_ino and cursor.offset <= st.st_size else 0
        start = max(start, st.st_size - MAX_LOG_READ)
        data = os.pread(fd, st.st_size - start, start)
    finally:
        os.close(fd)
    end = data.rfind(b"\n") + 1
    return data[:end].decode("utf-8", "replace"), LogCursor(st.st_ino, start + end)
