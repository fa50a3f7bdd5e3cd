"""The webhook sink: POST the ticket JSON, signed the Standard Webhooks way.

Headers: `webhook-id` (the idempotency key, the same on every retry), `webhook-timestamp` (Unix
seconds of this attempt) and `webhook-signature: v1,<base64 HMAC-SHA256 of "id.timestamp.body">`.
The secret is read from `secret_file` (a `whsec_<base64>` value as Standard Webhooks issues them,
or raw bytes), never from the config text, and never logged.

Rotation without a restart: the file is re-read when it changes, and a file of several
`whsec_` lines signs with each (space-delimited signatures, as the standard allows), so an
operator adds the new secret, moves the receiver over, then removes the old one. A file that
becomes unreadable or invalid keeps the last good secrets signing, and says so in the log.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import time
from collections.abc import Callable
from pathlib import Path

import structlog

from sentinel.tickets.config import SinkConfig
from sentinel.tickets.outbox import OutboxRow
from sentinel.tickets.sinks.base import Outcome, opener, post, ssl_context
from sentinel.tickets.sinks.keepalive import KeepAlive

log = structlog.get_logger("sentinel.tickets")


def read_secret(path: Path) -> bytes:
    """The (first) signing key from its file."""
    return read_secrets(path)[0]


def read_secrets(path: Path) -> list[bytes]:
    """The signing keys from their file: one `whsec_<base64>` per line, decoded, or else (no
    `whsec_` anywhere) the whole stripped content as one raw key. ValueError naming the file if
    there is none, or if `whsec_` lines are mixed with anything else (a raw key next to a new
    whsec_ one, a comment): that would silently sign with a key no receiver holds."""
    raw = path.read_bytes().strip()
    if not raw:
        raise ValueError(f"{path}: the secret file is empty")
    if b"whsec_" not in raw:
        return [raw]
    secrets = []
    for number, text in enumerate(raw.splitlines(), 1):
        line = text.strip()
        if not line:
            continue
        if not line.startswith(b"whsec_"):
            raise ValueError(f"{path}: line {number}: expected whsec_<base64>")
        try:
            secrets.append(base64.b64decode(line[6:], validate=True))
        except binascii.Error as exc:
            raise ValueError(f"{path}: line {number}: not valid base64 after whsec_") from exc
    return secrets


class SecretFile:
    """The signing keys of a sink, re-read when their file changes (rotation without a restart)."""

    def __init__(self, path: Path, sink: str) -> None:
        self.path = path
        self.sink = sink
        self._stamp = self._stat()
        self.secrets = read_secrets(path)  # at start a bad file is a startup error, not a fallback

    def _stat(self) -> tuple[int, int, int] | None:
        try:
            st = self.path.stat()
        except OSError:
            return None
        return (st.st_mtime_ns, st.st_size, st.st_ino)

    def current(self) -> list[bytes]:
        """The keys to sign with now (one stat per call; the file is read only when it changed)."""
        stamp = self._stat()
        if stamp == self._stamp:
            return self.secrets
        self._stamp = stamp
        try:
            self.secrets = read_secrets(self.path)
        except (OSError, ValueError) as exc:
            log.error("ticket_secret_unusable", sink=self.sink, error=str(exc), keeps="the previous secret")
        else:
            log.info("ticket_secret_reloaded", sink=self.sink, secrets=len(self.secrets))
        return self.secrets


def sign(secret: bytes, msg_id: str, timestamp: int, body: bytes) -> str:
    """The Standard Webhooks signature header value."""
    content = f"{msg_id}.{timestamp}.".encode() + body
    digest = hmac.new(secret, content, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode("ascii")


class WebhookSink:
    """Delivers each outbox row as one signed POST, over a kept-alive connection per worker
    (sinks.keepalive) unless a proxy is configured."""

    batched = False

    def __init__(self, config: SinkConfig, *, now: Callable[[], float] = time.time) -> None:
        self.name = config.name
        self.config = config
        self._secrets = SecretFile(config.secret_file, config.name) if config.secret_file else None
        self._keepalive: KeepAlive | None = None
        self._post: Callable[[bytes, dict[str, str]], Outcome]
        if config.proxy:
            proxied = opener(config)
            self._post = lambda body, headers: post(proxied, config.url, body, headers, config.timeout)
        else:
            self._keepalive = KeepAlive(config.url, timeout=config.timeout, context=ssl_context(config))
            self._post = self._keepalive.post
        self._now = now

    def send(self, row: OutboxRow) -> Outcome:
        """One signed POST."""
        body = row.payload.encode("utf-8")
        timestamp = int(self._now())
        headers = {
            **self.config.headers,
            "Content-Type": "application/json",
            "webhook-id": row.key,
            "webhook-timestamp": str(timestamp),
            "User-Agent": "sentinel-agent",
        }
        if self._secrets is not None:
            headers["webhook-signature"] = " ".join(
                sign(secret, row.key, timestamp, body) for secret in self._secrets.current()
            )
        return self._post(body, headers)

    def close(self) -> None:
        """Close the kept-alive connections."""
        if self._keepalive is not None:
            self._keepalive.close()
