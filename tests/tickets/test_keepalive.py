"""Webhook deliveries over kept-alive connections (issue 23): a burst reuses a connection per
worker, a receiver that drops idle connections or goes down loses no ticket and gets none twice,
and outcomes that finish together are written in one transaction."""

from __future__ import annotations

import socket
import socketserver
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from sentinel.core.clock import SYSTEM_CLOCK
from sentinel.testing import wait_until
from sentinel.tickets.config import SinkConfig
from sentinel.tickets.outbox import Mark, Outbox
from sentinel.tickets.sinks.keepalive import KeepAlive
from tests.hazards.conftest import finding
from tests.support.backlog import build_backlog
from tests.support.net import WebhookReceiver, free_port
from tests.tickets.test_dispatcher import SECRET, make


@pytest.fixture
def secret_file(tmp: Path) -> Path:
    path = tmp / "hook.secret"
    path.write_bytes(SECRET)
    return path


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    r = WebhookReceiver(SECRET, port=free_port(), keep_alive=True).start()
    yield r
    r.stop()


def _sink(url: str, secret_file: Path, concurrency: int = 2) -> SinkConfig:
    return SinkConfig(
        name="hook",
        type="webhook",
        url=url,
        secret_file=secret_file,
        max_backoff=0.3,
        timeout=5,
        concurrency=concurrency,
    )  # type: ignore[arg-type]


def _raise(store: object, count: int, start: int = 0) -> None:
    for i in range(start, start + count):
        store.apply(finding(SYSTEM_CLOCK, subject=f"/k{i}", rectification=()))  # type: ignore[attr-defined]


def test_a_burst_reuses_one_connection_per_worker(
    tmp: Path, secret_file: Path, receiver: WebhookReceiver
) -> None:
    """60 tickets over 2 workers arrive over at most 2 connections, each exactly once, signed."""
    store, dispatcher = make(tmp, _sink(receiver.url, secret_file), SYSTEM_CLOCK)
    dispatcher.start()
    try:
        _raise(store, 60)
        dispatcher.wake()
        receiver.wait_for(lambda got: len(got) >= 60)
        wait_until(lambda: dispatcher.outbox.stats()["hook"]["pending"] == 0)
        assert receiver.bad_signatures == 0
        assert len({key for key, _ in receiver.received}) == len(receiver.received) == 60
        assert receiver.connections <= 2
    finally:
        dispatcher.stop()
        store.close()


def test_a_receiver_going_down_and_up_loses_nothing(
    tmp: Path, secret_file: Path, receiver: WebhookReceiver
) -> None:
    """The kept-alive connections die with the receiver: the tickets meanwhile are retried, and
    arrive once it is back (on new connections)."""
    store, dispatcher = make(tmp, _sink(receiver.url, secret_file), SYSTEM_CLOCK)
    dispatcher.start()
    try:
        _raise(store, 5)
        dispatcher.wake()
        receiver.wait_for(lambda got: len(got) >= 5)
        wait_until(lambda: dispatcher.outbox.stats()["hook"]["pending"] == 0)
        receiver.stop()
        _raise(store, 5, start=5)
        dispatcher.wake()
        wait_until(lambda: dispatcher.outcomes[("hook", "retry")] >= 2)
        receiver.start()
        receiver.wait_for(lambda got: len({key for key, _ in got}) >= 10)
        assert sorted(body["hazard"]["id"] for _key, body in receiver.received) == list(range(1, 11))
    finally:
        dispatcher.stop()
        store.close()


