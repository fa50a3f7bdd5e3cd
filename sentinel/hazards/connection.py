"""The store's one SQLite connection, shared by the writer and scrape threads under one lock."""

from __future__ import annotations

import contextlib
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from sentinel.core.db import open_database
from sentinel.hazards.schema import migrate


class StoreConnection:
    """A migrated connection with the transaction discipline every part of the store follows."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.lock = threading.RLock()  # one connection, shared by the writer and scrape threads
        self.conn = open_database(path)
        migrate(self.conn)

    def close(self) -> None:
        """Close the connection (the WAL is checkpointed by SQLite on last close)."""
        with self.lock:
            self.conn.close()

    @contextlib.contextmanager
    def txn(self) -> Iterator[sqlite3.Connection]:
        """One `BEGIN IMMEDIATE` transaction: committed when the block ends, rolled back on error."""
        with self.lock:
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
