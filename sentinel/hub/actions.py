"""The agent API: terminals pull their actions and report what became of them (outbound only).

Every request is signed with the terminal's enrolled secret, the Standard Webhooks way, over the
method, the path with its query, and the body:

    sentinel-terminal:  <terminal name>
    webhook-id:         <a fresh random id per request>          (remembered: a replay is refused)
    webhook-timestamp:  <Unix seconds>                           (within [ingest] tolerance)
    webhook-signature:  v1,<base64 HMAC-SHA256(secret, "<id>.<timestamp>.<METHOD> <path?query>\\n<body>")>

    GET  /agent/v1/actions?limit=N          -> {"actions": [action, ...], "poll_after": seconds}
    POST /agent/v1/actions/<uid>/result     {"state": "applied"|"refused", "reason": str, "seq": int|null}
                                            -> {"action": uid, "state": ...}   (first result wins)
    POST /agent/v1/status                   {"agent_version", "store_id", "baseline_digest",
                                             "chain": {"seq", "hash"}, "drills": [...], "checks": [...]}

An action (see model.ActionRow.to_agent): {"id": uid, "hazard": {"uid", "id"}, "action",
"note", "owner", "item", "actor": {"source": "hub", "id": "hub:<user>", "display"},
"requested_at"}. The terminal applies it through its own lifecycle with that actor, remembers its
uid (never applying one twice), and reports the result; the transition itself comes back as an
ordinary ticket. Any signed request counts as the terminal being alive.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from sentinel.hub.http import read_body, refusal
from sentinel.hub.ingest import TERMINAL_HEADER, Refused, Signed

if TYPE_CHECKING:
    from sentinel.hub.hub import Hub

MAX_AGENT_BODY = 256 * 1024


def signed_content(method: str, target: str, body: bytes) -> bytes:
    """What an agent API signature covers: method, path with query, body."""
    return f"{method.upper()} {target}\n".encode() + body


def _target(request: Request) -> str:
    raw = request.scope.get("raw_path") or request.url.path.encode()
    query = request.scope.get("query_string") or b""
    return (raw + (b"?" + query if query else b"")).decode("latin-1")


async def verify_agent(hub: Hub, request: Request) -> tuple[Signed, bytes]:
    """The verified terminal and the body of an agent API request; Refused otherwise."""
    body = await read_body(request, MAX_AGENT_BODY)
    if not request.headers.get(TERMINAL_HEADER):
        raise Refused(401, "unsigned", f"missing {TERMINAL_HEADER}")
    signed = hub.verifier.verify(
        request.headers, signed_content(request.method, _target(request), body), None
    )
    nonce = f"{signed.terminal}\x1f{signed.msg_id}"
    expires = signed.timestamp + hub.config.ingest.tolerance + 1
    if not await run_in_threadpool(hub.store.use_nonce, nonce, expires_at=expires):
        raise Refused(409, "replayed", "this request id was already used")
    return signed, body


def _json_object(body: bytes) -> dict[str, Any]:
    try:
        doc = json.loads(body or b"{}")
    except (UnicodeDecodeError, ValueError):
        raise Refused(400, "malformed", "the body is not JSON") from None
    if not isinstance(doc, dict):
        raise Refused(400, "malformed", "the body is not a JSON object")
    return doc


async def get_actions(request: Request) -> Response:
    """GET /agent/v1/actions: the terminal's pending actions, leased to this poll."""
    hub: Hub = request.app.state.hub
    try:
        signed, _ = await verify_agent(hub, request)
        limit = _limit(request.query_params.get("limit"), hub.config.actions.max_per_poll)
    except Refused as exc:
        return refusal(hub, exc, request)
    await run_in_threadpool(hub.store.touch_terminal, signed.terminal)
    claimed = await run_in_threadpool(
        hub.store.claim_actions, signed.terminal, limit=limit, lease=hub.config.actions.lease
    )
    return JSONResponse({"actions": [a.to_agent() for a in claimed], "lease": hub.config.actions.lease})


async def post_result(request: Request) -> Response:
    """POST /agent/v1/actions/<uid>/result: applied or refused, with the terminal's reason."""
    hub: Hub = request.app.state.hub
    try:
        signed, body = await verify_agent(hub, request)
        doc = _json_object(body)
        state, seq = _result(doc)
    except Refused as exc:
        return refusal(hub, exc, request)
    uid = request.path_params["uid"]
    row = await run_in_threadpool(
        hub.store.complete_action,
        signed.terminal,
        uid,
        applied=state == "applied",
        reason=str(doc.get("reason") or ""),
        seq=seq,
    )
    if row is None:  # no such action for THIS terminal: another terminal's ids are not found either
        return JSONResponse({"error": "not_found"}, status_code=404)
    return JSONResponse({"action": row.uid, "state": row.state})


async def post_status(request: Request) -> Response:
    """POST /agent/v1/status: what the terminal says of itself (version, digests, drills, checks)."""
    hub: Hub = request.app.state.hub
    try:
        signed, body = await verify_agent(hub, request)
        doc = _json_object(body)
        chain = doc["chain"] if isinstance(doc.get("chain"), dict) else {}
        drills = [d for d in doc.get("drills") or () if _is_drill(d)]
        checks = [k for k in doc.get("checks") or () if _is_check(k)]
    except Refused as exc:
        return refusal(hub, exc, request)
    await run_in_threadpool(
        hub.store.touch_terminal,
        signed.terminal,
        agent_version=str(doc.get("agent_version") or "")[:64],
        baseline_digest=str(doc.get("baseline_digest") or "")[:128],
        store_id=str(doc.get("store_id") or "")[:64],
        chain_seq=chain.get("seq") if isinstance(chain.get("seq"), int) else None,
        chain_hash=str(chain.get("hash") or "")[:128],
    )
    await run_in_threadpool(hub.store.record_status, signed.terminal, drills=drills, checks_=checks)
    return JSONResponse({"status": "ok", "drills": len(drills), "checks": len(checks)})


def _limit(text: str | None, most: int) -> int:
    if text is None:
        return most
    if not text.isdigit():
        raise Refused(400, "malformed", "limit must be a number")
    return max(1, min(int(text), most))


def _result(doc: dict[str, Any]) -> tuple[str, int | None]:
    state = doc.get("state")
    if state not in ("applied", "refused"):
        raise Refused(400, "malformed", 'state must be "applied" or "refused"')
    seq = doc.get("seq")
    if seq is not None and (not isinstance(seq, int) or isinstance(seq, bool)):
        raise Refused(400, "malformed", "seq must be an integer")
    return str(state), seq


def _is_drill(d: Any) -> bool:
    return (
        isinstance(d, dict)
        and isinstance(d.get("key"), str | int)
        and isinstance(d.get("scenario"), str)
        and isinstance(d.get("started_at"), int | float)
    )


def _is_check(k: Any) -> bool:
    return (
        isinstance(k, dict)
        and isinstance(k.get("check"), str)
        and k.get("status") in ("pass", "fail", "error", "skip")
        and isinstance(k.get("at"), int | float)
    )
