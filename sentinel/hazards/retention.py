"""Retention: closed and cancelled records leave the store after `[hazards] retention`, archived
first as JSON lines so the ledger outlives the store. Their links stay in the chain (content
gone, hashes kept) and one `prune` link names them, so the trail still verifies."""

from __future__ import annotations

import json
from pathlib import Path

from sentinel.core.clock import Clock
from sentinel.core.files import append_durably
from sentinel.hazards import links
from sentinel.hazards.config import HazardsConfig
from sentinel.hazards.connection import StoreConnection
from sentinel.hazards.lifecycle import FINAL_STATES, states_sql
from sentinel.hazards.records import HazardRecord, RecordReader


class Retention:
    """Prunes what the retention period lets go (never a live record, never an undelivered ticket)."""

    def __init__(
        self, connection: StoreConnection, config: HazardsConfig, records: RecordReader, clock: Clock
    ) -> None:
        self._db = connection
        self.config = config
        self.records = records
        self.clock = clock

    def prune(self, archive_dir: Path | None = None) -> int:
        """Delete closed and cancelled hazards older than the retention; never live ones.

        With `archive_dir`, each record (with its trail) is first appended as one JSON line to
        `archive_dir/hazards-<year closed>.jsonl` (0600, fsynced): the ledger outlives the store.
        """
        cutoff = self.clock.time() - self.config.retention
        with self._db.txn() as db:
            ids = [
                int(r["id"])
                for r in db.execute(
                    f"SELECT id FROM hazards WHERE state IN {states_sql(FINAL_STATES)} "  # noqa: S608
                    "AND updated_at < ? "
                    "AND id NOT IN (SELECT hazard_id FROM outbox WHERE delivered_at IS NULL)",
                    (cutoff,),
                ).fetchall()
            ]
            if archive_dir is not None and ids:
                archive(archive_dir, [self.records.read(db, i) for i in ids])
            if ids:  # the chain keeps their links; one prune link says where their rows went
                marks = ", ".join("?" * len(ids))  # placeholders only: the ids are bound
                uid_sql = f"SELECT uid FROM hazards WHERE id IN ({marks})"  # noqa: S608
                count_sql = f"SELECT COUNT(*) FROM history WHERE hazard_id IN ({marks})"  # noqa: S608
                uids = [str(r[0]) for r in db.execute(uid_sql, ids)]
                rows = db.execute(count_sql, ids).fetchone()[0]
            db.executemany("DELETE FROM hazards WHERE id = ?", [(i,) for i in ids])
            if ids:
                links.append_prune(db, self.clock.time(), uids, int(rows))
            db.execute("DELETE FROM outbox WHERE delivered_at IS NOT NULL AND delivered_at < ?", (cutoff,))
            return len(ids)


def archive(directory: Path, records: list[HazardRecord]) -> None:
    """Append records to yearly JSON-lines files before they leave the store."""
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    by_year: dict[str, list[str]] = {}
    for record in records:
        year = (record.closed_at or record.last_seen or "unknown")[:4]
        by_year.setdefault(year, []).append(json.dumps(record.to_json(), sort_keys=True))
    for year, lines in by_year.items():
        append_durably(directory / f"hazards-{year}.jsonl", ("\n".join(lines) + "\n").encode("utf-8"))
