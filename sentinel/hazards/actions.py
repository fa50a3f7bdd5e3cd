"""People's actions on hazards (the CLI, later the hub): lifecycle moves, notes, owners, checklists.

Each is checked against the lifecycle table and the house rules (a reason to cancel, four eyes
to close, every measure done before closing) and written with its audit row in one transaction.
"""

from __future__ import annotations

import sqlite3
from typing import Any

from sentinel.core.clock import Clock
from sentinel.core.model import clean_text
from sentinel.hazards.changes import Change, HazardError
from sentinel.hazards.connection import StoreConnection
from sentinel.hazards.lifecycle import LIVE_STATES, Action, IllegalTransition, State, next_state
from sentinel.hazards.trail import Trail


class PeopleActions:
    """Applies what a person asks of a hazard."""

    def __init__(self, connection: StoreConnection, trail: Trail, clock: Clock) -> None:
        self._db = connection
        self.trail = trail
        self.clock = clock

    def act(self, hazard_id: int, action: Action, *, by: str, note: str = "", owner: str = "") -> Change:
        """Apply a person's action (ack, start, resolve, close, reopen, cancel, assign, note)."""
        by, note, owner = clean_text(by.strip()), clean_text(note), clean_text(owner)
        if not by:
            raise HazardError("say who you are with --by NAME (the audit trail needs it)")
        now = self.clock.time()
        with self._db.txn() as db:
            row = db.execute("SELECT * FROM hazards WHERE id = ?", (hazard_id,)).fetchone()
            if row is None:
                raise HazardError(f"no hazard #{hazard_id}")
            state = State(row["state"])
            if action in (Action.NOTE, Action.ASSIGN):
                return self._annotate(db, row, action, by=by, note=note, owner=owner, now=now)
            try:
                target = next_state(state, action)
            except IllegalTransition as exc:
                raise HazardError(f"hazard #{hazard_id}: {exc}") from None
            self._guard(db, row, action, by=by, note=note)
            updates: dict[str, Any] = {"state": target.value, "updated_at": now}
            if action == Action.RESOLVE:
                updates |= {"resolved_by": by, "resolved_at": now}
            elif action == Action.CLOSE:
                updates |= {"closed_by": by, "closed_at": now}
            elif action == Action.REOPEN:
                updates |= {"resolved_by": None, "resolved_at": None}
            # the column names come from the literal dict above, never from input
            assignments = ", ".join(f"{k} = ?" for k in updates)
            sql = f"UPDATE hazards SET {assignments} WHERE id = ?"  # noqa: S608
            db.execute(sql, (*updates.values(), hazard_id))
            self.trail.write(db, hazard_id, action, state, target, note, actor=by, now=now)
            return Change(hazard_id, action, target)

    @staticmethod
    def _guard(db: sqlite3.Connection, row: sqlite3.Row, action: Action, *, by: str, note: str) -> None:
        hazard_id = int(row["id"])
        if action == Action.CANCEL and not note.strip():
            raise HazardError(f"hazard #{hazard_id}: cancel needs a reason (--note TEXT)")
        if action != Action.CLOSE:
            return
        if row["resolved_by"] == by:
            raise HazardError(
                f"hazard #{hazard_id}: {by} resolved it, so someone else must verify and close it "
                "(four-eyes rule)"
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
        by: str,
        note: str,
        owner: str,
        now: float,
    ) -> Change:
        hazard_id, state = int(row["id"]), State(row["state"])
        if action == Action.NOTE:
            if not note.strip():
                raise HazardError("a note needs text (--note TEXT)")
            self.trail.write(db, hazard_id, Action.NOTE, None, None, note, actor=by, now=now)
            return Change(hazard_id, Action.NOTE, state)
        if state not in LIVE_STATES:
            raise HazardError(f"hazard #{hazard_id} is {state.value}; it cannot be reassigned")
        owner = owner.strip()
        if not owner:
            raise HazardError("assign needs an owner (--to NAME)")
        db.execute("UPDATE hazards SET owner = ?, updated_at = ? WHERE id = ?", (owner, now, hazard_id))
        text = f"owner {row['owner']} -> {owner}" + (f": {note}" if note else "")
        self.trail.write(db, hazard_id, Action.ASSIGN, None, None, text, actor=by, now=now)
        return Change(hazard_id, Action.ASSIGN, state)

    def tick(self, hazard_id: int, seq: int, *, by: str, note: str = "") -> Change:
        """Mark rectification item `seq` of a hazard as done."""
        by, note = clean_text(by), clean_text(note)
        if not by.strip():
            raise HazardError("say who you are with --by NAME (the audit trail needs it)")
        now = self.clock.time()
        with self._db.txn() as db:
            row = db.execute("SELECT state FROM hazards WHERE id = ?", (hazard_id,)).fetchone()
            if row is None:
                raise HazardError(f"no hazard #{hazard_id}")
            if State(row["state"]) not in LIVE_STATES:
                raise HazardError(f"hazard #{hazard_id} is {row['state']}; its checklist is final")
            item = db.execute(
                "SELECT text, done_at FROM rectification WHERE hazard_id = ? AND seq = ?",
                (hazard_id, seq),
            ).fetchone()
            if item is None:
                raise HazardError(f"hazard #{hazard_id} has no rectification item {seq}")
            if item["done_at"] is not None:
                raise HazardError(f"hazard #{hazard_id}: item {seq} is already done")
            db.execute(
                "UPDATE rectification SET done_by = ?, done_at = ? WHERE hazard_id = ? AND seq = ?",
                (by, now, hazard_id, seq),
            )
            text = f"done: {seq}. {item['text']}" + (f" ({note})" if note else "")
            self.trail.write(db, hazard_id, Action.CHECK, None, None, text, actor=by, now=now)
            return Change(hazard_id, Action.CHECK, State(row["state"]))
