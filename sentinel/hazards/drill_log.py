"""What drills ask of the store: their hazards, the deliveries of one transition, their results."""

from __future__ import annotations

import json
import sqlite3
from typing import Any

from sentinel.core.timefmt import iso
from sentinel.hazards.connection import StoreConnection
from sentinel.hazards.lifecycle import FINAL_STATES, states_sql


class DrillLog:
    """Drill bookkeeping in the hazard store (`drill_runs`), and the lookups a drill's stages use."""

    def __init__(self, connection: StoreConnection) -> None:
        self._db = connection

    def live_hazards(self, rule: str) -> list[int]:
        """Ids of the rule's hazards that are not closed or cancelled."""
        rows = self._db.read(
            f"SELECT id FROM hazards WHERE rule = ? AND state NOT IN {states_sql(FINAL_STATES)} "  # noqa: S608
            "ORDER BY id",
            (rule,),
        )
        return [int(r["id"]) for r in rows]

    def hazard_since(self, rule: str, since: float, *, subject: str | None = None) -> tuple[int, int] | None:
        """(hazard id, its latest raise/recur history id) of a rule's drill hazard raised or
        reopened at or after `since` (with that subject, if given), or None."""
        row = self._db.read(
            "SELECT h.hazard_id AS hazard_id, MAX(h.id) AS history_id FROM history h "
            "JOIN hazards z ON z.id = h.hazard_id WHERE z.rule = ? AND z.drill = 1 "
            "AND (? IS NULL OR z.subject = ?) AND h.action IN ('raise', 'recur') "
            "AND h.at >= ? GROUP BY h.hazard_id ORDER BY history_id DESC LIMIT 1",
            (rule, subject, subject, since),
        )
        return (int(row[0]["hazard_id"]), int(row[0]["history_id"])) if row else None

    def deliveries(self, hazard_id: int, history_id: int) -> list[sqlite3.Row]:
        """The outbox rows of one transition: sink, delivered_at, dead, attempts, last_error."""
        return self._db.read(
            "SELECT sink, delivered_at, dead, attempts, last_error FROM outbox "
            "WHERE hazard_id = ? AND history_id = ? ORDER BY sink",
            (hazard_id, history_id),
        )

    def record(
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
        with self._db.txn() as db:
            cur = db.execute(
                "INSERT INTO drill_runs (scenario, started_at, finished_at, passed, trigger, stages) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (scenario, started_at, finished_at, int(passed), trigger, json.dumps(stages)),
            )
            return int(cur.lastrowid or 0)

    def runs(self, *, scenario: str | None = None, limit: int = 50) -> list[dict[str, Any]]:
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
                "started_at": iso(r["started_at"]),
                "finished_at": iso(r["finished_at"]),
                "passed": bool(r["passed"]),
                "trigger": r["trigger"],
                "stages": json.loads(r["stages"]),
            }
            for r in self._db.read(sql, args)
        ]

    def summary(self) -> list[sqlite3.Row]:
        """Per scenario: last run time, last success time, last result and its stages."""
        return self._db.read(
            "SELECT d.scenario, d.started_at AS last_run, d.passed, d.stages, "
            "(SELECT MAX(finished_at) FROM drill_runs s WHERE s.scenario = d.scenario AND s.passed = 1) "
            "AS last_success FROM drill_runs d "
            "WHERE d.id IN (SELECT MAX(id) FROM drill_runs GROUP BY scenario)"
        )
