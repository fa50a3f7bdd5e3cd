"""Reading the store: typed records for the CLI, exports and inspections; counts for /metrics."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from typing import Any

from sentinel.core.clock import Clock
from sentinel.hazards.connection import StoreConnection
from sentinel.hazards.lifecycle import ACTIVE_STATES, State, states_sql
from sentinel.hazards.records import HazardRecord, RecordReader

_ACTIVE = states_sql(ACTIVE_STATES)


class Queries:
    """Read-only questions asked of the store (any thread)."""

    def __init__(self, connection: StoreConnection, records: RecordReader, clock: Clock) -> None:
        self._db = connection
        self.records = records
        self.clock = clock

    def get(self, hazard_id: int) -> HazardRecord | None:
        """The full record (DESIGN §3) with rectification and history, or None."""
        with self._db.lock:
            conn = self._db.conn
            exists = conn.execute("SELECT 1 FROM hazards WHERE id = ?", (hazard_id,)).fetchone()
            return self.records.read(conn, hazard_id) if exists else None

    def find(
        self,
        *,
        states: Sequence[State | str] = (),
        since: float | None = None,
        limit: int | None = None,
        full: bool = False,
    ) -> list[HazardRecord]:
        """Records, newest first, filtered by state and by last_seen >= since (`full`: with history)."""
        where: list[str] = ["1 = 1"]
        args: list[Any] = []
        if states:
            where.append(f"state IN ({', '.join('?' * len(states))})")
            args += [str(s) for s in states]
        if since is not None:
            where.append("last_seen >= ?")
            args.append(since)
        sql = f"SELECT id FROM hazards WHERE {' AND '.join(where)} ORDER BY id DESC"  # noqa: S608
        if limit is not None:
            sql += f" LIMIT {int(limit)}"
        with self._db.lock:
            conn = self._db.conn
            ids = [int(r["id"]) for r in conn.execute(sql, args).fetchall()]
            return [self.records.read(conn, i, history=full) for i in ids]

    def state_counts(self) -> list[tuple[str, str, str, int]]:
        """(state, severity, category, count) for every non-empty combination."""
        rows = self._db.read(
            "SELECT state, severity, category, COUNT(*) AS n FROM hazards GROUP BY state, severity, category"
        )
        return [(r["state"], r["severity"], r["category"], int(r["n"])) for r in rows]

    def overdue_counts(self) -> dict[str, int]:
        """Overdue active hazards by severity."""
        rows = self._db.read(
            "SELECT severity, COUNT(*) AS n FROM hazards "  # noqa: S608 - states from the enum
            f"WHERE state IN {_ACTIVE} AND deadline IS NOT NULL AND deadline < ? GROUP BY severity",
            (self.clock.time(),),
        )
        return {r["severity"]: int(r["n"]) for r in rows}

    def counter(self, name: str) -> list[tuple[dict[str, str], float]]:
        """A persisted counter's values by label set."""
        rows = self._db.read("SELECT labels, value FROM counters WHERE name = ?", (name,))
        return [(json.loads(r["labels"]), float(r["value"])) for r in rows]

    def open_hazards(self, limit: int) -> list[sqlite3.Row]:
        """The most severe, oldest active hazards first (for the capped info series)."""
        return self._db.read(
            "SELECT id, rule, severity, category, state, drill FROM hazards "  # noqa: S608
            f"WHERE state IN {_ACTIVE} "
            "ORDER BY CASE severity WHEN 'critical' THEN 0 WHEN 'major' THEN 1 "
            "WHEN 'minor' THEN 2 ELSE 3 END, id LIMIT ?",
            (limit,),
        )

    def integrity_check(self) -> str:
        """SQLite's own verdict: "ok" or the first problem."""
        return str(self._db.read("PRAGMA integrity_check")[0][0])
