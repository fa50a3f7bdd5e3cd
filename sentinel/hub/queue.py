"""The actions queue: what hub users ask terminals to do, checked against the hazard as last
reported, claimed by the terminals' polls (FOR UPDATE SKIP LOCKED on PostgreSQL: two hub
processes never hand out one action twice) and completed by their results."""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
import structlog

from sentinel.hazards.lifecycle import TRANSITIONS, State
from sentinel.hub.model import ACTION_NAMES, LIFECYCLE_STEPS, ActionRow
from sentinel.hub.rows import action_row
from sentinel.hub.schema import actions, hazards
from sentinel.hub.storebase import StoreBase

log = structlog.get_logger("sentinel.hub")


_LIFECYCLE = LIFECYCLE_STEPS


class HubActionError(Exception):
    """An action the hub refuses to queue (unknown hazard, illegal from its state, four-eyes…)."""


class ActionQueue(StoreBase):
    """The queue of hub actions for the terminals."""

    # -- the actions queue --------------------------------------------------------------------

    def enqueue(
        self,
        hazard_pk: int,
        action: str,
        *,
        user: str,
        display: str = "",
        note: str = "",
        owner: str = "",
        item: int | None = None,
    ) -> ActionRow:
        """Queue an action of hub user `user` (already authorised by the caller) for the terminal.

        Checked here against the hazard as last reported plus the actions still pending, so a
        person hears at once what the terminal would refuse: an illegal transition, a close by the
        person who resolved (four-eyes on identity hub:<user>), a cancel without a reason.
        The terminal applies it with its own lifecycle rules and has the last word."""
        if action not in ACTION_NAMES:
            raise HubActionError(f"unknown action {action!r} (known: {', '.join(ACTION_NAMES)})")
        user = user.strip()
        if not user:
            raise HubActionError("an action needs the hub user who asks for it")
        note, owner = note.strip(), owner.strip()
        now = self.clock.time()
        with self.db.write() as c:
            h = c.execute(sa.select(hazards).where(hazards.c.id == hazard_pk)).first()
            if h is None:
                raise HubActionError(f"no hazard {hazard_pk}")
            queued = c.execute(
                sa.select(actions)
                .where(actions.c.hazard_pk == hazard_pk, actions.c.state == "pending")
                .order_by(actions.c.id)
            ).all()
            self._check(h, queued, action, user=user, note=note, owner=owner, item=item)
            values = {
                "uid": str(uuid.uuid4()),
                "terminal": h.terminal,
                "hazard_pk": hazard_pk,
                "hazard_uid": h.uid,
                "local_id": h.local_id,
                "action": action,
                "note": note,
                "owner": owner,
                "item": item,
                "requested_by": user,
                "requested_display": display.strip() or user,
                "requested_at": now,
                "state": "pending",
                "offered": 0,
                "reason": "",
            }
            new_id = c.execute(sa.insert(actions).values(**values).returning(actions.c.id)).scalar_one()
            row = c.execute(sa.select(actions).where(actions.c.id == new_id)).one()
        log.info("hub_action_queued", action=action, terminal=h.terminal, hazard=hazard_pk, user=user)
        return action_row(row)

    @staticmethod
    def _check(  # noqa: PLR0912 - one rule per branch, each with its own message
        h: Any, queued: Sequence[Any], action: str, *, user: str, note: str, owner: str, item: int | None
    ) -> None:
        state = State(h.state) if h.state in State.__members__.values() else None
        resolved_by = h.resolved_by
        for q in queued:  # where the pending actions will have taken it
            step = _LIFECYCLE.get(q.action)
            if step is None or state is None:
                continue
            allowed, target = TRANSITIONS[step]
            if state in allowed:
                state = target
                if q.action == "resolve":
                    resolved_by = f"hub:{q.requested_by}"
                elif q.action == "reopen":
                    resolved_by = None
        if action in ("cancel", "note") and not note:
            raise HubActionError(f"{action} needs a note" + (" (the reason)" if action == "cancel" else ""))
        if action == "assign" and not owner:
            raise HubActionError("assign needs the new owner")
        if action == "tick":
            record = json.loads(h.record or "{}")
            items = {i.get("item"): i for i in record.get("rectification") or () if isinstance(i, dict)}
            if item is None or item not in items:
                raise HubActionError(f"the hazard has no rectification item {item}")
            if items[item].get("done"):
                raise HubActionError(f"rectification item {item} is already done")
            if any(q.action == "tick" and q.item == item for q in queued):
                raise HubActionError(f"rectification item {item} is already queued")
        step = _LIFECYCLE.get(action)
        if step is not None and state is not None:
            allowed, _target = TRANSITIONS[step]
            if state not in allowed:
                names = ", ".join(sorted(s.value for s in allowed))
                raise HubActionError(
                    f"cannot {action} a hazard that is {state.value} (allowed from: {names})"
                )
        if action == "close" and resolved_by in (f"hub:{user}", user):
            raise HubActionError(
                f"{user} resolved this hazard, so someone else must verify and close it (four-eyes rule)"
            )

    def actions(
        self,
        *,
        hazard_pk: int | None = None,
        terminal: str | None = None,
        states: Sequence[str] = (),
        limit: int = 200,
    ) -> list[ActionRow]:
        """Queued actions, newest first."""
        query = sa.select(actions)
        if hazard_pk is not None:
            query = query.where(actions.c.hazard_pk == hazard_pk)
        if terminal is not None:
            query = query.where(actions.c.terminal == terminal)
        if states:
            query = query.where(actions.c.state.in_(states))
        with self.db.read() as c:
            return [action_row(a) for a in c.execute(query.order_by(actions.c.id.desc()).limit(limit))]

    def action(self, uid: str) -> ActionRow | None:
        """One action by uid."""
        with self.db.read() as c:
            row = c.execute(sa.select(actions).where(actions.c.uid == uid)).first()
        return action_row(row) if row is not None else None

    def claim_actions(self, terminal: str, *, limit: int, lease: float) -> list[ActionRow]:
        """The terminal's pending actions not leased to another poll, leased to this one.

        FOR UPDATE SKIP LOCKED on PostgreSQL: two polls of one terminal on two hub processes get
        disjoint actions. A lease that ends without a result offers the action again (the
        terminal remembers the actions it applied, so it never applies one twice)."""
        now = self.clock.time()
        query = (
            sa.select(actions)
            .where(
                actions.c.terminal == terminal,
                actions.c.state == "pending",
                sa.or_(actions.c.lease_until.is_(None), actions.c.lease_until < now),
            )
            .order_by(actions.c.id)
            .limit(limit)
        )
        with self.db.write() as c:
            rows = c.execute(self.db.for_update(query)).all()
            ids = [int(r.id) for r in rows]
            if ids:
                c.execute(
                    sa.update(actions)
                    .where(actions.c.id.in_(ids))
                    .values(lease_until=now + lease, offered=actions.c.offered + 1)
                )
                rows = c.execute(sa.select(actions).where(actions.c.id.in_(ids)).order_by(actions.c.id)).all()
        return [action_row(r) for r in rows]

    def complete_action(
        self, terminal: str, uid: str, *, applied: bool, reason: str = "", seq: int | None = None
    ) -> ActionRow | None:
        """The terminal's result for one of ITS actions (None if it has no such action).

        The first result wins: a repeated report (a retry, a second poll) changes nothing."""
        now = self.clock.time()
        with self.db.write() as c:
            c.execute(
                sa.update(actions)
                .where(actions.c.uid == uid, actions.c.terminal == terminal, actions.c.state == "pending")
                .values(
                    state="applied" if applied else "refused",
                    result_at=now,
                    reason=reason[:2000],
                    result_seq=seq,
                    lease_until=None,
                )
            )
            row = c.execute(
                sa.select(actions).where(actions.c.uid == uid, actions.c.terminal == terminal)
            ).first()
        return action_row(row) if row is not None else None

    def queue_depth(self) -> dict[str, int]:
        """Actions by state (for /metrics)."""
        with self.db.read() as c:
            rows = c.execute(sa.select(actions.c.state, sa.func.count()).group_by(actions.c.state)).all()
        return {str(k): int(v) for k, v in rows}

    def oldest_pending_age(self) -> float:
        """Seconds since the oldest pending action was requested (0 if none)."""
        with self.db.read() as c:
            oldest = c.execute(
                sa.select(sa.func.min(actions.c.requested_at)).where(actions.c.state == "pending")
            ).scalar()
        return max(0.0, self.clock.time() - float(oldest)) if oldest is not None else 0.0
