"""The hub store: applying tickets, the queries the pages and reports need, the actions queue.

Convergence: a hazard's row holds the snapshot of the ticket with the highest history sequence
seen (`seq`); an older ticket arriving late adds its transition and history rows but never
overwrites a newer snapshot. Transitions are unique by idempotency key, history rows by
(hazard, row key), so duplicates and any delivery order end in the same state.

Several hub processes share one PostgreSQL: every write is one transaction, rows are touched in
a fixed order (no deadlocks between two batches), the snapshot update is conditional on `seq`,
and the actions queue is claimed with FOR UPDATE SKIP LOCKED.

Size: the fleet ledger's one store (ingest apply, the pages' queries, the actions queue) over
one schema; to be split by job like sentinel/hazards (ingest, queries, queue): a follow-up.
"""

from __future__ import annotations

import functools
import hashlib
import json
import time
import uuid
from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
import structlog
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from sentinel.core.clock import SYSTEM_CLOCK, Clock
from sentinel.core.model import clean_text
from sentinel.hazards.lifecycle import TRANSITIONS, State
from sentinel.hub import fastjson
from sentinel.hub.db import Database
from sentinel.hub.inventory import Inventory
from sentinel.hub.model import (
    ACTION_NAMES,
    LIFECYCLE_STEPS,
    ActionRow,
    Actor,
    Board,
    Cursor,
    HazardDetail,
    HazardRow,
    HistoryRow,
    LedgerFilter,
    LedgerPage,
    TerminalDetail,
    TerminalRow,
    Ticket,
    TransitionRow,
)
from sentinel.hub.schema import (
    ACTIVE,
    actions,
    checks,
    drill_runs,
    enrolments,
    hazards,
    history,
    nonces,
    org_units,
    terminals,
    transitions,
)

log = structlog.get_logger("sentinel.hub")

_LIFECYCLE = LIFECYCLE_STEPS
_RETRIES = 5
NO_FILTER = LedgerFilter()


class HubActionError(Exception):
    """An action the hub refuses to queue (unknown hazard, illegal from its state, four-eyes…)."""


class UnknownUnit(Exception):
    """An org unit id the inventory does not know."""


def parse_time(value: Any) -> float | None:
    """RFC 3339 text (or a number) to Unix seconds; None when absent or unreadable."""
    if value is None or value == "":
        return None
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    try:
        return datetime.fromisoformat(str(value)).timestamp()
    except ValueError:
        return None


def _actor_text(value: Any) -> str | None:
    if value is None:
        return None
    return Actor.from_json(value).id


def history_key(row: dict[str, Any]) -> str:
    """A history row's identity: its sequence when it carries one, else a digest of its content."""
    if isinstance(row.get("seq"), int):
        return f"s{row['seq']}"
    actor = row.get("actor")
    who = json.dumps(actor, sort_keys=True) if isinstance(actor, dict) else str(actor)
    text = "\x1f".join(str(row.get(k)) for k in ("at", "action", "from", "to", "note")) + "\x1f" + who
    return "d" + hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:40]


