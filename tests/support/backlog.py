"""A hazard store holding a large outbox backlog (a sink down for a long time), built fast."""

from __future__ import annotations

import random
import sqlite3
from pathlib import Path

from sentinel.hazards.config import HazardsConfig
from sentinel.hazards.store import HazardStore


def build_backlog(
    path: Path, pending: int, now: float, *, sink: str = "hook", delivered: int = 0, seed: int = 1
) -> None:
    """`pending` open hazards with one undelivered ticket each to `sink`, retried 8 times so far
    and due again at times spread over the next five minutes (as max_backoff spreads them);
    then `delivered` more tickets of the same hazards that were delivered long ago."""
    HazardStore(path, config=HazardsConfig(), terminal="t", branch="b").close()  # the schema
    rng = random.Random(seed)
    conn = sqlite3.connect(path)
    try:
        conn.execute("BEGIN")
        conn.executemany(
            "INSERT INTO hazards (id, fingerprint, rule, category, severity, state, title, subject, "
            "terminal, first_seen, last_seen, owner, updated_at) "
            "VALUES (?, ?, 'backlog', 'stability', 'major', 'open', 'backlog', ?, 't', ?, ?, 'o', ?)",
            ((i, f"fp{i}", f"s{i}", now - 3600, now - 3600, now - 3600) for i in range(1, pending + 1)),
        )
        conn.executemany(
            "INSERT INTO outbox (hazard_id, history_id, sink, transition, payload, idempotency_key, "
            "created_at, attempts, next_attempt_at, last_error) "
            "VALUES (?, ?, ?, 'raised', ?, ?, ?, 8, ?, 'HTTP 503')",
            (
                (
                    i,
                    i,
                    sink,
                    '{"hazard": ' + str(i) + ', "pad": "' + "x" * 600 + '"}',
                    f"k{i}",
                    now - 3600,
                    now + rng.uniform(-5, 300),
                )
                for i in range(1, pending + 1)
            ),
        )
        conn.executemany(
            "INSERT INTO outbox (hazard_id, history_id, sink, transition, payload, idempotency_key, "
            "created_at, attempts, next_attempt_at, delivered_at) "
            "VALUES (?, ?, ?, 'raised', '{}', ?, ?, 1, ?, ?)",
            (
                (i % pending + 1, i, sink, f"old{i}", now - 7200, now - 7200, now - 7100)
                for i in range(delivered)
            ),
        )
        conn.execute("COMMIT")
    finally:
        conn.close()
