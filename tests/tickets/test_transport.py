"""Sink transport over real sockets on 127.0.0.1: a forwarding proxy, mutual TLS with openssl-made
certificates, the per-sink concurrency limit and Retry-After, as the dispatcher applies them."""

from __future__ import annotations

import base64
import hashlib
import hmac
import http.client
import http.server
import select
import socket
import socketserver
import ssl
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from sentinel import __version__
from sentinel.core.clock import SYSTEM_CLOCK
from sentinel.core.settings import Duration
from sentinel.hazards.config import HazardsConfig
from sentinel.hazards.store import HazardStore
from sentinel.testing import wait_until
from sentinel.tickets.config import SinkConfig
from sentinel.tickets.dispatcher import RETRY_AFTER_LIMIT, Dispatcher
from sentinel.tickets.outbox import Outbox, OutboxRow
from sentinel.tickets.sinks.webhook import WebhookSink
from sentinel.tickets.ticketing import Ticketing
from tests.conftest import require_tool
from tests.hazards.conftest import finding
from tests.support.net import free_port
from tests.support.pki import make_test_pki

SECRET = b"transport-test-secret"
Answer = tuple[int, dict[str, str]]


# -- a receiver that verifies signatures itself (not with our signer) --------------------------


def standard_signature(msg_id: str, timestamp: str, body: bytes) -> str:
    """Standard Webhooks v1 signature, computed independently of sentinel.tickets.webhook."""
    mac = hmac.new(SECRET, f"{msg_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    return "v1," + base64.b64encode(mac).decode("ascii")


@dataclass(frozen=True)
class Hit:
    """One signed request the receiver answered."""

    headers: dict[str, str]  # names lower-cased
    body: bytes
    status: int
    at: float  # time.monotonic() on arrival
    client_cn: str | None  # the client certificate's common name, over mutual TLS


class Receiver:
    """A webhook receiver on 127.0.0.1, plain HTTP or (with `tls`) HTTPS.

    `answer(n)` gives the status and extra headers for the n-th signed request; `hold` keeps each
    request open that long (a slow receiver) so that concurrent deliveries overlap and are counted.
    """

    def __init__(
        self,
        *,
        tls: ssl.SSLContext | None = None,
        answer: Callable[[int], Answer] = lambda n: (200, {}),
        hold: float = 0.0,
    ) -> None:
        self.hits: list[Hit] = []
        self.bad_signatures = 0
        self.refused_handshakes = 0
        self.active = 0
        self.peak = 0
        self._answer = answer
        self._hold = hold
        self._cond = threading.Condition()
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            timeout = 10

            def handle(self) -> None:
                if isinstance(self.connection, ssl.SSLSocket):
                    try:
                        self.connection.do_handshake()
                    except OSError:  # e.g. no client certificate: refused before any request
                        receiver._count("refused_handshakes")
                        return
                super().handle()

            def do_POST(self) -> None:
                status, extra = receiver._serve(self)
                self.send_response(status)
                for name, value in extra.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                """Quiet."""

        class Server(http.server.ThreadingHTTPServer):
            daemon_threads = False  # server_close() joins every handler thread

            def handle_error(self, request: Any, client_address: Any) -> None:
                """Clients that hang up mid-request are expected here."""

        self._server = Server(("127.0.0.1", 0), Handler)
        if tls is not None:
            self._server.socket = tls.wrap_socket(
                self._server.socket, server_side=True, do_handshake_on_connect=False
            )
        self.port = int(self._server.server_address[1])
        scheme = "https" if tls is not None else "http"
        self.url = f"{scheme}://127.0.0.1:{self.port}/hook"
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), name="test-receiver")
        self._thread.start()

    def _count(self, attribute: str) -> None:
        with self._cond:
            setattr(self, attribute, getattr(self, attribute) + 1)
            self._cond.notify_all()

    def _serve(self, handler: http.server.BaseHTTPRequestHandler) -> Answer:
        body = handler.rfile.read(int(handler.headers.get("Content-Length", "0")))
        headers = {k.lower(): v for k, v in handler.headers.items()}
        signature = standard_signature(
            headers.get("webhook-id", ""), headers.get("webhook-timestamp", ""), body
        )
        if headers.get("webhook-signature") != signature:
            self._count("bad_signatures")
            return 401, {}
        with self._cond:
            self.active += 1
            self.peak = max(self.peak, self.active)
            status, extra = self._answer(len(self.hits))
        try:
            if self._hold:
                threading.Event().wait(self._hold)  # a slow receiver, not a test waiting
        finally:
            with self._cond:
                self.active -= 1
                self.hits.append(Hit(headers, body, status, time.monotonic(), _peer_cn(handler)))
                self._cond.notify_all()
        return status, extra

    def delivered(self) -> list[Hit]:
        """Requests answered with 2xx."""
        with self._cond:
            return [h for h in self.hits if 200 <= h.status < 300]

    def wait_for(self, predicate: Callable[[Receiver], bool], timeout: float = 20.0) -> None:
        """Block until predicate(self) holds."""
        with self._cond:
            if not self._cond.wait_for(lambda: predicate(self), timeout):
                raise TimeoutError(f"receiver: condition not met in {timeout}s; hits: {len(self.hits)}")

    def stop(self) -> None:
        """Stop serving and join every thread."""
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)


