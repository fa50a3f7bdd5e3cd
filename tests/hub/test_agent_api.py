"""The agent API: signed pulls and results, replays refused, leases, first result wins."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from starlette.testclient import TestClient

from sentinel.hub.app import create_app
from sentinel.hub.testing import agent_headers, secret_bytes

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


@pytest.fixture
def client(sample_hub: tuple[Any, dict[str, Any]]) -> Iterator[TestClient]:
    """The backend app of the sample hub."""
    hub, _ = sample_hub
    with TestClient(create_app(hub, web=None)) as c:
        yield c


def _get(client: TestClient, hub: Any, made: dict[str, Any], terminal: str, **kw: Any) -> Any:
    target = kw.pop("target", "/agent/v1/actions")
    headers = agent_headers(
        secret_bytes(made["secrets"][terminal]),
        terminal,
        "GET",
        target,
        timestamp=int(hub.clock.time()),
        **kw,
    )
    return client.get(target, headers=headers), headers


def _result(
    client: TestClient,
    hub: Any,
    made: dict[str, Any],
    terminal: str,
    uid: str,
    doc: dict[str, Any],
    secret_of: str | None = None,
) -> Any:
    target = f"/agent/v1/actions/{uid}/result"
    body = json.dumps(doc).encode()
    headers = agent_headers(
        secret_bytes(made["secrets"][secret_of or terminal]),
        terminal,
        "POST",
        target,
        body,
        timestamp=int(hub.clock.time()),
    )
    return client.post(target, content=body, headers=headers)


def test_pull_leases_and_reoffers(sample_hub: tuple[Any, dict[str, Any]], client: TestClient) -> None:
    """A poll gets the pending action with the hub actor; a second poll in the lease gets nothing;
    after the lease it is offered again (an agent that died before answering)."""
    hub, made = sample_hub
    response, _ = _get(client, hub, made, "teller-02")
    assert response.status_code == 200
    (action,) = response.json()["actions"]
    assert action["id"] == made["actions"]["pending"].uid
    assert action["action"] == "start" and action["hazard"]["id"] == 1
    assert action["actor"] == {"source": "hub", "id": "hub:erin", "display": "Erin"}
    assert _get(client, hub, made, "teller-02")[0].json()["actions"] == []
    hub.clock.advance(hub.config.actions.lease + 1)
    again = _get(client, hub, made, "teller-02")[0].json()["actions"]
    assert [a["id"] for a in again] == [action["id"]]
    assert hub.store.action(action["id"]).offered == 2
    assert hub.store.terminal("teller-02").last_poll_at == hub.clock.time()


def test_result_first_wins_and_only_for_the_own_terminal(
    sample_hub: tuple[Any, dict[str, Any]], client: TestClient
) -> None:
    """Applied is recorded once; a later 'refused' changes nothing; another terminal cannot answer."""
    hub, made = sample_hub
    uid = made["actions"]["pending"].uid
    foreign = _result(client, hub, made, "teller-01", uid, {"state": "refused", "reason": "no"})
    assert foreign.status_code == 404
    ok = _result(client, hub, made, "teller-02", uid, {"state": "applied", "seq": 42})
    assert ok.status_code == 200 and ok.json()["state"] == "applied"
    late = _result(client, hub, made, "teller-02", uid, {"state": "refused", "reason": "again"})
    assert late.json()["state"] == "applied"
    row = hub.store.action(uid)
    assert row.state == "applied" and row.reason == ""
    assert _get(client, hub, made, "teller-02")[0].json()["actions"] == []


def test_refused_keeps_the_terminal_reason(
    sample_hub: tuple[Any, dict[str, Any]], client: TestClient
) -> None:
    """A refusal shows the terminal's words on the action."""
    hub, made = sample_hub
    uid = made["actions"]["pending"].uid
    _result(
        client,
        hub,
        made,
        "teller-02",
        uid,
        {"state": "refused", "reason": "hazard #1: cannot start a closed"},
    )
    assert hub.store.action(uid).reason == "hazard #1: cannot start a closed"


