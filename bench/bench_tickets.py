"""Ticket delivery to a local webhook receiver, through the real hazard store, outbox, dispatcher
and HTTP on 127.0.0.1 (a receiver that verifies every signature and keeps connections alive).

The receiver (bench.ticket_receiver) runs in its own process, as a real one does.

- Burst: N tickets committed at once (the writer's transactions), then delivered; tickets/s from
  the dispatcher's start to the last arrival. The peer is the serial floor: N signed POSTs of a
  real ticket body from one thread over one kept-alive connection to the same receiver, run
  interleaved with Sentinel's rounds.
- Paced: findings committed on a schedule (the i-th at t0 + i / rate) at 5, 50 and 500 tickets/s;
  commit → delivery delay p50 and p99 of all the tickets of the scenario (each row from its own
  samples).
"""

from __future__ import annotations

import http.client
import json
import subprocess
import sys
import time

from bench.harness import Context, Figure, Stats, interleave
from sentinel import __version__
from sentinel.core.clock import SYSTEM_CLOCK
from sentinel.core.model import Category, Finding, Severity
from sentinel.hazards.config import HazardsConfig
from sentinel.hazards.store import HazardStore
from sentinel.pipeline.writer import TRANSACTION_SIZE
from sentinel.tickets.config import SinkConfig
from sentinel.tickets.dispatcher import Dispatcher
from sentinel.tickets.sinks.webhook import sign
from sentinel.tickets.ticketing import Ticketing

SECRET = b"bench-secret"
BURST_GOAL = 1_500.0  # tickets/s
PACED_GOAL_MS = 5.0  # commit -> delivery p50 at 50/s
WORKERS = 4  # the sink's concurrency


class _Receiver:
    """bench.ticket_receiver in its own process, expecting `count` tickets."""

    def __init__(self, ctx: Context, count: int) -> None:
        secret = ctx.scratch / "secret"
        secret.write_bytes(SECRET)
        self._out = ctx.scratch / f"arrivals-{time.monotonic_ns()}.json"
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "bench.ticket_receiver", str(secret), str(count), str(self._out)],
            stdout=subprocess.PIPE,
            text=True,
            cwd=ctx.root,
        )
        assert self._proc.stdout is not None
        self.port = int(self._proc.stdout.readline())
        self.url = f"http://127.0.0.1:{self.port}/hook"

    def arrivals(self, timeout: float = 120) -> dict[int, float]:
        """{hazard id: arrival time}, once every expected ticket has arrived."""
        try:
            self._proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self._proc.terminate()
            self._proc.wait(10)
        result = json.loads(self._out.read_text())
        if result["bad_signatures"]:
            raise RuntimeError(f"{result['bad_signatures']} tickets with a bad signature")
        return {int(k): float(v) for k, v in result["arrivals"].items()}

    def stop(self) -> None:
        """End the receiver if it is still running."""
        if self._proc.poll() is None:
            self._proc.terminate()
            self._proc.wait(10)


def _finding(i: int) -> Finding:
    return Finding(
        rule="r",
        subject=f"s{i}",
        state="firing",
        severity=Severity.MAJOR,
        category=Category.STABILITY,
        title="t",
        time=time.time(),
    )


def _agent(ctx: Context, name: str, url: str) -> tuple[HazardStore, Dispatcher]:
    secret = ctx.scratch / "secret"
    secret.write_bytes(SECRET)
    sink = SinkConfig(name="hook", type="webhook", url=url, secret_file=secret, concurrency=WORKERS)  # type: ignore[arg-type]
    path = ctx.scratch / f"{name}.db"
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
    return store, Dispatcher(path, [sink], poll_interval=0.05)


def backlog(ctx: Context, name: str, count: int) -> float:
    """Commit `count` findings at once (TRANSACTION_SIZE to a transaction, as the agent's writer
    takes a burst), then start the dispatcher: seconds from its start to the last arrival."""
    receiver = _Receiver(ctx, count)
    store, dispatcher = _agent(ctx, name, receiver.url)
    try:
        for first in range(0, count, TRANSACTION_SIZE):
            store.apply_many([_finding(i) for i in range(first, min(first + TRANSACTION_SIZE, count))])
        started = time.time()
        dispatcher.start()
        arrivals = receiver.arrivals()
    finally:
        dispatcher.stop()
        store.close()
        receiver.stop()
    if len(arrivals) < count:
        raise RuntimeError(f"{len(arrivals)} of {count} tickets arrived in 120 s")
    return max(arrivals.values()) - started