class HubStore:
    """The fleet ledger over one Database."""

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

    # -- ingest -------------------------------------------------------------------------------

    def apply_tickets(self, tickets: Sequence[Ticket], *, received_at: float | None = None) -> list[bool]:
        """Apply verified tickets in one transaction; per ticket, True if its transition was new.

        Retried on a PostgreSQL serialisation failure or deadlock (another hub process)."""
        now = self.clock.time() if received_at is None else received_at
        for attempt in range(_RETRIES):
            try:
                with self.db.write() as c:
                    return self._apply(c, tickets, now)
            except sa.exc.OperationalError as exc:
                if attempt == _RETRIES - 1 or not _retryable(exc):
                    raise
                log.warning("hub_ingest_retry", attempt=attempt + 1, error=type(exc.orig).__name__)
                time.sleep(0.01 * (attempt + 1))
        raise AssertionError("unreachable")

    def _apply(self, c: sa.Connection, tickets: Sequence[Ticket], now: float) -> list[bool]:
        if not tickets:
            return []
        keys = sorted({t.key for t in tickets})
        seen = set(c.execute(sa.select(transitions.c.key).where(transitions.c.key.in_(keys))).scalars())
        # the newest snapshot per hazard in this batch, upserted only over an older one (seq)
        newest: dict[tuple[str, str], Ticket] = {}
        for t in tickets:
            best = newest.get((t.terminal, t.uid))
            if best is None or t.seq > best.seq:
                newest[(t.terminal, t.uid)] = t
        pairs = sorted(newest)  # a fixed order: two hub processes never deadlock on these rows
        self.db.executemany(c, self._upsert_snapshot, [self._snapshot(newest[k], now) for k in pairs])
        found = c.execute(
            sa.select(hazards.c.id, hazards.c.terminal, hazards.c.uid).where(
                sa.tuple_(hazards.c.terminal, hazards.c.uid).in_(pairs)
            )
        ).all()
        pk = {(r.terminal, r.uid): int(r.id) for r in found}
        # transitions and history rows, each once
        new_flags: list[bool] = []
        fresh: dict[str, dict[str, Any]] = {}
        rows: dict[tuple[int, str], dict[str, Any]] = {}
        for t in tickets:
            is_new = t.key not in seen and t.key not in fresh
            new_flags.append(is_new)
            hazard_pk = pk[(t.terminal, t.uid)]
            if is_new:
                fresh[t.key] = {
                    "key": t.key,
                    "hazard_pk": hazard_pk,
                    "terminal": t.terminal,
                    "transition": t.transition,
                    "seq": t.seq,
                    "actor_id": t.actor.id,
                    "actor_display": t.actor.display,
                    "at": t.at,
                    "received_at": now,
                    "note": t.note,
                }
            for h in t.record.get("history") or ():
                if isinstance(h, dict):
                    row = _history_row(hazard_pk, h)
                    rows.setdefault((hazard_pk, row["row_key"]), row)
        if fresh:
            c.execute(self.db.insert_ignore(transitions, ["key"]), [fresh[k] for k in sorted(fresh)])
        if rows:
            c.execute(
                self.db.insert_ignore(history, ["hazard_pk", "row_key"]), [rows[k] for k in sorted(rows)]
            )
        # the terminals: last seen, version, chain head, lag (one executemany, in name order)
        per_terminal: dict[str, list[Ticket]] = {}
        for t in tickets:
            per_terminal.setdefault(t.terminal, []).append(t)
        touched = []
        for name in sorted(per_terminal):
            batch = per_terminal[name]
            latest = max(batch, key=lambda t: t.seq)
            touched.append(
                {
                    "_name": name,
                    "_now": now,
                    "_new": sum(1 for t in batch if t.key in fresh),
                    "_version": latest.agent_version or None,
                    "_store": latest.store_id or None,
                    "_lag": max(0.0, now - latest.at) if latest.at is not None else None,
                    "_seq": latest.seq if latest.chain_hash else None,
                    "_hash": latest.chain_hash or None,
                    "_digest": latest.baseline_digest or None,
                }
            )
        self.db.executemany(c, _UPDATE_TERMINAL, touched)
        return new_flags

    def _place(self, terminal: str) -> tuple[str, str]:
        info = self.inventory.terminal(terminal)
        if info is None:  # ingest refuses these; a direct caller gets the head office
            return self.inventory.head_office.id, self.inventory.head_office.id
        return info.branch_id, info.primary_id

    def _snapshot(self, t: Ticket, now: float) -> dict[str, Any]:
        r = t.record
        branch_id, primary_id = self._place(t.terminal)
        items = [i for i in r.get("rectification") or () if isinstance(i, dict)]
        record = dict(r)
        record.pop("history", None)
        return {
            "terminal": t.terminal,
            "uid": t.uid,
            "seq": t.seq,
            "branch_id": branch_id,
            "primary_id": primary_id,
            "local_id": t.local_id,
            "store_id": t.store_id or None,
            "fingerprint": _text(r.get("fingerprint")),
            "rule": _text(r.get("rule")),
            "category": _text(r.get("category")),
            "severity": _text(r.get("severity")),
            "state": _text(r.get("state")),
            "title": _text(r.get("title")),
            "subject": _text(r.get("subject")),
            "owner": _text(_actor_text(r.get("owner"))),
            "first_seen": parse_time(r.get("first_seen")),
            "last_seen": parse_time(r.get("last_seen")) or t.at or now,
            "deadline": parse_time(r.get("deadline")),
            "escalation_level": _int(r.get("escalation_level")),
            "recurrence_count": _int(r.get("recurrence_count")),
            "occurrences": _int(r.get("occurrences")),
            "drill": bool(r.get("drill")),
            "recurring": any(i.get("kind") == "long_term" for i in items),
            "resolved_by": _actor_text(r.get("resolved_by_id") or r.get("resolved_by")),
            "resolved_at": parse_time(r.get("resolved_at")),
            "closed_by": _actor_text(r.get("closed_by_id") or r.get("closed_by")),
            "closed_at": parse_time(r.get("closed_at")),
            "record": fastjson.dumps(record),
            "updated_at": now,
        }

    @functools.cached_property
    def _insert_transition(self) -> Any:
        return self.db.insert_ignore(transitions, ["key"])

    @functools.cached_property
    def _insert_history(self) -> Any:
        return self.db.insert_ignore(history, ["hazard_pk", "row_key"])

    @functools.cached_property
    def _upsert_snapshot(self) -> Any:
        """INSERT the hazard, or UPDATE it only when this snapshot is newer (its seq is higher)."""
        dialect_insert = sqlite_insert if self.db.is_sqlite else pg_insert
        stmt = dialect_insert(hazards)
        return stmt.on_conflict_do_update(
            index_elements=["terminal", "uid"],
            set_={c: stmt.excluded[c] for c in ("seq", *_SNAPSHOT_COLUMNS)},
            where=hazards.c.seq < stmt.excluded.seq,
        )

    def touch_terminal(
        self,
        name: str,
        *,
        agent_version: str = "",
        baseline_digest: str = "",
        store_id: str = "",
        chain_seq: int | None = None,
        chain_hash: str = "",
    ) -> None:
        """Record a signed agent API request: the terminal is alive (and what it says of itself)."""
        now = self.clock.time()
        values: dict[str, Any] = {"last_poll_at": now, "last_seen_at": now}
        if agent_version:
            values["agent_version"] = agent_version
        if baseline_digest:
            values["baseline_digest"] = baseline_digest
        if store_id:
            values["store_id"] = store_id
        if chain_seq is not None and chain_hash:
            values["chain_seq"] = sa.case(
                (sa.or_(terminals.c.chain_seq.is_(None), terminals.c.chain_seq <= chain_seq), chain_seq),
                else_=terminals.c.chain_seq,
            )
            values["chain_hash"] = sa.case(
                (sa.or_(terminals.c.chain_seq.is_(None), terminals.c.chain_seq <= chain_seq), chain_hash),
                else_=terminals.c.chain_hash,
            )
        with self.db.write() as c:
            c.execute(sa.update(terminals).where(terminals.c.name == name).values(**values))

    def record_status(
        self, name: str, *, drills: Iterable[dict[str, Any]], checks_: Iterable[dict[str, Any]]
    ) -> None:
        """Keep what a terminal reports of its drills (runs and stages) and inspection checks."""
        branch_id, primary_id = self._place(name)
        runs = [
            {
                "terminal": name,
                "run_key": str(d["key"]),
                "branch_id": branch_id,
                "primary_id": primary_id,
                "scenario": str(d["scenario"]),
                "started_at": float(d["started_at"]),
                "finished_at": parse_time(d.get("finished_at")),
                "passed": bool(d.get("passed")),
                "trigger": str(d.get("trigger") or ""),
                "stages": json.dumps(d.get("stages") or []),
            }
            for d in drills
        ]
        posture = [
            {
                "terminal": name,
                "check": str(k["check"]),
                "branch_id": branch_id,
                "primary_id": primary_id,
                "status": str(k["status"]),
                "severity": str(k.get("severity") or ""),
                "category": str(k.get("category") or ""),
                "title": str(k.get("title") or ""),
                "at": float(k["at"]),
            }
            for k in checks_
        ]
        with self.db.write() as c:
            if runs:
                c.execute(self.db.insert_ignore(drill_runs, ["terminal", "run_key"]), runs)
            if posture:
                c.execute(
                    self.db.upsert(
                        checks,
                        ["terminal", "check"],
                        ["branch_id", "primary_id", "status", "severity", "category", "title", "at"],
                    ),
                    posture,
                )

    def use_nonce(self, nonce: str, *, expires_at: float) -> bool:
        """Remember a signed request's id until it expires; False if it was seen (a replay)."""
        now = self.clock.time()
        with self.db.write() as c:
            inserted = c.execute(
                self.db.insert_ignore(nonces, ["nonce"]).returning(nonces.c.nonce),
                {"nonce": nonce, "expires_at": expires_at},
            ).first()  # RETURNING: rowcount of ON CONFLICT DO NOTHING is -1 with psycopg
            if int(hashlib.sha256(nonce.encode()).digest()[0]) < 4:  # about 1 request in 64 sweeps
                c.execute(sa.delete(nonces).where(nonces.c.expires_at < now))
        return inserted is not None

    # -- the ledger ---------------------------------------------------------------------------

    def _filters(self, unit_id: str | None, f: LedgerFilter) -> list[sa.ColumnElement[bool]]:
        now = self.clock.time()
        where = self._scope(hazards, unit_id)
        if f.states:
            where.append(hazards.c.state.in_(f.states))
        if f.severities:
            where.append(hazards.c.severity.in_(f.severities))
        if f.categories:
            where.append(hazards.c.category.in_(f.categories))
        if f.terminal:
            where.append(hazards.c.terminal == f.terminal)
        if f.since is not None:
            where.append(hazards.c.last_seen >= f.since)
        if f.until is not None:
            where.append(hazards.c.last_seen < f.until)
        if f.recurring is not None:
            where.append(_flag(hazards.c.recurring, f.recurring))  # web: bare column = partial index
        if f.drill is not None:
            where.append(_flag(hazards.c.drill, f.drill))
        if f.overdue is True:
            where.append(_overdue_page(now, sqlite=self.db.is_sqlite))
        elif f.overdue is False:
            where.append(sa.not_(_overdue(now)))
        return where

    def ledger(
        self,
        unit_id: str | None = None,
        filters: LedgerFilter = NO_FILTER,
        *,
        limit: int = 50,
        after: Cursor | None = None,
        count: bool = False,
        count_limit: int = 10_000,
    ) -> LedgerPage:
        """A page of hazards in an org unit (None: the whole fleet), newest last_seen first.

        Keyset pagination: pass the previous page's `next`. `count=True` adds the number of
        matching hazards, counted up to `count_limit` (exact counts over a million rows are slow).
        """
        where = self._filters(unit_id, filters)
        query = sa.select(hazards).where(*where)
        if after is not None:
            query = query.where(
                sa.or_(
                    hazards.c.last_seen < after.last_seen,
                    sa.and_(hazards.c.last_seen == after.last_seen, hazards.c.id < after.pk),
                )
            )
        query = query.order_by(hazards.c.last_seen.desc(), hazards.c.id.desc()).limit(limit + 1)
        with self.db.read() as c:
            found = c.execute(query).all()
            more = len(found) > limit
            found = found[:limit]
            pending = self._pending_counts(c, [int(r.id) for r in found])
            total = None
            if count:
                inner = sa.select(hazards.c.id).where(*where).limit(count_limit + 1).subquery()
                total = int(c.execute(sa.select(sa.func.count()).select_from(inner)).scalar_one())
        rows = tuple(self._row(r, pending.get(int(r.id), 0)) for r in found)
        cursor = Cursor(rows[-1].last_seen or 0.0, rows[-1].pk) if more and rows else None
        capped = total is not None and total > count_limit
        return LedgerPage(rows, cursor, min(total, count_limit) if total is not None else None, capped)

    def summary(self, unit_id: str | None = None) -> dict[str, Any]:
        """Counts for a unit: by state, by severity of live hazards, overdue, escalated, recurring."""
        scope = self._scope(hazards, unit_id)
        now = self.clock.time()
        live = hazards.c.state.in_(["open", "acknowledged", "rectifying", "resolved"])
        with self.db.read() as c:
            by_state: dict[Any, Any] = dict(
                c.execute(
                    sa.select(hazards.c.state, sa.func.count()).where(*scope).group_by(hazards.c.state)
                ).all()
            )
            by_severity: dict[Any, Any] = dict(
                c.execute(
                    sa.select(hazards.c.severity, sa.func.count())
                    .where(*scope, live)
                    .group_by(hazards.c.severity)
                ).all()
            )
            overdue = c.execute(sa.select(sa.func.count()).where(*scope, _overdue(now))).scalar_one()
            escalated = c.execute(
                sa.select(sa.func.count()).where(
                    *scope, hazards.c.state.in_(ACTIVE), hazards.c.escalation_level > 0
                )
            ).scalar_one()
            recurring = c.execute(
                sa.select(sa.func.count()).where(*scope, live, hazards.c.recurring)
            ).scalar_one()
        return {
            "by_state": {str(k): int(v) for k, v in by_state.items()},
            "by_severity": {str(k): int(v) for k, v in by_severity.items()},
            "overdue": int(overdue),
            "escalated": int(escalated),
            "recurring": int(recurring),
        }

    def hazard(self, pk: int) -> HazardDetail | None:
        """Everything about one hazard: row, record, full history, tickets, actions, related."""
        with self.db.read() as c:
            r = c.execute(sa.select(hazards).where(hazards.c.id == pk)).first()
            if r is None:
                return None
            pending = self._pending_counts(c, [pk])
            trail = c.execute(
                sa.select(history)
                .where(history.c.hazard_pk == pk)
                .order_by(history.c.at, history.c.seq, history.c.id)
            ).all()
            tickets = c.execute(
                sa.select(transitions).where(transitions.c.hazard_pk == pk).order_by(transitions.c.seq)
            ).all()
            queued = c.execute(
                sa.select(actions).where(actions.c.hazard_pk == pk).order_by(actions.c.id)
            ).all()
            record = json.loads(r.record or "{}")
            related_ids = [int(i) for i in record.get("related") or () if isinstance(i, int)]
            related_q = (
                sa.select(hazards)
                .where(
                    hazards.c.terminal == r.terminal,
                    hazards.c.id != pk,
                    sa.or_(
                        hazards.c.local_id.in_(related_ids) if related_ids else sa.false(),
                        sa.and_(hazards.c.fingerprint == r.fingerprint, hazards.c.fingerprint != ""),
                    ),
                )
                .order_by(hazards.c.first_seen)
            )
            related = c.execute(related_q.limit(50)).all()
        return HazardDetail(
            row=self._row(r, pending.get(pk, 0)),
            record=record,
            history=tuple(_history(h) for h in trail),
            tickets=tuple(
                TransitionRow(
                    t.key,
                    t.transition,
                    int(t.seq),
                    Actor(t.actor_id, t.actor_display),
                    t.at,
                    t.received_at,
                    t.note,
                )
                for t in tickets
            ),
            actions=tuple(_action(a) for a in queued),
            related=tuple(self._row(x, 0) for x in related),
        )

    def hazard_pk(self, terminal: str, uid: str) -> int | None:
        """The hub id of the hazard with this uid on this terminal."""
        with self.db.read() as c:
            value = c.execute(
                sa.select(hazards.c.id).where(hazards.c.terminal == terminal, hazards.c.uid == uid)
            ).scalar()
        return int(value) if value is not None else None

    def board(self, unit_id: str | None = None, *, limit: int = 200) -> Board:
        """The overdue/escalation board: overdue active hazards (most late first) and escalated ones."""
        now = self.clock.time()
        scope = self._scope(hazards, unit_id)
        with self.db.read() as c:
            late = c.execute(
                sa.select(hazards)
                .where(*scope, _overdue(now))
                .order_by(hazards.c.deadline, hazards.c.id)
                .limit(limit)
            ).all()
            escalated = c.execute(
                sa.select(hazards)
                .where(*scope, hazards.c.state.in_(ACTIVE), hazards.c.escalation_level > 0)
                .order_by(hazards.c.escalation_level.desc(), hazards.c.deadline, hazards.c.id)
                .limit(limit)
            ).all()
            levels = c.execute(
                sa.select(hazards.c.escalation_level, sa.func.count())
                .where(*scope, hazards.c.state.in_(ACTIVE), hazards.c.escalation_level > 0)
                .group_by(hazards.c.escalation_level)
            ).all()
            pending = self._pending_counts(c, [int(r.id) for r in (*late, *escalated)])
        return Board(
            overdue=tuple(self._row(r, pending.get(int(r.id), 0)) for r in late),
            escalated=tuple(self._row(r, pending.get(int(r.id), 0)) for r in escalated),
            by_level={int(k): int(v) for k, v in levels},
        )

    # -- terminals ----------------------------------------------------------------------------

    def terminals(self, unit_id: str | None = None, *, silent_only: bool = False) -> list[TerminalRow]:
        """The terminals of an org unit, by name, with their open-hazard counts."""
        now = self.clock.time()
        scope = self._scope(terminals, unit_id)
        open_counts = (
            sa.select(hazards.c.terminal, sa.func.count().label("n"))
            .where(hazards.c.state.in_(ACTIVE))
            .group_by(hazards.c.terminal)
            .subquery()
        )
        query = (
            sa.select(terminals, open_counts.c.n)
            .select_from(terminals.outerjoin(open_counts, open_counts.c.terminal == terminals.c.name))
            .where(*scope)
            .order_by(terminals.c.name)
        )
        if silent_only:
            query = query.where(_silent(now))
        with self.db.read() as c:
            enrolled = self._enrolled(c)
            return [self._terminal_row(r, now, int(r.n or 0), r.name in enrolled) for r in c.execute(query)]

    def terminal(self, name: str) -> TerminalDetail | None:
        """The terminal page: place, last seen, version, baseline digest, chain head, open hazards."""
        now = self.clock.time()
        with self.db.read() as c:
            r = c.execute(sa.select(terminals).where(terminals.c.name == name)).first()
            if r is None:
                return None
            live = c.execute(
                sa.select(hazards)
                .where(hazards.c.terminal == name, hazards.c.state.in_(ACTIVE))
                .order_by(hazards.c.last_seen.desc(), hazards.c.id.desc())
                .limit(500)
            ).all()
            pending = c.execute(
                sa.select(actions)
                .where(actions.c.terminal == name, actions.c.state == "pending")
                .order_by(actions.c.id)
            ).all()
            posture = c.execute(
                sa.select(checks).where(checks.c.terminal == name).order_by(checks.c.check)
            ).all()
            runs = c.execute(
                sa.select(drill_runs)
                .where(drill_runs.c.terminal == name)
                .order_by(drill_runs.c.started_at.desc())
                .limit(20)
            ).all()
            counts = self._pending_counts(c, [int(x.id) for x in live])
            enrolled = name in self._enrolled(c, name)
        return TerminalDetail(
            row=self._terminal_row(r, now, len(live), enrolled),
            store_id=r.store_id,
            baseline_digest=r.baseline_digest,
            chain_seq=r.chain_seq,
            chain_hash=r.chain_hash,
            last_ticket_at=r.last_ticket_at,
            last_poll_at=r.last_poll_at,
            tickets=int(r.tickets or 0),
            open_hazards=tuple(self._row(x, counts.get(int(x.id), 0)) for x in live),
            pending_actions=tuple(_action(a) for a in pending),
            checks=tuple(
                {
                    "check": k.check,
                    "status": k.status,
                    "severity": k.severity,
                    "category": k.category,
                    "title": k.title,
                    "at": k.at,
                }
                for k in posture
            ),
            drills=tuple(_drill(d) for d in runs),
        )

    def _enrolled(self, c: sa.Connection, name: str | None = None) -> set[str]:
        now = self.clock.time()
        query = sa.select(enrolments.c.terminal).where(
            enrolments.c.revoked_at.is_(None),
            sa.or_(enrolments.c.expires_at.is_(None), enrolments.c.expires_at > now),
        )
        if name is not None:
            query = query.where(enrolments.c.terminal == name)
        return set(c.execute(query.distinct()).scalars())

    def _terminal_row(self, r: Any, now: float, open_hazards: int, enrolled: bool) -> TerminalRow:
        seen = r.last_seen_at
        return TerminalRow(
            name=r.name,
            branch_id=r.branch_id,
            primary_id=r.primary_id,
            enrolled=enrolled,
            in_inventory=bool(r.in_inventory),
            agent_version=r.agent_version,
            last_seen_at=seen,
            silent=bool(enrolled and (seen is None or now - seen > r.silent_after)),
            silent_after=float(r.silent_after),
            last_lag=r.last_lag,
            open_hazards=open_hazards,
        )

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
        return _action(row)

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
            return [_action(a) for a in c.execute(query.order_by(actions.c.id.desc()).limit(limit))]

    def action(self, uid: str) -> ActionRow | None:
        """One action by uid."""
        with self.db.read() as c:
            row = c.execute(sa.select(actions).where(actions.c.uid == uid)).first()
        return _action(row) if row is not None else None

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
        return [_action(r) for r in rows]

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
        return _action(row) if row is not None else None

    # -- for reports and metrics --------------------------------------------------------------

    def iter_records(
        self, unit_id: str | None, where: Sequence[sa.ColumnElement[bool]] = (), *, batch: int = 1000
    ) -> Iterator[tuple[HazardRow, dict[str, Any]]]:
        """Every hazard of a unit matching `where` (hub_hazards columns), with its record, by pk."""
        scope = [*self._scope(hazards, unit_id), *where]
        last = 0
        while True:
            with self.db.read() as c:
                found = c.execute(
                    sa.select(hazards).where(*scope, hazards.c.id > last).order_by(hazards.c.id).limit(batch)
                ).all()
            if not found:
                return
            for r in found:
                yield self._row(r, 0), json.loads(r.record or "{}")
            last = int(found[-1].id)

    def history_of(self, pks: Sequence[int]) -> dict[int, list[HistoryRow]]:
        """The trails of several hazards."""
        out: dict[int, list[HistoryRow]] = {pk: [] for pk in pks}
        if not pks:
            return out
        with self.db.read() as c:
            for h in c.execute(
                sa.select(history)
                .where(history.c.hazard_pk.in_(list(pks)))
                .order_by(history.c.hazard_pk, history.c.at, history.c.seq, history.c.id)
            ):
                out[int(h.hazard_pk)].append(_history(h))
        return out

    def drills(self, unit_id: str | None, *, since: float, until: float) -> list[dict[str, Any]]:
        """Drill runs reported by the unit's terminals in [since, until)."""
        scope = self._scope(drill_runs, unit_id)
        with self.db.read() as c:
            rows = c.execute(
                sa.select(drill_runs)
                .where(*scope, drill_runs.c.started_at >= since, drill_runs.c.started_at < until)
                .order_by(drill_runs.c.started_at)
            ).all()
        return [_drill(d) for d in rows]

    def posture(self, unit_id: str | None) -> list[dict[str, Any]]:
        """Inspection posture by check: terminals passing / failing / in error, per check."""
        scope = self._scope(checks, unit_id)
        with self.db.read() as c:
            rows = c.execute(
                sa.select(
                    checks.c.check,
                    checks.c.status,
                    sa.func.count().label("n"),
                    sa.func.max(checks.c.title).label("title"),
                )
                .where(*scope)
                .group_by(checks.c.check, checks.c.status)
                .order_by(checks.c.check)
            ).all()
        out: dict[str, dict[str, Any]] = {}
        for r in rows:
            entry = out.setdefault(
                r.check, {"check": r.check, "title": r.title, "pass": 0, "fail": 0, "error": 0, "skip": 0}
            )
            entry[r.status if r.status in ("pass", "fail", "error", "skip") else "error"] += int(r.n)
        return list(out.values())

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


