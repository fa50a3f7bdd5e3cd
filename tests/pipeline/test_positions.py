"""A streaming source's read position is stored in the transaction that stores what it read."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path
from typing import Any

import pytest

from sentinel.core.model import Category, Event, Position, Severity, freeze_fields
from sentinel.core.status import AgentStatus
from sentinel.hazards.config import HazardsConfig
from sentinel.hazards.store import HazardStore
from sentinel.pipeline.writer import Batch, Pipeline
from sentinel.rules.config import RuleConfig
from sentinel.rules.engine import RuleEngine
from sentinel.testing import FakeClock

ROOT_LOGIN = RuleConfig(
    name="root_login",
    category=Category.CYBER_ATTACK,
    event="auth.root_login",
    group_by=("source",),
    severity=Severity.MAJOR,
)


def make(tmp: Path) -> tuple[Pipeline, HazardStore]:
    clock = FakeClock()
    store = HazardStore(tmp / "h.db", config=HazardsConfig(), terminal="t", branch="b", clock=clock)
    engine = RuleEngine([ROOT_LOGIN], clock=clock)
    return Pipeline(store=store, engine=engine, status=AgentStatus(clock=clock), clock=clock), store


def root_login(source: str) -> Event:
    return Event("auth", "root_login", source, 1_800_000_000.0, freeze_fields({"source": source}))


def batch(*items: Any) -> Batch:
    return Batch("auth", tuple(items), frozenset(), complete=False)


def test_position_is_stored_with_the_findings(tmp: Path) -> None:
    """After the batch: its hazard and its position, together."""
    pipeline, store = make(tmp)
    try:
        pipeline.process_now(batch(root_login("192.0.2.1"), Position("auth", '{"offset": 10}')))
        assert store.position("auth") == '{"offset": 10}'
        assert [r.subject for r in store.records()] == ["192.0.2.1"]
        pipeline.process_now(batch(Position("auth", '{"offset": 20}')))
        assert store.position("auth") == '{"offset": 20}'
    finally:
        store.close()


def test_a_failed_write_keeps_the_position_back_with_its_findings(
    tmp: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Disk full: neither the finding nor the position lands; on the retry both do, at once."""
    pipeline, store = make(tmp)
    real = store.apply_many
    calls: list[dict[str, str] | None] = []

    def failing_once(findings: Any, *, positions: Any = None) -> Any:
        calls.append(positions)
        if len(calls) == 1:
            raise sqlite3.OperationalError("database or disk is full")
        return real(findings, positions=positions)

    monkeypatch.setattr(store, "apply_many", failing_once)
    try:
        pipeline.process_now(batch(root_login("192.0.2.1"), Position("auth", '{"offset": 10}')))
        assert store.position("auth") is None and store.records() == []
        pipeline.apply_now([])  # the writer's retry
        assert store.position("auth") == '{"offset": 10}'
        assert len(store.records()) == 1
        assert calls[-1] == {"auth": '{"offset": 10}'}
    finally:
        store.close()


def test_a_store_without_a_position_answers_none(tmp: Path) -> None:
    """A source never stored (first start, or an older agent's store)."""
    _, store = make(tmp)
    try:
        assert store.position("auth") is None
    finally:
        store.close()


def test_drained_waits_for_what_was_queued_before(tmp: Path) -> None:
    """A reload's new collector reads the stored position only after its predecessor's batches."""
    pipeline, store = make(tmp)
    release = threading.Event()
    pipeline.start()
    try:
        pipeline.call_soon(lambda: release.wait(10))  # the writer is busy with something else
        pipeline.submit(batch(root_login("192.0.2.9"), Position("auth", '{"offset": 99}')))
        assert store.position("auth") is None  # queued, not stored yet
        assert not pipeline.drained(timeout=0.2)  # it does wait (and says so when it gives up)
        release.set()
        assert pipeline.drained(timeout=10)
        assert store.position("auth") == '{"offset": 99}'
    finally:
        pipeline.stop()
        store.close()
