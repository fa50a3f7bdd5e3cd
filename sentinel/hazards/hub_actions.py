"""Actions the hub queued for this terminal, applied on behalf of the person it authenticated.

The agent's pull client (issue 21) fetches an action, verifies the hub's signature, and calls
`HubActions.apply(HubAction(...))` — through `HazardStore.apply_hub_action`. The action goes
through exactly the lifecycle, roles and four-eyes checks a CLI action does, with the actor
`hub:<user>`; its result flows back to the hub as the ordinary ticket of the transition.

Applying is idempotent on the hub's `action_id`: the outcome (done or refused, and why) is kept
in `hub_actions` in the same transaction as the transition, so a pull client that crashed
between applying and reporting gets the same result again instead of a second transition.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from typing import Literal

from sentinel.core.clock import Clock
from sentinel.hazards.actions import PeopleActions
from sentinel.hazards.changes import Change, HazardError
from sentinel.hazards.connection import StoreConnection
from sentinel.hazards.identity import Actor, hub_actor
from sentinel.hazards.lifecycle import Action

HUB_ACTIONS = ("ack", "start", "resolve", "close", "reopen", "cancel", "note", "assign", "check")
"""What the hub may ask (the CLI's verbs)."""


@dataclass(frozen=True, slots=True)
class HubAction:
    """One action a hub user made, as the pull client verified it."""

    action_id: str  # the hub's id for it: the idempotency key of applying it
    hazard_uid: str  # the hub knows hazards by uid (and terminal)
    action: str  # one of HUB_ACTIONS
    user: str  # the hub user who made it, as the hub authenticated them
    display: str = ""  # how the user wants to be named in the ledger (default: the user)
    note: str = ""
    owner: str = ""  # assign: the new owner
    item: int | None = None  # check: the rectification item
    funding: str = ""  # check: what the measure cost
    proof: str = ""  # e.g. the signature header the pull client verified, kept in the trail


@dataclass(frozen=True, slots=True)
class HubResult:
    """What applying a hub action did; the same on every repeat of its action_id."""

    action_id: str
    hazard_uid: str
    outcome: Literal["done", "refused"]
    message: str  # refused: the reason, as the CLI would print it
    state: str | None  # the hazard's state after (done)
    history_id: int | None  # the audit row the action wrote (done)
    repeated: bool = False  # this action_id had been applied before; nothing new was written

    def to_json(self) -> dict[str, object]:
        """For the pull client's `POST /agent/v1/actions/<id>/result`."""
        return {
            "action_id": self.action_id,
            "hazard_uid": self.hazard_uid,
            "outcome": self.outcome,
            "message": self.message,
            "state": self.state,
            "history_id": self.history_id,
            "repeated": self.repeated,
        }


class HubActions:
    """Applies hub actions once each (see the module docstring)."""

    def __init__(self, connection: StoreConnection, people: PeopleActions, clock: Clock) -> None:
        self._db = connection
        self.people = people
        self.clock = clock

    def apply(self, request: HubAction) -> HubResult:
        """Apply `request` (or return what applying it did before). ValueError on a malformed one."""
        if not request.action_id.strip():
            raise ValueError("a hub action needs its action_id")
        if request.action not in HUB_ACTIONS:
            raise ValueError(f"unknown hub action {request.action!r} (known: {', '.join(HUB_ACTIONS)})")
        actor = hub_actor(
            request.user, display=request.display, action_id=request.action_id, proof=request.proof
        )
        now = self.clock.time()
        with self._db.txn() as db:
            earlier = _earlier(db, request.action_id)
            if earlier is not None:
                return earlier
            db.execute("SAVEPOINT hub_action")
            try:
                change = self._apply(db, request, actor, now)
            except HazardError as exc:
                db.execute("ROLLBACK TO hub_action")
                outcome: Literal["done", "refused"] = "refused"
                message, state, history_id = str(exc), None, None
            else:
                outcome, message, state, history_id = "done", "", change.state.value, change.history_id
            db.execute("RELEASE hub_action")
            db.execute(
                "INSERT INTO hub_actions (action_id, hazard_uid, action, actor_id, applied_at, outcome, "
                "message, state, history_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    request.action_id,
                    request.hazard_uid,
                    request.action,
                    actor.id,
                    now,
                    outcome,
                    message,
                    state,
                    history_id,
                ),
            )
        return HubResult(request.action_id, request.hazard_uid, outcome, message, state, history_id)

    def _apply(self, db: sqlite3.Connection, request: HubAction, actor: Actor, now: float) -> Change:
        if request.action == "check":
            if request.item is None:
                raise HazardError("a hub check action needs the item number")
            return self.people.tick_in(
                db,
                request.hazard_uid,
                request.item,
                actor=actor,
                note=request.note,
                funding=request.funding,
                now=now,
            )
        return self.people.act_in(
            db,
            request.hazard_uid,
            Action(request.action),
            actor=actor,
            note=request.note,
            owner=request.owner,
            now=now,
        )


def _earlier(db: sqlite3.Connection, action_id: str) -> HubResult | None:
    row = db.execute("SELECT * FROM hub_actions WHERE action_id = ?", (action_id,)).fetchone()
    if row is None:
        return None
    return HubResult(
        row["action_id"],
        row["hazard_uid"],
        row["outcome"],
        row["message"],
        row["state"],
        row["history_id"],
        repeated=True,
    )
