"""The audit trail of baselines: every init and update, by whom, when and why.

Rows live in the hazard store's `baseline_updates` table (schema migration 3), next to the
hazards' own history, so the safety committee's ledger and a re-baseline are in one place. Each
is a link of the store's hash chain (sentinel.hazards.links) with who did it as an identity, and
its new digest travels in every later ticket (`baseline_digest`).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from sentinel.core.db import open_database
from sentinel.hazards import links
from sentinel.hazards.identity import Actor
from sentinel.hazards.schema import migrate


def record_update(
    store_path: Path,
    *,
    at: float,
    actor: Actor,
    action: str,
    reason: str,
    old_digest: str,
    new_digest: str,
    entries: int,
    summary: dict[str, Any],
) -> int:
    """Append one audit row; return its id."""
    conn = open_database(store_path)
    try:
        migrate(conn)
        conn.execute("BEGIN IMMEDIATE")
        try:
            cur = conn.execute(
                "INSERT INTO baseline_updates (at, actor, action, reason, old_digest, new_digest, entries, "
                "summary, actor_id, actor_info, seq) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    at,
                    actor.display,
                    action,
                    reason,
                    old_digest,
                    new_digest,
                    entries,
                    json.dumps(summary),
                    actor.id,
                    json.dumps(actor.to_json(), sort_keys=True),
                    links.head(conn)[0] + 1,
                ),
            )
            links.append_baseline(conn, int(cur.lastrowid or 0), at)
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")
        return int(cur.lastrowid or 0)
    finally:
        conn.close()


def updates(store_path: Path, limit: int = 20) -> list[dict[str, Any]]:
    """The latest audit rows, newest first (empty when there is no store yet)."""
    if not store_path.exists():
        return []
    conn = open_database(store_path)
    try:
        migrate(conn)
        rows = conn.execute("SELECT * FROM baseline_updates ORDER BY id DESC LIMIT ?", (limit,)).fetchall()
    finally:
        conn.close()
    return [
        {
            "id": r["id"],
            "at": r["at"],
            "actor": r["actor"],
            "actor_id": r["actor_id"],
            "identity": json.loads(r["actor_info"]),
            "action": r["action"],
            "reason": r["reason"],
            "old_digest": r["old_digest"],
            "new_digest": r["new_digest"],
            "entries": r["entries"],
            "summary": json.loads(r["summary"]),
        }
        for r in rows
    ]
