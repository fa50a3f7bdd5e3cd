"""The SQLite schema of the hazard store and its forward migrations.

`PRAGMA user_version` holds the schema version. Each migration runs once, in its own
transaction, in order; a store written by a newer agent is refused rather than damaged. A
migration is SQL, or SQL and a Python step that fills what SQL cannot (random ids, JSON).
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Callable

import sentinel.hazards
from sentinel.core.ids import RANDOM_IDS, Ids
from sentinel.hazards import links
from sentinel.hazards.identity import AGENT, legacy_actor

STORE_FILE = sentinel.hazards.STORE_FILE
"""The store's file name in `[agent] state_dir`."""

MigrationStep = Callable[[sqlite3.Connection, Ids, float], None]
"""A migration's Python step: (connection, where new ids come from, the time it runs)."""


def _v4_identities(conn: sqlite3.Connection, ids: Ids, _now: float) -> None:
    """Migration 4's Python step: the store's id, a UUIDv7 per hazard (from its first_seen), and
    the typed names of earlier rows recorded as `legacy:<name>` (never an authenticated identity;
    "sentinel" was the agent)."""
    conn.execute("INSERT OR IGNORE INTO meta (key, value) VALUES ('store_id', ?)", (ids.store_id(),))
    for row in conn.execute("SELECT id, first_seen FROM hazards ORDER BY id").fetchall():
        conn.execute("UPDATE hazards SET uid = ? WHERE id = ?", (ids.hazard_uid(float(row[1])), row[0]))
    names: dict[str, str] = {}
    for table, column in (("history", "actor"), ("baseline_updates", "actor")):
        for (name,) in conn.execute(f"SELECT DISTINCT {column} FROM {table}").fetchall():  # noqa: S608
            actor = legacy_actor(str(name))
            names[str(name)] = actor.id
            conn.execute(
                f"UPDATE {table} SET actor_id = ?, actor_info = ? WHERE {column} = ?",  # noqa: S608
                (actor.id, json.dumps(actor.to_json(), sort_keys=True), name),
            )
    for table, name_col, id_col in (
        ("hazards", "resolved_by", "resolved_by_id"),
        ("hazards", "closed_by", "closed_by_id"),
        ("rectification", "done_by", "done_by_id"),
    ):
        # table and columns are the literals above, never input
        query = f"SELECT DISTINCT {name_col} FROM {table} WHERE {name_col} IS NOT NULL"  # noqa: S608
        for (name,) in conn.execute(query).fetchall():
            actor_id = names.get(str(name)) or legacy_actor(str(name)).id
            conn.execute(f"UPDATE {table} SET {id_col} = ? WHERE {name_col} = ?", (actor_id, name))  # noqa: S608
    conn.execute("CREATE UNIQUE INDEX hazards_by_uid ON hazards (uid)")


def _v7_chain(conn: sqlite3.Connection, _ids: Ids, now: float) -> None:
    """Migration 7's Python step: the genesis link, then every earlier history row and baseline
    update chained oldest first (as they are now: they were not tamper-evident when written),
    then one note per hazard carrying its snapshot, so later edits of the hazard are seen."""
    rows = [
        ("history", int(r[0]), float(r[1])) for r in conn.execute("SELECT id, at FROM history").fetchall()
    ] + [
        ("baseline", int(r[0]), float(r[1]))
        for r in conn.execute("SELECT id, at FROM baseline_updates").fetchall()
    ]
    rows.sort(key=lambda r: (r[2], r[0] != "baseline", r[1]))
    hazards = [int(r[0]) for r in conn.execute("SELECT id FROM hazards ORDER BY id").fetchall()]
    note = (
        "store created"
        if not rows and not hazards
        else (
            f"trail chained from here on; the {len(rows)} earlier rows were chained as found "
            "(they were written before the trail was tamper-evident)"
        )
    )
    links.append_genesis(conn, now, note)
    for kind, row_id, at in rows:
        table = "history" if kind == "history" else "baseline_updates"
        conn.execute(f"UPDATE {table} SET seq = ? WHERE id = ?", (links.head(conn)[0] + 1, row_id))  # noqa: S608
        if kind == "history":
            links.append_history(conn, row_id, at)
        else:
            links.append_baseline(conn, row_id, at)
    for hazard_id in hazards:
        state = conn.execute("SELECT state FROM hazards WHERE id = ?", (hazard_id,)).fetchone()[0]
        links.write_history(
            conn,
            hazard_id,
            action="note",
            from_state=None,
            to_state=None,
            note=f"trail chained (schema 7) with the hazard {state} as found",
            actor=AGENT,
            at=now,
        )


