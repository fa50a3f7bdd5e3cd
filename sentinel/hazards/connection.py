"""The store's one SQLite connection, shared by the writer and scrape threads under one lock."""

from __future__ import annotations

import contextlib
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from sentinel.core.db import SpaceReserve, checkpoint, is_disk_full, open_database, writer_lock
from sentinel.core.ids import RANDOM_IDS, Ids
from sentinel.hazards.schema import migrate


def _log() -> Any:
    """The store's logger, made when the store first has something to say."""
    # start-up time: structlog (asyncio under it) is not loaded by `sentinel hazards list`
    import structlog

    return structlog.get_logger("sentinel.hazards")


class StoreConnection:
    """A migrated connection with the transaction discipline every part of the store follows."""

    def __init__(self, path: Path, ids: Ids = RANDOM_IDS, now: float | None = None) -> None:
        self.path = path
        self.lock = threading.RLock()  # one connection, shared by the writer and scrape threads
        self.conn = open_database(path)
        self.writer = writer_lock(path)  # shared with the outbox's marks (core.db.writer_lock)
        self.reserve = SpaceReserve(path.parent)
        migrate(self.conn, ids, now)
        self.store_id = str(self.conn.execute("SELECT value FROM meta WHERE key = 'store_id'").fetchone()[0])
        """The store's random id, made once by the migration that created it (never changes)."""

    def relieve(self, exc: BaseException) -> bool:
        """After a failed write: if the disk is full, free the space reserve and fold the WAL
        back into the database so that the next attempt can land; whether it did anything."""
        if not is_disk_full(exc):
            return False
        released = self.reserve.release()
        with self.lock:
            folded = checkpoint(self.conn)
        _log().warning("store_disk_full", reserve_released=released, wal_checkpointed=folded)
        return released or folded

    def keep_reserve(self) -> bool:
        """Make the space reserve again when there is room (housekeeping); whether it is held."""
        return self.reserve.restore()

    def close(self) -> None:
        """Close the connection (the WAL is checkpointed by SQLite on last close)."""
        with self.lock:
            self.conn.close()

    @contextlib.contextmanager
    def txn(self) -> Iterator[sqlite3.Connection]:
        """One `BEGIN IMMEDIATE` transaction: committed when the block ends, rolled back on error."""
        with self.lock, self.writer:
            self.conn.execute("BEGIN IMMEDIATE")
            try:
                yield self.conn
            except BaseException:
                self.conn.execute("ROLLBACK")
                raise
            self.conn.execute("COMMIT")

    def read(self, sql: str, args: Sequence[Any] = ()) -> list[sqlite3.Row]:
        """All rows of one query."""
        with self.lock:
            return self.conn.execute(sql, args).fetchall()
