"""The audit trail of change windows opened on the terminal (`sentinel change open|close`).

Rows live in the hazard store's `change_windows` table (schema migration 4), next to the hazards
and the baseline updates: who opened which window for which change ticket, from when until
when, and who closed it early. The agent reads the open ones to judge package operations.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sentinel.core.db import open_database
from sentinel.core.model import clean_text
from sentinel.core.timefmt import iso
from sentinel.hazards.schema import migrate


class ChangeWindowError(Exception):
    """A request on the change windows that cannot be done (unknown id, already closed)."""


@dataclass(frozen=True, slots=True)
class OpenedWindow:
    """One row of the trail."""

    id: int
    ticket: str
    starts_at: float
    ends_at: float
    opened_by: dict[str, Any]
    opened_at: float
    note: str
    closed_by: dict[str, Any] | None
    closed_at: float | None

    @property
    def until(self) -> float:
        """When it ends: at its end, or when it was closed."""
        return min(self.ends_at, self.closed_at) if self.closed_at is not None else self.ends_at

    def to_json(self) -> dict[str, Any]:
        """For `sentinel change list --json` (stable keys)."""
        return {
            "id": self.id,
            "ticket": self.ticket,
            "start": iso(self.starts_at),
            "end": iso(self.ends_at),
            "opened_by": self.opened_by,
            "opened_at": iso(self.opened_at),
            "note": self.note,
            "closed_by": self.closed_by,
            "closed_at": iso(self.closed_at),
        }


@contextmanager
def _store(path: Path, *, write: bool) -> Iterator[sqlite3.Connection]:
    conn = open_database(path)
    try:
        migrate(conn)
        if not write:
            yield conn
            return
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield conn
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")
    finally:
        conn.close()


def open_window(
    store_path: Path, *, ticket: str, start: float, end: float, actor: dict[str, Any], note: str, at: float
) -> int:
    """Record a window opened by `actor`; its id."""
    with _store(store_path, write=True) as db:
        cur = db.execute(
            "INSERT INTO change_windows (ticket, starts_at, ends_at, opened_by, opened_at, note) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            (clean_text(ticket), start, end, json.dumps(actor, sort_keys=True), at, clean_text(note)),
        )
        return int(cur.lastrowid or 0)


def close_window(store_path: Path, window_id: int, *, actor: dict[str, Any], at: float) -> OpenedWindow:
    """Close an open window now; the row as it is afterwards."""
    with _store(store_path, write=True) as db:
        row = db.execute("SELECT * FROM change_windows WHERE id = ?", (window_id,)).fetchone()
        if row is None:
            raise ChangeWindowError(f"no change window #{window_id}")
        if row["closed_at"] is not None or row["ends_at"] <= at:
            raise ChangeWindowError(f"change window #{window_id} is no longer open")
        db.execute(
            "UPDATE change_windows SET closed_by = ?, closed_at = ? WHERE id = ?",
            (json.dumps(actor, sort_keys=True), at, window_id),
        )
        row = db.execute("SELECT * FROM change_windows WHERE id = ?", (window_id,)).fetchone()
        return _window(row)


def windows(store_path: Path, *, since: float | None = None, limit: int = 100) -> list[OpenedWindow]:
    """Windows ending after `since` (all when None), newest first; [] when there is no store."""
    if not store_path.exists():
        return []
    with _store(store_path, write=False) as db:
        rows = db.execute(
            "SELECT * FROM change_windows WHERE ends_at >= ? ORDER BY id DESC LIMIT ?",
            (since if since is not None else float("-inf"), limit),
        ).fetchall()
    return [_window(r) for r in rows]


def _window(row: sqlite3.Row) -> OpenedWindow:
    return OpenedWindow(
        id=int(row["id"]),
        ticket=row["ticket"],
        starts_at=float(row["starts_at"]),
        ends_at=float(row["ends_at"]),
        opened_by=json.loads(row["opened_by"]),
        opened_at=float(row["opened_at"]),
        note=row["note"],
        closed_by=json.loads(row["closed_by"]) if row["closed_by"] else None,
        closed_at=row["closed_at"],
    )
