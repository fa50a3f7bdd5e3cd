"""Deadlines and escalation: an overdue active hazard climbs the escalation chain."""

from __future__ import annotations

from sentinel.core.clock import Clock
from sentinel.core.model import Severity
from sentinel.hazards.changes import Change
from sentinel.hazards.connection import StoreConnection
from sentinel.hazards.lifecycle import ACTIVE_STATES, Action, State, states_sql
from sentinel.hazards.routing import Router
from sentinel.hazards.trail import Trail


class Deadlines:
    """Escalates overdue hazards (run by the writer's housekeeping)."""

    def __init__(self, connection: StoreConnection, router: Router, trail: Trail, clock: Clock) -> None:
        self._db = connection
        self.router = router
        self.trail = trail
        self.clock = clock

    def check(self) -> list[Change]:
        """Escalate every overdue active hazard to the chain level its lateness calls for."""
        now = self.clock.time()
        changes: list[Change] = []
        rows = self._db.read(
            "SELECT id, severity, deadline, escalation_level FROM hazards "  # noqa: S608 - states from the enum
            f"WHERE state IN {states_sql(ACTIVE_STATES)} AND deadline IS NOT NULL AND deadline < ?",
            (now,),
        )
        for row in rows:
            target = self.router.escalation_target(Severity(row["severity"]), row["deadline"], now)
            if target <= row["escalation_level"]:
                continue
            with self._db.txn() as db:
                current = db.execute(
                    "SELECT state, escalation_level FROM hazards WHERE id = ?", (row["id"],)
                ).fetchone()
                if current is None or State(current["state"]) not in ACTIVE_STATES:
                    continue
                if target <= current["escalation_level"]:
                    continue
                db.execute(
                    "UPDATE hazards SET escalation_level = ?, updated_at = ? WHERE id = ?",
                    (target, now, row["id"]),
                )
                late = now - float(row["deadline"])
                note = (
                    f"overdue by {_hours(late)}: escalated to level {target} "
                    f"({self.router.chain_name(target)})"
                )
                self.trail.write(db, int(row["id"]), Action.ESCALATE, None, None, note, now=now)
            changes.append(Change(int(row["id"]), Action.ESCALATE, State(current["state"])))
        return changes


def _hours(seconds: float) -> str:
    if seconds < 3600:
        return f"{int(seconds // 60)}m"
    return f"{seconds / 3600:.1f}h"
