"""The webhook sink: POST the ticket JSON, signed the Standard Webhooks way.

Headers: `webhook-id` (the idempotency key, the same on every retry), `webhook-timestamp` (Unix
seconds of this attempt) and `webhook-signature: v1,<base64 HMAC-SHA256 of "id.timestamp.body">`.
The secret is read from `secret_file` (a `whsec_<base64>` value as Standard Webhooks issues them,
or raw bytes), never from the config text, and never logged.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import time
from collections.abc import Callable
from pathlib import Path

from sentinel.tickets.base import Outcome, opener, post
from sentinel.tickets.config import SinkConfig
from sentinel.tickets.outbox import OutboxRow


def read_secret(path: Path) -> bytes:
    """The signing key from its file: `whsec_<base64>` decoded, else the stripped raw bytes."""
    raw = path.read_bytes().strip()
    if raw.startswith(b"whsec_"):
        try:
            return base64.b64decode(raw[6:], validate=True)
        except binascii.Error as exc:
            raise ValueError(f"{path}: not valid base64 after whsec_") from exc
    if not raw:
        raise ValueError(f"{path}: the secret file is empty")
    return raw


def sign(secret: bytes, msg_id: str, timestamp: int, body: bytes) -> str:
    """The Standard Webhooks signature header value."""
    content = f"{msg_id}.{timestamp}.".encode() + body
    digest = hmac.new(secret, content, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode("ascii")


class WebhookSink:
    """Delivers each outbox row as one signed POST."""

    batched = False

    def __init__(self, config: SinkConfig, *, now: Callable[[], float] = time.time) -> None:
        self.name = config.name
        self.config = config
        self._secret = read_secret(config.secret_file) if config.secret_file else None
        self._opener = opener(config)
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
        if self._secret is not None:
            headers["webhook-signature"] = sign(self._secret, row.key, timestamp, body)
        return post(self._opener, self.config.url, body, headers, self.config.timeout)

    def close(self) -> None:
        """Nothing to release."""
