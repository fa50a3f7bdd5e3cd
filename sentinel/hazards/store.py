"""The hazard store: SQLite (WAL, synchronous=FULL) holding hazards, their audit trail and outbox.

Every state change and the outbox rows that ticket it are written in one `BEGIN IMMEDIATE`
transaction (the transactional outbox): a ticket can be late, never lost. The agent's writer
thread and the CLI each open their own HazardStore on the same file; WAL lets them read while the
other writes, and the busy timeout serialises writers.

HazardStore only assembles the store's parts, one job each, over one connection:

- `findings` (sentinel.hazards.findings): findings into records (the writer thread),
- `people` (sentinel.hazards.actions): what a person asks (the CLI),
- `hub` (sentinel.hazards.hub_actions): what a person asked through the hub, applied once,
- `deadlines` (sentinel.hazards.deadlines): escalation of overdue hazards,
- `queries` (sentinel.hazards.queries): typed records and counts,
- `drills` (sentinel.hazards.drill_log): drill results and lookups,
- `retention` (sentinel.hazards.retention): pruning with an archive,
- and the `trail` (sentinel.hazards.trail) every write goes through, with its tickets.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from sentinel.core.clock import SYSTEM_CLOCK, Clock
from sentinel.core.ids import RANDOM_IDS, Ids
from sentinel.core.model import Finding
from sentinel.hazards import links
from sentinel.hazards.actions import HazardRef, PeopleActions
from sentinel.hazards.chain import Verdict
from sentinel.hazards.changes import Change
from sentinel.hazards.config import HazardsConfig
from sentinel.hazards.connection import StoreConnection
from sentinel.hazards.deadlines import Deadlines
from sentinel.hazards.drill_log import DrillLog
from sentinel.hazards.findings import FindingWriter, cleaned
from sentinel.hazards.hub_actions import HubAction, HubActions, HubResult
from sentinel.hazards.identity import Actor
from sentinel.hazards.lifecycle import Action, State
from sentinel.hazards.queries import Queries
from sentinel.hazards.records import HazardRecord, RecordReader
from sentinel.hazards.retention import Retention
from sentinel.hazards.routing import Router
from sentinel.hazards.trail import NoTickets, Ticketer, Trail

POSITION_KEY = "position:"
"""`meta` key prefix of the streaming sources' read positions."""