def _overdue(now: float) -> sa.ColumnElement[bool]:
    return sa.and_(hazards.c.state.in_(ACTIVE), hazards.c.deadline.is_not(None), hazards.c.deadline < now)


# -- added by the web engineer for the ledger page at 1,000,000 hazards (bench_hub_ledger) ----------


def _flag(column: sa.ColumnElement[Any], value: bool) -> sa.ColumnElement[bool]:
    """`drill` / `NOT drill`: the bare column matches the partial index `WHERE drill` (`drill IS 1`
    does not, and scanned the table)."""
    return column if value else sa.not_(column)


def _overdue_page(now: float, *, sqlite: bool) -> sa.ColumnElement[bool]:
    """Overdue for the ledger (newest first): on SQLite the deadline term is marked likely true, so
    the planner walks a last_seen index (web/queries.py ix_hazards_active_seen) and stops at a page
    instead of sorting every overdue hazard (1 s at 1,000,000 hazards)."""
    if not sqlite:
        return _overdue(now)
    late = sa.func.likelihood(hazards.c.deadline < now, sa.literal_column("0.9"))
    return sa.and_(hazards.c.state.in_(ACTIVE), hazards.c.deadline.is_not(None), late)


def _silent(now: float) -> sa.ColumnElement[bool]:
    return sa.or_(
        terminals.c.last_seen_at.is_(None), terminals.c.last_seen_at < now - terminals.c.silent_after
    )


