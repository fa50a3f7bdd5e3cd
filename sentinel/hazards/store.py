"""The hazard store: SQLite (WAL, synchronous=FULL) holding hazards, their audit trail and outbox.

Every state change and the outbox rows that ticket it are written in one `BEGIN IMMEDIATE`
transaction (the transactional outbox): a ticket can be late, never lost. The agent's writer
thread and the CLI each open their own HazardStore on the same file; WAL lets them read while the
other writes, and the busy timeout serialises writers.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import os
import sqlite3
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sentinel import __version__
from sentinel.config.loader import HazardsConfig
from sentinel.core.clock import SYSTEM_CLOCK, Clock
from sentinel.core.model import Category, Finding, Severity, clean_text, clean_value
from sentinel.hazards.lifecycle import (
    ACTIVE_STATES,
    LIVE_STATES,
    Action,
    IllegalTransition,
    State,
    next_state,
)
from sentinel.hazards.routing import Router
from sentinel.tickets import payload as ticket_payload

AGENT_ACTOR = "sentinel"
LONG_TERM_ITEM = "Long-term mechanism: find and remove the root cause of this recurring hazard"
TICKETED = {
    Action.RAISE: "raised",
    Action.REOPEN: "reopened",
    Action.RECUR: "reopened",
    Action.SEVERITY: "severity_changed",
    Action.ESCALATE: "escalated",
    Action.ACK: "acknowledged",
    Action.START: "rectifying",
    Action.RESOLVE: "resolved",
    Action.CLOSE: "closed",
    Action.CANCEL: "cancelled",
    Action.ASSIGN: "assigned",
}
"""Which audit actions produce a ticket, and the transition name the ticket carries."""

SinkSelector = Callable[[dict[str, Any], str], Sequence[str]]


class HazardError(Exception):
    """A request the store refuses (unknown hazard, illegal transition, four-eyes rule...)."""


@dataclass(frozen=True, slots=True)
class Change:
    """What one write did to one hazard: the audit action and the resulting state."""

    hazard_id: int
    action: Action
    state: State
    created: bool = False


def fingerprint(rule: str, terminal: str, subject: str) -> str:
    """One root cause, one fingerprint: rule + terminal + subject."""
    digest = hashlib.sha256(f"{rule}\x1f{terminal}\x1f{subject}".encode("utf-8", "replace"))
    return digest.hexdigest()[:24]


def _no_sinks(_record: dict[str, Any], _transition: str) -> Sequence[str]:
    return ()


def open_database(path: Path, *, readonly: bool = False, timeout: float = 5.0) -> sqlite3.Connection:
    """Open the store with the pragmas every connection needs; create it 0600 if missing."""
    if not readonly and not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(path, os.O_CREAT | os.O_WRONLY, 0o600)
        os.close(fd)
    uri = f"file:{path}?mode=ro" if readonly else f"file:{path}"
    conn = sqlite3.connect(uri, uri=True, timeout=timeout, isolation_level=None, check_same_thread=False)
    conn.row_factory = sqlite3.Row
    conn.execute(f"PRAGMA busy_timeout = {int(timeout * 1000)}")
    if not readonly:
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = FULL")
    conn.execute("PRAGMA foreign_keys = ON")
    return conn


class HazardStore:
    """Hazard records with lifecycle, audit trail, deadlines, escalation and outbox rows."""

    def __init__(
        self,
        path: Path,
        *,
        config: HazardsConfig,
        terminal: str,
        branch: str,
        clock: Clock = SYSTEM_CLOCK,
        sinks_for: SinkSelector = _no_sinks,
    ) -> None:
        from sentinel.hazards.schema import migrate

        self.path = path
        self.config = config
        self.terminal = terminal
        self.branch = branch
        self.clock = clock
        self.router = Router(config)
        self._sinks_for = sinks_for
        self._lock = threading.RLock()  # one connection, shared by the writer and scrape threads
        self._conn = open_database(path)
        migrate(self._conn)

    def close(self) -> None:
        """Close the connection (the WAL is checkpointed by SQLite on last close)."""
        with self._lock:
            self._conn.close()

    # -- transactions -------------------------------------------------------------------------

    @contextlib.contextmanager
    def _txn(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield self._conn
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")

    def _read(self, sql: str, args: Sequence[Any] = ()) -> list[sqlite3.Row]:
        with self._lock:
            return self._conn.execute(sql, args).fetchall()

    # -- findings (the writer thread) ---------------------------------------------------------

    def apply(self, finding: Finding) -> Change | None:
        """Turn one finding into a new record, an update, a reopen or an auto-resolution."""
        return self.apply_many([finding])[0]

    def apply_many(self, findings: Sequence[Finding]) -> list[Change | None]:
        """Apply findings in order in ONE transaction (one fsync for a burst); all or nothing."""
        with self._txn() as db:
            return [self._apply_one(db, _cleaned(f)) for f in findings]

    def _apply_one(self, db: sqlite3.Connection, finding: Finding) -> Change | None:
        fp = fingerprint(finding.rule, self.terminal, finding.subject)
        live = db.execute(
            "SELECT * FROM hazards WHERE fingerprint = ? AND state NOT IN ('closed', 'cancelled')",
            (fp,),
        ).fetchone()
        if finding.state == "cleared":
            return self._cleared(db, live, finding) if live else None
        if live is None:
            return self._create(db, fp, finding)
        return self._recur_or_update(db, live, finding)

    def _create(self, db: sqlite3.Connection, fp: str, finding: Finding) -> Change:
        now = finding.time
        assignment = self.router.assign(
            rule=finding.rule,
            category=finding.category,
            severity=finding.severity,
            now=now,
            rule_deadline=finding.deadline_seconds,
            rule_owner=finding.owner,
        )
        earlier = db.execute(
            "SELECT id FROM hazards WHERE fingerprint = ? AND first_seen >= ? ORDER BY id",
            (fp, now - self.config.recurrence_window),
        ).fetchall()
        related = [int(r["id"]) for r in earlier]
        cur = db.execute(
            """INSERT INTO hazards (fingerprint, rule, category, severity, state, title, subject,
                   terminal, evidence, first_seen, last_seen, occurrences, owner, deadline,
                   recurrence_count, related, drill, auto_resolve, condition_active, updated_at)
               VALUES (?, ?, ?, ?, 'open', ?, ?, ?, ?, ?, ?, 1, ?, ?, ?, ?, ?, ?, 1, ?)""",
            (
                fp,
                finding.rule,
                finding.category.value,
                finding.severity.value,
                finding.title,
                finding.subject,
                self.terminal,
                json.dumps([self._evidence(finding)]),
                now,
                now,
                assignment.owner,
                assignment.deadline,
                len(related),
                json.dumps(related),
                int(finding.drill),
                int(finding.auto_resolve),
                now,
            ),
        )
        hazard_id = int(cur.lastrowid or 0)
        for seq, text in enumerate(finding.rectification, start=1):
            db.execute(
                "INSERT INTO rectification (hazard_id, seq, kind, text) VALUES (?, ?, 'short_term', ?)",
                (hazard_id, seq, text),
            )
        self._bump(db, "hazards_raised_total", category=finding.category, severity=finding.severity)
        note = f"raised by rule {finding.rule}; owner {assignment.owner}"
        if related:
            note += f"; recurs after hazards {', '.join(f'#{r}' for r in related)}"
        self._trail(db, hazard_id, Action.RAISE, None, State.OPEN, note, now=now)
        self._flag_recurring(db, hazard_id, 1 + len(related), now)
        return Change(hazard_id, Action.RAISE, State.OPEN, created=True)

    def _recur_or_update(self, db: sqlite3.Connection, live: sqlite3.Row, finding: Finding) -> Change:
        hazard_id, state = int(live["id"]), State(live["state"])
        evidence = json.loads(live["evidence"])
        evidence.append(self._evidence(finding))
        evidence = evidence[-self.config.evidence_keep :]
        db.execute(
            """UPDATE hazards SET occurrences = occurrences + 1, last_seen = ?, evidence = ?,
                   condition_active = 1, title = ?, updated_at = ? WHERE id = ?""",
            (finding.time, json.dumps(evidence), finding.title, finding.time, hazard_id),
        )
        action = Action.OCCUR
        if state == State.RESOLVED:
            db.execute(
                """UPDATE hazards SET state = 'open', recurrence_count = recurrence_count + 1,
                       resolved_by = NULL, resolved_at = NULL WHERE id = ?""",
                (hazard_id,),
            )
            self._trail(
                db,
                hazard_id,
                Action.RECUR,
                state,
                State.OPEN,
                "the condition recurred before the hazard was closed",
                now=finding.time,
            )
            episodes = len(json.loads(live["related"])) + int(live["recurrence_count"]) + 2
            self._flag_recurring(db, hazard_id, episodes, finding.time)
            state, action = State.OPEN, Action.RECUR
        if finding.severity != Severity(live["severity"]):
            self._change_severity(db, live, finding)
            action = Action.SEVERITY if action == Action.OCCUR else action
        return Change(hazard_id, action, state)

    def _change_severity(self, db: sqlite3.Connection, live: sqlite3.Row, finding: Finding) -> None:
        old = Severity(live["severity"])
        deadline = live["deadline"]
        sla = finding.deadline_seconds or self.router.sla(finding.severity)
        if finding.severity.rank > old.rank and sla:
            tighter = finding.time + sla
            deadline = tighter if deadline is None else min(float(deadline), tighter)
        db.execute(
            "UPDATE hazards SET severity = ?, deadline = ? WHERE id = ?",
            (finding.severity.value, deadline, int(live["id"])),
        )
        if finding.severity.rank > old.rank:
            self._bump(db, "hazards_raised_total", category=finding.category, severity=finding.severity)
        self._trail(
            db,
            int(live["id"]),
            Action.SEVERITY,
            None,
            None,
            f"severity {old.value} -> {finding.severity.value}",
            now=finding.time,
        )

    def _cleared(self, db: sqlite3.Connection, live: sqlite3.Row, finding: Finding) -> Change | None:
        hazard_id, state = int(live["id"]), State(live["state"])
        db.execute(
            "UPDATE hazards SET condition_active = 0, updated_at = ? WHERE id = ?",
            (finding.time, hazard_id),
        )
        if not live["auto_resolve"] or state not in ACTIVE_STATES:
            return None
        db.execute(
            "UPDATE hazards SET state = 'resolved', resolved_by = ?, resolved_at = ? WHERE id = ?",
            (AGENT_ACTOR, finding.time, hazard_id),
        )
        self._trail(
            db,
            hazard_id,
            Action.RESOLVE,
            state,
            State.RESOLVED,
            "condition cleared; resolved automatically",
            now=finding.time,
        )
        return Change(hazard_id, Action.RESOLVE, State.RESOLVED)

    def _flag_recurring(self, db: sqlite3.Connection, hazard_id: int, episodes: int, now: float) -> None:
        if episodes < self.config.recurrence_count:
            return
        has_item = db.execute(
            "SELECT 1 FROM rectification WHERE hazard_id = ? AND kind = 'long_term'", (hazard_id,)
        ).fetchone()
        if has_item:
            return
        seq = db.execute(
            "SELECT COALESCE(MAX(seq), 0) + 1 FROM rectification WHERE hazard_id = ?", (hazard_id,)
        ).fetchone()[0]
        db.execute(
            "INSERT INTO rectification (hazard_id, seq, kind, text) VALUES (?, ?, 'long_term', ?)",
            (hazard_id, seq, LONG_TERM_ITEM),
        )
        self._trail(
            db,
            hazard_id,
            Action.NOTE,
            None,
            None,
            f"flagged recurring: {episodes} episodes within "
            f"{int(self.config.recurrence_window // 86400)} days; long-term mechanism required",
            now=now,
        )

    @staticmethod
    def _evidence(finding: Finding) -> dict[str, Any]:
        return {
            "at": ticket_payload.iso(finding.time),
            "severity": finding.severity.value,
            **finding.evidence_map,
        }

    # -- deadlines and escalation -------------------------------------------------------------

    def check_deadlines(self) -> list[Change]:
        """Escalate every overdue active hazard to the chain level its lateness calls for."""
        now = self.clock.time()
        changes: list[Change] = []
        rows = self._read(
            "SELECT id, severity, deadline, escalation_level FROM hazards "
            "WHERE state IN ('open', 'acknowledged', 'rectifying') AND deadline IS NOT NULL "
            "AND deadline < ?",
            (now,),
        )
        for row in rows:
            target = self.router.escalation_target(Severity(row["severity"]), row["deadline"], now)
            if target <= row["escalation_level"]:
                continue
            with self._txn() as db:
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
                self._trail(db, int(row["id"]), Action.ESCALATE, None, None, note, now=now)
            changes.append(Change(int(row["id"]), Action.ESCALATE, State(current["state"])))
        return changes

    # -- people (the CLI) ---------------------------------------------------------------------

    def act(self, hazard_id: int, action: Action, *, by: str, note: str = "", owner: str = "") -> Change:
        """Apply a person's action (ack, start, resolve, close, reopen, cancel, assign, note)."""
        by, note, owner = clean_text(by.strip()), clean_text(note), clean_text(owner)
        if not by:
            raise HazardError("say who you are with --by NAME (the audit trail needs it)")
        now = self.clock.time()
        with self._txn() as db:
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
            self._trail(db, hazard_id, action, state, target, note, actor=by, now=now)
            return Change(hazard_id, action, target)

    def _guard(self, db: sqlite3.Connection, row: sqlite3.Row, action: Action, *, by: str, note: str) -> None:
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
            self._trail(db, hazard_id, Action.NOTE, None, None, note, actor=by, now=now)
            return Change(hazard_id, Action.NOTE, state)
        if state not in LIVE_STATES:
            raise HazardError(f"hazard #{hazard_id} is {state.value}; it cannot be reassigned")
        owner = owner.strip()
        if not owner:
            raise HazardError("assign needs an owner (--to NAME)")
        db.execute("UPDATE hazards SET owner = ?, updated_at = ? WHERE id = ?", (owner, now, hazard_id))
        text = f"owner {row['owner']} -> {owner}" + (f": {note}" if note else "")
        self._trail(db, hazard_id, Action.ASSIGN, None, None, text, actor=by, now=now)
        return Change(hazard_id, Action.ASSIGN, state)

    def tick(self, hazard_id: int, seq: int, *, by: str, note: str = "") -> Change:
        """Mark rectification item `seq` of a hazard as done."""
        by, note = clean_text(by), clean_text(note)
        if not by.strip():
            raise HazardError("say who you are with --by NAME (the audit trail needs it)")
        now = self.clock.time()
        with self._txn() as db:
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
            self._trail(db, hazard_id, Action.CHECK, None, None, text, actor=by, now=now)
            return Change(hazard_id, Action.CHECK, State(row["state"]))

    # -- audit trail and outbox ---------------------------------------------------------------

    def _trail(
        self,
        db: sqlite3.Connection,
        hazard_id: int,
        action: Action,
        from_state: State | None,
        to_state: State | None,
        note: str,
        *,
        now: float,
        actor: str = AGENT_ACTOR,
    ) -> None:
        cur = db.execute(
            "INSERT INTO history (hazard_id, at, actor, action, from_state, to_state, note) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            (
                hazard_id,
                now,
                actor,
                action.value,
                from_state and from_state.value,
                to_state and to_state.value,
                note,
            ),
        )
        transition = TICKETED.get(action)
        if transition is None:
            return
        history_id = int(cur.lastrowid or 0)
        record = self._record(db, hazard_id, now=now)
        sinks = self._sinks_for(record, transition)
        if not sinks:
            return
        key = ticket_payload.idempotency_key(self.terminal, hazard_id, history_id)
        body = ticket_payload.encode(
            ticket_payload.build(
                record=record,
                transition=transition,
                key=key,
                terminal=self.terminal,
                branch=self.branch,
                agent_version=__version__,
                actor=actor,
                at=now,
                note=note,
            )
        )
        for sink in sinks:
            db.execute(
                "INSERT INTO outbox (hazard_id, history_id, sink, transition, payload, "
                "idempotency_key, created_at, next_attempt_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (hazard_id, history_id, sink, transition, body, key, now, now),
            )

    def _bump(self, db: sqlite3.Connection, name: str, **labels: str) -> None:
        key = json.dumps({k: str(v) for k, v in sorted(labels.items())})
        db.execute(
            "INSERT INTO counters (name, labels, value) VALUES (?, ?, 1) "
            "ON CONFLICT (name, labels) DO UPDATE SET value = value + 1",
            (name, key),
        )

    # -- reading ------------------------------------------------------------------------------

    def get(self, hazard_id: int) -> dict[str, Any] | None:
        """The full record (DESIGN §3) with rectification and history, or None."""
        with self._lock:
            exists = self._conn.execute("SELECT 1 FROM hazards WHERE id = ?", (hazard_id,)).fetchone()
            return self._record(self._conn, hazard_id) if exists else None

    def records(
        self,
        *,
        states: Sequence[str] = (),
        since: float | None = None,
        limit: int | None = None,
        full: bool = False,
    ) -> list[dict[str, Any]]:
        """Records, newest first, filtered by state and by last_seen >= since."""
        where: list[str] = ["1 = 1"]
        args: list[Any] = []
        if states:
            where.append(f"state IN ({', '.join('?' * len(states))})")
            args += list(states)
        if since is not None:
            where.append("last_seen >= ?")
            args.append(since)
        sql = f"SELECT id FROM hazards WHERE {' AND '.join(where)} ORDER BY id DESC"  # noqa: S608
        if limit is not None:
            sql += f" LIMIT {int(limit)}"
        with self._lock:
            ids = [int(r["id"]) for r in self._conn.execute(sql, args).fetchall()]
            return [self._record(self._conn, i, history=full) for i in ids]

    def _record(
        self,
        db: sqlite3.Connection,
        hazard_id: int,
        *,
        now: float | None = None,
        history: bool = True,
    ) -> dict[str, Any]:
        row = db.execute("SELECT * FROM hazards WHERE id = ?", (hazard_id,)).fetchone()
        now = self.clock.time() if now is None else now
        state = State(row["state"])
        deadline = row["deadline"]
        items = db.execute(
            "SELECT seq, kind, text, done_by, done_at FROM rectification WHERE hazard_id = ? ORDER BY seq",
            (hazard_id,),
        ).fetchall()
        record: dict[str, Any] = {
            "id": hazard_id,
            "fingerprint": row["fingerprint"],
            "rule": row["rule"],
            "category": row["category"],
            "severity": row["severity"],
            "state": state.value,
            "title": row["title"],
            "subject": row["subject"],
            "terminal": row["terminal"],
            "evidence": json.loads(row["evidence"]),
            "first_seen": ticket_payload.iso(row["first_seen"]),
            "last_seen": ticket_payload.iso(row["last_seen"]),
            "occurrences": row["occurrences"],
            "owner": row["owner"],
            "deadline": ticket_payload.iso(deadline),
            "overdue": bool(deadline is not None and state in ACTIVE_STATES and now > deadline),
            "escalation_level": row["escalation_level"],
            "escalated_to": self.router.chain_name(row["escalation_level"]),
            "recurrence_count": row["recurrence_count"],
            "related": json.loads(row["related"]),
            "drill": bool(row["drill"]),
            "condition_active": bool(row["condition_active"]),
            "resolved_by": row["resolved_by"],
            "resolved_at": ticket_payload.iso(row["resolved_at"]),
            "closed_by": row["closed_by"],
            "closed_at": ticket_payload.iso(row["closed_at"]),
            "rectification": [
                {
                    "item": i["seq"],
                    "kind": i["kind"],
                    "text": i["text"],
                    "done": i["done_at"] is not None,
                    "done_by": i["done_by"],
                    "done_at": ticket_payload.iso(i["done_at"]),
                }
                for i in items
            ],
        }
        if history:
            record["history"] = [
                {
                    "at": ticket_payload.iso(h["at"]),
                    "actor": h["actor"],
                    "action": h["action"],
                    "from": h["from_state"],
                    "to": h["to_state"],
                    "note": h["note"],
                }
                for h in db.execute(
                    "SELECT * FROM history WHERE hazard_id = ? ORDER BY id", (hazard_id,)
                ).fetchall()
            ]
        else:
            record["history"] = []
        return record

    # -- metrics ------------------------------------------------------------------------------

    def state_counts(self) -> list[tuple[str, str, str, int]]:
        """(state, severity, category, count) for every non-empty combination."""
        rows = self._read(
            "SELECT state, severity, category, COUNT(*) AS n FROM hazards GROUP BY state, severity, category"
        )
        return [(r["state"], r["severity"], r["category"], int(r["n"])) for r in rows]

    def overdue_counts(self) -> dict[str, int]:
        """Overdue active hazards by severity."""
        rows = self._read(
            "SELECT severity, COUNT(*) AS n FROM hazards WHERE state IN "
            "('open', 'acknowledged', 'rectifying') AND deadline IS NOT NULL AND deadline < ? "
            "GROUP BY severity",
            (self.clock.time(),),
        )
        return {r["severity"]: int(r["n"]) for r in rows}

    def counter(self, name: str) -> list[tuple[dict[str, str], float]]:
        """A persisted counter's values by label set."""
        rows = self._read("SELECT labels, value FROM counters WHERE name = ?", (name,))
        return [(json.loads(r["labels"]), float(r["value"])) for r in rows]

    def open_hazards(self, limit: int) -> list[sqlite3.Row]:
        """The most severe, oldest active hazards first (for the capped info series)."""
        return self._read(
            "SELECT id, rule, severity, category, state, drill FROM hazards "
            "WHERE state IN ('open', 'acknowledged', 'rectifying') "
            "ORDER BY CASE severity WHEN 'critical' THEN 0 WHEN 'major' THEN 1 "
            "WHEN 'minor' THEN 2 ELSE 3 END, id LIMIT ?",
            (limit,),
        )

    # -- drills ---------------------------------------------------------------------------------

    def live_hazards(self, rule: str) -> list[int]:
        """Ids of the rule's hazards that are not closed or cancelled."""
        rows = self._read(
            "SELECT id FROM hazards WHERE rule = ? AND state NOT IN ('closed', 'cancelled') ORDER BY id",
            (rule,),
        )
        return [int(r["id"]) for r in rows]

    def hazard_since(self, rule: str, since: float, *, subject: str | None = None) -> tuple[int, int] | None:
        """(hazard id, its latest raise/recur history id) of a rule's drill hazard raised or
        reopened at or after `since` (with that subject, if given), or None."""
        row = self._read(
            "SELECT h.hazard_id AS hazard_id, MAX(h.id) AS history_id FROM history h "
            "JOIN hazards z ON z.id = h.hazard_id WHERE z.rule = ? AND z.drill = 1 "
            "AND (? IS NULL OR z.subject = ?) AND h.action IN ('raise', 'recur') "
            "AND h.at >= ? GROUP BY h.hazard_id ORDER BY history_id DESC LIMIT 1",
            (rule, subject, subject, since),
        )
        return (int(row[0]["hazard_id"]), int(row[0]["history_id"])) if row else None

    def deliveries(self, hazard_id: int, history_id: int) -> list[sqlite3.Row]:
        """The outbox rows of one transition: sink, delivered_at, dead, attempts, last_error."""
        return self._read(
            "SELECT sink, delivered_at, dead, attempts, last_error FROM outbox "
            "WHERE hazard_id = ? AND history_id = ? ORDER BY sink",
            (hazard_id, history_id),
        )

    def record_drill(
        self,
        *,
        scenario: str,
        started_at: float,
        finished_at: float,
        passed: bool,
        trigger: str,
        stages: list[dict[str, Any]],
    ) -> int:
        """Keep one drill run's result."""
        with self._txn() as db:
            cur = db.execute(
                "INSERT INTO drill_runs (scenario, started_at, finished_at, passed, trigger, stages) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (scenario, started_at, finished_at, int(passed), trigger, json.dumps(stages)),
            )
            return int(cur.lastrowid or 0)

    def drill_runs(self, *, scenario: str | None = None, limit: int = 50) -> list[dict[str, Any]]:
        """Recent drill runs, newest first."""
        sql = "SELECT * FROM drill_runs"
        args: list[Any] = []
        if scenario:
            sql += " WHERE scenario = ?"
            args.append(scenario)
        sql += " ORDER BY id DESC LIMIT ?"
        args.append(limit)
        return [
            {
                "id": r["id"],
                "scenario": r["scenario"],
                "started_at": ticket_payload.iso(r["started_at"]),
                "finished_at": ticket_payload.iso(r["finished_at"]),
                "passed": bool(r["passed"]),
                "trigger": r["trigger"],
                "stages": json.loads(r["stages"]),
            }
            for r in self._read(sql, args)
        ]

    def drill_summary(self) -> list[sqlite3.Row]:
        """Per scenario: last run time, last success time, last result and its stages."""
        return self._read(
            "SELECT d.scenario, d.started_at AS last_run, d.passed, d.stages, "
            "(SELECT MAX(finished_at) FROM drill_runs s WHERE s.scenario = d.scenario AND s.passed = 1) "
            "AS last_success FROM drill_runs d "
            "WHERE d.id IN (SELECT MAX(id) FROM drill_runs GROUP BY scenario)"
        )

    # -- retention ----------------------------------------------------------------------------

    def prune(self, archive_dir: Path | None = None) -> int:
        """Delete closed and cancelled hazards older than the retention; never live ones.

        With `archive_dir`, each record (with its trail) is first appended as one JSON line to
        `archive_dir/hazards-<year closed>.jsonl` (0600, fsynced): the ledger outlives the store.
        """
        cutoff = self.clock.time() - self.config.retention
        with self._txn() as db:
            ids = [
                int(r["id"])
                for r in db.execute(
                    "SELECT id FROM hazards WHERE state IN ('closed', 'cancelled') AND updated_at < ? "
                    "AND id NOT IN (SELECT hazard_id FROM outbox WHERE delivered_at IS NULL)",
                    (cutoff,),
                ).fetchall()
            ]
            if archive_dir is not None and ids:
                _archive(archive_dir, [self._record(db, i) for i in ids])
            db.executemany("DELETE FROM hazards WHERE id = ?", [(i,) for i in ids])
            db.execute("DELETE FROM outbox WHERE delivered_at IS NOT NULL AND delivered_at < ?", (cutoff,))
            return len(ids)

    def integrity_check(self) -> str:
        """SQLite's own verdict: "ok" or the first problem."""
        return str(self._read("PRAGMA integrity_check")[0][0])