@pytest.mark.parametrize("case", ["replay", "wrong_secret", "unsigned", "stale", "path_swap", "bad_state"])
def test_agent_requests_refused(
    sample_hub: tuple[Any, dict[str, Any]], client: TestClient, case: str
) -> None:
    """Replayed, wrongly signed, unsigned, stale, re-targeted and malformed requests are refused."""
    hub, made = sample_hub
    uid = made["actions"]["pending"].uid
    if case == "replay":
        first, headers = _get(client, hub, made, "teller-02")
        assert first.status_code == 200
        response = client.get("/agent/v1/actions", headers=headers)
        assert (response.status_code, response.json()["error"]) == (409, "replayed")
    elif case == "wrong_secret":
        response = _result(client, hub, made, "teller-02", uid, {"state": "applied"}, secret_of="teller-01")
        assert (response.status_code, response.json()["error"]) == (401, "bad_signature")
    elif case == "unsigned":
        response = client.get("/agent/v1/actions", headers={"sentinel-terminal": "teller-02"})
        assert (response.status_code, response.json()["error"]) == (401, "unsigned")
    elif case == "stale":
        headers = agent_headers(
            secret_bytes(made["secrets"]["teller-02"]),
            "teller-02",
            "GET",
            "/agent/v1/actions",
            timestamp=int(hub.clock.time()) - 1000,
        )
        response = client.get("/agent/v1/actions", headers=headers)
        assert (response.status_code, response.json()["error"]) == (401, "stale")
    elif case == "path_swap":  # a signature for one request does not open another
        headers = agent_headers(
            secret_bytes(made["secrets"]["teller-02"]),
            "teller-02",
            "GET",
            "/agent/v1/actions?limit=1",
            timestamp=int(hub.clock.time()),
        )
        response = client.get("/agent/v1/actions?limit=50", headers=headers)
        assert (response.status_code, response.json()["error"]) == (401, "bad_signature")
    else:
        response = _result(client, hub, made, "teller-02", uid, {"state": "done"})
        assert (response.status_code, response.json()["error"]) == (400, "malformed")
    assert hub.store.action(uid).state == "pending"


def test_status_report_records_drills_checks_and_digests(
    sample_hub: tuple[Any, dict[str, Any]], client: TestClient
) -> None:
    """POST /agent/v1/status keeps version, baseline digest, chain head, drills and checks."""
    hub, made = sample_hub
    now = hub.clock.time()
    doc = {
        "agent_version": "9.9",
        "store_id": "s-1",
        "baseline_digest": "sha256:abc",
        "chain": {"seq": 77, "hash": "f0"},
        "drills": [
            {
                "key": "s-1:3",
                "scenario": "usb_insert",
                "started_at": now - 60,
                "passed": False,
                "stages": [{"stage": "detect", "passed": False}],
            }
        ],
        "checks": [
            {"check": "firewall", "status": "pass", "at": now},
            {"check": "bad", "status": "??", "at": now},
        ],
    }
    body = json.dumps(doc).encode()
    headers = agent_headers(
        secret_bytes(made["secrets"]["kiosk-01"]),
        "kiosk-01",
        "POST",
        "/agent/v1/status",
        body,
        timestamp=int(now),
    )
    response = client.post("/agent/v1/status", content=body, headers=headers)
    assert response.json() == {"status": "ok", "drills": 1, "checks": 1}
    detail = hub.store.terminal("kiosk-01")
    assert (detail.row.agent_version, detail.baseline_digest, detail.chain_seq, detail.chain_hash) == (
        "9.9",
        "sha256:abc",
        77,
        "f0",
    )
    assert {k["check"] for k in detail.checks} == {"firewall", "password_policy"}
    assert detail.drills[0]["scenario"] == "usb_insert" and not detail.drills[0]["passed"]


def test_two_hub_processes_never_hand_out_one_action_twice(hub_factory: Any) -> None:
    """Two hubs on one database claiming the same terminal's queue concurrently get disjoint sets."""
    import threading

    from sentinel.hub.testing import load_sample

    first = hub_factory()
    made = load_sample(first)
    second = hub_factory()
    pk = made["pk"][("teller-01", 4)]
    for n in range(30):
        first.store.enqueue(pk, "note", user="erin", note=f"n{n}")
    got: list[list[str]] = [[], []]

    def claim(index: int, hub: Any) -> None:
        for _ in range(10):
            got[index] += [a.uid for a in hub.store.claim_actions("teller-01", limit=3, lease=600)]

    threads = [threading.Thread(target=claim, args=(i, h)) for i, h in enumerate((first, second))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not set(got[0]) & set(got[1])
    assert len(got[0]) + len(got[1]) == 30