def _text(value: Any) -> str:
    """A string column's value: never None, never a lone surrogate (UTF-8 databases refuse them)."""
    return clean_text(str(value)) if value else ""


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _history_row(hazard_pk: int, h: dict[str, Any]) -> dict[str, Any]:
    identity = h.get("identity")
    if isinstance(identity, dict) and identity.get("id"):  # issue 20: who it was, and the typed name
        actor = Actor(
            str(identity["id"]),
            str(h.get("actor") or identity.get("display") or ""),
            str(identity.get("source") or ""),
        )
    elif h.get("actor_id"):
        actor = Actor(str(h["actor_id"]), str(h.get("actor") or ""), "")
    else:
        actor = Actor.from_json(h.get("actor"))
    seq = h.get("seq") if isinstance(h.get("seq"), int) else None
    return {
        "hazard_pk": hazard_pk,
        "row_key": history_key(h),
        "seq": seq,
        "at": parse_time(h.get("at")),
        "actor_id": actor.id,
        "actor_display": actor.display,
        "actor_source": actor.source,
        "action": str(h.get("action") or "")[:32],
        "from_state": h.get("from"),
        "to_state": h.get("to"),
        "note": str(h.get("note") or ""),
        "hash": str(h["hash"]) if h.get("hash") else None,
    }


