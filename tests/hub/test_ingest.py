"""Ingest over HTTP: signed tickets accepted once; everything unsigned, stale, foreign or huge refused."""

from __future__ import annotations

import base64
import json
import random
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from starlette.testclient import TestClient

from sentinel.hub.app import create_app
from sentinel.hub.ingest import Signed, parse_ticket
from sentinel.hub.testing import (
    encode,
    hazard_record,
    history_row,
    secret_bytes,
    signed_headers,
    ticket,
)
from tests.support.logs import captured_logs

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


@pytest.fixture
def client(sample_hub: tuple[Any, dict[str, Any]]) -> Iterator[TestClient]:
    """The backend app of the sample hub."""
    hub, _ = sample_hub
    with TestClient(create_app(hub, web=None)) as c:
        yield c


def _raise(terminal: str, hazard_id: int, now: float, history_id: int = 500) -> dict[str, Any]:
    rec = hazard_record(terminal, hazard_id, at=now, history=[history_row("raise", now, to_state="open")])
    return ticket(rec, transition="raised", history_id=history_id, at=now)


def _post(client: TestClient, doc: dict[str, Any], secret: bytes, *, now: float, **kw: Any) -> Any:
    body = kw.pop("body", None) or encode(doc)
    headers = signed_headers(
        secret,
        body,
        msg_id=kw.pop("msg_id", doc["idempotency_key"]),
        timestamp=int(kw.pop("timestamp", now)),
        terminal=kw.pop("terminal", None),
    )
    headers.update(kw.pop("headers", {}))
    return client.post("/ingest/v1/tickets", content=body, headers=headers)


def test_signed_ticket_is_accepted_once(sample_hub: tuple[Any, dict[str, Any]], client: TestClient) -> None:
    """A signed ticket lands under its terminal's branch; the same webhook-id again is a duplicate."""
    hub, made = sample_hub
    now = hub.clock.time()
    doc = _raise("kiosk-01", 7, now)
    secret = secret_bytes(made["secrets"]["kiosk-01"])
    first = _post(client, doc, secret, now=now)
    assert first.status_code == 200 and first.json() == {"status": "accepted"}
    again = _post(client, doc, secret, now=now + 30)  # a retry: new timestamp, same id
    assert again.status_code == 200 and again.json() == {"status": "duplicate"}
    rows = [r for r in hub.store.ledger("0102", limit=100).rows if r.local_id == 7]
    assert len(rows) == 1 and rows[0].primary_id == "east"
    assert len(hub.store.hazard(rows[0].pk).tickets) == 1


def test_reference_verifier_accepts_our_signature(sample_hub: tuple[Any, dict[str, Any]]) -> None:
    """The standardwebhooks reference library verifies what the agent's sink signs (same format)."""
    standardwebhooks = pytest.importorskip("standardwebhooks")
    hub, made = sample_hub
    now = hub.clock.time()
    doc = _raise("teller-01", 9, now)
    body = encode(doc)
    whsec = made["secrets"]["teller-01"]
    stamp = int(time.time())  # the reference checks against the real clock
    headers = signed_headers(secret_bytes(whsec), body, msg_id=doc["idempotency_key"], timestamp=stamp)
    assert standardwebhooks.Webhook(whsec).verify(body, headers)["idempotency_key"] == doc["idempotency_key"]


