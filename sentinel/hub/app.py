"""The hub's composition root (`Hub`) and its Starlette app factory with the route table.

Route table (the backend's; everything else belongs to the pages):

    POST /ingest/v1/tickets                 signed tickets from the agents' webhook sink
    GET  /agent/v1/actions                  a terminal pulls its pending actions (signed)
    POST /agent/v1/actions/{uid}/result     a terminal reports applied | refused (signed)
    POST /agent/v1/status                   a terminal reports drills, checks, version (signed)
    GET  /metrics                           Prometheus exposition of the hub
    GET  /healthz, /readyz                  liveness; readiness (the database answers)

Pages: `create_app` mounts the web engineer's routes after these. It imports `WEB_MODULE`
(`sentinel.hub.web.mount`) and calls its `mount(hub) -> WebParts` when that module exists, or takes
`web=` explicitly (tests pass their own, or `web=None` for the backend alone).
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import json
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
import structlog
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import BaseRoute, Route

from sentinel.hub.actions import get_actions, post_result, post_status
from sentinel.hub.hub import Hub
from sentinel.hub.ingest import (
    BadTicket,
    Refused,
    parse_body,
    parse_ticket,
)
from sentinel.hub.metrics import metrics_endpoint

log = structlog.get_logger("sentinel.hub")

WEB_MODULE = "sentinel.hub.web.mount"
INGEST_PATH = "/ingest/v1/tickets"


@dataclass
class WebParts:
    """What the pages add to the app: routes (mounted after the API), middleware, and hooks."""

    routes: Sequence[BaseRoute] = ()
    middleware: Sequence[Middleware] = ()
    on_startup: Sequence[Callable[[], Any]] = ()
    on_shutdown: Sequence[Callable[[], Any]] = ()
    extra: dict[str, Any] = field(default_factory=dict)


# -- handlers -------------------------------------------------------------------------------------


class IngestFastPath:
    """POST /ingest/v1/tickets as a bare ASGI handler in front of the Starlette app.

    The ingest path is the hot one (thousands of tickets a second) and needs nothing the pages'
    routing, sessions or CSRF middleware do, so it skips them; everything else goes to `app`."""

    def __init__(self, app: Starlette, hub: Hub) -> None:
        self.app = app
        self.hub = hub

    def __getattr__(self, name: str) -> Any:  # .state, .router, … of the Starlette app
        return getattr(self.app, name)

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        """Route one ASGI connection."""
        if scope["type"] == "http" and scope["path"] == INGEST_PATH and scope["method"] == "POST":
            status, body, extra = await self._ingest(scope, receive)
            headers = [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                *extra,
            ]
            await send({"type": "http.response.start", "status": status, "headers": headers})
            await send({"type": "http.response.body", "body": body})
            return
        await self.app(scope, receive, send)

    async def _ingest(self, scope: Any, receive: Any) -> tuple[int, bytes, list[tuple[bytes, bytes]]]:
        hub = self.hub
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        limit = hub.config.ingest.max_body
        try:
            body = await _receive_body(headers, receive, limit)
            if body is None:
                return 400, b"{}", []
            doc = parse_body(body) if body else {}
            claimed = doc.get("terminal") if isinstance(doc.get("terminal"), str) else None
            signed = hub.verifier.verify(headers, body, claimed)
            ticket = parse_ticket(doc, signed)
        except Refused as exc:
            client = scope.get("client") or ("", 0)
            hub.stats.refuse(exc.reason)
            log.warning(
                "hub_request_refused",
                path=INGEST_PATH,
                reason=exc.reason,
                detail=exc.detail,
                client=client[0],
            )
            return exc.status, json.dumps({"error": exc.reason, "detail": exc.detail}).encode(), []
        try:
            new = await hub.writer.submit(ticket)
        except BadTicket:
            hub.stats.refuse("malformed")
            return 400, b'{"error":"malformed","detail":"the ticket cannot be stored"}', []
        except Exception:  # logged by the writer; the agent retries from its outbox
            return 503, b'{"error":"unavailable"}', [(b"retry-after", b"5")]
        return 200, b'{"status":"accepted"}' if new else b'{"status":"duplicate"}', []


async def _receive_body(headers: dict[str, str], receive: Any, limit: int) -> bytes | None:
    """The ASGI request body, refused past `limit` bytes; None if the client went away."""
    declared = headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise Refused(413, "too_large", f"body over {limit} bytes")
    chunks, size, more = [], 0, True
    while more:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise Refused(413, "too_large", f"body over {limit} bytes")
        chunks.append(chunk)
        more = message.get("more_body", False)
    return b"".join(chunks)


async def healthz(_request: Request) -> Response:
    """Liveness: the process answers."""
    return PlainTextResponse("ok\n")


async def readyz(request: Request) -> Response:
    """Readiness: the database answers (a load balancer takes a replica out when it does not)."""
    hub: Hub = request.app.state.hub
    try:
        with hub.db.read() as c:
            c.execute(sa.text("SELECT 1"))
    except sa.exc.SQLAlchemyError:
        return PlainTextResponse("database unavailable\n", status_code=503)
    return PlainTextResponse("ok\n")


def api_routes() -> list[BaseRoute]:
    """The backend's routes (pages come after them; POST /ingest/v1/tickets is IngestFastPath)."""
    return [
        Route("/agent/v1/actions", get_actions, methods=["GET"]),
        Route("/agent/v1/actions/{uid}/result", post_result, methods=["POST"]),
        Route("/agent/v1/status", post_status, methods=["POST"]),
        Route("/metrics", metrics_endpoint, methods=["GET"]),
        Route("/healthz", healthz, methods=["GET"]),
        Route("/readyz", readyz, methods=["GET"]),
    ]


def default_web(hub: Hub) -> WebParts | None:
    """The pages, when the web module is installed."""
    if importlib.util.find_spec(WEB_MODULE) is None:
        return None
    module = importlib.import_module(WEB_MODULE)
    parts: WebParts = module.mount(hub)
    return parts


_AUTO: Any = object()


def create_app(hub: Hub, *, web: WebParts | None = _AUTO) -> Any:
    """The ASGI app: the ingest fast path, the API route table, then the pages.

    The result behaves as the Starlette app (`.state`, `.router`, …) with ingest in front."""
    parts = default_web(hub) if web is _AUTO else web

    @contextlib.asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        await hub.startup()
        for hook in parts.on_startup if parts else ():
            result = hook()
            if hasattr(result, "__await__"):
                await result
        try:
            yield
        finally:
            for hook in parts.on_shutdown if parts else ():
                result = hook()
                if hasattr(result, "__await__"):
                    await result
            await hub.shutdown()

    routes = [*api_routes(), *(parts.routes if parts else ())]
    app = Starlette(routes=routes, middleware=list(parts.middleware) if parts else [], lifespan=lifespan)
    app.state.hub = hub
    app.state.web = parts
    return IngestFastPath(app, hub)