MIGRATIONS: tuple[str | tuple[str, MigrationStep], ...] = (
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
    # 4: identities and fleet-unique ids (issue 20): who acted as the kernel or the hub said,
    # a UUIDv7 per hazard, the store's random id, the hub's applied actions, the ledger's
    # verifier and funding per rectification item.
    (
        """
        ALTER TABLE hazards ADD COLUMN uid TEXT;
        ALTER TABLE hazards ADD COLUMN resolved_by_id TEXT;
        ALTER TABLE hazards ADD COLUMN closed_by_id TEXT;
        ALTER TABLE history ADD COLUMN actor_id TEXT NOT NULL DEFAULT 'agent';
        ALTER TABLE history ADD COLUMN actor_info TEXT NOT NULL DEFAULT '{}';
        ALTER TABLE rectification ADD COLUMN done_by_id TEXT;
        ALTER TABLE rectification ADD COLUMN funding TEXT;
        ALTER TABLE rectification ADD COLUMN verified_by TEXT;
        ALTER TABLE rectification ADD COLUMN verified_by_id TEXT;
        ALTER TABLE rectification ADD COLUMN verified_at REAL;
        ALTER TABLE baseline_updates ADD COLUMN actor_id TEXT NOT NULL DEFAULT 'agent';
        ALTER TABLE baseline_updates ADD COLUMN actor_info TEXT NOT NULL DEFAULT '{}';
        CREATE TABLE hub_actions (
            action_id  TEXT    PRIMARY KEY,
            hazard_uid TEXT    NOT NULL,
            action     TEXT    NOT NULL,
            actor_id   TEXT    NOT NULL,
            applied_at REAL    NOT NULL,
            outcome    TEXT    NOT NULL CHECK (outcome IN ('done', 'refused')),
            message    TEXT    NOT NULL DEFAULT '',
            state      TEXT,
            history_id INTEGER
        );
        """,
        _v4_identities,
    ),
    # 5: the outbox at scale (a sink down for days: 100,000 pending rows). A partial index by due
    # time, so the dispatcher reads only what is due; one by age for the oldest pending; and
    # per-sink counts kept by triggers in the same transactions, so that a scrape never counts
    # rows (a large backlog made every scrape and every dispatch read all of it).
    """
    CREATE INDEX outbox_due ON outbox (sink, next_attempt_at, id)
        WHERE delivered_at IS NULL AND dead = 0;
    CREATE INDEX outbox_pending_age ON outbox (sink, created_at)
        WHERE delivered_at IS NULL AND dead = 0;
    CREATE TABLE outbox_counts (
        sink    TEXT    PRIMARY KEY,
        pending INTEGER NOT NULL DEFAULT 0,
        dead    INTEGER NOT NULL DEFAULT 0
    );
    INSERT INTO outbox_counts (sink, pending, dead)
        SELECT sink, SUM(delivered_at IS NULL AND dead = 0), SUM(dead != 0) FROM outbox GROUP BY sink;
    CREATE TRIGGER outbox_counts_insert AFTER INSERT ON outbox BEGIN
        INSERT OR IGNORE INTO outbox_counts (sink) VALUES (NEW.sink);
        UPDATE outbox_counts SET pending = pending + (NEW.delivered_at IS NULL AND NEW.dead = 0),
            dead = dead + (NEW.dead != 0) WHERE sink = NEW.sink;
    END;
    CREATE TRIGGER outbox_counts_update AFTER UPDATE OF delivered_at, dead, sink ON outbox BEGIN
        UPDATE outbox_counts SET pending = pending - (OLD.delivered_at IS NULL AND OLD.dead = 0),
            dead = dead - (OLD.dead != 0) WHERE sink = OLD.sink;
        INSERT OR IGNORE INTO outbox_counts (sink) VALUES (NEW.sink);
        UPDATE outbox_counts SET pending = pending + (NEW.delivered_at IS NULL AND NEW.dead = 0),
            dead = dead + (NEW.dead != 0) WHERE sink = NEW.sink;
    END;
    CREATE TRIGGER outbox_counts_delete AFTER DELETE ON outbox BEGIN
        UPDATE outbox_counts SET pending = pending - (OLD.delivered_at IS NULL AND OLD.dead = 0),
            dead = dead - (OLD.dead != 0) WHERE sink = OLD.sink;
    END;
    """,
    # 6: IT changes (docs/change.md): a record's structured `change` (packages, files, who), and
    # the audit trail of the change windows opened on this terminal.
    """
    ALTER TABLE hazards ADD COLUMN details TEXT;

    CREATE TABLE change_windows (
        id         INTEGER PRIMARY KEY AUTOINCREMENT,
        ticket     TEXT    NOT NULL,
        starts_at  REAL    NOT NULL,
        ends_at    REAL    NOT NULL,
        opened_by  TEXT    NOT NULL,
        opened_at  REAL    NOT NULL,
        note       TEXT    NOT NULL DEFAULT '',
        closed_by  TEXT,
        closed_at  REAL
    );
    CREATE INDEX change_windows_by_end ON change_windows (ends_at);
    """,
    # 7: the hash-chained trail (issue 20): one link per history row, baseline update and prune,
    # each covering the one before (sentinel.hazards.chain); history rows snapshot their hazard.
    (
        """
        CREATE TABLE chain (
            seq        INTEGER PRIMARY KEY,
            kind       TEXT    NOT NULL CHECK (kind IN ('genesis', 'history', 'baseline', 'prune')),
            ref        INTEGER,
            hazard_uid TEXT,
            at         REAL    NOT NULL,
            body       TEXT,
            prev_hash  TEXT    NOT NULL,
            hash       TEXT    NOT NULL UNIQUE
        );
        CREATE UNIQUE INDEX chain_by_ref ON chain (kind, ref) WHERE ref IS NOT NULL;
        ALTER TABLE history ADD COLUMN seq INTEGER;
        ALTER TABLE history ADD COLUMN snapshot TEXT;
        ALTER TABLE baseline_updates ADD COLUMN seq INTEGER;
        CREATE INDEX history_by_seq ON history (seq);
        """,
        _v7_chain,
    ),
)

SCHEMA_VERSION = len(MIGRATIONS)


class SchemaTooNew(Exception):
    """The store was written by a newer Sentinel; refuse rather than damage it."""


def migrate(conn: sqlite3.Connection, ids: Ids = RANDOM_IDS, now: float | None = None) -> int:
    """Bring the schema up to SCHEMA_VERSION; return the version found before. `now` (default the
    system clock) is the time a migration's rows are written at."""
    found = int(conn.execute("PRAGMA user_version").fetchone()[0])
    if found > SCHEMA_VERSION:
        raise SchemaTooNew(
            f"the hazard store has schema version {found}; this agent knows up to "
            f"{SCHEMA_VERSION} (upgrade Sentinel)"
        )
    for version in range(found + 1, SCHEMA_VERSION + 1):
        conn.execute("BEGIN IMMEDIATE")
        try:
            migration = MIGRATIONS[version - 1]
            script, step = migration if isinstance(migration, tuple) else (migration, None)
            for statement in _statements(script):
                conn.execute(statement)
            if step is not None:
                step(conn, ids, time.time() if now is None else now)
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
