"""The typed hazard record (DESIGN §3) and the queries that read records back from the store.

`HazardRecord.to_json()` is the documented JSON contract (`--json`, tickets, exports, the archive):
its keys and values are those Sentinel has always written, plus — additively — the identities of
who acted (`*_by_id`, `identity`), the fleet-unique `uid`, and the ledger's verifier and funding
per item. Times are kept as the RFC 3339 strings the contract carries, so a record read back and
written out again is byte-identical.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from typing import Any

from sentinel.core.clock import Clock
from sentinel.core.model import Category, Severity
from sentinel.core.timefmt import iso
from sentinel.hazards.identity import Actor
from sentinel.hazards.lifecycle import ACTIVE_STATES, State
from sentinel.hazards.routing import Router


@dataclass(frozen=True, slots=True)
class RectificationItem:
    """One measure on a hazard's checklist."""

    item: int
    kind: str  # short_term | long_term
    text: str
    done_by: str | None = None
    done_at: str | None = None
    done_by_id: str | None = None
    funding: str | None = None  # optional: what the measure costs and who pays (the ledger's 资金)
    verified_by: str | None = None  # the re-inspector (复查人): who checked the measure worked
    verified_by_id: str | None = None
    verified_at: str | None = None

    @property
    def done(self) -> bool:
        """Whether the measure was ticked off."""
        return self.done_at is not None

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> RectificationItem:
        """The inverse of to_json (the fleet ledger reads records back from tickets)."""
        return cls(
            int(data.get("item") or 0),
            str(data.get("kind") or "short_term"),
            str(data.get("text") or ""),
            _text_or_none(data.get("done_by")),
            _text_or_none(data.get("done_at")),
        )

    def to_json(self) -> dict[str, Any]:
        """The item as the JSON contract spells it."""
        return {
            "item": self.item,
            "kind": self.kind,
            "text": self.text,
            "done": self.done,
            "done_by": self.done_by,
            "done_at": self.done_at,
            "done_by_id": self.done_by_id,
            "funding": self.funding,
            "verified_by": self.verified_by,
            "verified_by_id": self.verified_by_id,
            "verified_at": self.verified_at,
        }


@dataclass(frozen=True, slots=True)
class HistoryRow:
    """One row of a hazard's audit trail."""

    at: str
    actor: str  # the display name (`--by`)
    action: str
    from_state: str | None
    to_state: str | None
    note: str
    identity: Actor | None = None  # who it was: compared by four-eyes and roles
    seq: int | None = None  # its link in the store's hash chain
    hash: str | None = None  # that link's hash

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> HistoryRow:
        """The inverse of to_json (an actor object in `actor`, as some payloads carry, is read too)."""
        actor = data.get("actor")
        identity = data.get("identity")
        if isinstance(actor, dict):
            identity = identity or actor
            actor = actor.get("display") or actor.get("id")
        who = Actor.from_json(identity) if isinstance(identity, dict) and identity.get("id") else None
        return cls(
            str(data.get("at") or ""),
            str(actor or ""),
            str(data.get("action") or ""),
            _text_or_none(data.get("from")),
            _text_or_none(data.get("to")),
            str(data.get("note") or ""),
            identity=who,
            seq=data["seq"] if isinstance(data.get("seq"), int) else None,
            hash=_text_or_none(data.get("hash")),
        )

    def to_json(self) -> dict[str, Any]:
        """The row as the JSON contract spells it (`from`, `to`; `actor_id`, `identity` added)."""
        return {
            "at": self.at,
            "actor": self.actor,
            "action": self.action,
            "from": self.from_state,
            "to": self.to_state,
            "note": self.note,
            "actor_id": self.identity.id if self.identity else None,
            "identity": self.identity.to_json() if self.identity else None,
            "seq": self.seq,
            "hash": self.hash,
        }


