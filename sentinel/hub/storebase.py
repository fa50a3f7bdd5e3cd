"""The hub store's shared part: the database, the inventory (written into the org-unit and
terminal tables), org-unit scopes, and the hazard row every listing shows.

sentinel/hub/store.py composes HubStore from this and the parts by job (apply, ledger, queue)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa

from sentinel.core.clock import SYSTEM_CLOCK, Clock
from sentinel.hub.db import Database
from sentinel.hub.inventory import Inventory
from sentinel.hub.model import HazardRow
from sentinel.hub.schema import ACTIVE, actions, org_units, terminals


class UnknownUnit(Exception):
    """An org unit id the inventory does not know."""


class StoreBase:
    """What every part of the hub store shares: the database, the inventory, the clock, org scopes
    and the hazard row the pages show."""

    def __init__(
        self,
        db: Database,
        inventory: Inventory,
        *,
        clock: Clock = SYSTEM_CLOCK,
        silent_after: float = 300.0,
    ) -> None:
        self.db = db
        self.inventory = inventory
        self.clock = clock
        self.silent_after = silent_after

    # -- the organisation ---------------------------------------------------------------------

    def sync_inventory(self, inventory: Inventory | None = None) -> None:
        """Write the inventory's org units and terminal places into the database.

        Hub processes starting together each sync: one at a time (the database's lock), and by
        upserts, so a second sync of the same inventory changes nothing and never collides."""
        if inventory is not None:
            self.inventory = inventory
        inv = self.inventory
        units = [
            {"id": u.id, "kind": u.kind, "name": u.name, "parent_id": u.parent_id}
            for u in sorted(inv.units.values(), key=lambda u: u.id)
        ]
        rows = [
            {
                "name": t.name,
                "branch_id": t.branch_id,
                "primary_id": t.primary_id,
                "in_inventory": True,
                "silent_after": t.silent_after or self.silent_after,
                "tickets": 0,
            }
            for t in sorted(inv.terminals.values(), key=lambda t: t.name)
        ]
        with self.db.write() as c:
            self.db.lock(c, "inventory")
            gone_units = set(c.execute(sa.select(org_units.c.id)).scalars()) - set(inv.units)
            if gone_units:
                c.execute(sa.delete(org_units).where(org_units.c.id.in_(sorted(gone_units))))
            c.execute(self.db.upsert(org_units, ["id"], ["kind", "name", "parent_id"]), units)
            if rows:
                c.execute(self.db.insert_ignore(terminals, ["name"]), rows)
                c.execute(
                    sa.update(terminals)
                    .where(terminals.c.name == sa.bindparam("_name"))
                    .values(
                        branch_id=sa.bindparam("_branch"),
                        primary_id=sa.bindparam("_primary"),
                        in_inventory=True,
                        silent_after=sa.bindparam("_silent"),
                    ),
                    [
                        {
                            "_name": r["name"],
                            "_branch": r["branch_id"],
                            "_primary": r["primary_id"],
                            "_silent": r["silent_after"],
                        }
                        for r in rows
                    ],
                )
            listed = set(c.execute(sa.select(terminals.c.name).where(terminals.c.in_inventory)).scalars())
            gone = sorted(listed - set(inv.terminals))
            if gone:
                c.execute(sa.update(terminals).where(terminals.c.name.in_(gone)).values(in_inventory=False))

    def _scope(self, table: sa.Table, unit_id: str | None) -> list[sa.ColumnElement[bool]]:
        """WHERE terms restricting `table` (with branch_id/primary_id columns) to an org unit."""
        if unit_id is None:
            return []
        unit = self.inventory.unit(unit_id)
        if unit is None:
            raise UnknownUnit(f"no org unit {unit_id!r} in the inventory")
        if unit.kind == "primary_branch":
            return [table.c.primary_id == unit.id]
        if unit.kind == "branch":
            return [table.c.branch_id == unit.id]
        return []

    def _place(self, terminal: str) -> tuple[str, str]:
        info = self.inventory.terminal(terminal)
        if info is None:  # ingest refuses these; a direct caller gets the head office
            return self.inventory.head_office.id, self.inventory.head_office.id
        return info.branch_id, info.primary_id

    # -- helpers ------------------------------------------------------------------------------

    def _pending_counts(self, c: sa.Connection, pks: Sequence[int]) -> dict[int, int]:
        if not pks:
            return {}
        rows = c.execute(
            sa.select(actions.c.hazard_pk, sa.func.count())
            .where(actions.c.hazard_pk.in_(list(pks)), actions.c.state == "pending")
            .group_by(actions.c.hazard_pk)
        ).all()
        return {int(k): int(v) for k, v in rows}

    def _row(self, r: Any, pending: int) -> HazardRow:
        now = self.clock.time()
        overdue = bool(r.deadline is not None and r.state in ACTIVE and now > r.deadline)
        return HazardRow(
            pk=int(r.id),
            terminal=r.terminal,
            branch_id=r.branch_id,
            primary_id=r.primary_id,
            uid=r.uid,
            local_id=int(r.local_id),
            rule=r.rule,
            category=r.category,
            severity=r.severity,
            state=r.state,
            title=r.title,
            subject=r.subject,
            owner=r.owner,
            first_seen=r.first_seen,
            last_seen=r.last_seen,
            deadline=r.deadline,
            overdue=overdue,
            escalation_level=int(r.escalation_level),
            recurrence_count=int(r.recurrence_count),
            occurrences=int(r.occurrences),
            recurring=bool(r.recurring),
            drill=bool(r.drill),
            resolved_by=r.resolved_by,
            closed_by=r.closed_by,
            closed_at=r.closed_at,
            pending_actions=pending,
        )
