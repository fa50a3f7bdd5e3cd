"""POSTs to one receiver over kept-alive connections: one HTTP/1.1 connection per worker thread.

A new TCP (and TLS) connection per ticket was most of a delivery's cost (issue 23: ~400 signed
tickets/s against a local receiver). Each of a sink's worker threads keeps its own connection
open between tickets and opens a new one when the receiver closed it (an HTTP/1.0 receiver, a
`Connection: close` answer, an idle timeout on its side).

A request on a reused connection that fails before any answer (the receiver closed it while it
was idle, the usual race of keep-alive) is sent once more on a fresh connection: every ticket
carries its idempotency key in `webhook-id`, so a receiver that did see the first attempt drops
the second. Any other failure is the caller's retry, as before.

Only for direct connections: a sink with a `proxy` goes through urllib (sinks.base.post), whose
proxy handling (CONNECT for https, credentials to the proxy only) the tests pin down.
"""

from __future__ import annotations

import http.client
import ssl
import threading
import urllib.parse

from sentinel.tickets.sinks.base import Outcome, classify

ANSWER_LIMIT = 65536
"""What is read of an answer's body; a longer answer closes its connection rather than be read."""

_STALE = (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError, ConnectionAbortedError)
"""How a reused connection the receiver has closed fails before it gives an answer."""


class KeepAlive:
    """POST to `url`, each calling thread over its own persistent connection."""

    def __init__(self, url: str, *, timeout: float, context: ssl.SSLContext | None = None) -> None:
        parts = urllib.parse.urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"not an http(s) URL: {url!r}")
        self._https = parts.scheme == "https"
        self._host = parts.hostname
        self._port = parts.port
        self._target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        self._timeout = timeout
        self._context = context
        self._local = threading.local()
        self._open: set[http.client.HTTPConnection] = set()
        self._lock = threading.Lock()

    def post(self, body: bytes, headers: dict[str, str]) -> Outcome:
        """POST `body`; the answer classified (sinks.base.classify), a network failure a retry."""
        reused = getattr(self._local, "conn", None) is not None
        try:
            return self._exchange(body, headers)
        except _STALE as exc:
            self._drop()
            if not reused:
                return _retry(exc)
        except (OSError, http.client.HTTPException) as exc:
            self._drop()
            return _retry(exc)
        try:  # the receiver closed the idle connection: once more on a new one
            return self._exchange(body, headers)
        except (OSError, http.client.HTTPException) as exc:
            self._drop()
            return _retry(exc)

    def _exchange(self, body: bytes, headers: dict[str, str]) -> Outcome:
        conn = self._connection()
        conn.request("POST", self._target, body, headers)
        response = conn.getresponse()
        response.read(ANSWER_LIMIT)
        outcome = classify(response.status, response.msg)
        if response.will_close or not response.isclosed():  # closing, or more answer than we read
            self._drop()
        return outcome

    def _connection(self) -> http.client.HTTPConnection:
        conn: http.client.HTTPConnection | None = getattr(self._local, "conn", None)
        if conn is None:
            if self._https:
                conn = http.client.HTTPSConnection(
                    self._host, self._port, timeout=self._timeout, context=self._context
                )
            else:
                conn = http.client.HTTPConnection(self._host, self._port, timeout=self._timeout)
            self._local.conn = conn
            with self._lock:
                self._open.add(conn)
        return conn

    def _drop(self) -> None:
        """Close this thread's connection (the next POST opens a new one)."""
        conn: http.client.HTTPConnection | None = getattr(self._local, "conn", None)
        self._local.conn = None
        if conn is not None:
            with self._lock:
                self._open.discard(conn)
            conn.close()

    def close(self) -> None:
        """Close every thread's connection."""
        with self._lock:
            conns, self._open = self._open, set()
        for conn in conns:
            conn.close()


def _retry(exc: BaseException) -> Outcome:
    reason = getattr(exc, "reason", exc)
    return Outcome("retry", f"{type(exc).__name__}: {reason}")