@pytest.mark.parametrize(
    ("case", "status", "reason"),
    [
        ("unsigned", 401, "unsigned"),
        ("wrong_key", 401, "bad_signature"),
        ("tampered", 401, "bad_signature"),
        ("stale", 401, "stale"),
        ("future", 401, "stale"),
        ("unknown_terminal", 403, "unknown_terminal"),
        ("not_enrolled", 403, "unknown_terminal"),
        ("other_terminal", 403, "other_terminal"),
        ("key_mismatch", 400, "malformed"),
        ("not_json", 400, "malformed"),
    ],
)
def test_refused(
    sample_hub: tuple[Any, dict[str, Any]], client: TestClient, case: str, status: int, reason: str
) -> None:
    """Each kind of bad delivery is refused with its status, counted, and changes nothing."""
    hub, made = sample_hub
    now = hub.clock.time()
    before = hub.store.summary(None)
    secret = secret_bytes(made["secrets"]["teller-01"])
    doc = _raise("teller-01", 77, now)
    kw: dict[str, Any] = {}
    if case == "unsigned":
        response = client.post(
            "/ingest/v1/tickets", content=encode(doc), headers={"content-type": "application/json"}
        )
    else:
        if case == "wrong_key":
            secret = b"not the terminal's secret at all"
        elif case == "tampered":
            good = encode(doc)
            headers = signed_headers(secret, good, msg_id=doc["idempotency_key"], timestamp=int(now))
            evil = good.replace(b'"severity":"major"', b'"severity":"info"')
            response = client.post("/ingest/v1/tickets", content=evil, headers=headers)
        elif case == "stale":
            kw["timestamp"] = now - 301
        elif case == "future":
            kw["timestamp"] = now + 301
        elif case == "unknown_terminal":
            doc = _raise("stranger-9", 1, now)
        elif case == "not_enrolled":
            hub.keyring.revoke("teller-02")
            doc = _raise("teller-02", 1, now)
            secret = secret_bytes(made["secrets"]["teller-02"])
        elif case == "other_terminal":  # teller-01 signs a ticket that claims to be teller-02's
            doc = _raise("teller-02", 1, now)
            kw["terminal"] = "teller-01"
        elif case == "key_mismatch":
            kw["msg_id"] = "sentinel-teller-01-1-999999"
        elif case == "not_json":
            kw["body"] = b"{not json"
            kw["terminal"] = "teller-01"
        if case != "tampered":
            response = _post(client, doc, secret, now=now, **kw)
    assert response.status_code == status, response.text
    assert response.json()["error"] == reason
    assert hub.stats.snapshot()["refused"][reason] >= 1
    assert hub.store.summary(None) == before


