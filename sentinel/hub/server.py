"""`sentinel hub serve`: uvicorn on [hub] listen, TLS when configured, SIGHUP reloads the inventory.

One process per `serve`; scale out by running more (on more hosts, behind the bank's load
balancer, one PostgreSQL): they share nothing but the database and the master key file.
Logs are structlog lines: JSON under systemd (or `log_format = "json"`), console on a terminal.
"""

from __future__ import annotations

import asyncio
import os
import signal
import ssl
from typing import Any, Literal

import structlog

from sentinel.core import logging as logging_setup
from sentinel.core.logging import CurrentStream
from sentinel.hub.config import HubConfig

log = structlog.get_logger("sentinel.hub")


def configure_logging(fmt: Literal["auto", "json", "console"]) -> None:
    """The house's structlog set-up (sentinel.core.logging: redaction, controls escaped, library
    records as structured lines), on stderr: JSON lines under systemd, console on a terminal.
    uvicorn's own records (log_config=None below) become `library_log` lines of the same stream."""
    logging_setup.configure("info", fmt, CurrentStream("stderr"))


def app_from_environment() -> Any:
    """The app of one worker process (`[hub] workers` > 1): config from $SENTINEL_HUB_CONFIG."""
    # start-up time: uvicorn workers import the app only in the process that serves
    from sentinel.hub.app import create_app
    from sentinel.hub.config import CONFIG_ENV, load
    from sentinel.hub.hub import Hub

    config = load(os.environ[CONFIG_ENV])
    configure_logging(config.hub.log_format)
    hub = Hub(config)
    hub.migrate()
    return create_app(hub)


def _tls(config: HubConfig) -> dict[str, Any]:
    tls: dict[str, Any] = {}
    if config.tls.cert_file and config.tls.key_file:
        tls = {"ssl_certfile": str(config.tls.cert_file), "ssl_keyfile": str(config.tls.key_file)}
        if config.tls.client_ca_file:  # mutual TLS with the bank's CA: agents present certificates
            tls |= {"ssl_ca_certs": str(config.tls.client_ca_file), "ssl_cert_reqs": ssl.CERT_REQUIRED}
    return tls


_UVICORN: dict[str, Any] = {
    "log_level": "warning",
    "access_log": False,  # request lines would carry terminal names at 5,000/s; metrics count them
    "proxy_headers": False,  # the web module decides which proxies it trusts
    "server_header": False,
    "timeout_keep_alive": 30,
    "http": "httptools",
    "log_config": None,  # no handlers of its own: its records go through ours (configure_logging)
}


def serve(config: HubConfig) -> int:
    """Run until SIGTERM/SIGINT; return the exit code."""
    import uvicorn

    # start-up time: uvicorn workers import the app only in the process that serves
    from sentinel.hub.app import create_app
    from sentinel.hub.config import CONFIG_ENV
    from sentinel.hub.hub import Hub

    configure_logging(config.hub.log_format)
    tls = _tls(config)
    if config.hub.workers > 1:  # several processes on one port; SIGHUP restarts them (new inventory)
        Hub(config).migrate()
        os.environ[CONFIG_ENV] = str(config.source)
        log.info(
            "hub_started",
            url=f"{'https' if tls else 'http'}://{config.hub.listen}",
            workers=config.hub.workers,
        )
        uvicorn.run(
            "sentinel.hub.server:app_from_environment",
            factory=True,
            host=config.hub.host,
            port=config.hub.port,
            workers=config.hub.workers,
            **_UVICORN,
            **tls,
        )
        return 0
    hub = Hub(config)
    hub.migrate()
    app = create_app(hub)
    server = uvicorn.Server(
        uvicorn.Config(
            app,
            host=config.hub.host,
            port=config.hub.port,
            loop="asyncio",
            **_UVICORN,
            **tls,
        )
    )

    async def run() -> None:
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGHUP, hub.reload_inventory)
        scheme = "https" if tls else "http"
        log.info(
            "hub_started",
            url=f"{scheme}://{config.hub.listen}",
            database=hub.db.dialect,
            terminals=len(hub.inventory.terminals),
        )
        await server.serve()

    asyncio.run(run())
    log.info("hub_stopped")
    return 0