def _history(h: Any) -> HistoryRow:
    return HistoryRow(
        h.at,
        h.action,
        h.from_state,
        h.to_state,
        Actor(h.actor_id, h.actor_display, h.actor_source),
        h.note,
        h.seq,
        h.hash,
    )


def _action(a: Any) -> ActionRow:
    return ActionRow(
        id=int(a.id),
        uid=a.uid,
        terminal=a.terminal,
        hazard_pk=int(a.hazard_pk),
        hazard_uid=a.hazard_uid,
        local_id=int(a.local_id),
        action=a.action,
        note=a.note,
        owner=a.owner,
        item=a.item,
        requested_by=a.requested_by,
        requested_display=a.requested_display,
        requested_at=a.requested_at,
        state=a.state,
        result_at=a.result_at,
        reason=a.reason,
        offered=int(a.offered),
    )


def _drill(d: Any) -> dict[str, Any]:
    return {
        "terminal": d.terminal,
        "branch_id": d.branch_id,
        "scenario": d.scenario,
        "started_at": d.started_at,
        "finished_at": d.finished_at,
        "passed": bool(d.passed),
        "trigger": d.trigger,
        "stages": json.loads(d.stages or "[]"),
    }


def _retryable(exc: sa.exc.OperationalError) -> bool:
    code = getattr(exc.orig, "sqlstate", None)
    return code in ("40001", "40P01") or "database is locked" in str(exc.orig)


