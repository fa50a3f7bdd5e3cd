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
