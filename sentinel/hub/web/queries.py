"""The ledger page's at-a-glance counts, fast at a million hazards, and their short cache.

`HubStore.summary()` counts with one query per figure; at 1,000,000 hazards the per-severity
count of live hazards alone took seconds on SQLite (an index walk with a row lookup each). Here
one GROUP BY over three partial covering indexes of the live hazards — (state, severity,
escalation, recurring, deadline), led by nothing, the primary branch or the branch — answers every
tile from the index alone, and a 15-second cache per unit spares a head office's page the scan of
every live hazard on each load. The indexes are created by migration step 2 (schema.py).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import sqlalchemy as sa

from sentinel.hub.schema import STEP_HOOKS, hazards

LIVE = ("open", "acknowledged", "rectifying", "resolved")
ACTIVE = ("open", "acknowledged", "rectifying")
CLOSED_WINDOW = 30 * 86400.0
"""The "closed" tile counts the last 30 days."""
_LIVE_SQL = "state IN ('open', 'acknowledged', 'rectifying', 'resolved')"
_COLUMNS = ("state", "severity", "escalation_level", "recurring", "deadline")

LIVE_COUNT_INDEXES = tuple(
    sa.Index(
        name,
        *(hazards.c[c] for c in (*lead, *_COLUMNS)),
        sqlite_where=sa.text(_LIVE_SQL),
        postgresql_where=sa.text(_LIVE_SQL),
    )
    for name, lead in (
        ("ix_hazards_live_counts", ()),
        ("ix_hazards_live_counts_primary", ("primary_id",)),
        ("ix_hazards_live_counts_branch", ("branch_id",)),
    )
)
"""Attached to hub_hazards (so a fresh database gets them in step 1); step 2 adds them to older ones."""

_ACTIVE_SQL = "state IN ('open', 'acknowledged', 'rectifying')"
PAGE_INDEXES = (
    sa.Index(
        "ix_hazards_active_seen",
        hazards.c.last_seen,
        hazards.c.id,
        hazards.c.deadline,
        sqlite_where=sa.text(_ACTIVE_SQL),
        postgresql_where=sa.text(_ACTIVE_SQL),
    ),
)
"""The overdue ledger, newest first: walk active hazards by last_seen, deadline in the index."""


def create_indexes(conn: sa.Connection) -> None:
    """Migration step 2's part: the live-count indexes, where missing."""
    for index in (*LIVE_COUNT_INDEXES, *PAGE_INDEXES):
        index.create(conn, checkfirst=True)


def unit_counts(store: Any, unit_id: str | None, *, now: float) -> dict[str, Any]:
    """The tiles of a unit: live by state and severity, overdue, escalated, recurring, closed lately.

    The keys of HubStore.summary() (by_state holds live states and "closed" = the last 30 days).
    """
    scope = _scope(store, unit_id)
    overdue = sa.and_(hazards.c.state.in_(ACTIVE), hazards.c.deadline.is_not(None), hazards.c.deadline < now)
    query = (
        sa.select(
            hazards.c.state,
            hazards.c.severity,
            sa.func.count(),
            sa.func.sum(sa.case((hazards.c.escalation_level > 0, 1), else_=0)),
            sa.func.sum(sa.case((hazards.c.recurring, 1), else_=0)),
            sa.func.sum(sa.case((overdue, 1), else_=0)),
        )
        .where(sa.text(_LIVE_SQL), *scope)
        .group_by(hazards.c.state, hazards.c.severity)
    )
    closed = sa.select(sa.func.count()).where(
        hazards.c.state == "closed", hazards.c.last_seen >= now - CLOSED_WINDOW, *scope
    )
    by_state: dict[str, int] = {}
    by_severity: dict[str, int] = {}
    escalated = recurring = late = 0
    with store.db.read() as c:
        for state, severity, n, esc, rec, od in c.execute(query):
            by_state[state] = by_state.get(state, 0) + int(n)
            by_severity[severity] = by_severity.get(severity, 0) + int(n)
            if state in ACTIVE:
                escalated += int(esc or 0)
            recurring += int(rec or 0)
            late += int(od or 0)
        by_state["closed"] = int(c.execute(closed).scalar_one())
    return {
        "by_state": by_state,
        "by_severity": by_severity,
        "overdue": late,
        "escalated": escalated,
        "recurring": recurring,
    }


def _scope(store: Any, unit_id: str | None) -> list[sa.ColumnElement[bool]]:
    unit = store.inventory.unit(unit_id) if unit_id else None
    if unit is None or unit.kind == "head_office":
        return []
    column = hazards.c.primary_id if unit.kind == "primary_branch" else hazards.c.branch_id
    return [column == unit.id]


class TtlCache:
    """A small per-process cache of recent answers, each kept `ttl` seconds."""

    def __init__(self, ttl: float, *, clock: Callable[[], float] = time.monotonic, size: int = 512) -> None:
        self.ttl = ttl
        self.clock = clock
        self.size = size
        self._items: dict[Any, tuple[float, Any]] = {}
        self._lock = threading.Lock()

    def get(self, key: Any, compute: Callable[[], Any]) -> Any:
        """The cached value for `key`, or a fresh one from `compute()`."""
        now = self.clock()
        with self._lock:
            hit = self._items.get(key)
            if hit is not None and now - hit[0] < self.ttl:
                return hit[1]
        value = compute()
        with self._lock:
            if len(self._items) >= self.size:
                self._items.clear()
            self._items[key] = (now, value)
        return value

    def clear(self) -> None:
        """Forget everything (after an action, so the person sees its effect on the counts)."""
        with self._lock:
            self._items.clear()


STEP_HOOKS.setdefault(2, []).append(create_indexes)  # schema step 2 creates these indexes too