def _peer_cn(handler: http.server.BaseHTTPRequestHandler) -> str | None:
    if not isinstance(handler.connection, ssl.SSLSocket):
        return None
    cert = handler.connection.getpeercert()
    if not cert:
        return None
    return next((value for rdn in cert["subject"] for key, value in rdn if key == "commonName"), None)


# -- a forwarding proxy -------------------------------------------------------------------------


class ForwardProxy:
    """A tiny HTTP proxy on 127.0.0.1: absolute-form requests are forwarded, CONNECT is tunnelled.

    `seen` records (method, target, Proxy-Authorization) of every request; only 127.0.0.1 is reachable.
    """

    def __init__(self) -> None:
        self.seen: list[tuple[str, str, str | None]] = []
        self._lock = threading.Lock()
        proxy = self

        class Handler(socketserver.StreamRequestHandler):
            timeout = 10

            def handle(self) -> None:
                line = self.rfile.readline(65536).decode("latin-1").split()
                if len(line) != 3:
                    return
                method, target, _version = line
                headers = http.client.parse_headers(self.rfile)
                with proxy._lock:
                    proxy.seen.append((method, target, headers.get("Proxy-Authorization")))
                if method == "CONNECT":
                    proxy._tunnel(self, target)
                else:
                    proxy._forward(self, method, target, headers)

        class Server(socketserver.ThreadingTCPServer):
            allow_reuse_address = True
            daemon_threads = False  # server_close() joins every handler thread

        self._server = Server(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), name="test-proxy")
        self._thread.start()

    @staticmethod
    def _forward(
        handler: socketserver.StreamRequestHandler, method: str, target: str, headers: http.client.HTTPMessage
    ) -> None:
        url = urllib.parse.urlsplit(target)
        if url.hostname != "127.0.0.1" or url.port is None:
            handler.wfile.write(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            return
        body = handler.rfile.read(int(headers.get("Content-Length", "0")))
        hop_by_hop = {"proxy-authorization", "proxy-connection", "connection", "keep-alive"}
        forwarded = {k: v for k, v in headers.items() if k.lower() not in hop_by_hop}
        upstream = http.client.HTTPConnection(url.hostname, url.port, timeout=10)
        try:
            upstream.request(method, url.path or "/", body=body, headers=forwarded)
            response = upstream.getresponse()
            data = response.read()
        finally:
            upstream.close()
        lines = [f"HTTP/1.1 {response.status} {response.reason}"]
        lines += [
            f"{k}: {v}"
            for k, v in response.getheaders()
            if k.lower() not in {"connection", "content-length", "transfer-encoding"}
        ]
        lines += [f"Content-Length: {len(data)}", "Connection: close"]
        handler.wfile.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + data)

    @staticmethod
    def _tunnel(handler: socketserver.StreamRequestHandler, target: str) -> None:
        host, _, port = target.rpartition(":")
        if host != "127.0.0.1":
            handler.wfile.write(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n")
            return
        upstream = socket.create_connection((host, int(port)), timeout=10)
        try:
            handler.wfile.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
            client: socket.socket = handler.connection
            while True:
                readable, _, _ = select.select([client, upstream], [], [], 10)
                if not readable:
                    return
                for source in readable:
                    data = source.recv(65536)
                    if not data:
                        return
                    (upstream if source is client else client).sendall(data)
        finally:
            upstream.close()

    def stop(self) -> None:
        """Stop serving and join every thread."""
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)


