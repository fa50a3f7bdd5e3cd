"""The scrape-time collector: hazard families, capped info series, declared sample families."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry, generate_latest

from sentinel.core.model import MetricSpec, Sample, Severity
from sentinel.core.status import AgentStatus
from sentinel.exposition.catalog import agent_collectors
from sentinel.hazards.config import HazardsConfig
from sentinel.hazards.store import HazardStore
from sentinel.testing import FakeClock
from tests.hazards.conftest import finding


@pytest.fixture
def make_store(tmp_path: Path, clock: FakeClock) -> Iterator[Callable[[], HazardStore]]:
    stores: list[HazardStore] = []

    def make() -> HazardStore:
        stores.append(
            HazardStore(tmp_path / "h.db", config=HazardsConfig(), terminal="t", branch="b", clock=clock)
        )
        return stores[-1]

    yield make
    for store in stores:
        store.close()


def render(store: HazardStore, status: AgentStatus, limit: int = 2) -> str:
    specs = {"sentinel_x_bytes": MetricSpec("sentinel_x_bytes", "gauge", "x", ("mountpoint",))}
    registry = CollectorRegistry(auto_describe=False)
    for collector in agent_collectors(
        status=status, store=store, specs=lambda: specs, terminal="t", branch="b", open_info_limit=limit
    ):
        registry.register(collector)
    return generate_latest(registry).decode()


def test_hazard_families_and_the_capped_info_series(
    make_store: Callable[..., HazardStore], clock: FakeClock
) -> None:
    """Counts by state, overdue by severity, raised totals, and at most `limit` info series, worst first."""
    store = make_store()
    store.apply(finding(clock, subject="a", severity=Severity.MINOR))
    store.apply(finding(clock, subject="b", severity=Severity.CRITICAL))
    store.apply(finding(clock, subject="c", severity=Severity.MAJOR))
    clock.advance(5 * 3600)
    text = render(store, AgentStatus(clock=clock))
    assert 'sentinel_hazards{category="terminal_equipment",severity="critical",state="open"} 1.0' in text
    assert 'sentinel_hazards{category="it_change",severity="info",state="closed"} 0.0' in text
    assert 'sentinel_hazards_overdue{severity="critical"} 1.0' in text
    assert 'sentinel_hazards_overdue{severity="major"} 0.0' in text
    assert 'sentinel_hazards_raised_total{category="terminal_equipment",severity="minor"} 1.0' in text
    info = [line for line in text.splitlines() if line.startswith("sentinel_hazard_open_info{")]
    assert len(info) == 2
    assert 'severity="critical"' in info[0] and 'severity="major"' in info[1]


def test_samples_are_exported_with_their_spec_and_deduplicated(
    make_store: Callable[..., HazardStore],
) -> None:
    """Declared samples become typed families; a duplicate series is dropped, not doubled."""
    status = AgentStatus()
    status.register("fs", "polled")
    samples = (
        Sample.of("sentinel_x_bytes", 5, mountpoint="/"),
        Sample.of("sentinel_x_bytes", 6, mountpoint="/"),
    )
    status.run_finished("fs", 0.01, samples)
    text = render(make_store(), status)
    assert "# TYPE sentinel_x_bytes gauge" in text
    assert text.count('sentinel_x_bytes{mountpoint="/"}') == 1
