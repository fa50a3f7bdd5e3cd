"""The audit trail, and the ticket rows each ticketed transition adds in the same transaction.

Every history row is a link of the store's hash chain (sentinel.hazards.links): it records who
acted (display name and identity), what, when, and the hazard's accountable fields after it.

The store knows nothing of sinks or payloads: it is given a `Ticketer` (the composition root
passes `sentinel.tickets.ticketing.Ticketing`) that says which tickets a transition makes. The
rows are inserted in the transaction that records the transition (the transactional outbox).
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from sentinel.hazards import links
from sentinel.hazards.identity import AGENT, Actor
from sentinel.hazards.lifecycle import Action, State
from sentinel.hazards.records import HazardRecord, RecordReader

TICKETED = {
    Action.RAISE: "raised",
    Action.REOPEN: "reopened",
    Action.RECUR: "reopened",
    Action.SEVERITY: "severity_changed",
    Action.ESCALATE: "escalated",
    Action.ACK: "acknowledged",
    Action.START: "rectifying",
    Action.RESOLVE: "resolved",
    Action.CLOSE: "closed",
    Action.CANCEL: "cancelled",
    Action.ASSIGN: "assigned",
}
"""Which audit actions produce a ticket, and the transition name the ticket carries."""


@dataclass(frozen=True, slots=True)
class Ticket:
    """One outbox row to write: for `sink`, this payload, under this idempotency key."""

    sink: str
    payload: str
    key: str


@dataclass(frozen=True, slots=True)
class Transition:
    """What a ticketed transition is about, for the Ticketer."""

    record: HazardRecord
    name: str  # the ticket transition ("raised", "resolved", ...)
    history_id: int
    actor: Actor
    at: float
    note: str
    store_id: str
    chain: links.Appended  # the link of this transition's history row
    baseline_digest: str | None = None  # the file-integrity baseline last recorded in this store


class Ticketer(Protocol):
    """Says which tickets one transition makes (none when no sink wants it)."""

    def tickets(self, transition: Transition) -> Sequence[Ticket]:
        """The outbox rows for `transition`; may raise (the transition then rolls back)."""
        ...


class NoTickets:
    """A store without sinks."""

    def tickets(self, transition: Transition) -> Sequence[Ticket]:
        """None."""
        return ()


class Trail:
    """Writes history rows (and their tickets) and the persisted counters."""

    def __init__(self, records: RecordReader, ticketer: Ticketer, store_id: str) -> None:
        self.records = records
        self.ticketer = ticketer
        self.store_id = store_id

    def write(
        self,
        db: sqlite3.Connection,
        hazard_id: int,
        action: Action,
        from_state: State | None,
        to_state: State | None,
        note: str,
        *,
        now: float,
        actor: Actor = AGENT,
    ) -> int:
        """One audit row (its id is returned); for a ticketed action also its outbox rows (same
        transaction). The row keeps the display name and the identity apart: `actor` is what was
        typed, `actor_id`/`actor_info` who it was."""
        history_id, link = links.write_history(
            db,
            hazard_id,
            action=action.value,
            from_state=from_state and from_state.value,
            to_state=to_state and to_state.value,
            note=note,
            actor=actor,
            at=now,
            store=self.store_id,
        )
        name = TICKETED.get(action)
        if name is None:
            return history_id
        record = self.records.read(db, hazard_id, now=now)
        digest = db.execute("SELECT new_digest FROM baseline_updates ORDER BY id DESC LIMIT 1").fetchone()
        transition = Transition(
            record, name, history_id, actor, now, note, self.store_id, link, digest[0] if digest else None
        )
        for ticket in self.ticketer.tickets(transition):
            db.execute(
                "INSERT INTO outbox (hazard_id, history_id, sink, transition, payload, "
                "idempotency_key, created_at, next_attempt_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (hazard_id, history_id, ticket.sink, name, ticket.payload, ticket.key, now, now),
            )
        return history_id

    @staticmethod
    def bump(db: sqlite3.Connection, name: str, **labels: str) -> None:
        """Add one to a persisted counter (survives restarts; read by /metrics)."""
        key = json.dumps({k: str(v) for k, v in sorted(labels.items())})
        db.execute(
            "INSERT INTO counters (name, labels, value) VALUES (?, ?, 1) "
            "ON CONFLICT (name, labels) DO UPDATE SET value = value + 1",
            (name, key),
        )