def _archive(directory: Path, records: list[dict[str, Any]]) -> None:
    """Append records to yearly JSON-lines files before they leave the store."""
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    by_year: dict[str, list[str]] = {}
    for record in records:
        year = (record.get("closed_at") or record.get("last_seen") or "unknown")[:4]
        by_year.setdefault(year, []).append(json.dumps(record, sort_keys=True))
    for year, lines in by_year.items():
        fd = os.open(directory / f"hazards-{year}.jsonl", os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(fd, ("\n".join(lines) + "\n").encode("utf-8"))
            os.fsync(fd)
        finally:
            os.close(fd)


def _cleaned(finding: Finding) -> Finding:
    """The finding with every text made safe to store and print (see model.clean_text)."""
    return dataclasses.replace(
        finding,
        subject=clean_text(finding.subject),
        title=clean_text(finding.title),
        evidence=tuple((clean_text(k), clean_value(v)) for k, v in finding.evidence),
        rectification=tuple(clean_text(r) for r in finding.rectification),
    )


def parse_category(value: str) -> Category:
    """A Category from its name (for CLI filters)."""
    return Category(value)


def _hours(seconds: float) -> str:
    if seconds < 3600:
        return f"{int(seconds // 60)}m"
    return f"{seconds / 3600:.1f}h"
