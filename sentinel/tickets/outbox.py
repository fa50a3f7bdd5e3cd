"""Reading and updating outbox rows, for the dispatcher and `sentinel tickets`.

Rows are written by the hazard store in the same transaction as the transition they ticket.
Here they are claimed in order per hazard and sink (a later transition of a hazard waits until the
earlier one is delivered or dead-lettered), and their delivery state is updated. Each Outbox has
its own SQLite connection, never the writer thread's.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from sentinel.core.db import open_database, writer_lock
from sentinel.hazards.lifecycle import ACTIVE_STATES, states_sql


@dataclass(frozen=True, slots=True)
class OutboxRow:
    """One ticket to deliver to one sink."""

    id: int
    hazard_id: int
    sink: str
    transition: str
    payload: str
    key: str
    created_at: float
    attempts: int


@dataclass(frozen=True, slots=True)
class Mark:
    """The end of one delivery attempt of row `row_id`: delivered at `at`, retried at `at`
    (next_attempt_at) after `error`, or dead-lettered with `error`."""

    row_id: int
    kind: Literal["delivered", "retry", "dead"]
    at: float
    error: str = ""


_MARK_SQL = {
    "delivered": "UPDATE outbox SET delivered_at = ?, attempts = attempts + 1, last_error = NULL "
    "WHERE id = ?",
    "retry": "UPDATE outbox SET attempts = attempts + 1, last_error = ?, next_attempt_at = ? WHERE id = ?",
    "dead": "UPDATE outbox SET attempts = attempts + 1, last_error = ?, dead = 1 WHERE id = ?",
}


def _mark_args(m: Mark) -> tuple[object, ...]:
    if m.kind == "delivered":
        return (m.at, m.row_id)
    if m.kind == "retry":
        return (m.error[:500], m.at, m.row_id)
    return (m.error[:500], m.row_id)


class Outbox:
    """The outbox table, seen by deliverers and operators."""

    def __init__(self, path: Path, *, sinks: Iterable[str] = ()) -> None:
        self._conn = open_database(path)
        self._lock = threading.Lock()
        self._writer = writer_lock(path)  # the store's writer takes it too (core.db.writer_lock)
        self._sinks = tuple(sinks)  # always in stats(), if only with zeros

    def close(self) -> None:
        """Close the connection."""
        with self._lock:
            self._conn.close()

    def _rows(self, sql: str, args: Sequence[Any] = ()) -> list[sqlite3.Row]:
        with self._lock:
            return self._conn.execute(sql, args).fetchall()

    def _write(self, sql: str, args: Sequence[Any]) -> int:
        with self._lock:
            return self._conn.execute(sql, args).rowcount

    def due(self, sink: str, now: float, *, limit: int, busy: Iterable[int] = ()) -> list[OutboxRow]:
        """The next deliverable row of each hazard (the longest due first), skipping hazards in
        flight. Walks `outbox_due` only as far as rows are due: with a large backlog waiting
        for its retry time, the cost is that of the rows returned, not of the backlog."""
        busy_ids = set(busy)
        rows = self._rows(
            "SELECT o.* FROM outbox o INDEXED BY outbox_due WHERE o.sink = ? AND o.delivered_at IS NULL "
            "AND o.dead = 0 AND o.next_attempt_at <= ? AND NOT EXISTS (SELECT 1 FROM outbox e "
            "WHERE e.sink = o.sink AND e.hazard_id = o.hazard_id AND e.id < o.id "
            "AND e.delivered_at IS NULL AND e.dead = 0) ORDER BY o.next_attempt_at, o.id LIMIT ?",
            (sink, now, limit + len(busy_ids)),
        )
        out = [_row(r) for r in rows if int(r["hazard_id"]) not in busy_ids]
        return out[:limit]

    def delivered(self, row_id: int, now: float) -> None:
        """Mark a row delivered."""
        self.mark([Mark(row_id, "delivered", now)])

    def failed(self, row_id: int, error: str, next_attempt_at: float) -> None:
        """Record a failed attempt and when to try again."""
        self.mark([Mark(row_id, "retry", next_attempt_at, error)])

    def dead(self, row_id: int, error: str) -> None:
        """Dead-letter a row the sink rejected for good (kept for `sentinel tickets retry`)."""
        self.mark([Mark(row_id, "dead", 0.0, error)])

    def mark(self, marks: Sequence[Mark]) -> None:
        """Record delivery attempts in one transaction: all or none (sqlite3.Error), for what a
        sink's workers finished meanwhile.

        Not synced to disk by itself (synchronous = NORMAL for this transaction only): a mark
        that a power cut takes back is a ticket sent once more under the same idempotency key,
        which receivers drop, never a ticket lost; the WAL holding it reaches the disk with the
        store's next commit (FULL) or checkpoint. A sync per delivery capped a burst at the
        disk's syncs per second (issue 23)."""
        if not marks:
            return
        with self._lock, self._writer:
            self._conn.execute("PRAGMA synchronous = NORMAL")
            try:
                self._conn.execute("BEGIN IMMEDIATE")
                try:
                    for m in marks:
                        self._conn.execute(_MARK_SQL[m.kind], _mark_args(m))
                except BaseException:
                    self._conn.execute("ROLLBACK")
                    raise
                self._conn.execute("COMMIT")
            finally:
                self._conn.execute("PRAGMA synchronous = FULL")

    def retry(self, row_id: int | None, now: float) -> int:
        """Put a dead row (or all, with None) back in line; returns how many."""
        if row_id is None:
            return self._write("UPDATE outbox SET dead = 0, next_attempt_at = ? WHERE dead = 1", (now,))
        return self._write(
            "UPDATE outbox SET dead = 0, next_attempt_at = ? WHERE dead = 1 AND id = ?", (now, row_id)
        )

    def stats(self) -> dict[str, dict[str, float]]:
        """Per sink (every sink this outbox was opened for, and any other with pending or dead
        rows): pending count, oldest pending created_at, dead count."""
        out = {name: {"pending": 0.0, "oldest": 0.0, "dead": 0.0} for name in self._sinks}
        # counts kept by triggers (schema 4): a scrape never counts a backlog row by row
        for r in self._rows("SELECT sink, pending, dead FROM outbox_counts WHERE pending > 0 OR dead > 0"):
            out[str(r["sink"])] = {"pending": float(r["pending"]), "oldest": 0.0, "dead": float(r["dead"])}
        for name, entry in out.items():
            if entry["pending"]:  # the first entry of the age index: one seek
                rows = self._rows(
                    "SELECT MIN(created_at) AS oldest FROM outbox INDEXED BY outbox_pending_age "
                    "WHERE sink = ? AND delivered_at IS NULL AND dead = 0",
                    (name,),
                )
                entry["oldest"] = float(rows[0]["oldest"] or 0)
        return out

    def listing(self, *, pending: bool = False, dead: bool = False, limit: int = 200) -> list[dict[str, Any]]:
        """Rows for `sentinel tickets list`, newest first."""
        where = "1 = 1"
        if pending:
            where = "delivered_at IS NULL AND dead = 0"
        elif dead:
            where = "dead = 1"
        columns = (
            "id, hazard_id, sink, transition, idempotency_key, created_at, attempts, next_attempt_at, "
            "last_error, delivered_at, dead"
        )
        # `where` is one of the literals above, never input
        sql = f"SELECT {columns} FROM outbox WHERE {where} ORDER BY id DESC LIMIT ?"  # noqa: S608
        rows = self._rows(sql, (limit,))
        return [dict(r) for r in rows]

    def firing(self, sink: str) -> list[str]:
        """The latest payload of each active hazard ticketed to `sink` (for Alertmanager re-sends)."""
        rows = self._rows(
            "SELECT o.payload FROM outbox o JOIN hazards h ON h.id = o.hazard_id "  # noqa: S608
            f"WHERE o.sink = ? AND h.state IN {states_sql(ACTIVE_STATES)} "
            "AND o.id = (SELECT MAX(id) FROM outbox x WHERE x.sink = o.sink AND x.hazard_id = o.hazard_id)",
            (sink,),
        )
        return [str(r["payload"]) for r in rows]

    def retire(self, configured: Iterable[str], reason: str) -> dict[str, int]:
        """Dead-letter the waiting rows of sinks no longer in the config (removed or renamed):
        nothing would ever deliver them, so they are set aside, visible in `sentinel tickets list
        --dead` with `reason`, and `sentinel tickets retry` brings them back once such a sink is
        configured again. A disabled sink is still configured: its rows wait. Returns per sink
        how many were retired."""
        names = sorted(set(configured))
        marks = ", ".join("?" for _ in names) or "''"
        where = f"delivered_at IS NULL AND dead = 0 AND sink NOT IN ({marks})"  # placeholders only
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")  # the counts are exactly the rows retired
            try:
                counts = {
                    str(r["sink"]): int(r["n"])
                    for r in self._conn.execute(
                        f"SELECT sink, COUNT(*) AS n FROM outbox WHERE {where} GROUP BY sink",  # noqa: S608
                        names,
                    ).fetchall()
                }
                self._conn.execute(
                    f"UPDATE outbox SET dead = 1, last_error = ? WHERE {where}",  # noqa: S608
                    [reason[:500], *names],
                )
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")
        return counts


def _row(r: sqlite3.Row) -> OutboxRow:
    return OutboxRow(
        id=int(r["id"]),
        hazard_id=int(r["hazard_id"]),
        sink=str(r["sink"]),
        transition=str(r["transition"]),
        payload=str(r["payload"]),
        key=str(r["idempotency_key"]),
        created_at=float(r["created_at"]),
        attempts=int(r["attempts"]),
    )
