"""Applying verified tickets to the hub store (the ingest writer's batches), and what an agent
reports of itself (status, drills, checks, nonces of signed requests).

Convergence: a hazard's row holds the snapshot of the ticket with the highest history sequence
seen (`seq`); an older ticket arriving late adds its transition and history rows but never
overwrites a newer snapshot. Transitions are unique by idempotency key, history rows by
(hazard, row key), so duplicates and any delivery order end in the same state. Rows are touched
in a fixed order, so two hub processes on one PostgreSQL never deadlock on a batch."""

from __future__ import annotations

import functools
import hashlib
import json
import time
from collections.abc import Iterable, Sequence
from typing import Any

import sqlalchemy as sa
import structlog
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from sentinel.hub import fastjson
from sentinel.hub.model import Ticket
from sentinel.hub.rows import actor_id_of, history_values, int_value, parse_time, text_value
from sentinel.hub.schema import checks, drill_runs, hazards, history, nonces, terminals, transitions
from sentinel.hub.storebase import StoreBase

log = structlog.get_logger("sentinel.hub")


_RETRIES = 5


class TicketApply(StoreBase):
    """Ingest's half of the store: batches of tickets in, terminal facts updated."""

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
                    row = history_values(hazard_pk, h)
                    rows.setdefault((hazard_pk, row["row_key"]), row)
        self.db.executemany(c, self._insert_transition, [fresh[k] for k in sorted(fresh)])
        self.db.executemany(c, self._insert_history, [rows[k] for k in sorted(rows)])
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
            "fingerprint": text_value(r.get("fingerprint")),
            "rule": text_value(r.get("rule")),
            "category": text_value(r.get("category")),
            "severity": text_value(r.get("severity")),
            "state": text_value(r.get("state")),
            "title": text_value(r.get("title")),
            "subject": text_value(r.get("subject")),
            "owner": text_value(actor_id_of(r.get("owner"))),
            "first_seen": parse_time(r.get("first_seen")),
            "last_seen": parse_time(r.get("last_seen")) or t.at or now,
            "deadline": parse_time(r.get("deadline")),
            "escalation_level": int_value(r.get("escalation_level")),
            "recurrence_count": int_value(r.get("recurrence_count")),
            "occurrences": int_value(r.get("occurrences")),
            "drill": bool(r.get("drill")),
            "recurring": any(i.get("kind") == "long_term" for i in items),
            "resolved_by": actor_id_of(r.get("resolved_by_id") or r.get("resolved_by")),
            "resolved_at": parse_time(r.get("resolved_at")),
            "closed_by": actor_id_of(r.get("closed_by_id") or r.get("closed_by")),
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
