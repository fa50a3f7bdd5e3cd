"""People's actions on hazards (the CLI, and the hub through `hub_actions`): lifecycle moves,
notes, owners, checklists.

Each is checked against the lifecycle table, `[[hazards.roles]]` and the house rules (a reason
to cancel, four eyes to close, every measure done before closing) and written with its audit
row in one transaction. Who acted is an `Actor` (sentinel.hazards.identity): the rules compare
its id, never the typed display name.
"""

from __future__ import annotations

import sqlite3
from typing import Any

from sentinel.core.clock import Clock
from sentinel.core.model import clean_text
from sentinel.hazards.changes import Change, HazardError
from sentinel.hazards.config import HazardsConfig
from sentinel.hazards.connection import StoreConnection
from sentinel.hazards.identity import AGENT_ID, Actor, person
from sentinel.hazards.lifecycle import LIVE_STATES, Action, IllegalTransition, State, next_state
from sentinel.hazards.roles import GroupLookup, decide, unix_groups
from sentinel.hazards.trail import Trail

HazardRef = int | str
"""A hazard by its local id (an int) or by its fleet-unique uid (a string)."""


def find_hazard(db: sqlite3.Connection, hazard: HazardRef) -> sqlite3.Row:
    """The hazard row by id or uid, or HazardError naming what was asked for."""
    if isinstance(hazard, int):
        row = db.execute("SELECT * FROM hazards WHERE id = ?", (hazard,)).fetchone()
        missing = f"no hazard #{hazard}"
    else:
        row = db.execute("SELECT * FROM hazards WHERE uid = ?", (hazard,)).fetchone()
        missing = f"no hazard with uid {hazard}"
    if row is None:
        raise HazardError(missing)
    found: sqlite3.Row = row
    return found


