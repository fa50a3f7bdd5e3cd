"""The hub: ingest throughput from 10,000 simulated terminals (signed tickets over real HTTP) on
SQLite and on PostgreSQL, and a storm where every terminal raises at once.

The hub is the real `python -m sentinel.hub serve` process on 127.0.0.1; the terminals are
simulated by this process: each ticket is a `sentinel.ticket/1` document built by the agent's own
payload builder and signed with that terminal's enrolled secret (Standard Webhooks), sent over a
pool of keep-alive HTTP/1.1 connections. A 503 is retried, as the agent's dispatcher does.
Every figure's name says the scenario, the database and the fleet size that produced it.

    ingest:  every terminal sends raise, ack, start, resolve of one hazard (4 tickets each),
             shuffled across terminals; tickets/s = tickets / wall time to the last answer.
    storm:   every terminal raises at the same instant; "nothing lost" = the hub holds exactly
             one transition per terminal; lag = hub commit - the transition's time (p50/p99/max,
             from the answers and from the hub's own sentinel_hub_terminal_lag_seconds_max).

Quick mode (`make bench QUICK=1`, and tests/hub/test_bench.py): 300 terminals, PostgreSQL too.
"""

from __future__ import annotations

import asyncio
import os
import random
import re
import time
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from bench.harness import Context, Figure, Stats, percentile
from sentinel.hub.testing import (
    HubProcess,
    PostgresServer,
    encode,
    fleet_inventory,
    hazard_record,
    history_row,
    secret_bytes,
    sign,
    ticket,
    write_hub_config,
)
from tests.support.net import free_port

GOAL_RATE = 5000.0
CONNECTIONS = 64
STORM_CONNECTIONS = 512
STEPS = (
    ("raised", "raise", None, "open", "sentinel"),
    ("acknowledged", "ack", "open", "acknowledged", "os:alice"),
    ("rectifying", "start", "acknowledged", "rectifying", "os:alice"),
    ("resolved", "resolve", "rectifying", "resolved", "os:alice"),
)


def _request(secret: bytes, doc: dict[str, Any], stamp: int) -> bytes:
    body = encode(doc)
    key = doc["idempotency_key"]
    head = (
        "POST /ingest/v1/tickets HTTP/1.1\r\nHost: hub\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\nwebhook-id: {key}\r\nwebhook-timestamp: {stamp}\r\n"
        f"webhook-signature: {sign(secret, key, stamp, body)}\r\n\r\n"
    )
    return head.encode() + body


def _hazard_docs(terminal: str, now: float, steps: int) -> list[dict[str, Any]]:
    docs, rows = [], []
    for n, (transition, action, src, dst, actor) in enumerate(STEPS[:steps]):
        at = now + n
        rows.append(history_row(action, at, actor=actor, from_state=src, to_state=dst))
        rec = hazard_record(
            terminal,
            1,
            state=dst or "open",
            at=now,
            history=list(rows),
            resolved_by="os:alice" if action == "resolve" else None,
        )
        docs.append(ticket(rec, transition=transition, history_id=n + 1, at=at, actor=actor))
    return docs


async def _worker(
    port: int, queue: asyncio.Queue[tuple[int, bytes]], done: dict[int, float], statuses: dict[int, int]
) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        while True:
            try:
                index, request = queue.get_nowait()
            except asyncio.QueueEmpty:
                return
            for attempt in range(20):
                writer.write(request)
                head = await reader.readuntil(b"\r\n\r\n")
                status = int(head.split(b" ", 2)[1])
                length = int(re.search(rb"(?i)content-length: *(\d+)", head).group(1))  # type: ignore[union-attr]
                await reader.readexactly(length)
                if status != 503:
                    break
                await asyncio.sleep(min(2.0, 0.05 * 2**attempt) * random.random())
            statuses[index] = status
            done[index] = time.time()
    finally:
        writer.close()


async def _blast(
    port: int, requests: Sequence[bytes], connections: int
) -> tuple[float, dict[int, float], dict[int, int]]:
    queue: asyncio.Queue[tuple[int, bytes]] = asyncio.Queue()
    for item in enumerate(requests):
        queue.put_nowait(item)
    done: dict[int, float] = {}
    statuses: dict[int, int] = {}
    start = time.perf_counter()
    await asyncio.gather(
        *(_worker(port, queue, done, statuses) for _ in range(min(connections, len(requests))))
    )
    return time.perf_counter() - start, done, statuses