_SNAPSHOT_COLUMNS = (
    "branch_id",
    "primary_id",
    "local_id",
    "store_id",
    "fingerprint",
    "rule",
    "category",
    "severity",
    "state",
    "title",
    "subject",
    "owner",
    "first_seen",
    "last_seen",
    "deadline",
    "escalation_level",
    "recurrence_count",
    "occurrences",
    "drill",
    "recurring",
    "resolved_by",
    "resolved_at",
    "closed_by",
    "closed_at",
    "record",
    "updated_at",
)

_NEWER_CHAIN = sa.and_(
    sa.bindparam("_seq", type_=sa.BigInteger).is_not(None),
    sa.or_(
        terminals.c.chain_seq.is_(None), terminals.c.chain_seq < sa.bindparam("_seq", type_=sa.BigInteger)
    ),
)
_UPDATE_TERMINAL = (
    sa.update(terminals)
    .where(terminals.c.name == sa.bindparam("_name"))
    .values(
        last_ticket_at=sa.bindparam("_now"),
        last_seen_at=sa.bindparam("_now"),
        tickets=terminals.c.tickets + sa.bindparam("_new", type_=sa.Integer),
        agent_version=sa.func.coalesce(sa.bindparam("_version", type_=sa.String), terminals.c.agent_version),
        store_id=sa.func.coalesce(sa.bindparam("_store", type_=sa.String), terminals.c.store_id),
        last_lag=sa.func.coalesce(sa.bindparam("_lag", type_=sa.Double), terminals.c.last_lag),
        baseline_digest=sa.func.coalesce(
            sa.bindparam("_digest", type_=sa.String), terminals.c.baseline_digest
        ),
        chain_seq=sa.case(
            (_NEWER_CHAIN, sa.bindparam("_seq", type_=sa.BigInteger)), else_=terminals.c.chain_seq
        ),
        chain_hash=sa.case(
            (_NEWER_CHAIN, sa.bindparam("_hash", type_=sa.String)), else_=terminals.c.chain_hash
        ),
    )
)
