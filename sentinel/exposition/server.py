"""The /metrics endpoint: prometheus_client's WSGI app on the configured address (loopback by
default), with TLS handshakes in the request's own thread. Every family is built when Prometheus
scrapes, from snapshots; nothing here is updated from many threads. Label values are bounded
(collector, state, severity, category, mountpoint, ...); the one exception, the open-hazard info
series, is capped by `open_hazards_info_limit`.
"""

from __future__ import annotations

import errno
import socket
import ssl
import threading
from collections.abc import Sequence
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import CollectorRegistry, GCCollector, PlatformCollector, ProcessCollector
from prometheus_client.exposition import make_wsgi_app

from sentinel.config.sections import MetricsConfig
from sentinel.exposition.families import SpecCollector


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
    """The HTTP(S) endpoint serving a registry of Sentinel's collectors and the process metrics."""

    def __init__(self, config: MetricsConfig, collectors: Sequence[SpecCollector]) -> None:
        self.config = config
        self.registry = CollectorRegistry(auto_describe=False)
        for collector in collectors:
            self.register(collector)
        ProcessCollector(registry=self.registry)
        PlatformCollector(registry=self.registry)
        GCCollector(registry=self.registry)
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    def register(self, collector: SpecCollector) -> None:
        """Serve one more concern; ValueError if one of its names is already served."""
        self.registry.register(collector)

    def start(self) -> tuple[str, int]:
        """Bind and serve; returns the bound (host, port). Raises OSError if it cannot bind."""
        cfg = self.config
        family = socket.AF_INET6 if ":" in cfg.host else socket.AF_INET

        class Server(_Server):
            address_family = family

        try:
            server = make_server(
                cfg.host, cfg.port, make_wsgi_app(self.registry), Server, handler_class=_QuietHandler
            )
        except OSError as exc:  # "[Errno 98] Address already in use" alone does not say which
            where = f"[{cfg.host}]:{cfg.port}" if ":" in cfg.host else f"{cfg.host}:{cfg.port}"
            reason = exc.strerror or str(exc)
            hint = (
                " (another agent or program listens there; see [metrics] listen)"
                if exc.errno == errno.EADDRINUSE
                else ""
            )
            raise OSError(exc.errno, f"cannot listen on {where} for /metrics: {reason}{hint}") from exc
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
