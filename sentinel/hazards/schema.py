"""The SQLite schema of the hazard store and its forward migrations.

`PRAGMA user_version` holds the schema version. Each migration runs once, in its own
transaction, in order; a store written by a newer agent is refused rather than damaged.
"""

from __future__ import annotations

import sqlite3

STORE_FILE = "hazards.db"
"""The store's file name in `[agent] state_dir`."""

MIGRATIONS: tuple[str, ...] = (
    # 1: hazards, their rectification checklists, the audit trail, the ticket outbox, counters.
    """
    CREATE TABLE hazards (
        id               INTEGER PRIMARY KEY AUTOINCREMENT,
        fingerprint      TEXT    NOT NULL,
        rule             TEXT    NOT NULL,
        category         TEXT    NOT NULL,
        severity         TEXT    NOT NULL,
        state            TEXT    NOT NULL,
        title            TEXT    NOT NULL,
        subject          TEXT    NOT NULL,
        terminal         TEXT    NOT NULL,
        evidence         TEXT    NOT NULL DEFAULT '[]',
        first_seen       REAL    NOT NULL,
        last_seen        REAL    NOT NULL,
        occurrences      INTEGER NOT NULL DEFAULT 1,
        owner            TEXT    NOT NULL,
        deadline         REAL,
        escalation_level INTEGER NOT NULL DEFAULT 0,
        recurrence_count INTEGER NOT NULL DEFAULT 0,
        related          TEXT    NOT NULL DEFAULT '[]',
        drill            INTEGER NOT NULL DEFAULT 0,
        auto_resolve     INTEGER NOT NULL DEFAULT 1,
        condition_active INTEGER NOT NULL DEFAULT 1,
        resolved_by      TEXT,
        resolved_at      REAL,
        closed_by        TEXT,
        closed_at        REAL,
        updated_at       REAL    NOT NULL
    );
    CREATE UNIQUE INDEX hazards_one_live_record
        ON hazards (fingerprint) WHERE state NOT IN ('closed', 'cancelled');
    CREATE INDEX hazards_by_state ON hazards (state, severity, category);
    CREATE INDEX hazards_by_fingerprint ON hazards (fingerprint, first_seen);

    CREATE TABLE rectification (
        hazard_id INTEGER NOT NULL REFERENCES hazards (id) ON DELETE CASCADE,
        seq       INTEGER NOT NULL,
        kind      TEXT    NOT NULL CHECK (kind IN ('short_term', 'long_term')),
        text      TEXT    NOT NULL,
        done_by   TEXT,
        done_at   REAL,
        PRIMARY KEY (hazard_id, seq)
    );

    CREATE TABLE history (
        id         INTEGER PRIMARY KEY AUTOINCREMENT,
        hazard_id  INTEGER NOT NULL REFERENCES hazards (id) ON DELETE CASCADE,
        at         REAL    NOT NULL,
        actor      TEXT    NOT NULL,
        action     TEXT    NOT NULL,
        from_state TEXT,
        to_state   TEXT,
        note       TEXT    NOT NULL DEFAULT ''
    );
    CREATE INDEX history_by_hazard ON history (hazard_id, id);

    CREATE TABLE outbox (
        id              INTEGER PRIMARY KEY AUTOINCREMENT,
        hazard_id       INTEGER NOT NULL,
        history_id      INTEGER NOT NULL,
        sink            TEXT    NOT NULL,
        transition      TEXT    NOT NULL,
        payload         TEXT    NOT NULL,
        idempotency_key TEXT    NOT NULL,
        created_at      REAL    NOT NULL,
        attempts        INTEGER NOT NULL DEFAULT 0,
        next_attempt_at REAL    NOT NULL,
        last_error      TEXT,
        delivered_at    REAL,
        dead            INTEGER NOT NULL DEFAULT 0,
        UNIQUE (sink, idempotency_key)
    );
    CREATE INDEX outbox_pending ON outbox (sink, delivered_at, dead, hazard_id, id);

    CREATE TABLE counters (
        name   TEXT NOT NULL,
        labels TEXT NOT NULL,
        value  REAL NOT NULL DEFAULT 0,
        PRIMARY KEY (name, labels)
    );

    CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
    """,
    # 2: emergency drill runs and their stage results.
    """
    CREATE TABLE drill_runs (
        id          INTEGER PRIMARY KEY AUTOINCREMENT,
        scenario    TEXT    NOT NULL,
        started_at  REAL    NOT NULL,
        finished_at REAL    NOT NULL,
        passed      INTEGER NOT NULL,
        trigger     TEXT    NOT NULL DEFAULT 'cli',
        stages      TEXT    NOT NULL
    );
    CREATE INDEX drill_runs_by_scenario ON drill_runs (scenario, started_at);
    """,
    # 3: file-integrity baseline updates (who, when, why, from which baseline to which).
    """
    CREATE TABLE baseline_updates (
        id          INTEGER PRIMARY KEY AUTOINCREMENT,
        at          REAL    NOT NULL,
        actor       TEXT    NOT NULL,
        action      TEXT    NOT NULL,
        reason      TEXT    NOT NULL DEFAULT '',
        old_digest  TEXT    NOT NULL DEFAULT '',
        new_digest  TEXT    NOT NULL,
        entries     INTEGER NOT NULL,
        summary     TEXT    NOT NULL DEFAULT '{}'
    );
    """,
)

SCHEMA_VERSION = len(MIGRATIONS)


class SchemaTooNew(Exception):
    """The store was written by a newer Sentinel; refuse rather than damage it."""


def migrate(conn: sqlite3.Connection) -> int:
    """Bring the schema up to SCHEMA_VERSION; return the version found before."""
    found = int(conn.execute("PRAGMA user_version").fetchone()[0])
    if found > SCHEMA_VERSION:
        raise SchemaTooNew(
            f"the hazard store has schema version {found}; this agent knows up to "
            f"{SCHEMA_VERSION} (upgrade Sentinel)"
        )
    for version in range(found + 1, SCHEMA_VERSION + 1):
        conn.execute("BEGIN IMMEDIATE")
        try:
            for statement in _statements(MIGRATIONS[version - 1]):
                conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {version}")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")
    return found


def _statements(script: str) -> list[str]:
    """Split a migration into statements (executescript would commit behind our back)."""
    out, buf = [], ""
    for line in script.splitlines(keepends=True):
        buf += line
        if sqlite3.complete_statement(buf):
            if buf.strip():
                out.append(buf.strip())
            buf = ""
    if buf.strip():
        out.append(buf.strip())
    return out