class _ClosesAfterEachAnswer(socketserver.ThreadingTCPServer):
    """An HTTP/1.1 receiver that answers without `Connection: close` and then closes anyway,
    as one does whose idle timeout ran out between two tickets: the client's next request on that
    connection finds it gone."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self) -> None:
        self.requests = 0
        server = self

        class Handler(socketserver.StreamRequestHandler):
            def handle(self) -> None:
                head = b""
                while b"\r\n\r\n" not in head:
                    chunk = self.request.recv(65536)
                    if not chunk:
                        return
                    head += chunk
                length = next(
                    int(line.split(b":", 1)[1])
                    for line in head.split(b"\r\n")
                    if line.lower().startswith(b"content-length:")
                )
                body = head.split(b"\r\n\r\n", 1)[1]
                while len(body) < length:
                    body += self.request.recv(65536)
                server.requests += 1
                self.request.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
                self.request.shutdown(socket.SHUT_RDWR)

        super().__init__(("127.0.0.1", 0), Handler)


def test_a_connection_the_receiver_dropped_is_replaced_without_a_failed_attempt() -> None:
    """The POST after a silent close goes out again on a new connection: delivered, and not
    counted as a failed attempt."""
    server = _ClosesAfterEachAnswer()
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    client = KeepAlive(f"http://127.0.0.1:{server.server_address[1]}/hook", timeout=5)
    try:
        outcomes = []
        for i in range(5):
            outcomes.append(client.post(b"{}", {"webhook-id": f"k{i}", "Content-Type": "application/json"}))
            threading.Event().wait(0.02)  # the receiver's close reaches the client first
        assert [o.kind for o in outcomes] == ["delivered"] * 5
        assert server.requests == 5
    finally:
        client.close()
        server.shutdown()
        server.server_close()


def test_a_refused_connection_is_a_retry_not_a_resend() -> None:
    """Nothing listening: a retry outcome at once (a new connection is not tried twice)."""
    client = KeepAlive(f"http://127.0.0.1:{free_port()}/hook", timeout=2)
    outcome = client.post(b"{}", {})
    assert outcome.kind == "retry" and "Connection refused" in outcome.error


def test_outcomes_finished_together_are_written_in_one_transaction(
    tmp: Path, secret_file: Path, receiver: WebhookReceiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    """While one worker writes outcomes, the others' queue up and go in the next single write."""
    store, dispatcher = make(tmp, _sink(receiver.url, secret_file, concurrency=4), SYSTEM_CLOCK)
    writes: list[list[Mark]] = []
    original = Outbox.mark

    def counted(self: Outbox, marks: list[Mark]) -> None:
        writes.append(list(marks))
        original(self, marks)

    monkeypatch.setattr(Outbox, "mark", counted)
    try:
        _raise(store, 4)
        with dispatcher._recording:  # a write in progress: the four deliveries finish meanwhile
            assert dispatcher.dispatch_once() == 4
            wait_until(lambda: len(dispatcher._finished) == 4)
        wait_until(lambda: dispatcher.outbox.stats()["hook"]["pending"] == 0)
        assert [len(w) for w in writes] == [4]
        assert {m.kind for m in writes[0]} == {"delivered"}
    finally:
        dispatcher.stop()
        store.close()


def test_marks_are_all_or_none(tmp: Path) -> None:
    """A write that fails part-way (here a trigger refuses the second row) changes no row."""
    path = tmp / "h.db"
    build_backlog(path, 3, 0.0)
    outbox = Outbox(path)
    try:
        ids = [r.id for r in outbox.due("hook", 1e12, limit=10)]
        conn = sqlite3.connect(path)
        conn.execute(
            f"CREATE TRIGGER refuse BEFORE UPDATE ON outbox WHEN NEW.id = {ids[1]} "
            "BEGIN SELECT RAISE(ABORT, 'refused'); END"
        )
        conn.commit()
        conn.close()
        with pytest.raises(sqlite3.IntegrityError, match="refused"):
            outbox.mark([Mark(ids[0], "delivered", 1.0), Mark(ids[1], "retry", 2.0, "HTTP 503")])
        assert outbox.stats()["hook"]["pending"] == 3
        assert [r.attempts for r in outbox.due("hook", 1e12, limit=10)] == [8, 8, 8]
    finally:
        outbox.close()


def test_the_store_and_the_outbox_take_turns_on_one_writer_lock(tmp: Path) -> None:
    """In one process the store's transactions and the outbox's marks queue on one lock per
    database file (not in SQLite's sleeping busy handler, which let a store committing back to
    back hold the marks off for seconds); a path through a symlink is the same database."""
    from sentinel.core.db import writer_lock
    from sentinel.hazards.connection import StoreConnection

    path = tmp / "h.db"
    build_backlog(path, 1, 0.0)
    (tmp / "link").symlink_to(tmp)
    store = StoreConnection(tmp / "link" / "h.db")
    outbox = Outbox(path)
    try:
        assert store.writer is writer_lock(path) is outbox._writer
        with store.txn():
            assert writer_lock(path).locked()
            done = threading.Event()
            row = outbox.due("hook", 1e12, limit=1)[0]
            marker = threading.Thread(
                target=lambda: (outbox.mark([Mark(row.id, "delivered", 1.0)]), done.set()), daemon=True
            )
            marker.start()
            assert not done.wait(0.2)  # the mark waits for the store's transaction
        assert done.wait(10)
        assert not writer_lock(path).locked()
    finally:
        outbox.close()
        store.close()