@dataclass(frozen=True, slots=True)
class HazardRecord:
    """One hazard record as the store reports it (DESIGN §3)."""

    id: int
    uid: str  # fleet-unique (UUIDv7): what tickets, the hub and idempotency keys use
    fingerprint: str
    rule: str
    category: Category
    severity: Severity
    state: State
    title: str
    subject: str
    terminal: str
    evidence: tuple[dict[str, Any], ...]
    first_seen: str
    last_seen: str
    occurrences: int
    owner: str
    deadline: str | None
    overdue: bool
    escalation_level: int
    escalated_to: str
    recurrence_count: int
    related: tuple[int, ...]
    drill: bool
    condition_active: bool
    resolved_by: str | None
    resolved_at: str | None
    closed_by: str | None
    closed_at: str | None
    rectification: tuple[RectificationItem, ...]
    history: tuple[HistoryRow, ...] = ()
    resolved_by_id: str | None = None
    closed_by_id: str | None = None
    change: dict[str, Any] | None = None  # an IT change's packages, files, who (docs/change.md)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> HazardRecord:
        """The inverse of to_json: a record as a ticket carried it (the hub's fleet ledger).
        Unknown keys are ignored and missing ones take neutral values, so a newer agent's
        additive fields (issue 20's uid, actor objects) read back too."""
        return cls(
            id=int(data.get("id") or 0),
            uid=str(data.get("uid") or ""),
            fingerprint=str(data.get("fingerprint") or ""),
            rule=str(data.get("rule") or ""),
            category=Category(data.get("category") or Category.STABILITY.value),
            severity=Severity(data.get("severity") or Severity.INFO.value),
            state=State(data.get("state") or State.OPEN.value),
            title=str(data.get("title") or ""),
            subject=str(data.get("subject") or ""),
            terminal=str(data.get("terminal") or ""),
            evidence=tuple(e for e in data.get("evidence") or () if isinstance(e, dict)),
            first_seen=str(data.get("first_seen") or ""),
            last_seen=str(data.get("last_seen") or ""),
            occurrences=int(data.get("occurrences") or 0),
            owner=str(data.get("owner") or ""),
            deadline=_text_or_none(data.get("deadline")),
            overdue=bool(data.get("overdue")),
            escalation_level=int(data.get("escalation_level") or 0),
            escalated_to=str(data.get("escalated_to") or ""),
            recurrence_count=int(data.get("recurrence_count") or 0),
            related=tuple(int(i) for i in data.get("related") or () if isinstance(i, int)),
            drill=bool(data.get("drill")),
            condition_active=bool(data.get("condition_active", True)),
            resolved_by=_actor_or_none(data.get("resolved_by")),
            resolved_at=_text_or_none(data.get("resolved_at")),
            closed_by=_actor_or_none(data.get("closed_by")),
            closed_at=_text_or_none(data.get("closed_at")),
            rectification=tuple(
                RectificationItem.from_json(i) for i in data.get("rectification") or () if isinstance(i, dict)
            ),
            history=tuple(HistoryRow.from_json(h) for h in data.get("history") or () if isinstance(h, dict)),
            resolved_by_id=_text_or_none(data.get("resolved_by_id")),
            closed_by_id=_text_or_none(data.get("closed_by_id")),
        )

    def to_json(self) -> dict[str, Any]:
        """The record as the JSON contract spells it."""
        return {
            "id": self.id,
            "fingerprint": self.fingerprint,
            "rule": self.rule,
            "category": self.category.value,
            "severity": self.severity.value,
            "state": self.state.value,
            "title": self.title,
            "subject": self.subject,
            "terminal": self.terminal,
            "evidence": [dict(e) for e in self.evidence],
            "first_seen": self.first_seen,
            "last_seen": self.last_seen,
            "occurrences": self.occurrences,
            "owner": self.owner,
            "deadline": self.deadline,
            "overdue": self.overdue,
            "escalation_level": self.escalation_level,
            "escalated_to": self.escalated_to,
            "recurrence_count": self.recurrence_count,
            "related": list(self.related),
            "drill": self.drill,
            "condition_active": self.condition_active,
            "resolved_by": self.resolved_by,
            "resolved_at": self.resolved_at,
            "closed_by": self.closed_by,
            "closed_at": self.closed_at,
            "rectification": [i.to_json() for i in self.rectification],
            "history": [h.to_json() for h in self.history],
            # added by issue 20 (after the older keys, whose order is kept)
            "uid": self.uid,
            "resolved_by_id": self.resolved_by_id,
            "closed_by_id": self.closed_by_id,
            # added by issue 18: only IT-change records have one
            **({"change": self.change} if self.change is not None else {}),
        }


