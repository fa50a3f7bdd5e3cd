"""Loopback networking for tests: free ports, and a real webhook receiver that checks signatures."""

from __future__ import annotations

import contextlib
import hmac
import json
import socket
import threading
from typing import Any

from sentinel.tickets.sinks.webhook import sign


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class WebhookReceiver:
    """A real HTTP receiver on 127.0.0.1 that checks Standard Webhooks signatures.

    `status` sets the answer (e.g. 503 to simulate an outage, 400 to reject); `stop()` then
    `start()` again simulates the receiver being down (same port). Every accepted delivery is kept
    in `received` as (webhook-id, parsed body); `bad_signatures` counts rejected ones.
    """

    def __init__(self, secret: bytes | None = None, port: int = 0, *, keep_alive: bool = False) -> None:
        self.secret = secret
        self.port = port
        self.keep_alive = keep_alive  # HTTP/1.1, connections kept open between requests
        self.connections = 0  # TCP connections accepted
        self._open: set[Any] = set()  # sockets of live connections (closed by stop())
        self.status = 200
        self.received: list[tuple[str, dict[str, Any]]] = []
        self.bad_signatures = 0
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._server: Any = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """Where to POST."""
        return f"http://127.0.0.1:{self.port}/hook"

    def start(self) -> WebhookReceiver:
        """Listen (on the same port as before, if restarted)."""
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1" if self.keep_alive else "HTTP/1.0"

            def setup(self) -> None:
                super().setup()
                with receiver._lock:
                    receiver.connections += 1
                    receiver._open.add(self.connection)

            def finish(self) -> None:
                with receiver._lock:
                    receiver._open.discard(self.connection)
                super().finish()

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                code = receiver.handle(dict(self.headers.items()), body)
                self.send_response(code)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                """Quiet."""

        class Server(ThreadingHTTPServer):
            allow_reuse_address = True
            daemon_threads = True

        self._server = Server(("127.0.0.1", self.port), Handler)
        self.port = int(self._server.server_address[1])
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="webhook-receiver", daemon=True
        )
        self._thread.start()
        return self

    def handle(self, headers: dict[str, str], body: bytes) -> int:
        """Verify, record, answer."""
        lower = {k.lower(): v for k, v in headers.items()}
        if self.secret is not None:
            expected = sign(
                self.secret, lower.get("webhook-id", ""), int(lower.get("webhook-timestamp", "0")), body
            )
            offered = lower.get("webhook-signature", "").split(" ")  # several while a secret rotates
            if not any(hmac.compare_digest(sig, expected) for sig in offered):
                with self._lock:
                    self.bad_signatures += 1
                return 401
        with self._changed:
            status = self.status
            if 200 <= status < 300:
                self.received.append((lower.get("webhook-id", ""), json.loads(body)))
                self._changed.notify_all()
        return status

    def wait_for(self, predicate: Any, timeout: float = 20.0) -> None:
        """Block until predicate(received) is true; TimeoutError with what arrived otherwise."""
        with self._changed:
            if not self._changed.wait_for(lambda: predicate(self.received), timeout):
                raise TimeoutError(f"receiver: condition not met in {timeout}s; got {len(self.received)}")

    def stop(self) -> None:
        """Stop listening (the port is freed)."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        with self._lock:  # a kept-alive connection must not outlive the receiver
            for conn in self._open:
                with contextlib.suppress(OSError):
                    conn.shutdown(socket.SHUT_RDWR)
        if self._thread is not None:
            self._thread.join(5)
        self._server = self._thread = None
