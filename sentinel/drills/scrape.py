"""Reading the running agent's /metrics, as a drill's stages do."""

from __future__ import annotations

import ssl
import urllib.request
from collections.abc import Callable


def metrics_url(host: str, port: int | str, *, tls: bool) -> str:
    """The /metrics URL of an agent bound to host:port (a wildcard bind is reached on loopback)."""
    host = host.strip("[]")
    if host in ("0.0.0.0", "::", ""):  # noqa: S104 - comparing, not binding
        host = "127.0.0.1"
    shown = f"[{host}]" if ":" in host else host
    return f"{'https' if tls else 'http'}://{shown}:{port}/metrics"


def scraper(host: str, port: int | str, *, tls: bool) -> Callable[[], str]:
    """A function that scrapes the agent bound to host:port."""
    url = metrics_url(host, port, tls=tls)
    context = None
    if tls:
        context = ssl.create_default_context()
        context.check_hostname = False  # the drill talks to its own terminal's agent
        context.verify_mode = ssl.CERT_NONE

    def scrape() -> str:
        with urllib.request.urlopen(url, timeout=5, context=context) as response:  # noqa: S310 - our URL
            return str(response.read().decode("utf-8", "replace"))

    return scrape
