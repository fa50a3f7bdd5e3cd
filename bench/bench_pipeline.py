"""Pipeline throughput: 10,000 findings on 1,000 fingerprints through rules -> store -> outbox.

The writer's own path: batches of 100 events through the event-rule engine into the real SQLite
store (WAL, synchronous=FULL), each batch's findings committed in one transaction (one fsync per
burst), with an outbox row per ticketed transition for one sink. No peer runs this pipeline, so
the figures stand alone against their goal.
"""

from __future__ import annotations

import time

from bench.harness import Context, Figure, Stats
from sentinel import __version__
from sentinel.core.model import Category, Event, Severity, freeze_fields
from sentinel.core.status import AgentStatus
from sentinel.hazards.config import HazardsConfig
from sentinel.hazards.store import HazardStore
from sentinel.pipeline.writer import Batch, Pipeline
from sentinel.rules.config import RuleConfig
from sentinel.rules.engine import RuleEngine
from sentinel.testing import FakeClock
from sentinel.tickets.ticketing import Ticketing

BATCH = 100  # events per queued batch, as a log follower hands them over


def one_run(ctx: Context, run: int, findings: int, fingerprints: int) -> float:
    """Seconds for the writer to turn `findings` events into hazards."""
    clock = FakeClock()
    store = HazardStore(
        ctx.scratch / f"p{run}.db",
        config=HazardsConfig(),
        terminal="bench",
        branch="b",
        clock=clock,
        ticketer=Ticketing(
            terminal="bench", branch="b", agent_version=__version__, sinks_for=lambda r, t: ["hook"]
        ),
    )
    rule = RuleConfig(
        name="burst",
        category=Category.CYBER_ATTACK,
        event="auth.login_failed",
        count=1,
        severity=Severity.MAJOR,
        title="{subject}",
    )
    pipeline = Pipeline(
        store=store, engine=RuleEngine([rule], clock=clock), status=AgentStatus(clock=clock), clock=clock
    )
    events = [
        Event(
            "auth",
            "login_failed",
            f"198.51.100.{i % fingerprints}",
            clock.time() + i,
            freeze_fields({"user": "root"}),
        )
        for i in range(findings)
    ]
    batches = [
        Batch("auth", tuple(events[i : i + BATCH]), frozenset(), complete=False)
        for i in range(0, len(events), BATCH)
    ]
    started = time.perf_counter()
    for batch in batches:  # what the writer thread does with each queued batch
        pipeline.process_now(batch)
    elapsed = time.perf_counter() - started
    store.close()
    return elapsed


def run(ctx: Context) -> list[Figure]:
    findings, fingerprints = (2_000, 200) if ctx.quick else (10_000, 1_000)
    rounds = 2 if ctx.quick else 3
    times = [one_run(ctx, r, findings, fingerprints) for r in range(rounds)]
    total = Stats.of(times)
    goal_seconds = 5.0 * findings / 10_000
    load = f"burst: {findings:,} events in batches of {BATCH}, {fingerprints:,} fingerprints, {rounds} runs"
    return [
        Figure(
            f"writer: {findings:,} findings on {fingerprints:,} fingerprints",
            "s",
            total,
            goal=f"≤ {goal_seconds:g} s",
            met=total.median <= goal_seconds,
            load=load,
        ),
        Figure(
            "writer throughput",
            "findings/s",
            Stats.of([findings / t for t in times]),
            better="higher",
            load=load,
        ),
        Figure(
            "cost per finding (rule + store + outbox)",
            "µs",
            Stats.of([t / findings * 1e6 for t in times]),
            load=load,
        ),
    ]