def _text_or_none(value: Any) -> str | None:
    return None if value is None else str(value)


def _actor_or_none(value: Any) -> str | None:
    if isinstance(value, dict):
        value = value.get("id") or value.get("display")
    return _text_or_none(value)


class RecordReader:
    """Builds HazardRecords from the store's rows (on whichever connection the caller holds)."""

    def __init__(self, router: Router, clock: Clock) -> None:
        self.router = router
        self.clock = clock

    def read(
        self, db: sqlite3.Connection, hazard_id: int, *, now: float | None = None, history: bool = True
    ) -> HazardRecord:
        """The record of `hazard_id` (which must exist), `overdue` judged at `now`."""
        row = db.execute("SELECT * FROM hazards WHERE id = ?", (hazard_id,)).fetchone()
        now = self.clock.time() if now is None else now
        state = State(row["state"])
        deadline = row["deadline"]
        items = db.execute(
            "SELECT * FROM rectification WHERE hazard_id = ? ORDER BY seq",
            (hazard_id,),
        ).fetchall()
        trail: tuple[HistoryRow, ...] = ()
        if history:
            trail = tuple(
                HistoryRow(
                    at=iso(h["at"]) or "",
                    actor=h["actor"],
                    action=h["action"],
                    from_state=h["from_state"],
                    to_state=h["to_state"],
                    note=h["note"],
                    identity=_identity(h),
                    seq=h["seq"],
                    hash=h["chain_hash"],
                )
                for h in db.execute(
                    "SELECT h.*, c.hash AS chain_hash FROM history h LEFT JOIN chain c "
                    "ON c.kind = 'history' AND c.ref = h.id WHERE h.hazard_id = ? ORDER BY h.id",
                    (hazard_id,),
                )
            )
        return HazardRecord(
            id=hazard_id,
            uid=row["uid"],
            fingerprint=row["fingerprint"],
            rule=row["rule"],
            category=Category(row["category"]),
            severity=Severity(row["severity"]),
            state=state,
            title=row["title"],
            subject=row["subject"],
            terminal=row["terminal"],
            evidence=tuple(json.loads(row["evidence"])),
            first_seen=iso(row["first_seen"]) or "",
            last_seen=iso(row["last_seen"]) or "",
            occurrences=row["occurrences"],
            owner=row["owner"],
            deadline=iso(deadline),
            overdue=bool(deadline is not None and state in ACTIVE_STATES and now > deadline),
            escalation_level=row["escalation_level"],
            escalated_to=self.router.chain_name(row["escalation_level"]),
            recurrence_count=row["recurrence_count"],
            related=tuple(json.loads(row["related"])),
            drill=bool(row["drill"]),
            condition_active=bool(row["condition_active"]),
            resolved_by=row["resolved_by"],
            resolved_at=iso(row["resolved_at"]),
            closed_by=row["closed_by"],
            closed_at=iso(row["closed_at"]),
            resolved_by_id=row["resolved_by_id"],
            closed_by_id=row["closed_by_id"],
            rectification=tuple(
                RectificationItem(
                    i["seq"],
                    i["kind"],
                    i["text"],
                    i["done_by"],
                    iso(i["done_at"]),
                    done_by_id=i["done_by_id"],
                    funding=i["funding"],
                    verified_by=i["verified_by"],
                    verified_by_id=i["verified_by_id"],
                    verified_at=iso(i["verified_at"]),
                )
                for i in items
            ),
            history=trail,
            change=_change(row["details"]),
        )


def _identity(row: sqlite3.Row) -> Actor | None:
    """The history row's actor object (None if its JSON was damaged: the trail check says so)."""
    try:
        return Actor.from_json(json.loads(row["actor_info"]))
    except (ValueError, KeyError, TypeError):
        return None


def _change(details: str | None) -> dict[str, Any] | None:
    """The record's `change` object from its stored JSON (None when it has none or it is damaged)."""
    if not details:
        return None
    try:
        value = json.loads(details)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None
