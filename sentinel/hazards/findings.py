"""Findings into records: a new record, an update, a recurrence or an automatic resolution.

One root cause is one record (fingerprint = rule + terminal + subject): a repeat only counts an
occurrence and keeps the latest evidence; a recurrence after resolution reopens the record; one
after closing opens a new record linked to the old ones; a hazard that keeps coming back is
flagged for a long-term mechanism.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import sqlite3
from typing import Any

from sentinel.core.ids import Ids
from sentinel.core.model import Finding, Severity, clean_text, clean_value
from sentinel.core.redact import redact_field, redact_text
from sentinel.core.timefmt import iso
from sentinel.hazards.changes import Change
from sentinel.hazards.config import HazardsConfig
from sentinel.hazards.identity import AGENT
from sentinel.hazards.lifecycle import ACTIVE_STATES, FINAL_STATES, Action, State, states_sql
from sentinel.hazards.routing import Router
from sentinel.hazards.trail import Trail

LONG_TERM_ITEM = "Long-term mechanism: find and remove the root cause of this recurring hazard"


def fingerprint(rule: str, terminal: str, subject: str) -> str:
    """One root cause, one fingerprint: rule + terminal + subject."""
    digest = hashlib.sha256(f"{rule}\x1f{terminal}\x1f{subject}".encode("utf-8", "replace"))
    return digest.hexdigest()[:24]


def cleaned(finding: Finding) -> Finding:
    """The finding with every text made safe to store and print (see model.clean_text) and every
    secret masked (core.redact): records, tickets and the hub are built from what is kept here."""
    return dataclasses.replace(
        finding,
        subject=redact_text(clean_text(finding.subject)),
        title=redact_text(clean_text(finding.title)),
        evidence=tuple((clean_text(k), redact_field(k, clean_value(v))) for k, v in finding.evidence),
        rectification=tuple(redact_text(clean_text(r)) for r in finding.rectification),
        details=clean_text(finding.details),  # built from redacted parts by its source (a JSON object)
    )


class FindingWriter:
    """Applies findings inside the caller's transaction (the writer thread's)."""

    def __init__(
        self, *, config: HazardsConfig, router: Router, trail: Trail, terminal: str, ids: Ids
    ) -> None:
        self.config = config
        self.router = router
        self.trail = trail
        self.terminal = terminal
        self.ids = ids

    def apply(self, db: sqlite3.Connection, finding: Finding) -> Change | None:
        """Apply one (cleaned) finding; None when it changed nothing worth a Change."""
        fp = fingerprint(finding.rule, self.terminal, finding.subject)
        live = db.execute(
            f"SELECT * FROM hazards WHERE fingerprint = ? AND state NOT IN {states_sql(FINAL_STATES)}",  # noqa: S608
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
            """INSERT INTO hazards (uid, fingerprint, rule, category, severity, state, title, subject,
                   terminal, evidence, first_seen, last_seen, occurrences, owner, deadline,
                   recurrence_count, related, drill, auto_resolve, condition_active, updated_at, details)
               VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 1, ?, ?, ?, ?, ?, ?, 1, ?, ?)""",
            (
                self.ids.hazard_uid(now),
                fp,
                finding.rule,
                finding.category.value,
                finding.severity.value,
                State.OPEN.value,
                finding.title,
                finding.subject,
                self.terminal,
                json.dumps([_evidence(finding)]),
                now,
                now,
                assignment.owner,
                assignment.deadline,
                len(related),
                json.dumps(related),
                int(finding.drill),
                int(finding.auto_resolve),
                now,
                finding.details or None,
            ),
        )
        hazard_id = int(cur.lastrowid or 0)
        for seq, text in enumerate(finding.rectification, start=1):
            db.execute(
                "INSERT INTO rectification (hazard_id, seq, kind, text) VALUES (?, ?, 'short_term', ?)",
                (hazard_id, seq, text),
            )
        self.trail.bump(db, "hazards_raised_total", category=finding.category, severity=finding.severity)
        note = f"raised by rule {finding.rule}; owner {assignment.owner}"
        if related:
            note += f"; recurs after hazards {', '.join(f'#{r}' for r in related)}"
        self.trail.write(db, hazard_id, Action.RAISE, None, State.OPEN, note, now=now)
        self._flag_recurring(db, hazard_id, 1 + len(related), now)
        return Change(hazard_id, Action.RAISE, State.OPEN, created=True)

    def _recur_or_update(self, db: sqlite3.Connection, live: sqlite3.Row, finding: Finding) -> Change:
        hazard_id, state = int(live["id"]), State(live["state"])
        evidence = json.loads(live["evidence"])
        evidence.append(_evidence(finding))
        evidence = evidence[-self.config.evidence_keep :]
        db.execute(
            """UPDATE hazards SET occurrences = occurrences + 1, last_seen = ?, evidence = ?,
                   condition_active = 1, title = ?, updated_at = ? WHERE id = ?""",
            (finding.time, json.dumps(evidence), finding.title, finding.time, hazard_id),
        )
        if finding.details:  # the latest account of an IT change (files the monitor confirmed)
            db.execute("UPDATE hazards SET details = ? WHERE id = ?", (finding.details, hazard_id))
        action = Action.OCCUR
        if state == State.RESOLVED:
            db.execute(
                """UPDATE hazards SET state = ?, recurrence_count = recurrence_count + 1,
                       resolved_by = NULL, resolved_by_id = NULL, resolved_at = NULL WHERE id = ?""",
                (State.OPEN.value, hazard_id),
            )
            self.trail.write(
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
            self.trail.bump(db, "hazards_raised_total", category=finding.category, severity=finding.severity)
        self.trail.write(
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
            "UPDATE hazards SET state = ?, resolved_by = ?, resolved_by_id = ?, resolved_at = ? WHERE id = ?",
            (State.RESOLVED.value, AGENT.display, AGENT.id, finding.time, hazard_id),
        )
        self.trail.write(
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
        self.trail.write(
            db,
            hazard_id,
            Action.NOTE,
            None,
            None,
            f"flagged recurring: {episodes} episodes within "
            f"{int(self.config.recurrence_window // 86400)} days; long-term mechanism required",
            now=now,
        )


def _evidence(finding: Finding) -> dict[str, Any]:
    return {"at": iso(finding.time), "severity": finding.severity.value, **finding.evidence_map}
