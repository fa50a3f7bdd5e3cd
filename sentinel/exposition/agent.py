"""The agent's own families: build info, liveness, config reloads, the queue and the writer."""

from __future__ import annotations

from collections.abc import Iterator

from sentinel import __version__
from sentinel.core.model import MetricSpec, Sample
from sentinel.core.status import AgentStatus
from sentinel.exposition.families import SpecCollector

METRICS = (
    MetricSpec("sentinel_build", "info", "Sentinel version and identity.", ("version", "terminal", "branch")),
    MetricSpec("sentinel_up", "gauge", "1 while the agent runs."),
    MetricSpec("sentinel_start_time_seconds", "gauge", "When the agent started."),
    MetricSpec("sentinel_config_last_reload_successful", "gauge", "1 if the last config (re)load succeeded."),
    MetricSpec(
        "sentinel_config_last_reload_success_timestamp_seconds",
        "gauge",
        "When the config was last loaded successfully.",
    ),
    MetricSpec("sentinel_queue_depth", "gauge", "Batches waiting for the writer."),
    MetricSpec("sentinel_queue_capacity", "gauge", "Size of the pipeline queue."),
    MetricSpec(
        "sentinel_queue_dropped", "counter", "Batches dropped because the queue was full.", ("collector",)
    ),
    MetricSpec("sentinel_findings", "counter", "Findings applied to the hazard store."),
    MetricSpec("sentinel_store_write_errors", "counter", "Failed writes to the hazard store."),
)


def agent_collector(status: AgentStatus, *, terminal: str, branch: str) -> SpecCollector:
    """The agent's families, read from its status board at scrape time."""

    def samples() -> Iterator[Sample]:
        yield Sample.of("sentinel_build", 1, version=__version__, terminal=terminal, branch=branch)
        yield Sample.of("sentinel_up", 1)
        yield Sample.of("sentinel_start_time_seconds", status.started_at)
        c = status.counters()
        yield Sample.of("sentinel_config_last_reload_successful", 1 if c["last_reload_successful"] else 0)
        yield Sample.of("sentinel_config_last_reload_success_timestamp_seconds", c["last_reload_success_at"])
        yield Sample.of("sentinel_queue_depth", status.queue_depth())
        yield Sample.of("sentinel_queue_capacity", status.queue_capacity)
        # every collector gets a series (0 until a drop), so rate() and alerts see it from the start
        names = {s.name for s in status.collectors()} | set(c["dropped"])
        for name in sorted(names):
            yield Sample.of("sentinel_queue_dropped", c["dropped"].get(name, 0), collector=name)
        yield Sample.of("sentinel_findings", c["findings"])
        yield Sample.of("sentinel_store_write_errors", c["store_write_errors"])

    return SpecCollector.fixed("agent", METRICS, samples)