# -- certificates -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A CA, a server certificate for 127.0.0.1 and a client certificate (openssl CLI)."""
    require_tool("openssl", "openssl")
    return make_test_pki(tmp_path_factory.mktemp("pki"))


def server_tls(pki: Path) -> ssl.SSLContext:
    """HTTPS that requires a client certificate signed by the test CA."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(pki / "server.pem", pki / "server.key")
    context.load_verify_locations(pki / "ca.pem")
    context.verify_mode = ssl.CERT_REQUIRED
    return context


# -- fixtures and helpers -----------------------------------------------------------------------


@pytest.fixture
def secret_file(tmp: Path) -> Path:
    path = tmp / "hook.secret"
    path.write_bytes(SECRET)
    return path


@pytest.fixture
def proxy() -> Iterator[ForwardProxy]:
    p = ForwardProxy()
    yield p
    p.stop()


@pytest.fixture
def receivers() -> Iterator[Callable[..., Receiver]]:
    """Start receivers; every one is stopped at the end."""
    started: list[Receiver] = []

    def start(**kwargs: Any) -> Receiver:
        started.append(Receiver(**kwargs))
        return started[-1]

    yield start
    for r in started:
        r.stop()


def hook(url: str, secret_file: Path, **settings: Any) -> SinkConfig:
    return SinkConfig(
        name="hook", type="webhook", url=url, secret_file=secret_file, timeout=Duration(5), **settings
    )


ROW = OutboxRow(
    id=1,
    hazard_id=1,
    sink="hook",
    transition="raised",
    payload='{"schema": "sentinel.ticket/1"}',
    key="sentinel-t1-1-1",
    created_at=0.0,
    attempts=0,
)


def send(config: SinkConfig) -> str:
    """One delivery attempt of ROW; its outcome kind and error."""
    sink = WebhookSink(config)
    try:
        outcome = sink.send(ROW)
    finally:
        sink.close()
    return f"{outcome.kind} {outcome.error}".strip()


# -- proxy --------------------------------------------------------------------------------------


def test_webhook_goes_through_the_configured_proxy(
    secret_file: Path, proxy: ForwardProxy, receivers: Callable[..., Receiver]
) -> None:
    """The POST reaches the receiver through the proxy, still signed, with the same webhook-id."""
    receiver = receivers()
    assert send(hook(receiver.url, secret_file, proxy=proxy.url)) == "delivered"
    assert proxy.seen == [("POST", receiver.url, None)]
    (hit,) = receiver.delivered()
    assert hit.headers["webhook-id"] == ROW.key and hit.body == ROW.payload.encode()


def test_proxy_credentials_go_to_the_proxy_only(
    secret_file: Path, proxy: ForwardProxy, receivers: Callable[..., Receiver]
) -> None:
    """user:password in the proxy URL becomes Proxy-Authorization, which the receiver never sees."""
    receiver = receivers()
    with_credentials = proxy.url.replace("http://", "http://tickets:s%40fe@")
    assert send(hook(receiver.url, secret_file, proxy=with_credentials)) == "delivered"
    expected = "Basic " + base64.b64encode(b"tickets:s@fe").decode("ascii")
    assert [auth for _, _, auth in proxy.seen] == [expected]
    (hit,) = receiver.delivered()
    assert "proxy-authorization" not in hit.headers


def test_no_proxy_in_the_environment_does_not_bypass_the_configured_proxy(
    secret_file: Path,
    proxy: ForwardProxy,
    receivers: Callable[..., Receiver],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Only the config decides: no_proxy=127.0.0.1 in the agent's environment changes nothing."""
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    receiver = receivers()
    assert send(hook(receiver.url, secret_file, proxy=proxy.url)) == "delivered"
    assert [method for method, _, _ in proxy.seen] == ["POST"]


