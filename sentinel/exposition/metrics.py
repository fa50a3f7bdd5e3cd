"""/metrics: a scrape-time collector over the agent's status, the hazard store and the latest
samples, served by prometheus_client on the configured address (loopback by default).

Nothing here is updated from many threads: every family is built when Prometheus scrapes, from
snapshots. Label values are bounded (collector, state, severity, category, mountpoint, ...); the
one exception, the open-hazard info series, is capped by `open_hazards_info_limit`.
"""

from __future__ import annotations

import socket
import sqlite3
import ssl
import threading
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Sequence
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import structlog
from prometheus_client import CollectorRegistry, GCCollector, PlatformCollector, ProcessCollector
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, InfoMetricFamily, Metric
from prometheus_client.exposition import make_wsgi_app

from sentinel import __version__
from sentinel.agent.status import AgentStatus
from sentinel.config.loader import MetricsConfig
from sentinel.core.model import Category, MetricSpec, Sample, Severity
from sentinel.hazards.lifecycle import State
from sentinel.hazards.store import HazardStore

log = structlog.get_logger("sentinel.metrics")


class SentinelCollector:
    """The prometheus_client custom collector for everything Sentinel exports."""

    def __init__(
        self,
        *,
        status: AgentStatus,
        store: HazardStore,
        specs: Callable[[], dict[str, MetricSpec]],
        extra: Callable[[], Iterable[Sample]] = lambda: (),
        terminal: str,
        branch: str,
        open_info_limit: int = 50,
        families: Sequence[Callable[[], Iterable[Metric]]] = (),
    ) -> None:
        self._status = status
        self._store = store
        self._specs = specs
        self._extra = extra
        self._terminal = terminal
        self._branch = branch
        self._open_info_limit = open_info_limit
        self._families = list(families)
        self._lock = threading.Lock()  # the store's read connection is one per collector

    def add_families(self, fn: Callable[[], Iterable[Metric]]) -> None:
        """Let a component (the ticket dispatcher, the FIM) contribute its own families."""
        self._families.append(fn)

    def describe(self) -> Iterable[Metric]:
        """Nothing: registering must not call collect() (it reads the store)."""
        return []

    def collect(self) -> Iterator[Metric]:
        """Build every family now."""
        yield from self._agent()
        yield from self._collectors()
        with self._lock:
            yield from self._hazards()
        yield from self._samples()
        for fn in self._families:
            try:
                yield from fn()
            except Exception:  # one broken family must not break the scrape
                log.exception("metric_family_failed")

    def _agent(self) -> Iterator[Metric]:
        info = InfoMetricFamily("sentinel_build", "Sentinel version and identity.")
        info.add_metric([], {"version": __version__, "terminal": self._terminal, "branch": self._branch})
        yield info
        yield GaugeMetricFamily("sentinel_up", "1 while the agent runs.", value=1)
        yield GaugeMetricFamily(
            "sentinel_start_time_seconds", "When the agent started.", value=self._status.started_at
        )
        c = self._status.counters()
        yield GaugeMetricFamily(
            "sentinel_config_last_reload_successful",
            "1 if the last config (re)load succeeded.",
            value=1 if c["last_reload_successful"] else 0,
        )
        yield GaugeMetricFamily(
            "sentinel_config_last_reload_success_timestamp_seconds",
            "When the config was last loaded successfully.",
            value=c["last_reload_success_at"],
        )
        yield GaugeMetricFamily(
            "sentinel_queue_depth",
            "Batches waiting for the writer.",
            value=self._status.queue_depth(),
        )
        yield GaugeMetricFamily(
            "sentinel_queue_capacity",
            "Size of the pipeline queue.",
            value=self._status.queue_capacity,
        )
        dropped = CounterMetricFamily(
            "sentinel_queue_dropped",
            "Batches dropped because the queue was full.",
            labels=["collector"],
        )
        # every collector gets a series (0 until a drop), so rate() and alerts see it from the start
        names = {s.name for s in self._status.collectors()} | set(c["dropped"])
        for name in sorted(names):
            dropped.add_metric([name], c["dropped"].get(name, 0))
        yield dropped
        yield CounterMetricFamily(
            "sentinel_findings", "Findings applied to the hazard store.", value=c["findings"]
        )
        yield CounterMetricFamily(
            "sentinel_store_write_errors",
            "Failed writes to the hazard store.",
            value=c["store_write_errors"],
        )

    def _collectors(self) -> Iterator[Metric]:
        up = GaugeMetricFamily(
            "sentinel_collector_up",
            "1 when the collector's last run succeeded and it is not hung.",
            labels=["collector"],
        )
        duration = GaugeMetricFamily(
            "sentinel_collector_duration_seconds",
            "Duration of the collector's last run.",
            labels=["collector"],
        )
        errors = CounterMetricFamily(
            "sentinel_collector_errors", "Failed collector runs.", labels=["collector"]
        )
        last = GaugeMetricFamily(
            "sentinel_collector_last_run_timestamp_seconds",
            "When the collector last finished a run.",
            labels=["collector"],
        )
        for c in self._status.collectors():
            up.add_metric([c.name], 1 if self._status.is_up(c) else 0)
            duration.add_metric([c.name], c.last_duration)
            errors.add_metric([c.name], c.errors)
            if c.last_run_at is not None:
                last.add_metric([c.name], c.last_run_at)
        yield from (up, duration, errors, last)

    def _hazards(self) -> Iterator[Metric]:
        try:
            counts = self._store.state_counts()
            overdue = self._store.overdue_counts()
            raised = self._store.counter("hazards_raised_total")
            open_rows = self._store.open_hazards(self._open_info_limit)
        except sqlite3.Error as exc:
            log.error("metrics_store_read_failed", error=str(exc))
            return
        hazards = GaugeMetricFamily(
            "sentinel_hazards",
            "Hazard records by state, severity and category.",
            labels=["state", "severity", "category"],
        )
        table = {(s, v, c): n for s, v, c, n in counts}
        for state in State:
            for severity in Severity:
                for category in Category:
                    key = (state.value, severity.value, category.value)
                    hazards.add_metric(list(key), table.get(key, 0))
        yield hazards
        late = GaugeMetricFamily(
            "sentinel_hazards_overdue", "Active hazards past their deadline.", labels=["severity"]
        )
        for severity in Severity:
            late.add_metric([severity.value], overdue.get(severity.value, 0))
        yield late
        total = CounterMetricFamily(
            "sentinel_hazards_raised",
            "Hazards raised (or escalated in severity).",
            labels=["category", "severity"],
        )
        by_kind = {(lab.get("category", ""), lab.get("severity", "")): value for lab, value in raised}
        for category in Category:  # zeros included: increase() needs the series before the first hazard
            for severity in Severity:
                total.add_metric(
                    [category.value, severity.value], by_kind.get((category.value, severity.value), 0)
                )
        yield total
        info = GaugeMetricFamily(
            "sentinel_hazard_open_info",
            f"One series per active hazard (the {self._open_info_limit} most severe), for listing.",
            labels=["hazard_id", "rule", "severity", "category", "state", "drill"],
        )
        for row in open_rows:
            info.add_metric(
                [
                    str(row["id"]),
                    row["rule"],
                    row["severity"],
                    row["category"],
                    row["state"],
                    "true" if row["drill"] else "false",
                ],
                1,
            )
        yield info

    def _samples(self) -> Iterator[Metric]:
        specs = self._specs()
        grouped: dict[str, list[Sample]] = defaultdict(list)
        for samples in self._status.latest_samples().values():
            for sample in samples:
                grouped[sample.name].append(sample)
        for sample in self._extra():
            grouped[sample.name].append(sample)
        for name in sorted(grouped):
            spec = specs.get(name)
            if spec is None:
                log.warning("sample_without_spec", metric=name)
                continue
            yield _family(spec, grouped[name])