def paced(ctx: Context, name: str, count: int, rate: float) -> tuple[float, list[float]]:
    """Commit `count` findings one by one, the i-th at t0 + i / rate, the dispatcher woken after
    each commit (as the agent's writer does); (the achieved rate, each ticket's commit -> arrival
    delay in seconds)."""
    receiver = _Receiver(ctx, count)
    store, dispatcher = _agent(ctx, name, receiver.url)
    committed: dict[int, float] = {}
    dispatcher.start()
    try:
        t0 = time.monotonic()
        for i in range(count):
            delay = t0 + i / rate - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            store.apply(_finding(i))
            committed[i + 1] = time.time()
            dispatcher.wake()
        achieved = (count - 1) / max(time.monotonic() - t0, 1e-9)
        arrivals = receiver.arrivals()
    finally:
        dispatcher.stop()
        store.close()
        receiver.stop()
    if len(arrivals) < count:
        raise RuntimeError(f"{len(arrivals)} of {count} tickets arrived in 120 s")
    return achieved, [arrivals[k] - committed[k] for k in committed]


def serial_floor(ctx: Context, count: int) -> float:
    """Seconds for `count` signed POSTs of real ticket bodies to the same receiver, one after
    another from one thread over one kept-alive connection (no store, no outbox)."""
    body_of = ctx.scratch / "body.json"
    if not body_of.exists():  # a real ticket body, as the store writes it
        store, dispatcher = _agent(ctx, "body", "http://127.0.0.1:9/")
        store.apply(_finding(0))
        body_of.write_text(dispatcher.outbox.due("hook", time.time() + 1, limit=1)[0].payload)
        dispatcher.stop()
        store.close()
    template = json.loads(body_of.read_text())
    receiver = _Receiver(ctx, count)
    conn = http.client.HTTPConnection("127.0.0.1", receiver.port, timeout=10)
    try:
        started = time.perf_counter()
        for i in range(count):
            template["hazard"]["id"] = i + 1
            body = json.dumps(template).encode()
            stamp = int(time.time())
            headers = {
                "Content-Type": "application/json",
                "webhook-id": f"k{i}",
                "webhook-timestamp": str(stamp),
                "webhook-signature": sign(SECRET, f"k{i}", stamp, body),
            }
            conn.request("POST", "/hook", body, headers)
            conn.getresponse().read()
        elapsed = time.perf_counter() - started
        receiver.arrivals()
        return elapsed
    finally:
        conn.close()
        receiver.stop()


def run(ctx: Context) -> list[Figure]:
    burst = 300 if ctx.quick else 2_000
    rounds = 2 if ctx.quick else 5
    seconds = 2.0 if ctx.quick else 6.0
    runs = iter(range(1_000))
    ours, floor = interleave(
        lambda: burst / backlog(ctx, f"burst{next(runs)}", burst),
        lambda: burst / serial_floor(ctx, burst),
        rounds,
    )
    figures = [
        Figure(
            f"tickets delivered, burst of {burst:,} (signed, {WORKERS} workers)",
            "tickets/s",
            Stats.of(ours),
            Stats.of(floor),
            "serial signed POSTs, one kept-alive connection",
            better="higher",
            load=f"burst: {burst:,} tickets committed at once, then delivered to a receiver in "
            f"another process; {rounds} rounds interleaved with the peer",
            goal=f"≥ {BURST_GOAL:,.0f} tickets/s",
            met=Stats.of(ours).median >= BURST_GOAL,
        )
    ]
    for rate in (5.0, 50.0, 500.0):
        count = max(10, int(rate * seconds))
        achieved, delays = paced(ctx, f"paced{rate:g}", count, rate)
        ms = [d * 1000 for d in delays]
        load = (
            f"paced: {rate:g} tickets/s asked, {achieved:.0f}/s achieved ({count:,} tickets, "
            f"one commit every {1000 / rate:g} ms)"
        )
        for q in (50, 99):
            figure = Figure(f"commit → delivery p{q} at {rate:g}/s", "ms", Stats.percentile(ms, q), load=load)
            if rate == 50.0 and q == 50:
                figure.goal = f"≤ {PACED_GOAL_MS:g} ms"
                figure.met = figure.sentinel.median <= PACED_GOAL_MS
            figures.append(figure)
    return figures