class _Fleet:
    """A hub process on one database with `terminals` enrolled simulated terminals."""

    def __init__(self, ctx: Context, name: str, terminals: int, url: str = "") -> None:
        from sentinel.hub.config import load
        from sentinel.hub.hub import Hub

        self.port = free_port()
        self.config = write_hub_config(
            ctx.scratch / name, port=self.port, url=url, inventory=fleet_inventory(terminals)
        )
        hub = Hub(load(self.config))
        hub.migrate()
        self.secrets = {
            t: secret_bytes(s)
            for t, s in hub.keyring.enroll_many(
                sorted(hub.inventory.terminals), hub.inventory, by="bench"
            ).items()
        }
        self.url = hub.config.database_url
        hub.db.dispose()
        self.process = HubProcess(self.config, self.port).wait_ready()

    def transitions(self) -> int:
        engine = sa.create_engine(self.url)
        try:
            with engine.connect() as c:
                return int(c.execute(sa.text("SELECT COUNT(*) FROM hub_transitions")).scalar_one())
        finally:
            engine.dispose()

    def scrape(self) -> str:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/metrics", timeout=10) as response:
            return str(response.read().decode())

    def stop(self) -> None:
        self.process.stop()


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def ingest(ctx: Context, database: str, terminals: int, url: str = "") -> tuple[Figure, Figure]:
    """Scenario: `terminals` terminals each send 4 signed tickets, shuffled; tickets/s."""
    fleet = _Fleet(ctx, f"ingest-{database}", terminals, url)
    try:
        now = time.time()
        docs = [d for t in sorted(fleet.secrets) for d in _hazard_docs(t, now, len(STEPS))]
        random.Random(1).shuffle(docs)
        stamp = int(time.time())
        requests = [_request(fleet.secrets[d["terminal"]], d, stamp) for d in docs]
        cpu_before = _cpu_seconds(fleet.process.proc.pid)
        elapsed, _, statuses = asyncio.run(_blast(fleet.port, requests, CONNECTIONS))
        cpu = _cpu_seconds(fleet.process.proc.pid) - cpu_before
        bad = sum(1 for s in statuses.values() if s != 200)
        stored = fleet.transitions()
    finally:
        fleet.stop()
    rate = len(requests) / elapsed
    per_ticket = cpu / len(requests) * 1e6
    ctx.log(
        f"   ingest {database}: {len(requests)} tickets in {elapsed:.1f}s = {rate:.0f}/s, "
        f"{bad} not 200, {stored} stored, hub CPU {per_ticket:.0f} µs/ticket"
    )
    load = (
        f"burst: {len(requests):,} signed tickets from {terminals:,} simulated terminals over "
        f"{CONNECTIONS} keep-alive connections, {database}"
    )
    cpu_figure = Figure(
        f"hub ingest — hub process CPU per ticket, {terminals:,} terminals, {database}",
        "µs",
        Stats.of([per_ticket]),
        notes="utime+stime of the hub process during the run / tickets: the load-independent cost "
        f"(one core holds {1e6 / per_ticket:,.0f} tickets/s at this cost)",
        load=load,
    )
    return cpu_figure, Figure(
        f"hub ingest — {terminals:,} simulated terminals × {len(STEPS)} signed tickets over HTTP, {database}",
        "tickets/s",
        Stats.of([rate]),
        goal=f"≥ {GOAL_RATE:,.0f} tickets/s",
        met=rate >= GOAL_RATE and bad == 0 and stored == len(requests),
        better="higher",
        notes=f"{len(requests)} tickets, {CONNECTIONS} keep-alive connections, {bad} refused, "
        f"{stored} stored",
        load=load,
    )


def storm(ctx: Context, database: str, terminals: int, url: str = "") -> list[Figure]:
    """Scenario: every terminal raises at the same instant; nothing lost, lag reported."""
    fleet = _Fleet(ctx, f"storm-{database}", terminals, url)
    try:
        stamp = int(time.time())
        now = time.time()
        docs = [_hazard_docs(t, now, 1)[0] for t in sorted(fleet.secrets)]
        requests = [_request(fleet.secrets[d["terminal"]], d, stamp) for d in docs]
        elapsed, done, statuses = asyncio.run(_blast(fleet.port, requests, STORM_CONNECTIONS))
        lags = [at - now for at in done.values()]
        stored = fleet.transitions()
        scraped = fleet.scrape()
    finally:
        fleet.stop()
    worst = re.search(r"^sentinel_hub_terminal_lag_seconds_max ([0-9.e+-]+)$", scraped, re.M)
    hub_max = float(worst.group(1)) if worst else float("nan")
    lost = terminals - stored
    ctx.log(
        f"   storm {database}: {terminals} raises in {elapsed:.1f}s, stored {stored}, lost {lost}, "
        f"lag p50 {percentile(lags, 50):.2f}s p99 {percentile(lags, 99):.2f}s, hub max {hub_max:.2f}s"
    )
    label = f"hub storm — all {terminals:,} terminals raise at once, {database}"
    load = f"burst: {terminals:,} raises at one instant over {STORM_CONNECTIONS} connections, {database}"
    return [
        Figure(
            f"{label}: tickets lost",
            "tickets",
            Stats.of([float(lost)]),
            goal="0 lost",
            met=lost == 0,
            notes=f"{stored} of {terminals} transitions stored; "
            f"{sum(1 for s in statuses.values() if s != 200)} answers not 200 after retries",
            load=load,
        ),
        Figure(f"{label}: lag p50 (answer − transition)", "s", Stats.of([percentile(lags, 50)]), load=load),
        Figure(
            f"{label}: lag p99 (answer − transition)",
            "s",
            Stats.of([percentile(lags, 99)]),
            notes=f"max {max(lags):.2f} s; the hub's sentinel_hub_terminal_lag_seconds_max {hub_max:.2f} s",
            load=load,
        ),
    ]


def run(ctx: Context, *, terminals: int | None = None) -> list[Figure]:
    """Every scenario on SQLite, then on a private PostgreSQL (fsync on, as in production)."""
    size = terminals or (300 if ctx.quick else 10_000)
    figures = [*ingest(ctx, "SQLite", size), *storm(ctx, "SQLite", size)]
    if PostgresServer.available() is not None:
        ctx.log("   PostgreSQL not installed: its scenarios are skipped")
        return figures
    server = PostgresServer(fsync=True)
    server.start()
    try:
        figures += ingest(ctx, "PostgreSQL", size, server.create_database())
        figures += storm(ctx, "PostgreSQL", size, server.create_database())
    finally:
        server.stop()
    return figures


def scratch_context(path: Path) -> Context:
    """A bench Context for running these scenarios from a test."""
    return Context(quick=True, scratch=path, root=Path(__file__).resolve().parents[1])
