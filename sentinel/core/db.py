"""Opening SQLite the one way every Sentinel connection needs (the hazard store, the outbox)."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

from sentinel.core.files import open_private


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
    conn.execute("PRAGMA foreign_keys = ON")
    return conn
