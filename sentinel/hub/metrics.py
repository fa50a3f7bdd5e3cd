"""/metrics for the hub, built at scrape time (DESIGN §1), with bounded labels only.

Process-local (each replica is scraped on its own; sum them in PromQL):

    sentinel_hub_tickets_received_total{result="accepted"|"duplicate"}   ingest rate = rate(...)
    sentinel_hub_refused_total{reason}          refused deliveries and agent requests (REFUSAL_REASONS)
    sentinel_hub_ingest_batches_total           group commits
    sentinel_hub_ingest_lag_seconds             histogram: terminal transition -> hub commit

From the database (the same on every replica):

    sentinel_hub_terminals{state="enrolled"|"silent"}    silent: quiet for longer than its interval
    sentinel_hub_terminal_lag_seconds{terminal}          the 20 terminals with the largest last lag
                                                         (capped: terminal names are not a free label)
    sentinel_hub_terminal_lag_seconds_max                the largest over all terminals
    sentinel_hub_actions{state="pending"|"applied"|"refused"}
    sentinel_hub_actions_oldest_pending_seconds
    sentinel_hub_database_up                             1 when the last scrape could read it
    sentinel_hub_info{version, database}
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import sqlalchemy as sa
import structlog
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    InfoMetricFamily,
    Metric,
)
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from sentinel import __version__
from sentinel.hub.ingest import IngestStats
from sentinel.hub.schema import enrolments, terminals

if TYPE_CHECKING:
    from sentinel.hub.hub import Hub

log = structlog.get_logger("sentinel.hub")
TOP_LAGGING = 20
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class HubCollector:
    """Reads the ingest counters and the database when Prometheus scrapes."""

    def __init__(self, hub: Hub) -> None:
        self.hub = hub

    def describe(self) -> list[Metric]:
        """Nothing up front (no collect() at registration)."""
        return []

    def collect(self) -> Iterator[Metric]:
        """Every hub series."""
        yield from _ingest_metrics(self.hub.stats)
        info = InfoMetricFamily("sentinel_hub", "The hub's version and database kind")
        info.add_metric([], {"version": __version__, "database": self.hub.db.dialect})
        yield info
        up = GaugeMetricFamily("sentinel_hub_database_up", "1 when the scrape could read the database")
        try:
            families = list(self._database_metrics())
        except sa.exc.SQLAlchemyError as exc:
            log.error("hub_metrics_database_failed", error=type(exc).__name__)
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        yield from families

    def _database_metrics(self) -> Iterator[Metric]:
        hub = self.hub
        now = hub.clock.time()
        with hub.db.read() as c:
            enrolled = set(
                c.execute(
                    sa.select(enrolments.c.terminal)
                    .where(
                        enrolments.c.revoked_at.is_(None),
                        sa.or_(enrolments.c.expires_at.is_(None), enrolments.c.expires_at > now),
                    )
                    .distinct()
                ).scalars()
            )
            rows = c.execute(
                sa.select(
                    terminals.c.name, terminals.c.last_seen_at, terminals.c.silent_after, terminals.c.last_lag
                )
            ).all()
        silent = sum(
            1
            for r in rows
            if r.name in enrolled and (r.last_seen_at is None or now - r.last_seen_at > r.silent_after)
        )
        count = GaugeMetricFamily(
            "sentinel_hub_terminals",
            "Enrolled terminals, and those silent for longer than their interval",
            labels=["state"],
        )
        count.add_metric(["enrolled"], len(enrolled))
        count.add_metric(["silent"], silent)
        yield count
        lagging = sorted((r for r in rows if r.last_lag is not None), key=lambda r: -float(r.last_lag))
        lag = GaugeMetricFamily(
            "sentinel_hub_terminal_lag_seconds",
            f"Last ingest lag of the {TOP_LAGGING} most lagging terminals",
            labels=["terminal"],
        )
        for r in lagging[:TOP_LAGGING]:
            lag.add_metric([r.name], float(r.last_lag))
        yield lag
        worst = GaugeMetricFamily(
            "sentinel_hub_terminal_lag_seconds_max", "The largest last ingest lag of any terminal"
        )
        worst.add_metric([], float(lagging[0].last_lag) if lagging else 0.0)
        yield worst
        depth = hub.store.queue_depth()
        queue = GaugeMetricFamily(
            "sentinel_hub_actions", "Actions queued for terminals, by state", labels=["state"]
        )
        for state in ("pending", "applied", "refused"):
            queue.add_metric([state], depth.get(state, 0))
        yield queue
        oldest = GaugeMetricFamily(
            "sentinel_hub_actions_oldest_pending_seconds",
            "Age of the oldest action no terminal has confirmed yet",
        )
        oldest.add_metric([], hub.store.oldest_pending_age())
        yield oldest


def _ingest_metrics(stats: IngestStats) -> Iterator[Metric]:
    snap = stats.snapshot()
    received = CounterMetricFamily(
        "sentinel_hub_tickets_received", "Tickets this hub process committed", labels=["result"]
    )
    received.add_metric(["accepted"], snap["accepted"])
    received.add_metric(["duplicate"], snap["duplicates"])
    yield received
    refused = CounterMetricFamily("sentinel_hub_refused", "Requests refused, by reason", labels=["reason"])
    for reason, value in sorted(snap["refused"].items()):
        refused.add_metric([reason], value)
    yield refused
    batches = CounterMetricFamily("sentinel_hub_ingest_batches", "Group commits of tickets")
    batches.add_metric([], snap["batches"])
    yield batches
    buckets = []
    running = 0
    for bound, n in zip((*IngestStats.LAG_BUCKETS, float("inf")), snap["lag_counts"], strict=True):
        running += n
        buckets.append(("+Inf" if bound == float("inf") else f"{bound:g}", running))
    lag = HistogramMetricFamily(
        "sentinel_hub_ingest_lag_seconds",
        "From the transition on the terminal to its commit in the hub",
        buckets=buckets,
        sum_value=snap["lag_sum"],
    )
    yield lag


def registry(hub: Hub) -> CollectorRegistry:
    """The hub's own registry (no process-global state)."""
    reg = CollectorRegistry(auto_describe=False)
    reg.register(HubCollector(hub))
    return reg


async def metrics_endpoint(request: Request) -> Response:
    """GET /metrics."""
    hub: Hub = request.app.state.hub
    reg = getattr(request.app.state, "metrics_registry", None)
    if reg is None:
        reg = request.app.state.metrics_registry = registry(hub)
    body = await run_in_threadpool(generate_latest, reg)
    return Response(body, media_type=CONTENT_TYPE)
