"""How each collector is doing (`sentinel_collector_*`), and the samples they last reported."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping

from sentinel.core.model import MetricSpec, Sample
from sentinel.core.status import AgentStatus
from sentinel.exposition.families import SpecCollector

METRICS = (
    MetricSpec(
        "sentinel_collector_up",
        "gauge",
        "1 when the collector's last run succeeded and it is not hung.",
        ("collector",),
    ),
    MetricSpec(
        "sentinel_collector_duration_seconds",
        "gauge",
        "Duration of the collector's last run.",
        ("collector",),
    ),
    MetricSpec("sentinel_collector_errors", "counter", "Failed collector runs.", ("collector",)),
    MetricSpec(
        "sentinel_collector_last_run_timestamp_seconds",
        "gauge",
        "When the collector last finished a run.",
        ("collector",),
    ),
)


def collector_health(status: AgentStatus) -> SpecCollector:
    """Up, last duration, errors and last run of every registered collector."""

    def samples() -> Iterator[Sample]:
        rows = status.collectors()
        for c in rows:
            yield Sample.of("sentinel_collector_up", 1 if status.is_up(c) else 0, collector=c.name)
        for c in rows:
            yield Sample.of("sentinel_collector_duration_seconds", c.last_duration, collector=c.name)
        for c in rows:
            yield Sample.of("sentinel_collector_errors", c.errors, collector=c.name)
        for c in rows:
            if c.last_run_at is not None:
                yield Sample.of(
                    "sentinel_collector_last_run_timestamp_seconds", c.last_run_at, collector=c.name
                )

    return SpecCollector.fixed("collectors", METRICS, samples)


def collector_samples(
    status: AgentStatus,
    specs: Callable[[], Mapping[str, MetricSpec]],
    streaming: Callable[[], Iterable[Sample]],
) -> SpecCollector:
    """What the collectors observed: the latest batch of each polled one, and the streaming
    ones' gauges read now; typed by the specs the collectors declare."""

    def samples() -> Iterator[Sample]:
        for batch in status.latest_samples().values():
            yield from batch
        yield from streaming()

    return SpecCollector("samples", lambda: specs().values(), samples, every_family=False)
