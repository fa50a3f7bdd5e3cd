"""The agent's trail watch: verification on its own connection, one hazard per set of breaks."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from sentinel.agent.trail import RULE, TrailWatch
from sentinel.core.model import Category, Finding, Severity
from sentinel.hazards.config import HazardsConfig
from sentinel.hazards.lifecycle import Action
from sentinel.hazards.store import HazardStore
from sentinel.testing import FakeClock, wait_until
from tests.hazards.conftest import finding
from tests.support.people import who


def _store(path: Path, clock: FakeClock) -> None:
    store = HazardStore(path, config=HazardsConfig(), terminal="t", branch="b", clock=clock)
    try:
        store.apply(finding(clock))
        store.act(1, Action.ACK, actor=who("alice"), note="seen")
    finally:
        store.close()


def _edit(path: Path, statement: str) -> None:
    conn = sqlite3.connect(path)
    conn.execute(statement)
    conn.commit()
    conn.close()


def test_intact_then_broken_then_broken_more(tmp: Path) -> None:
    """Intact: no finding, verified 1. A break: one critical data_security finding naming the row;
    the same break again: none; another break: one more (the set changed)."""
    clock, path = FakeClock(), tmp / "hazards.db"
    _store(path, clock)
    submitted: list[list[Finding]] = []
    watch = TrailWatch(path, interval=3600, submit=submitted.append, clock=clock)
    assert watch.check().ok and submitted == []
    values = {s.name: s.value for s in watch.samples()}
    assert values["sentinel_audit_chain_verified"] == 1 and values["sentinel_audit_chain_breaks"] == 0
    _edit(path, "UPDATE history SET note = 'nothing' WHERE action = 'ack'")
    assert not watch.check().ok
    watch.check()
    assert len(submitted) == 1
    (raised,) = submitted[0]
    assert (raised.rule, raised.severity, raised.category, raised.auto_resolve) == (
        RULE,
        Severity.CRITICAL,
        Category.DATA_SECURITY,
        False,
    )
    assert "row 3 (hazard #1, history): changed after it was written" in raised.title
    assert raised.evidence_map["first_row"] == 3
    _edit(path, "UPDATE hazards SET owner = 'nobody'")
    watch.check()
    assert len(submitted) == 2
    assert {s.name: s.value for s in watch.samples()}["sentinel_audit_chain_verified"] == 0


def test_the_watch_runs_at_start_and_stops(tmp: Path) -> None:
    """start() verifies at once on its thread; stop() joins it."""
    clock, path = FakeClock(), tmp / "hazards.db"
    _store(path, clock)
    watch = TrailWatch(path, interval=3600, submit=lambda f: None, clock=clock)
    watch.start()
    try:
        wait_until(lambda: watch.last is not None, timeout=20)
    finally:
        watch.stop()
    assert watch.last is not None and watch.last.ok
    assert watch._thread is not None and not watch._thread.is_alive()
