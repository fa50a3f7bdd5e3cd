"""The store's read side alone: records, one record, for `sentinel hazards list|show|export`.

The same connection (and migration) and the same typed records as HazardStore, without the parts
that write: a listing starts without the finding writer, the redaction rules, the lifecycle
actions, deadlines, retention and ticketing (issue 23: the CLI starts at a few times the
interpreter's own start)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from sentinel.core.clock import SYSTEM_CLOCK, Clock
from sentinel.hazards.config import HazardsConfig
from sentinel.hazards.connection import StoreConnection
from sentinel.hazards.lifecycle import State
from sentinel.hazards.queries import Queries
from sentinel.hazards.records import HazardRecord, RecordReader
from sentinel.hazards.routing import Router


class StoreReader:
    """Reads the hazard store at `path` (created or migrated on open, as HazardStore does)."""

    def __init__(self, path: Path, *, config: HazardsConfig, clock: Clock = SYSTEM_CLOCK) -> None:
        self._db = StoreConnection(path)
        self.queries = Queries(self._db, RecordReader(Router(config), clock), clock)

    def records(
        self,
        *,
        states: Sequence[State | str] = (),
        since: float | None = None,
        limit: int | None = None,
        full: bool = False,
    ) -> list[HazardRecord]:
        """Records, newest first (as HazardStore.records)."""
        return self.queries.find(states=states, since=since, limit=limit, full=full)

    def get(self, hazard: int | str) -> HazardRecord | None:
        """One full record by id or uid, or None (as HazardStore.get)."""
        return self.queries.get(hazard)

    def close(self) -> None:
        """Close the connection."""
        self._db.close()