def _family(spec: MetricSpec, samples: list[Sample]) -> Metric:
    family: CounterMetricFamily | GaugeMetricFamily
    if spec.type == "counter":
        family = CounterMetricFamily(spec.name, spec.help, labels=list(spec.labels))
    else:
        family = GaugeMetricFamily(spec.name, spec.help, labels=list(spec.labels))
    seen: set[tuple[str, ...]] = set()
    for sample in samples:
        values = tuple(sample.label(k) for k in spec.labels)
        if values in seen:  # a duplicate series would make the whole exposition invalid
            continue
        seen.add(values)
        family.add_metric(list(values), sample.value)
    return family


class _QuietHandler(WSGIRequestHandler):
    """No access log lines; a read timeout so a stalled client only holds its own thread briefly."""

    timeout = 30

    def log_message(self, format: str, *args: Any) -> None:
        """Scrapes are not worth a log line each."""


class _Server(ThreadingMixIn, WSGIServer):
    """Thread per request. With TLS, the handshake happens in the request's own thread.

    prometheus_client wraps the *listening* socket, so the handshake runs inside accept() on the
    serving thread: one client that connects and says nothing stalls every scrape. Here the
    accepted socket is wrapped in its worker thread, with a handshake timeout.
    """

    daemon_threads = True
    tls_context: ssl.SSLContext | None = None
    handshake_timeout = 10.0

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        """Handshake (if TLS) then serve, all in this request's thread."""
        if self.tls_context is not None:
            try:
                request.settimeout(self.handshake_timeout)
                request = self.tls_context.wrap_socket(request, server_side=True)
            except (ssl.SSLError, OSError):
                self.shutdown_request(request)
                return
        super().process_request_thread(request, client_address)


def _tls_context(config: MetricsConfig) -> ssl.SSLContext | None:
    if not config.tls_cert_file or not config.tls_key_file:
        return None
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(str(config.tls_cert_file), str(config.tls_key_file))
    if config.client_ca_file:
        context.verify_mode = ssl.CERT_REQUIRED
        context.load_verify_locations(cafile=str(config.client_ca_file))
    return context


class MetricsServer:
    """The HTTP(S) endpoint serving a registry with Sentinel's collector and process metrics."""

    def __init__(self, config: MetricsConfig, collector: SentinelCollector) -> None:
        self.config = config
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(collector)
        ProcessCollector(registry=self.registry)
        PlatformCollector(registry=self.registry)
        GCCollector(registry=self.registry)
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> tuple[str, int]:
        """Bind and serve; returns the bound (host, port). Raises OSError if it cannot bind."""
        cfg = self.config
        family = socket.AF_INET6 if ":" in cfg.host else socket.AF_INET

        class Server(_Server):
            address_family = family

        server = make_server(
            cfg.host, cfg.port, make_wsgi_app(self.registry), Server, handler_class=_QuietHandler
        )
        server.tls_context = _tls_context(cfg)
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, name="metrics-http", daemon=True)
        self._thread.start()
        host, port = server.server_address[:2]
        return str(host), int(port)

    def stop(self) -> None:
        """Stop serving and close the socket."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=2)
        self._server = self._thread = None
