"""The shipped integrity rules applied to events through the real rule engine and SQLite store."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from sentinel.config.loader import load
from sentinel.core.model import Event
from sentinel.hazards.config import HazardsConfig
from sentinel.hazards.store import HazardStore
from sentinel.rules.engine import RuleEngine
from sentinel.testing import FakeClock
from tests.support.records import as_json

ROOT = Path(__file__).resolve().parents[3]


def shipped_rules() -> tuple:  # type: ignore[type-arg]
    """The enabled rules of config/sentinel.toml (with rules.d)."""
    return load(ROOT / "config" / "sentinel.toml").enabled_rules


def hazards_for(events: Iterable[Event], db: Path) -> list[dict]:  # type: ignore[type-arg]
    """Hazard records the shipped rules raise for `events` (a fresh store at `db`)."""
    clock = FakeClock()
    engine = RuleEngine(shipped_rules(), clock=clock, terminal="t1")
    store = HazardStore(db, config=HazardsConfig(), terminal="t1", branch="b", clock=clock)
    try:
        findings = [f for e in events for f in engine.on_event(e)]
        for i in range(0, len(findings), 256):
            store.apply_many(findings[i : i + 256])
        return as_json(store.records(full=True))
    finally:
        store.close()
