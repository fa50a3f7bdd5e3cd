"""Schema versions and forward migrations on real SQLite files."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from sentinel.hazards.config import HazardsConfig
from sentinel.hazards.schema import MIGRATIONS, SCHEMA_VERSION, SchemaTooNew, _statements, migrate
from sentinel.hazards.store import HazardStore
from sentinel.testing import FakeClock
from tests.hazards.conftest import finding
from tests.support.records import as_json


def test_an_old_store_is_migrated_forward_keeping_its_records(tmp: Path) -> None:
    """A version-1 file with a record opens under the current schema with the record intact."""
    path = tmp / "hazards.db"
    conn = sqlite3.connect(path, isolation_level=None)
    for statement in _statements(MIGRATIONS[0]):
        conn.execute(statement)
    conn.execute(
        "INSERT INTO hazards (fingerprint, rule, category, severity, state, title, subject, terminal, "
        "first_seen, last_seen, owner, updated_at) VALUES ('f', 'old', 'stability', 'minor', 'open', "
        "'from v1', '/', 't', 1, 1, 'it', 1)"
    )
    conn.execute("PRAGMA user_version = 1")
    conn.close()
    clock = FakeClock()
    store = HazardStore(path, config=HazardsConfig(), terminal="t", branch="b", clock=clock)
    try:
        assert store._db.read("PRAGMA user_version")[0][0] == SCHEMA_VERSION
        store.apply(finding(clock))
        assert [r["title"] for r in as_json(store.records())] == ["disk on /", "from v1"]
    finally:
        store.close()


def test_a_store_from_a_newer_agent_is_refused(tmp: Path) -> None:
    """A higher user_version than we know raises SchemaTooNew and changes nothing."""
    path = tmp / "hazards.db"
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    with pytest.raises(SchemaTooNew, match="upgrade Sentinel"):
        migrate(conn)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION + 1
    conn.close()


def test_migrations_are_idempotent(tmp: Path) -> None:
    """Opening twice migrates once."""
    conn = sqlite3.connect(tmp / "h.db", isolation_level=None)
    assert migrate(conn) == 0
    assert migrate(conn) == SCHEMA_VERSION
    conn.close()


def test_a_v3_store_gets_uids_a_store_id_and_legacy_identities(tmp: Path) -> None:
    """Migration 4: each hazard a UUIDv7 of its first_seen, the store a random id once, typed names
    become legacy:<name> ("sentinel" the agent), and earlier outbox keys are left as they were."""
    from sentinel.core.ids import uuid7_time

    path = tmp / "hazards.db"
    conn = sqlite3.connect(path, isolation_level=None)
    for migration in MIGRATIONS[:3]:
        assert isinstance(migration, str)
        for statement in _statements(migration):
            conn.execute(statement)
    conn.execute(
        "INSERT INTO hazards (fingerprint, rule, category, severity, state, title, subject, terminal, "
        "first_seen, last_seen, owner, updated_at, resolved_by, resolved_at) VALUES ('f', 'old', "
        "'stability', 'minor', 'resolved', 'from v3', '/', 't', 1700000000.5, 1, 'it', 1, 'alice', 2)"
    )
    conn.execute(
        "INSERT INTO rectification (hazard_id, seq, kind, text, done_by, done_at) "
        "VALUES (1, 1, 'short_term', 'x', 'bob', 2)"
    )
    for at, actor, action, state in ((1, "sentinel", "raise", "open"), (2, "alice", "resolve", "resolved")):
        conn.execute(
            "INSERT INTO history (hazard_id, at, actor, action, to_state) VALUES (1, ?, ?, ?, ?)",
            (at, actor, action, state),
        )
    conn.execute(
        "INSERT INTO outbox (hazard_id, history_id, sink, transition, payload, idempotency_key, created_at, "
        "next_attempt_at) VALUES (1, 2, 'hook', 'resolved', '{}', 'sentinel-t-1-2', 2, 2)"
    )
    conn.execute("PRAGMA user_version = 3")
    conn.close()
    clock = FakeClock()
    store = HazardStore(path, config=HazardsConfig(), terminal="t", branch="b", clock=clock)
    try:
        store_id = store.store_id
        record = store.get(1)
        assert record is not None and record.uid == store.get(record.uid).uid  # type: ignore[union-attr]
        assert uuid7_time(record.uid) == 1700000000.5
        assert (record.resolved_by, record.resolved_by_id) == ("alice", "legacy:alice")
        assert record.rectification[0].done_by_id == "legacy:bob"
        assert [(h.actor, h.identity.id if h.identity else None) for h in record.history] == [
            ("sentinel", "agent"),
            ("alice", "legacy:alice"),
            ("sentinel", "agent"),  # migration 5's note: the hazard as found, chained
        ]
        assert "trail chained (schema 7) with the hazard resolved as found" in record.history[-1].note
        verdict = store.verify()
        assert verdict.ok, verdict.breaks
        assert verdict.rows == 4  # genesis, the two old rows, the note
        assert [r["idempotency_key"] for r in store._db.read("SELECT idempotency_key FROM outbox")] == [
            "sentinel-t-1-2"
        ]
    finally:
        store.close()
    again = HazardStore(path, config=HazardsConfig(), terminal="t", branch="b", clock=clock)
    try:
        assert again.store_id == store_id  # made once
    finally:
        again.close()
