"""Opening SQLite the one way every Sentinel connection needs (the hazard store, the outbox),
and keeping a full state filesystem recoverable without an operator.

WAL mode on a small state filesystem: SQLite checkpoints at 1,000 pages (~4 MB) by default and
never shrinks the WAL file, so the WAL alone can fill a 4 MiB filesystem; once full, the
checkpoint that would fold it back needs room to grow the database that only the WAL holds,
and the store stays stuck across restarts. So every read-write connection checkpoints at ~1 MiB
and cuts the WAL back after a checkpoint (`journal_size_limit`), and the state directory keeps a
small reserve file (`SpaceReserve`): on "database or disk is full" the store frees it and runs a
truncating checkpoint, and makes it again once the filesystem has room.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from pathlib import Path

from sentinel.core.files import open_private

WAL_AUTOCHECKPOINT_PAGES = 256  # ~1 MiB of WAL before a checkpoint (SQLite's default: 1,000)
JOURNAL_SIZE_LIMIT = 1 << 20  # bytes the WAL is cut back to once a checkpoint has reset it
RESERVE_FILE = ".space-reserve"
RESERVE_BYTES = 1 << 20  # at most; never more than 1/16 of the filesystem


_WRITER_LOCKS: dict[str, threading.Lock] = {}
_WRITER_LOCKS_GUARD = threading.Lock()


def writer_lock(path: Path) -> threading.Lock:
    """The lock this process's writers of the database at `path` take turns on, around each
    write transaction. Without it they meet in SQLite's busy handler, which sleeps 1, 2, 5, ...
    up to 100 ms between tries: a writer committing back to back (the hazard store under a
    stream of findings) starved the outbox's delivery marks for seconds (issue 23). Writers in
    other processes (the CLI) still meet the busy timeout."""
    key = os.path.realpath(path)
    with _WRITER_LOCKS_GUARD:
        return _WRITER_LOCKS.setdefault(key, threading.Lock())


def open_database(path: Path, *, readonly: bool = False, timeout: float = 5.0) -> sqlite3.Connection:
    """Open the store with the pragmas every connection needs; create it 0600 if missing."""
    if not readonly and not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        os.close(open_private(path, os.O_CREAT | os.O_WRONLY))
    uri = f"file:{path}?mode=ro" if readonly else f"file:{path}"
    conn = sqlite3.connect(uri, uri=True, timeout=timeout, isolation_level=None, check_same_thread=False)
    conn.row_factory = sqlite3.Row
    conn.execute(f"PRAGMA busy_timeout = {int(timeout * 1000)}")
    if not readonly:
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = FULL")
        conn.execute(f"PRAGMA wal_autocheckpoint = {WAL_AUTOCHECKPOINT_PAGES}")
        conn.execute(f"PRAGMA journal_size_limit = {JOURNAL_SIZE_LIMIT}")
    conn.execute("PRAGMA foreign_keys = ON")
    return conn


def is_disk_full(exc: BaseException) -> bool:
    """Whether an SQLite error means the filesystem (or the database) is full."""
    return getattr(exc, "sqlite_errorcode", None) == sqlite3.SQLITE_FULL or "disk is full" in str(exc)


def checkpoint(conn: sqlite3.Connection) -> bool:
    """Fold the WAL into the database and truncate it to nothing; whether that completed."""
    try:
        row = conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
    except sqlite3.Error:
        return False
    return row is not None and not row[0]


class SpaceReserve:
    """A file kept in the state directory for the day its filesystem fills (see the module doc).

    `release()` frees it; `restore()` makes it again when the filesystem has room for twice
    its size. Sized at `RESERVE_BYTES`, at most 1/16 of the filesystem.
    """

    def __init__(self, directory: Path, size: int = RESERVE_BYTES) -> None:
        self.path = directory / RESERVE_FILE
        self.size = size

    def _wanted(self, st: os.statvfs_result) -> int:
        return min(self.size, st.f_blocks * st.f_frsize // 16)

    def held(self) -> bool:
        """Whether the reserve is in place."""
        try:
            return self.path.stat().st_size > 0
        except OSError:
            return False

    def restore(self) -> bool:
        """Make the reserve if it is missing and there is room for it twice over; True when held."""
        if self.held():
            return True
        try:
            st = os.statvfs(self.path.parent)
        except OSError:
            return False
        size = self._wanted(st)
        if size <= 0 or st.f_bavail * st.f_frsize < 2 * size:
            return False
        try:
            fd = open_private(self.path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
            try:
                os.posix_fallocate(fd, 0, size)
                os.fsync(fd)
            finally:
                os.close(fd)
        except OSError:
            self.path.unlink(missing_ok=True)
            return False
        return True

    def release(self) -> bool:
        """Free the reserve; True if there was one to free."""
        try:
            self.path.unlink()
        except FileNotFoundError:
            return False
        return True
