"""What every sink is, and how an HTTP answer becomes a delivery outcome."""

from __future__ import annotations

import base64
import ssl
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from email.message import Message
from typing import Literal, Protocol

from sentinel.tickets.config import SinkConfig
from sentinel.tickets.outbox import OutboxRow

Kind = Literal["delivered", "retry", "dead"]


@dataclass(frozen=True, slots=True)
class Outcome:
    """How one delivery attempt ended."""

    kind: Kind
    error: str = ""
    retry_after: float | None = None  # seconds the receiver asked us to wait


DELIVERED = Outcome("delivered")


class Sink(Protocol):
    """A ticket receiver. `send` must not raise for delivery problems: it returns an Outcome."""

    name: str
    config: SinkConfig
    batched: bool  # True: send_batch() gets all due rows at once (the file sink fsyncs once)

    def send(self, row: OutboxRow) -> Outcome:
        """Deliver one row."""
        ...

    def close(self) -> None:
        """Release resources."""
        ...


def classify(status: int, headers: Message | None = None) -> Outcome:
    """HTTP status -> outcome: 2xx delivered; 408, 429 and 5xx retried; other 4xx dead-lettered.

    410 Gone is permanent too (Standard Webhooks: the endpoint is disabled). Retry-After is
    honoured when it is a number of seconds.
    """
    if 200 <= status < 300:
        return DELIVERED
    retry_after = _retry_after(headers)
    if status in (408, 429) or status >= 500:
        return Outcome("retry", f"HTTP {status}", retry_after)
    return Outcome("dead", f"HTTP {status} (rejected for good)")


def _retry_after(headers: Message | None) -> float | None:
    value = headers.get("Retry-After") if headers is not None else None
    if value and value.strip().isdigit():
        return float(value.strip())
    return None


def ssl_context(config: SinkConfig) -> ssl.SSLContext:
    """TLS for a sink: its own CA if given, and a client certificate for mutual TLS."""
    context = ssl.create_default_context(cafile=str(config.ca_file) if config.ca_file else None)
    if config.client_cert_file and config.client_key_file:
        context.load_cert_chain(str(config.client_cert_file), str(config.client_key_file))
    return context


class ConfiguredProxyHandler(urllib.request.ProxyHandler):
    """urllib's ProxyHandler without its `no_proxy` lookup: only the config decides, so a no_proxy
    in the agent's environment cannot route tickets around the proxy the branch network requires."""

    def proxy_open(self, req: urllib.request.Request, proxy: str, type: str) -> None:
        """Route `req` through `proxy` (credentials in its URL become Proxy-Authorization)."""
        parts = urllib.parse.urlsplit(proxy)
        if parts.username is not None and parts.password is not None:
            user_pass = f"{urllib.parse.unquote(parts.username)}:{urllib.parse.unquote(parts.password)}"
            req.add_header("Proxy-Authorization", "Basic " + base64.b64encode(user_pass.encode()).decode())
        # http and https proxy URLs both speak plain HTTP to the proxy (CONNECT for https targets)
        req.set_proxy(urllib.parse.unquote(parts.netloc.rpartition("@")[2]), req.type)


def opener(config: SinkConfig) -> urllib.request.OpenerDirector:
    """An opener that uses the configured proxy only (never one from the environment)."""
    proxies = {"http": config.proxy, "https": config.proxy} if config.proxy else {}
    return urllib.request.build_opener(
        ConfiguredProxyHandler(proxies),
        urllib.request.HTTPSHandler(context=ssl_context(config)),
    )


def post(
    director: urllib.request.OpenerDirector, url: str, body: bytes, headers: dict[str, str], timeout: float
) -> Outcome:
    """POST and classify; network failures and timeouts are retried."""
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")  # noqa: S310 - config URL
    try:
        with director.open(request, timeout=timeout) as response:
            response.read(65536)
            return classify(int(response.status), response.headers)
    except urllib.error.HTTPError as exc:
        exc.read(65536)
        return classify(int(exc.code), exc.headers)
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        return Outcome("retry", f"{type(exc).__name__}: {reason}")