def test_environment_proxy_is_ignored_without_a_proxy_setting(
    secret_file: Path,
    proxy: ForwardProxy,
    receivers: Callable[..., Receiver],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """http_proxy in the environment is not used: the sink connects directly."""
    monkeypatch.setenv("http_proxy", proxy.url)
    monkeypatch.setenv("HTTP_PROXY", proxy.url)
    monkeypatch.delenv("no_proxy", raising=False)
    monkeypatch.delenv("NO_PROXY", raising=False)
    receiver = receivers()
    assert send(hook(receiver.url, secret_file)) == "delivered"
    assert proxy.seen == []
    assert len(receiver.delivered()) == 1


def test_an_unreachable_proxy_is_a_retry_never_a_direct_delivery(
    secret_file: Path, receivers: Callable[..., Receiver]
) -> None:
    """With the proxy down the ticket waits; it is not sent around the proxy."""
    receiver = receivers()
    outcome = send(hook(receiver.url, secret_file, proxy=f"http://127.0.0.1:{free_port()}"))
    assert outcome.startswith("retry") and "refused" in outcome.lower()
    assert receiver.hits == []


# -- mutual TLS ---------------------------------------------------------------------------------


def test_mutual_tls_delivers_with_the_client_certificate(
    pki: Path, secret_file: Path, receivers: Callable[..., Receiver]
) -> None:
    """A receiver that requires a client certificate accepts ours and sees its name."""
    receiver = receivers(tls=server_tls(pki))
    config = hook(
        receiver.url,
        secret_file,
        ca_file=pki / "ca.pem",
        client_cert_file=pki / "client.pem",
        client_key_file=pki / "client.key",
    )
    assert send(config) == "delivered"
    (hit,) = receiver.delivered()
    assert hit.client_cn == "client" and hit.headers["webhook-id"] == ROW.key


def test_mutual_tls_without_a_client_certificate_is_refused_and_retried(
    pki: Path, secret_file: Path, receivers: Callable[..., Receiver]
) -> None:
    """No client certificate: the receiver refuses the handshake and the ticket waits for a retry."""
    receiver = receivers(tls=server_tls(pki))
    assert send(hook(receiver.url, secret_file, ca_file=pki / "ca.pem")).startswith("retry")
    receiver.wait_for(lambda r: r.refused_handshakes == 1)
    assert receiver.hits == []


def test_a_server_certificate_from_an_unknown_ca_is_not_trusted(
    pki: Path, secret_file: Path, receivers: Callable[..., Receiver]
) -> None:
    """Without ca_file the system CAs decide, and they do not know the test CA: retry, not delivered."""
    receiver = receivers(tls=server_tls(pki))
    config = hook(
        receiver.url, secret_file, client_cert_file=pki / "client.pem", client_key_file=pki / "client.key"
    )
    outcome = send(config)
    assert outcome.startswith("retry") and "CERTIFICATE_VERIFY_FAILED" in outcome
    assert receiver.hits == []


def test_mutual_tls_through_the_proxy_is_tunnelled(
    pki: Path, secret_file: Path, proxy: ForwardProxy, receivers: Callable[..., Receiver]
) -> None:
    """An https URL behind the proxy uses CONNECT; TLS (and the client certificate) runs end to end."""
    receiver = receivers(tls=server_tls(pki))
    config = hook(
        receiver.url,
        secret_file,
        proxy=proxy.url,
        ca_file=pki / "ca.pem",
        client_cert_file=pki / "client.pem",
        client_key_file=pki / "client.key",
    )
    assert send(config) == "delivered"
    assert proxy.seen == [("CONNECT", f"127.0.0.1:{receiver.port}", None)]
    (hit,) = receiver.delivered()
    assert hit.client_cn == "client"


# -- the dispatcher: concurrency and Retry-After ------------------------------------------------


def store_and_dispatcher(tmp: Path, sink: SinkConfig) -> tuple[HazardStore, Dispatcher]:
    store = HazardStore(
        tmp / "h.db",
        config=HazardsConfig(),
        terminal="t1",
        branch="0101",
        clock=SYSTEM_CLOCK,
        ticketer=Ticketing(
            terminal="t1",
            branch="0101",
            agent_version=__version__,
            sinks_for=lambda r, t: [sink.name] if sink.wants(r, t) else [],
        ),
    )
    return store, Dispatcher(tmp / "h.db", [sink], poll_interval=0.05, seed=1)


@pytest.mark.parametrize("concurrency", [1, 3])
def test_per_sink_concurrency_limit_is_honoured(
    tmp: Path, secret_file: Path, receivers: Callable[..., Receiver], concurrency: int
) -> None:
    """A slow receiver never sees more parallel deliveries than `concurrency`, and does see that many."""
    receiver = receivers(hold=0.25)
    sink = hook(receiver.url, secret_file, concurrency=concurrency)
    store, dispatcher = store_and_dispatcher(tmp, sink)
    try:
        for i in range(6):  # six hazards: six independent rows, all due at once
            store.apply(finding(SYSTEM_CLOCK, subject=f"/d{i}", rectification=()))
        dispatcher.start()
        receiver.wait_for(lambda r: len(r.delivered()) == 6)
        assert receiver.peak == concurrency
    finally:
        dispatcher.stop()
        store.close()


def test_retry_after_is_honoured_by_the_dispatcher(
    tmp: Path, secret_file: Path, receivers: Callable[..., Receiver]
) -> None:
    """503 with Retry-After: 1 delays the next attempt by a second, though max_backoff is 0.05 s."""
    receiver = receivers(answer=lambda n: (503, {"Retry-After": "1"}) if n == 0 else (200, {}))
    sink = hook(receiver.url, secret_file, max_backoff=Duration(0.05))
    store, dispatcher = store_and_dispatcher(tmp, sink)
    try:
        store.apply(finding(SYSTEM_CLOCK, rectification=()))
        dispatcher.start()
        receiver.wait_for(lambda r: len(r.delivered()) == 1)
        first, second = receiver.hits
        assert first.status == 503 and second.headers["webhook-id"] == first.headers["webhook-id"]
        assert second.at - first.at >= 0.95
        assert dispatcher.outcomes[("hook", "retry")] == 1
    finally:
        dispatcher.stop()
        store.close()


def test_retry_after_is_bounded(tmp: Path, secret_file: Path, receivers: Callable[..., Receiver]) -> None:
    """A Retry-After of a year is honoured only up to an hour: the ticket is not held back for good."""
    receiver = receivers(answer=lambda n: (503, {"Retry-After": str(365 * 86400)}))
    sink = hook(receiver.url, secret_file, max_backoff=Duration(0.05))
    store, dispatcher = store_and_dispatcher(tmp, sink)
    outbox = Outbox(tmp / "h.db")
    try:
        store.apply(finding(SYSTEM_CLOCK, rectification=()))
        before = time.time()
        dispatcher.start()
        # the row itself: the outcome is counted just before the row's next attempt is written
        (row,) = wait_until(lambda: [r for r in outbox.listing(pending=True) if r["attempts"] == 1])
        assert RETRY_AFTER_LIMIT <= row["next_attempt_at"] - before < RETRY_AFTER_LIMIT + 30
    finally:
        dispatcher.stop()
        outbox.close()
        store.close()
