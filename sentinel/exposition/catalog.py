"""The concerns every agent exports, each its own collector (registered separately)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping

from sentinel.core.model import MetricSpec, Sample
from sentinel.core.status import AgentStatus
from sentinel.exposition.agent import agent_collector
from sentinel.exposition.collectors import collector_health, collector_samples
from sentinel.exposition.families import SpecCollector
from sentinel.exposition.hazards import hazard_collector
from sentinel.hazards.store import HazardStore


def agent_collectors(
    *,
    status: AgentStatus,
    store: HazardStore,
    specs: Callable[[], Mapping[str, MetricSpec]],
    streaming: Callable[[], Iterable[Sample]] = lambda: (),
    terminal: str,
    branch: str,
    open_info_limit: int = 50,
) -> list[SpecCollector]:
    """The agent itself, its collectors' health, the hazard store, and what the collectors saw."""
    return [
        agent_collector(status, terminal=terminal, branch=branch),
        collector_health(status),
        hazard_collector(store, open_info_limit=open_info_limit),
        collector_samples(status, specs, streaming),
    ]
