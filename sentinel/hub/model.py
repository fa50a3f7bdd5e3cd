"""The hub's value types: what the store returns to the pages, reports and the agent API.

Frozen, slotted dataclasses (DESIGN §4.2). Times are Unix seconds (float) or None; the pages
format them (sentinel.tickets.payload.iso gives RFC 3339 UTC).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from sentinel.hazards.lifecycle import Action

ActionName = Literal["ack", "assign", "start", "note", "tick", "resolve", "close", "cancel", "reopen"]
ACTION_NAMES: tuple[ActionName, ...] = (
    "ack",
    "assign",
    "start",
    "note",
    "tick",
    "resolve",
    "close",
    "cancel",
    "reopen",
)
"""What a hub user can ask a terminal to do to a hazard (the agent CLI's verbs)."""

ActionState = Literal["pending", "applied", "refused"]

LIFECYCLE_STEPS: dict[str, Action] = {
    "ack": Action.ACK,
    "start": Action.START,
    "resolve": Action.RESOLVE,
    "close": Action.CLOSE,
    "cancel": Action.CANCEL,
    "reopen": Action.REOPEN,
}
"""The hub actions that move a hazard's state, and the lifecycle action each one is."""


@dataclass(frozen=True, slots=True)
class Actor:
    """Who did something, as CONTRACTS §3 records it: source os|hub|agent, id, display."""

    id: str
    display: str = ""
    source: str = ""

    @classmethod
    def from_json(cls, value: Any) -> Actor:
        """From a ticket: the actor object (issue 20) or a plain name (older agents)."""
        if isinstance(value, dict):
            ident = str(value.get("id") or value.get("display") or "")
            return cls(ident, str(value.get("display") or ident), str(value.get("source") or ""))
        text = str(value or "")
        return cls(text, text, "agent" if text in ("sentinel", "agent") else "")


@dataclass(frozen=True, slots=True)
class Ticket:
    """One verified, parsed `sentinel.ticket/1` delivery (ingest.parse_ticket builds it)."""

    key: str  # idempotency key (= webhook-id)
    terminal: str
    transition: str
    seq: int  # the hazard history sequence this ticket is for (chain.seq, else the history id)
    uid: str  # the hazard's fleet-unique id (hazard.uid, else "<store>:<local id>")
    local_id: int
    store_id: str
    record: dict[str, Any]  # the hazard as the terminal sent it
    actor: Actor
    at: float | None  # when it happened on the terminal
    note: str
    agent_version: str
    chain_hash: str = ""
    baseline_digest: str = ""


@dataclass(frozen=True, slots=True)
class LedgerFilter:
    """The ledger page's filters; empty means no filter. `since`/`until` bound last_seen."""

    states: tuple[str, ...] = ()
    severities: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    overdue: bool | None = None
    recurring: bool | None = None
    drill: bool | None = None
    terminal: str | None = None
    since: float | None = None
    until: float | None = None


@dataclass(frozen=True, slots=True)
class HazardRow:
    """One line of the ledger."""

    pk: int  # the hub's id (URLs use it)
    terminal: str
    branch_id: str
    primary_id: str
    uid: str
    local_id: int
    rule: str
    category: str
    severity: str
    state: str
    title: str
    subject: str
    owner: str
    first_seen: float | None
    last_seen: float | None
    deadline: float | None
    overdue: bool
    escalation_level: int
    recurrence_count: int
    occurrences: int
    recurring: bool
    drill: bool
    resolved_by: str | None
    closed_by: str | None
    closed_at: float | None
    pending_actions: int = 0


@dataclass(frozen=True, slots=True)
class Cursor:
    """Keyset pagination: the (last_seen, pk) of the last row shown."""

    last_seen: float
    pk: int

    def encode(self) -> str:
        """For a URL query parameter."""
        return f"{self.last_seen!r}_{self.pk}"

    @classmethod
    def decode(cls, text: str) -> Cursor | None:
        """From a URL query parameter; None if malformed."""
        try:
            seen, pk = text.rsplit("_", 1)
            return cls(float(seen), int(pk))
        except ValueError:
            return None


@dataclass(frozen=True, slots=True)
class LedgerPage:
    """A page of the ledger and where the next one starts."""

    rows: tuple[HazardRow, ...]
    next: Cursor | None
    total: int | None = None  # exact count when asked for (capped by count_limit)
    total_capped: bool = False


@dataclass(frozen=True, slots=True)
class HistoryRow:
    """One row of a hazard's trail, with the identity that acted."""

    at: float | None
    action: str
    from_state: str | None
    to_state: str | None
    actor: Actor
    note: str
    seq: int | None
    hash: str | None


@dataclass(frozen=True, slots=True)
class TransitionRow:
    """One ticket the hub received for a hazard."""

    key: str
    transition: str
    seq: int
    actor: Actor
    at: float | None
    received_at: float
    note: str


@dataclass(frozen=True, slots=True)
class ActionRow:
    """One action queued for a terminal, and what became of it."""

    id: int
    uid: str
    terminal: str
    hazard_pk: int
    hazard_uid: str
    local_id: int
    action: str
    note: str
    owner: str
    item: int | None
    requested_by: str  # hub user name; the terminal records actor id hub:<name>
    requested_display: str
    requested_at: float
    state: str
    result_at: float | None
    reason: str
    offered: int

    @property
    def actor_id(self) -> str:
        """The identity the terminal records (CONTRACTS §3)."""
        return f"hub:{self.requested_by}"

    def to_agent(self) -> dict[str, Any]:
        """The action as GET /agent/v1/actions hands it to the terminal."""
        return {
            "id": self.uid,
            "hazard": {"uid": self.hazard_uid, "id": self.local_id},
            "action": self.action,
            "note": self.note,
            "owner": self.owner,
            "item": self.item,
            "actor": {
                "source": "hub",
                "id": self.actor_id,
                "display": self.requested_display or self.requested_by,
            },
            "requested_at": self.requested_at,
        }


@dataclass(frozen=True, slots=True)
class HazardDetail:
    """Everything the hazard page shows."""

    row: HazardRow
    record: dict[str, Any]  # evidence, rectification (checklist), related ids, … as last sent
    history: tuple[HistoryRow, ...]
    tickets: tuple[TransitionRow, ...]
    actions: tuple[ActionRow, ...]
    related: tuple[HazardRow, ...]  # earlier/later records of the same root cause on the terminal

    @property
    def evidence(self) -> list[Any]:
        """The evidence list (attributes and hashes, never file contents)."""
        return list(self.record.get("evidence") or [])

    @property
    def rectification(self) -> list[dict[str, Any]]:
        """The checklist: item, kind (short_term|long_term), text, done, done_by, done_at."""
        return list(self.record.get("rectification") or [])


@dataclass(frozen=True, slots=True)
class TerminalRow:
    """One terminal in a list."""

    name: str
    branch_id: str
    primary_id: str
    enrolled: bool
    in_inventory: bool
    agent_version: str | None
    last_seen_at: float | None
    silent: bool
    silent_after: float
    last_lag: float | None
    open_hazards: int


@dataclass(frozen=True, slots=True)
class TerminalDetail:
    """The terminal page."""

    row: TerminalRow
    store_id: str | None
    baseline_digest: str | None
    chain_seq: int | None
    chain_hash: str | None
    last_ticket_at: float | None
    last_poll_at: float | None
    tickets: int
    open_hazards: tuple[HazardRow, ...]
    pending_actions: tuple[ActionRow, ...]
    checks: tuple[dict[str, Any], ...] = field(default_factory=tuple)
    drills: tuple[dict[str, Any], ...] = field(default_factory=tuple)


@dataclass(frozen=True, slots=True)
class Board:
    """The overdue/escalation board of an org unit: overdue active hazards, most late first,
    and the escalated ones (level > 0), by level."""

    overdue: tuple[HazardRow, ...]
    escalated: tuple[HazardRow, ...]
    by_level: dict[int, int]