class PeopleActions:
    """Applies what a person asks of a hazard."""

    def __init__(
        self,
        connection: StoreConnection,
        trail: Trail,
        clock: Clock,
        config: HazardsConfig,
        *,
        groups_of: GroupLookup = unix_groups,
    ) -> None:
        self._db = connection
        self.trail = trail
        self.clock = clock
        self.config = config
        self.groups_of = groups_of

    def act(
        self, hazard: HazardRef, action: Action, *, actor: Actor, note: str = "", owner: str = ""
    ) -> Change:
        """Apply a person's action (ack, start, resolve, close, reopen, cancel, assign, note)."""
        with self._db.txn() as db:
            return self.act_in(db, hazard, action, actor=actor, note=note, owner=owner, now=self.clock.time())

    def act_in(
        self,
        db: sqlite3.Connection,
        hazard: HazardRef,
        action: Action,
        *,
        actor: Actor,
        note: str,
        owner: str,
        now: float,
    ) -> Change:
        """`act` inside the caller's transaction (HazardError before anything is written)."""
        note, owner = clean_text(note), clean_text(owner)
        row = find_hazard(db, hazard)
        hazard_id, state = int(row["id"]), State(row["state"])
        if action in (Action.NOTE, Action.ASSIGN):
            return self._annotate(db, row, action, actor=actor, note=note, owner=owner, now=now)
        try:
            target = next_state(state, action)
        except IllegalTransition as exc:
            raise HazardError(f"hazard #{hazard_id}: {exc}") from None
        self._guard(db, row, action, actor=actor, note=note)
        updates: dict[str, Any] = {"state": target.value, "updated_at": now}
        if action == Action.RESOLVE:
            updates |= {"resolved_by": actor.display, "resolved_by_id": actor.id, "resolved_at": now}
        elif action == Action.CLOSE:
            updates |= {"closed_by": actor.display, "closed_by_id": actor.id, "closed_at": now}
            # closing is the re-inspection: the closer verified every measure not verified yet
            db.execute(
                "UPDATE rectification SET verified_by = ?, verified_by_id = ?, verified_at = ? "
                "WHERE hazard_id = ? AND verified_by_id IS NULL",
                (actor.display, actor.id, now, hazard_id),
            )
        elif action == Action.REOPEN:
            updates |= {"resolved_by": None, "resolved_by_id": None, "resolved_at": None}
        # the column names come from the literal dict above, never from input
        assignments = ", ".join(f"{k} = ?" for k in updates)
        sql = f"UPDATE hazards SET {assignments} WHERE id = ?"  # noqa: S608
        db.execute(sql, (*updates.values(), hazard_id))
        row_id = self.trail.write(db, hazard_id, action, state, target, note, actor=actor, now=now)
        return Change(hazard_id, action, target, history_id=row_id)

    def _allowed(self, row: sqlite3.Row, action: Action, actor: Actor) -> None:
        """`[[hazards.roles]]`: the first governing entry must allow this actor."""
        if actor.is_agent:
            return  # the agent's own moves are not people's actions
        refusal = decide(
            self.config.roles,
            action=action.value,
            category=row["category"],
            severity=row["severity"],
            owner=row["owner"],
            actor=actor,
            groups_of=self.groups_of,
        )
        if refusal is not None:
            raise HazardError(f"hazard #{row['id']}: {refusal.message}")

    def _guard(
        self, db: sqlite3.Connection, row: sqlite3.Row, action: Action, *, actor: Actor, note: str
    ) -> None:
        hazard_id = int(row["id"])
        self._allowed(row, action, actor)
        if action == Action.CANCEL and not note.strip():
            raise HazardError(f"hazard #{hazard_id}: cancel needs a reason (--note TEXT)")
        if action != Action.CLOSE:
            return
        if actor.is_agent and not row["drill"]:
            raise HazardError(
                f"hazard #{hazard_id}: the agent closes only drill hazards; a person verifies and closes"
            )
        resolver = row["resolved_by_id"]
        aliases = self.config.aliases
        if resolver and resolver != AGENT_ID and person(resolver, aliases) == person(actor.id, aliases):
            raise HazardError(
                f"hazard #{hazard_id}: {resolver} resolved it (as {row['resolved_by']!r}) and you are "
                f"{actor.id} (as {actor.display!r}): someone else must verify and close it (four-eyes rule)"
            )
        open_items = db.execute(
            "SELECT seq, text FROM rectification WHERE hazard_id = ? AND done_at IS NULL ORDER BY seq",
            (hazard_id,),
        ).fetchall()
        if open_items:
            listed = "; ".join(f"{r['seq']}: {r['text']}" for r in open_items)
            raise HazardError(f"hazard #{hazard_id}: rectification items not done: {listed}")

    def _annotate(
        self,
        db: sqlite3.Connection,
        row: sqlite3.Row,
        action: Action,
        *,
        actor: Actor,
        note: str,
        owner: str,
        now: float,
    ) -> Change:
        hazard_id, state = int(row["id"]), State(row["state"])
        if action == Action.NOTE:
            if not note.strip():
                raise HazardError("a note needs text (--note TEXT)")
            self._allowed(row, action, actor)
            row_id = self.trail.write(db, hazard_id, Action.NOTE, None, None, note, actor=actor, now=now)
            return Change(hazard_id, Action.NOTE, state, history_id=row_id)
        if state not in LIVE_STATES:
            raise HazardError(f"hazard #{hazard_id} is {state.value}; it cannot be reassigned")
        owner = owner.strip()
        if not owner:
            raise HazardError("assign needs an owner (--to NAME)")
        self._allowed(row, action, actor)
        db.execute("UPDATE hazards SET owner = ?, updated_at = ? WHERE id = ?", (owner, now, hazard_id))
        text = f"owner {row['owner']} -> {owner}" + (f": {note}" if note else "")
        row_id = self.trail.write(db, hazard_id, Action.ASSIGN, None, None, text, actor=actor, now=now)
        return Change(hazard_id, Action.ASSIGN, state, history_id=row_id)

    def tick(self, hazard: HazardRef, seq: int, *, actor: Actor, note: str = "", funding: str = "") -> Change:
        """Mark rectification item `seq` of a hazard as done (with what it cost, if given)."""
        with self._db.txn() as db:
            return self.tick_in(
                db, hazard, seq, actor=actor, note=note, funding=funding, now=self.clock.time()
            )

    def tick_in(
        self,
        db: sqlite3.Connection,
        hazard: HazardRef,
        seq: int,
        *,
        actor: Actor,
        note: str,
        funding: str,
        now: float,
    ) -> Change:
        """`tick` inside the caller's transaction (HazardError before anything is written)."""
        note, funding = clean_text(note), clean_text(funding).strip()
        row = find_hazard(db, hazard)
        hazard_id = int(row["id"])
        if State(row["state"]) not in LIVE_STATES:
            raise HazardError(f"hazard #{hazard_id} is {row['state']}; its checklist is final")
        item = db.execute(
            "SELECT text, done_at, funding FROM rectification WHERE hazard_id = ? AND seq = ?",
            (hazard_id, seq),
        ).fetchone()
        if item is None:
            raise HazardError(f"hazard #{hazard_id} has no rectification item {seq}")
        if item["done_at"] is not None:
            raise HazardError(f"hazard #{hazard_id}: item {seq} is already done")
        self._allowed(row, Action.CHECK, actor)
        db.execute(
            "UPDATE rectification SET done_by = ?, done_by_id = ?, done_at = ?, funding = ? "
            "WHERE hazard_id = ? AND seq = ?",
            (actor.display, actor.id, now, funding or item["funding"], hazard_id, seq),
        )
        text = f"done: {seq}. {item['text']}" + (f" ({note})" if note else "")
        if funding:
            text += f"; funding: {funding}"
        row_id = self.trail.write(db, hazard_id, Action.CHECK, None, None, text, actor=actor, now=now)
        return Change(hazard_id, Action.CHECK, State(row["state"]), history_id=row_id)
