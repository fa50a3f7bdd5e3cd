"""Fixtures for hazard store tests: a real SQLite file in a temporary directory."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from sentinel import __version__
from sentinel.core.clock import Clock
from sentinel.core.model import Category, Finding, Severity, freeze_fields
from sentinel.hazards.config import HazardsConfig
from sentinel.hazards.store import HazardStore
from sentinel.testing import FakeClock
from sentinel.tickets.ticketing import SinkSelector, Ticketing


@pytest.fixture
def make_store(tmp_path: Path, clock: FakeClock) -> Iterator[Callable[..., HazardStore]]:
    """Build stores on one file; all are closed at the end."""
    stores: list[HazardStore] = []

    def make(config: HazardsConfig | None = None, *, sinks_for: SinkSelector | None = None) -> HazardStore:
        ticketer = None
        if sinks_for is not None:
            ticketer = Ticketing(terminal="t1", branch="0101", agent_version=__version__, sinks_for=sinks_for)
        store = HazardStore(
            tmp_path / "hazards.db",
            config=config or HazardsConfig(),
            terminal="t1",
            branch="0101",
            clock=clock,
            ticketer=ticketer,
        )
        stores.append(store)
        return store

    yield make
    for store in stores:
        store.close()


@pytest.fixture
def store(make_store: Callable[..., HazardStore]) -> HazardStore:
    """A store with default settings."""
    return make_store()


def finding(
    clock: Clock,
    *,
    rule: str = "disk",
    subject: str = "/",
    state: str = "firing",
    severity: Severity = Severity.MAJOR,
    category: Category = Category.TERMINAL_EQUIPMENT,
    auto_resolve: bool = True,
    rectification: tuple[str, ...] = ("free space on /", "check log rotation"),
    **evidence: Any,
) -> Finding:
    """A finding at the fake clock's current time."""
    return Finding(
        rule=rule,
        subject=subject,
        state=state,
        severity=severity,
        category=category,  # type: ignore[arg-type]
        title=f"{rule} on {subject}",
        time=clock.time(),
        evidence=freeze_fields(evidence),
        rectification=rectification,
        auto_resolve=auto_resolve,
    )
