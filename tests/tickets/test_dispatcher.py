"""The dispatcher with a real SQLite outbox and a real receiver on 127.0.0.1."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sentinel import __version__
from sentinel.core.clock import SYSTEM_CLOCK, Clock
from sentinel.core.model import Severity
from sentinel.hazards.config import HazardsConfig
from sentinel.hazards.lifecycle import Action
from sentinel.hazards.store import HazardStore
from sentinel.testing import wait_until
from sentinel.tickets.config import SinkConfig
from sentinel.tickets.dispatcher import Dispatcher, backoff
from sentinel.tickets.outbox import Outbox
from sentinel.tickets.ticketing import Ticketing
from tests.hazards.conftest import finding
from tests.support.net import WebhookReceiver, free_port
from tests.support.people import who

SECRET = b"branch-0101-secret"


@pytest.fixture
def secret_file(tmp: Path) -> Path:
    path = tmp / "hook.secret"
    path.write_bytes(SECRET)
    return path


@pytest.fixture(params=[False, True], ids=["http1.0", "keep-alive"])
def receiver(request: pytest.FixtureRequest) -> Iterator[WebhookReceiver]:
    """A receiver that closes each connection (HTTP/1.0) and one that keeps it open (HTTP/1.1)."""
    r = WebhookReceiver(SECRET, port=free_port(), keep_alive=request.param)
    yield r
    r.stop()


@pytest.fixture
def clock() -> Clock:
    """Delivery waits on real time (backoff), so these tests use the real clock."""
    return SYSTEM_CLOCK


def make(tmp: Path, sink: SinkConfig, clock: Clock) -> tuple[HazardStore, Dispatcher]:
    store = HazardStore(
        tmp / "h.db",
        config=HazardsConfig(),
        terminal="t1",
        branch="0101",
        clock=clock,
        ticketer=Ticketing(
            terminal="t1",
            branch="0101",
            agent_version=__version__,
            sinks_for=lambda r, t: [sink.name] if sink.wants(r, t) else [],
        ),
    )
    return store, Dispatcher(tmp / "h.db", [sink], poll_interval=0.05, seed=1)


def lifecycle(store: HazardStore, clock: Clock, hazards: int) -> list[tuple[int, str]]:
    """Raise `hazards` hazards and walk each through ack, resolve, close; the expected tickets."""
    for i in range(hazards):
        store.apply(finding(clock, subject=f"/d{i}", rectification=()))
    for i in range(1, hazards + 1):
        store.act(i, Action.ACK, actor=who("alice"))
        store.act(i, Action.RESOLVE, actor=who("alice"))
        store.act(i, Action.CLOSE, actor=who("bob"))
    return [(i, t) for i in range(1, hazards + 1) for t in ("raised", "acknowledged", "resolved", "closed")]


def by_hazard(received: list[tuple[str, dict[str, Any]]]) -> dict[int, list[str]]:
    out: dict[int, list[str]] = defaultdict(list)
    for _key, body in received:
        out[body["hazard"]["id"]].append(body["transition"])
    return out


def test_receiver_down_then_up_gets_every_transition_in_order(
    tmp: Path, secret_file: Path, receiver: WebhookReceiver, clock: Clock
) -> None:
    """Nothing is lost while the receiver is down; per hazard the order holds; duplicates share a key."""
    sink = SinkConfig(
        name="hook",
        type="webhook",
        url=receiver.url,
        secret_file=secret_file,
        max_backoff=0.3,
        timeout=2,
        concurrency=3,
    )  # type: ignore[arg-type]
    store, dispatcher = make(tmp, sink, clock)
    dispatcher.start()
    try:
        expected = lifecycle(store, clock, hazards=6)
        wait_until(lambda: dispatcher.outcomes[("hook", "retry")] >= 3)  # receiver is down
        receiver.start()
        receiver.wait_for(lambda got: len({k for k, _ in got}) >= len(expected))
        assert receiver.bad_signatures == 0
        got = by_hazard(receiver.received)
        for hazard_id in range(1, 7):
            assert got[hazard_id] == ["raised", "acknowledged", "resolved", "closed"]
        keys: dict[str, set[str]] = defaultdict(set)
        for key, body in receiver.received:
            keys[key].add(body["transition"])
        assert all(len(v) == 1 for v in keys.values())  # a key never names two transitions
        wait_until(lambda: dispatcher.outbox.stats()["hook"]["pending"] == 0)
    finally:
        dispatcher.stop()
        store.close()


def test_rejected_ticket_is_dead_lettered_and_retried_on_demand(
    tmp: Path, secret_file: Path, receiver: WebhookReceiver, clock: Clock
) -> None:
    """A 400 dead-letters; the next transition of that hazard is not blocked; retry delivers it."""
    sink = SinkConfig(name="hook", type="webhook", url=receiver.url, secret_file=secret_file, max_backoff=0.2)  # type: ignore[arg-type]
    store, dispatcher = make(tmp, sink, clock)
    receiver.start()
    receiver.status = 400
    dispatcher.start()
    try:
        store.apply(finding(clock))
        wait_until(lambda: dispatcher.outbox.stats().get("hook", {}).get("dead") == 1)
        receiver.status = 200
        store.act(1, Action.ACK, actor=who("alice"))
        receiver.wait_for(lambda got: [b["transition"] for _, b in got] == ["acknowledged"])
        dead_series = [s for s in dispatcher.samples() if s.name == "sentinel_tickets_dead"]
        assert [s.value for s in dead_series] == [1]
        (dead,) = dispatcher.outbox.listing(dead=True)
        assert "HTTP 400" in dead["last_error"]
        assert dispatcher.outbox.retry(dead["id"], clock.time()) == 1
        dispatcher.wake()
        receiver.wait_for(lambda got: "raised" in [b["transition"] for _, b in got])
    finally:
        dispatcher.stop()
        store.close()


def test_wrong_secret_is_never_accepted(tmp: Path, receiver: WebhookReceiver, clock: Clock) -> None:
    """A receiver with another secret answers 401: dead-lettered, counted, nothing recorded."""
    other = tmp / "other.secret"
    other.write_bytes(b"not the secret")
    sink = SinkConfig(name="hook", type="webhook", url=receiver.url, secret_file=other)  # type: ignore[arg-type]
    store, dispatcher = make(tmp, sink, clock)
    receiver.start()
    dispatcher.start()
    try:
        store.apply(finding(clock))
        wait_until(lambda: receiver.bad_signatures == 1)
        wait_until(lambda: dispatcher.outcomes[("hook", "dead")] == 1)
        assert receiver.received == []
    finally:
        dispatcher.stop()
        store.close()


def test_routing_by_category_and_drills(tmp: Path, clock: Clock) -> None:
    """A sink for major+ cyber hazards that skips drills gets only those rows."""
    from sentinel.core.model import Category

    sink = SinkConfig(
        name="soc",
        type="file",
        path=tmp / "t.jsonl",
        categories=(Category.CYBER_ATTACK,),
        severities=(Severity.MAJOR, Severity.CRITICAL),
        include_drills=False,
    )
    store, dispatcher = make(tmp, sink, clock)
    try:
        store.apply(finding(clock, rule="brute", category=Category.CYBER_ATTACK))
        store.apply(finding(clock, rule="disk"))
        store.apply(
            finding(clock, rule="brute", subject="x", category=Category.CYBER_ATTACK, severity=Severity.MINOR)
        )
        rows = Outbox(tmp / "h.db")
        try:
            assert [(r["hazard_id"], r["transition"]) for r in rows.listing()] == [(1, "raised")]
        finally:
            rows.close()
    finally:
        dispatcher.stop()
        store.close()


def test_backoff_is_capped_full_jitter() -> None:
    """Never above the cap, never below 0.1 s, growing with attempts."""
    import random

    rng = random.Random(3)
    values = [backoff(n, 60.0, rng) for n in range(20) for _ in range(20)]
    assert all(0.1 <= v <= 60.0 for v in values)
    assert max(backoff(1, 60.0, rng) for _ in range(200)) <= 2.0
