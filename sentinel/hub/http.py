"""HTTP helpers the hub's endpoints share: a bounded body read, and answering a refusal."""

from __future__ import annotations

from typing import TYPE_CHECKING

import structlog
from starlette.requests import Request
from starlette.responses import JSONResponse

from sentinel.hub.ingest import Refused

if TYPE_CHECKING:
    from sentinel.hub.hub import Hub

log = structlog.get_logger("sentinel.hub")


async def read_body(request: Request, limit: int) -> bytes:
    """The body, refused as soon as it passes `limit` bytes (Content-Length is checked first)."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise Refused(413, "too_large", f"body over {limit} bytes")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise Refused(413, "too_large", f"body over {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def refusal(hub: Hub, exc: Refused, request: Request) -> JSONResponse:
    """Count, log (no body, no secret) and answer a refused request."""
    hub.stats.refuse(exc.reason)
    log.warning(
        "hub_request_refused",
        path=request.url.path,
        reason=exc.reason,
        detail=exc.detail,
        client=request.client.host if request.client else "",
    )
    return JSONResponse({"error": exc.reason, "detail": exc.detail}, status_code=exc.status)
