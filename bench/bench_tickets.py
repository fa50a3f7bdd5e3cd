"""Ticket delivery to a local webhook receiver: tickets per second, and the delay from commit to
delivery (p50/p99), through the real dispatcher, the real outbox and real HTTP on 127.0.0.1."""

from __future__ import annotations

import threading
import time

from bench.harness import Context, Figure, Stats, percentile
from sentinel import __version__
from sentinel.core.clock import SYSTEM_CLOCK
from sentinel.core.model import Category, Finding, Severity
from sentinel.hazards.config import HazardsConfig
from sentinel.hazards.store import HazardStore
from sentinel.tickets.config import SinkConfig
from sentinel.tickets.dispatcher import Dispatcher
from sentinel.tickets.ticketing import Ticketing
from tests.support.net import WebhookReceiver, free_port


def one_run(ctx: Context, run: int, tickets: int) -> tuple[float, list[float]]:
    secret = ctx.scratch / "secret"
    secret.write_bytes(b"bench-secret")
    receiver = WebhookReceiver(b"bench-secret", port=free_port()).start()
    arrivals: dict[str, float] = {}
    original = receiver.handle

    def timed(headers: dict[str, str], body: bytes) -> int:
        code = original(headers, body)
        arrivals[headers.get("webhook-id", headers.get("Webhook-Id", ""))] = time.time()
        return code

    receiver.handle = timed  # type: ignore[method-assign]
    sink = SinkConfig(name="hook", type="webhook", url=receiver.url, secret_file=secret, concurrency=4)  # type: ignore[arg-type]
    path = ctx.scratch / f"t{run}.db"
    store = HazardStore(
        path,
        config=HazardsConfig(),
        terminal="bench",
        branch="b",
        clock=SYSTEM_CLOCK,
        ticketer=Ticketing(
            terminal="bench", branch="b", agent_version=__version__, sinks_for=lambda r, t: ["hook"]
        ),
    )
    dispatcher = Dispatcher(path, [sink], poll_interval=0.05)
    committed: dict[int, float] = {}
    dispatcher.start()
    started = time.perf_counter()
    for i in range(tickets):
        store.apply(
            Finding(
                rule="r",
                subject=f"s{i}",
                state="firing",
                severity=Severity.MAJOR,
                category=Category.STABILITY,
                title="t",
                time=time.time(),
            )
        )
        committed[i + 1] = time.time()
        dispatcher.wake()
    done = threading.Event()
    deadline = time.monotonic() + 120
    while len(arrivals) < tickets and time.monotonic() < deadline:
        done.wait(0.02)
    elapsed = time.perf_counter() - started
    delays = [arrivals[k] - committed[int(k.split("-")[2])] for k in arrivals if k]
    dispatcher.stop()
    store.close()
    receiver.stop()
    return tickets / elapsed, delays


def run(ctx: Context) -> list[Figure]:
    tickets = 300 if ctx.quick else 2_000
    rounds = 2 if ctx.quick else 3
    rates, p50s, p99s = [], [], []
    for r in range(rounds):
        rate, delays = one_run(ctx, r, tickets)
        rates.append(rate)
        p50s.append(percentile(delays, 50) * 1000)
        p99s.append(percentile(delays, 99) * 1000)
    return [
        Figure(
            f"tickets delivered to a local receiver ({tickets:,}, signed)",
            "tickets/s",
            Stats.of(rates),
            better="higher",
        ),
        Figure("commit → delivery delay p50", "ms", Stats.of(p50s)),
        Figure("commit → delivery delay p99", "ms", Stats.of(p99s)),
    ]