def test_oversized_bodies_are_refused_before_reading(
    sample_hub: tuple[Any, dict[str, Any]], client: TestClient
) -> None:
    """Over max_body: 413, by Content-Length and by a chunked stream alike."""
    hub, made = sample_hub
    now = hub.clock.time()
    big = b"x" * (hub.config.ingest.max_body + 1)
    secret = secret_bytes(made["secrets"]["teller-01"])
    headers = signed_headers(secret, big, msg_id="m1", timestamp=int(now), terminal="teller-01")
    response = client.post("/ingest/v1/tickets", content=big, headers=headers)
    assert response.status_code == 413 and response.json()["error"] == "too_large"

    def chunks() -> Iterator[bytes]:
        for _ in range(big.__len__() // 65536 + 1):
            yield b"y" * 65536

    response = client.post("/ingest/v1/tickets", content=chunks(), headers=headers)
    assert response.status_code == 413


def test_a_rotated_secret_keeps_the_old_one_for_the_grace_period(
    sample_hub: tuple[Any, dict[str, Any]], client: TestClient
) -> None:
    """After --rotate both secrets verify until the old one expires; then only the new one."""
    hub, made = sample_hub
    old = secret_bytes(made["secrets"]["teller-11"])
    new = secret_bytes(hub.keyring.enroll("teller-11", hub.inventory, by="test", rotate=True, grace=3600))
    now = hub.clock.time()
    assert _post(client, _raise("teller-11", 20, now, 1), old, now=now).status_code == 200
    assert _post(client, _raise("teller-11", 21, now, 2), new, now=now).status_code == 200
    hub.clock.advance(3601)
    hub.keyring.forget("teller-11")
    later = hub.clock.time()
    assert _post(client, _raise("teller-11", 22, later, 3), old, now=later).status_code == 401
    assert _post(client, _raise("teller-11", 23, later, 4), new, now=later).status_code == 200


def test_no_secret_in_logs_metrics_or_responses(
    sample_hub: tuple[Any, dict[str, Any]], client: TestClient
) -> None:
    """Refusals and acceptances log no secret; /metrics and answers carry none either."""
    hub, made = sample_hub
    now = hub.clock.time()
    whsec = made["secrets"]["teller-01"]
    secret = secret_bytes(whsec)
    with captured_logs() as events:
        texts = [_post(client, _raise("teller-01", 31, now), secret, now=now).text]
        texts.append(_post(client, _raise("teller-01", 32, now), b"wrong", now=now).text)
        texts.append(client.get("/metrics").text)
    texts.append(json.dumps(events, default=str))
    forms = [
        whsec,
        base64.b64encode(secret).decode(),
        secret.hex(),
        hub.keyring.derive("teller-01", "x").hex(),
    ]
    for text in texts:
        for form in forms[:3]:
            assert form not in text
    assert "bad_signature" in texts[-1]  # the refusal was logged, just without secrets


def _state(hub: Any, terminal: str) -> dict[str, Any]:
    page = hub.store.ledger(None, limit=100)
    (row,) = [r for r in page.rows if r.terminal == terminal and r.local_id == 1]
    detail = hub.store.hazard(row.pk)
    # what names the terminal differs by construction: its name, the fingerprint and the hazard uid
    record = {k: v for k, v in detail.record.items() if k not in ("terminal", "fingerprint", "uid")}
    return {
        "state": row.state,
        "severity": row.severity,
        "resolved_by": row.resolved_by,
        "closed_by": row.closed_by,
        "record": record,
        "history": [(h.action, h.actor.id, h.note) for h in detail.history],
        "tickets": sorted((t.transition, t.seq) for t in detail.tickets),
    }


def test_duplicates_and_any_delivery_order_converge(hub: Any) -> None:
    """Raise, ack, resolve, close delivered in order on one terminal and shuffled with duplicates on
    another end in the same hazard state, trail and ticket set."""
    now = hub.clock.time()
    steps = [
        ("raised", "raise", None, "open", "sentinel"),
        ("acknowledged", "ack", "open", "acknowledged", "os:alice"),
        ("resolved", "resolve", "acknowledged", "resolved", "os:alice"),
        ("closed", "close", "resolved", "closed", "hub:bob"),
    ]

    def docs(terminal: str) -> list[dict[str, Any]]:
        out, rows = [], []
        for n, (transition, action, src, dst, actor) in enumerate(steps):
            at = now + n * 60
            rows.append(history_row(action, at, actor=actor, from_state=src, to_state=dst))
            rec = hazard_record(
                terminal,
                1,
                state=dst or "open",
                at=now,
                history=list(rows),
                resolved_by="os:alice" if n >= 2 else None,
                closed_by="hub:bob" if n >= 3 else None,
            )
            rec["last_seen"] = rec["first_seen"]
            out.append(ticket(rec, transition=transition, history_id=100 + n, at=at, actor=actor))
        return out

    def apply(batch: list[dict[str, Any]]) -> None:
        tickets = [parse_ticket(d, Signed(d["terminal"], d["idempotency_key"], int(now))) for d in batch]
        hub.store.apply_tickets(tickets)

    for doc in docs("teller-01"):
        apply([doc])
    shuffled = docs("teller-02") * 2
    random.Random(7).shuffle(shuffled)
    apply(shuffled[:3])
    for doc in shuffled[3:]:
        apply([doc])
    assert _state(hub, "teller-01") == _state(hub, "teller-02")
    assert _state(hub, "teller-02")["state"] == "closed"
    assert len(_state(hub, "teller-02")["tickets"]) == 4


def test_uid_tickets_from_two_stores_of_one_name_stay_apart(hub: Any) -> None:
    """Issue 20's hazard uids: a re-imaged terminal (same name, new store) never overwrites the old."""
    now = hub.clock.time()
    batch = []
    for store_id in ("store-a", "store-b"):
        rec = hazard_record("teller-01", 1, at=now, uid=str(uuid.uuid4()))
        doc = ticket(rec, transition="raised", history_id=1, at=now)
        doc["store_id"] = store_id
        doc["idempotency_key"] = f"sentinel-{rec['uid']}-1"
        doc["chain"] = {"seq": 1, "hash": "ab" * 32}
        batch.append(parse_ticket(doc, Signed("teller-01", doc["idempotency_key"], int(now))))
    hub.store.apply_tickets(batch)
    rows = [r for r in hub.store.ledger(None, limit=100).rows if r.terminal == "teller-01"]
    assert len(rows) == 2 and len({r.uid for r in rows}) == 2
    assert hub.store.terminal("teller-01").chain_hash == "ab" * 32