class HazardStore:
    """Hazard records with lifecycle, audit trail, deadlines, escalation and outbox rows."""

    def __init__(
        self,
        path: Path,
        *,
        config: HazardsConfig,
        terminal: str,
        branch: str,
        clock: Clock = SYSTEM_CLOCK,
        ticketer: Ticketer | None = None,
        ids: Ids = RANDOM_IDS,
    ) -> None:
        self.path = path
        self.config = config
        self.terminal = terminal
        self.branch = branch
        self.clock = clock
        self.router = Router(config)
        self._db = StoreConnection(path, ids, clock.time())
        self.store_id = self._db.store_id
        records = RecordReader(self.router, clock)
        self.trail = Trail(records, ticketer or NoTickets(), self.store_id)
        self.findings = FindingWriter(
            config=config, router=self.router, trail=self.trail, terminal=terminal, ids=ids
        )
        self.people = PeopleActions(self._db, self.trail, clock, config)
        self.hub = HubActions(self._db, self.people, clock)
        self.deadlines = Deadlines(self._db, self.router, self.trail, clock)
        self.queries = Queries(self._db, records, clock)
        self.drills = DrillLog(self._db)
        self.retention = Retention(self._db, config, records, clock)

    def close(self) -> None:
        """Close the connection (the WAL is checkpointed by SQLite on last close)."""
        self._db.close()

    # -- writes -------------------------------------------------------------------------------

    def relieve(self, exc: BaseException) -> bool:
        """After a failed write: on a full disk, free the space reserve and checkpoint the WAL."""
        return self._db.relieve(exc)

    def keep_reserve(self) -> bool:
        """Re-make the space reserve when the filesystem has room again (housekeeping)."""
        return self._db.keep_reserve()

    def apply(self, finding: Finding) -> Change | None:
        """Turn one finding into a new record, an update, a reopen or an auto-resolution."""
        return self.apply_many([finding])[0]

    def apply_many(
        self, findings: Sequence[Finding], *, positions: Mapping[str, str] | None = None
    ) -> list[Change | None]:
        """Apply findings in order in ONE transaction (one fsync for a burst); all or nothing.

        `positions` (source name -> where it has read to) are saved in the same transaction, so
        a source resuming from `position()` never re-reads a line whose findings are stored."""
        with self._db.txn() as db:
            changes = [self.findings.apply(db, cleaned(f)) for f in findings]
            for source, value in (positions or {}).items():
                db.execute(
                    "INSERT INTO meta (key, value) VALUES (?, ?) "
                    "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                    (POSITION_KEY + source, value),
                )
            return changes

    def position(self, source: str) -> str | None:
        """Where `source` had read to when its last findings were stored (None: never saved)."""
        rows = self._db.read("SELECT value FROM meta WHERE key = ?", (POSITION_KEY + source,))
        return str(rows[0]["value"]) if rows else None

    def act(
        self, hazard: HazardRef, action: Action, *, actor: Actor, note: str = "", owner: str = ""
    ) -> Change:
        """Apply a person's action (ack, start, resolve, close, reopen, cancel, assign, note);
        `hazard` is the local id or the uid; `actor` is who (sentinel.hazards.identity)."""
        return self.people.act(hazard, action, actor=actor, note=note, owner=owner)

    def tick(self, hazard: HazardRef, seq: int, *, actor: Actor, note: str = "", funding: str = "") -> Change:
        """Mark rectification item `seq` of a hazard as done (`funding`: what it cost, optional)."""
        return self.people.tick(hazard, seq, actor=actor, note=note, funding=funding)

    def apply_hub_action(self, action: HubAction) -> HubResult:
        """Apply an action a hub-authenticated user made (actor `hub:<user>`), once per action_id;
        a refusal (roles, four-eyes, lifecycle) is a result, not an exception."""
        return self.hub.apply(action)

    def check_deadlines(self) -> list[Change]:
        """Escalate every overdue active hazard to the chain level its lateness calls for."""
        return self.deadlines.check()

    def prune(self, archive_dir: Path | None = None) -> int:
        """Delete closed and cancelled hazards past the retention (archived first to `archive_dir`)."""
        return self.retention.prune(archive_dir)

    # -- reads --------------------------------------------------------------------------------

    def get(self, hazard: HazardRef) -> HazardRecord | None:
        """The full record (DESIGN §3) with rectification and history, by id or uid, or None."""
        return self.queries.get(hazard)

    def records(
        self,
        *,
        states: Sequence[State | str] = (),
        since: float | None = None,
        limit: int | None = None,
        full: bool = False,
    ) -> list[HazardRecord]:
        """Records, newest first, filtered by state and by last_seen >= since (`full`: with history)."""
        return self.queries.find(states=states, since=since, limit=limit, full=full)

    def state_counts(self) -> list[tuple[str, str, str, int]]:
        """(state, severity, category, count) for every non-empty combination."""
        return self.queries.state_counts()

    def overdue_counts(self) -> dict[str, int]:
        """Overdue active hazards by severity."""
        return self.queries.overdue_counts()

    def counter(self, name: str) -> list[tuple[dict[str, str], float]]:
        """A persisted counter's values by label set."""
        return self.queries.counter(name)

    def open_hazards(self, limit: int) -> list[sqlite3.Row]:
        """The most severe, oldest active hazards first (for the capped info series)."""
        return self.queries.open_hazards(limit)

    def verify(self, expected: Mapping[int, str] | None = None) -> Verdict:
        """Walk the hash-chained trail and check the tables against it (sentinel.hazards.links);
        `expected`: (seq -> hash) a central copy holds, which this trail must hold too."""
        with self._db.lock:
            return links.verify(self._db.conn, expected)

    def trail_links(self, from_seq: int = 1) -> list[dict[str, Any]]:
        """Every link from `from_seq` on with its row (what an auditor recomputes)."""
        with self._db.lock:
            return list(links.export(self._db.conn, from_seq))

    def chain_head(self) -> tuple[int, str]:
        """(seq, hash) of the trail's newest link: what a central copy records to prove it later."""
        with self._db.lock:
            return links.head(self._db.conn)

    def integrity_check(self) -> str:
        """SQLite's own verdict: "ok" or the first problem."""
        return self.queries.integrity_check()
